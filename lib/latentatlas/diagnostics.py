"""Diagnostics that come with every FRE comparison: when not to trust a number.

Each matrix cell of a comparison (:func:`latentatlas.compare.compare`) gets a bit mask of
flags, stored as ``<metric>_flags`` (source, target) with the CF attributes
``flag_masks`` and ``flag_meanings``:

=========================  ====  ===================================================================
flag                       mark  raised when
=========================  ====  ===================================================================
``unseen_elements``        e     more than half of the cell's squared error (pooled over splits)
                                 comes from test structures holding an element that no training
                                 structure has: the map is asked to extrapolate
``above_one``              !     the value is above 1: worse than predicting the training mean
``spread_exceeds_value``   ~     the standard deviation over splits is larger than the value
``few_training_structures``  n   a subset has fewer than :data:`MIN_TRAIN_STRUCTURES` training
                                 structures in some split (the same for every cell)
``cutoff_at_grid_edge``    a     in at least half of the fits (splits; for LFRE, also test samples)
                                 the CV chose the largest alpha of the grid, or the smallest where it
                                 keeps more components than the next (off the diagonal only: a set
                                 reconstructs itself best with no cut-off)
=========================  ====  ===================================================================

Supporting variables: ``<metric>_unseen_error_share`` and ``<metric>_edge_cutoff_fraction``
(source, target); per test sample of the first split, ``test_unseen_element``
(test_<sample>); in attrs, ``train_structures_per_subset`` (fewest over splits).
:func:`caveats` turns them into sentences for the CLI and the report; :func:`cell_notes`
into the lines of one cell's hover in the dashboard.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FLAGS",
    "MIN_TRAIN_STRUCTURES",
    "SplitDiagnostics",
    "caveats",
    "cell_flags",
    "cell_marks",
    "cell_notes",
    "unseen_element_samples",
]

# name -> (bit, mark, what it means), in the order of the bits.
FLAGS = {
    "unseen_elements": (1, "e", "most of the error comes from test structures with elements absent from training"),
    "above_one": (2, "!", "value above 1: worse than predicting the training mean"),
    "spread_exceeds_value": (4, "~", "spread over splits larger than the value"),
    "few_training_structures": (8, "n", "too few training structures per subset"),
    "cutoff_at_grid_edge": (16, "a", "ridge cut-off chosen at the edge of the alpha grid"),
}

MIN_TRAIN_STRUCTURES = 10
_MAJORITY = 0.5


def _structure_elements(features):
    """Sorted element set (as a frozenset of Z) of every structure, or None without atom data."""
    if "species" not in features.coords or "atom_structure" not in features.coords:
        return None
    owner = features["atom_structure"].values
    species = features["species"].values
    out = [set() for _ in range(features.sizes["structure"])]
    for s, z in zip(owner, species):
        out[s].add(int(z))
    return out


def _sample_structures(features, sample):
    """Structure index of every sample (atoms: their structure; structures: themselves)."""
    return features["atom_structure"].values if sample == "atom" else np.arange(features.sizes["structure"])


def unseen_element_samples(features, train_idx, test_idx, sample="atom") -> np.ndarray:
    """Whether each test sample's structure holds an element absent from every training structure.

    Parameters
    ----------
    features : xarray.Dataset
        Features Dataset with ``species`` and ``atom_structure`` (otherwise nothing is flagged).
    train_idx, test_idx : ndarray of int
        Sample indices along ``sample``.
    sample : {"atom", "structure"}
        The sample dimension of the features.

    Returns
    -------
    ndarray of bool, shape (n_test,)
    """
    elements = _structure_elements(features)
    if elements is None:
        return np.zeros(len(test_idx), dtype=bool)
    owner = _sample_structures(features, sample)
    seen = set().union(*(elements[s] for s in np.unique(owner[train_idx])))
    new = {s: bool(elements[s] - seen) for s in np.unique(owner[test_idx])}
    return np.array([new[s] for s in owner[test_idx]], dtype=bool)


def train_structures_per_subset(features, train_idx, sample="atom", stratify_by="subset") -> dict[str, int]:
    """Number of training structures in each subset (``{"all": n}`` without subsets)."""
    owner = _sample_structures(features, sample)
    structures = np.unique(owner[train_idx])
    if stratify_by is None or stratify_by not in features.coords:
        return {"all": len(structures)}
    labels = features[stratify_by].values
    return {str(s): int(np.sum(labels[structures] == s)) for s in dict.fromkeys(labels.tolist())}


class SplitDiagnostics:
    """Diagnostics gathered over the splits of one metric, summarised into Dataset variables.

    Call :meth:`add` once per split with that split's pointwise matrix (with its
    ``alpha_index`` coordinate), then :meth:`variables`.
    """

    def __init__(self, features, sample="atom", stratify_by="subset"):
        self.features, self.sample, self.stratify_by = features, sample, stratify_by
        self.unseen_share, self.edge, self.per_subset = [], [], []
        self.first_unseen = None

    def add(self, pointwise, train_idx, test_idx):
        """Record one split: ``pointwise`` (source, target, test) indexed like ``test_idx``."""
        unseen = unseen_element_samples(self.features, train_idx, test_idx, self.sample)
        if self.first_unseen is None:
            self.first_unseen = unseen
        sq = pointwise.values**2
        self.unseen_share.append((sq[..., unseen].sum(axis=-1), sq.sum(axis=-1)))
        at_edge = pointwise["cutoff_at_edge"].values
        self.edge.append(at_edge.mean(axis=-1) if at_edge.ndim == 3 else at_edge.astype(float))
        self.per_subset.append(train_structures_per_subset(self.features, train_idx, self.sample, self.stratify_by))

    def variables(self, metric, mean, std):
        """Dataset variables (name -> (dims, values, attrs)) and attrs for ``metric``'s matrix."""
        # pooled over splits: one split whose test half holds an unseen element can dominate a cell
        unseen, total = (np.sum(part, axis=0) for part in zip(*self.unseen_share))
        unseen_share = np.divide(unseen, total, out=np.zeros_like(total), where=total > 0)
        edge = np.mean(self.edge, axis=0)
        fewest = {k: min(p[k] for p in self.per_subset) for k in self.per_subset[0]}
        few = min(fewest.values()) < MIN_TRAIN_STRUCTURES
        flags = cell_flags(mean, std, unseen_share=unseen_share, edge_fraction=edge, few_training_structures=few)
        cell = ("source", "target")
        names = " ".join(FLAGS)
        return {
            f"{metric}_flags": (cell, flags, {
                "flag_masks": np.array([bit for bit, _, _ in FLAGS.values()], dtype=np.uint8),
                "flag_meanings": names,
                "description": "diagnostic flags of each cell, see latentatlas.diagnostics",
            }),
            f"{metric}_unseen_error_share": (cell, unseen_share, {
                "description": "share of the squared error (pooled over splits) from test samples whose "
                               "structure holds an element absent from training"}),
            f"{metric}_edge_cutoff_fraction": (cell, edge, {
                "description": "fraction of fits whose CV chose the largest alpha of the grid, or the smallest "
                               "where it keeps more components than the next"}),
        }, {"train_structures_per_subset": ", ".join(f"{k}: {v}" for k, v in fewest.items())}


def cell_flags(mean, std=None, *, unseen_share=None, edge_fraction=None, few_training_structures=False):
    """Bit mask (source, target) of :data:`FLAGS` for a matrix and its diagnostics.

    Parameters
    ----------
    mean, std : ndarray of shape (n_sets, n_sets)
        Value of each cell and its spread over splits (NaN or None: not flagged).
    unseen_share, edge_fraction : ndarray of shape (n_sets, n_sets), optional
    few_training_structures : bool
    """
    mean = np.asarray(mean, dtype=float)
    flags = np.zeros(mean.shape, dtype=np.uint8)
    off_diagonal = ~np.eye(*mean.shape, dtype=bool) if mean.ndim == 2 else np.ones(mean.shape, dtype=bool)
    raised = {
        "unseen_elements": None if unseen_share is None else np.asarray(unseen_share) > _MAJORITY,
        "above_one": mean > 1,
        "spread_exceeds_value": None if std is None else np.nan_to_num(np.asarray(std, dtype=float)) > mean,
        "few_training_structures": np.full(mean.shape, bool(few_training_structures)),
        "cutoff_at_grid_edge": None if edge_fraction is None else (np.asarray(edge_fraction) >= _MAJORITY) & off_diagonal,
    }
    for name, mask in raised.items():
        if mask is not None:
            flags[mask] |= FLAGS[name][0]
    return flags


def _names(value) -> list[str]:
    return [name for name, (bit, _, _) in FLAGS.items() if int(value) & bit]


def cell_marks(value) -> str:
    """Short marks of a cell's flags, e.g. ``"!~"`` (see :data:`FLAGS`)."""
    return "".join(FLAGS[name][1] for name in _names(value))


def cell_notes(result, metric, source, target) -> list[str]:
    """Sentences on one cell's flags, for a hover: ``[]`` when the cell is clean or has none."""
    if f"{metric}_flags" not in result:
        return []
    value = result[f"{metric}_flags"].sel(source=source, target=target)
    notes = []
    for name in _names(value):
        text = FLAGS[name][2]
        if name == "unseen_elements":
            share = float(result[f"{metric}_unseen_error_share"].sel(source=source, target=target))
            text += f" ({share:.0%} of the squared error)"
        elif name == "cutoff_at_grid_edge":
            frac = float(result[f"{metric}_edge_cutoff_fraction"].sel(source=source, target=target))
            text += f" ({frac:.0%} of fits)"
        notes.append(f"{FLAGS[name][1]}: {text}")
    return notes


def caveats(result, metrics=None) -> list[str]:
    """Short sentences on the flags that apply anywhere in a comparison (empty when none).

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`latentatlas.compare.compare` (or any Dataset with ``<metric>_flags``).
    metrics : sequence of str, optional
        Default: every metric with flags in ``result``.
    """
    metrics = [m for m in (metrics or result.attrs.get("metrics", [])) if f"{m}_flags" in result]
    lines = []
    if "test_unseen_element" in result:
        unseen = result["test_unseen_element"].values
        if unseen.any():
            lines.append(f"{int(unseen.sum())} of {unseen.size} test samples (first split) belong to structures with "
                         "elements absent from training; their errors measure extrapolation")
    for metric in metrics:
        flags = result[f"{metric}_flags"].values
        for name, (bit, mark, text) in FLAGS.items():
            n = int(np.sum((flags & bit) > 0))
            if n and name == "few_training_structures":
                per_subset = result[metric].attrs.get("train_structures_per_subset", "")
                lines.append(f"[{mark}] {metric.upper()}: {text} (fewest training structures per subset: {per_subset}); "
                             "values can change with more data, see --learning-curve")
            elif n:
                lines.append(f"[{mark}] {metric.upper()}: {n} of {flags.size} cells: {text}")
    cv = {str(result[m].attrs.get("cv", "")) for m in metrics} - {""}
    if "skmatter" in cv:
        lines.append("inner CV folds are random (cv='skmatter'): atoms of one structure sit in both folds, which "
                     "can choose too small a cut-off; use cv='grouped' unless you compare with scikit-matter")
    return lines
