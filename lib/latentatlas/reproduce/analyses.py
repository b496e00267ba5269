"""The analyses of Chorna et al. (arXiv:2512.05717), each a small function returning xarray objects.

Every FRE value comes with its spread: GFRE is averaged over ``n_splits`` random
train/test splits of the *structures* stratified by subset (:func:`latentatlas.compare.compare`),
and the spread is the standard deviation over splits. LFRE, which refits a local ridge
around every test atom, is evaluated on a fixed-size random sample of each split's test
atoms (``lfre_per_subset`` atoms of every subset) against all training atoms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..compare import compare, store_split_summary, structure_split
from ..dataset import merge_features
from ..diagnostics import SplitDiagnostics
from ..fre import DEFAULT_SEED, pointwise_fre_matrix, rms

__all__ = [
    "ARCHITECTURE",
    "FINE_TUNED",
    "RANKED_MEASURES",
    "VARIANT_PAIRS",
    "architecture",
    "benchmark_frames",
    "cross_model",
    "cumulant_steps",
    "fine_tuning",
    "layers_within",
    "lfre_over_splits",
    "load_features",
    "measure_rankings",
    "pair_table",
    "prefixed",
    "subset_breakdown",
    "unrelated_pairs",
    "variants",
]

# Architecture of each registered featuriser; pairs across architectures are "unrelated".
ARCHITECTURE = {
    "chgnet-0.3.0": "CHGNet",
    "chgnet-0.2.0": "CHGNet",
    "chgnet-r2scan": "CHGNet",
    "sevennet-0": "SevenNet",
    "sevennet-0-22may2024": "SevenNet",
    "sevennet-l3i5": "SevenNet",
    "sevennet-mf-0-pbe": "SevenNet",
    "sevennet-mf-0-r2scan": "SevenNet",
    **{f"ani-1x-{i}": "ANI" for i in range(8)},
    "soap": "descriptor",
}

# (model a, model b, what differs) for analysis 2.
VARIANT_PAIRS = (
    ("chgnet-0.3.0", "chgnet-0.2.0", "CHGNet: version 0.3.0 vs 0.2.0 (same data, revised model and training)"),
    ("sevennet-0", "sevennet-0-22may2024", "SevenNet-0: two trainings of the same recipe"),
    ("sevennet-0", "sevennet-l3i5", "SevenNet-0 vs SevenNet-l3i5 (lmax 2 vs 3)"),
    ("sevennet-0-22may2024", "sevennet-l3i5", "SevenNet-0 (22May2024) vs SevenNet-l3i5"),
    ("sevennet-mf-0-pbe", "sevennet-mf-0-r2scan", "SevenNet-MF-0: PBE vs r2SCAN head of one network"),
)

# (fine-tuned model, parent) for analysis 3.
FINE_TUNED = ("chgnet-r2scan", "chgnet-0.3.0")


def benchmark_frames(
    featurizers, frames=None, *, small: bool = False, fraction: float = 1.0, seed: int = 0
) -> tuple[list, dict[str, int]]:
    """The built-in benchmark (or ``frames``) restricted to the frames every featuriser can describe.

    A frame is dropped when a featuriser does not know one of its elements or when one of
    its atoms has no neighbour within the smallest model cutoff (CHGNet refuses such
    graphs, and an isolated atom carries no information to compare).

    Parameters
    ----------
    featurizers : sequence of Featurizer
    frames : sequence of ase.Atoms, optional
        Frames with ``info["subset"]``; default :func:`latentatlas.structures.builtin_frames`.
    small : bool
        Without ``frames``: start from the 52-structure version of the benchmark.
    fraction : float, default 1
        Keep this fraction of the usable structures of every subset (at least 2 each),
        drawn at random with ``seed``: a stratified subsample for machines too slow to
        featurise everything.

    Returns
    -------
    frames : list of ase.Atoms
        In benchmark order.
    dropped : dict of str -> int
        ``{"<name> (<subset>)": index in the input frames}`` of the frames dropped as unusable
        (not those left out by ``fraction``).
    """
    from ase.neighborlist import neighbor_list

    from ..structures import builtin_frames

    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    frames = builtin_frames(small=small) if frames is None else list(frames)
    cutoffs = [f.cutoff for f in featurizers if getattr(f, "cutoff", None)]
    cutoff = min(cutoffs) if cutoffs else None
    usable, dropped = [], {}
    for i, atoms in enumerate(frames):
        isolated = cutoff is not None and len(np.unique(neighbor_list("i", atoms, cutoff))) < len(atoms)
        if isolated or any(f.unsupported([atoms]) for f in featurizers):
            dropped[f"{atoms.info.get('name', atoms.get_chemical_formula())} ({atoms.info['subset']})"] = i
        else:
            usable.append(i)
    if fraction < 1:
        rng = np.random.default_rng(seed)
        subsets = np.array([frames[i].info["subset"] for i in usable])
        keep = []
        for subset in dict.fromkeys(subsets):
            members = np.flatnonzero(subsets == subset)
            keep.extend(rng.choice(members, size=min(len(members), max(2, round(fraction * len(members)))), replace=False))
        usable = [usable[k] for k in sorted(keep)]
    return [frames[i] for i in usable], dropped


def load_features(frames, featurizers, layers: str | Sequence[str] | None = None, *, progress: bool = True) -> xr.Dataset:
    """One features Dataset with ``layers`` (default all) of every featuriser (cached on disk).

    ``layers="last"`` takes each model's last layer (for SOAP, its only feature set).
    """
    ds = None
    for f in featurizers:
        wanted = f.layers[-1:] if layers == "last" else ([l for l in layers if l in f.layers] if layers else None)
        part = f.featurize(frames, wanted, progress=progress)
        ds = part if ds is None else merge_features(ds, part)
    return ds


def lfre_over_splits(
    features: xr.Dataset,
    names: Sequence[str],
    *,
    n_splits: int,
    per_subset: int,
    n_local_points: int = 100,
    progress: bool = True,
    cv: str = "grouped",
) -> xr.Dataset:
    """LFRE matrix, mean and spread over structure-level splits, on a sample of test atoms.

    Splits are those of :func:`latentatlas.compare.compare` (same seeds, by structure,
    stratified by subset). In each split, at most ``per_subset`` test atoms of each
    subset (drawn at random with the split's seed) are reconstructed from their
    ``n_local_points`` nearest neighbours among *all* training atoms.

    ``cv`` is the inner CV of the local fits (:func:`latentatlas.compare.compare`).

    Returns
    -------
    xarray.Dataset
        ``lfre`` (source, target): mean over splits; ``lfre_std``; ``lfre_pointwise``
        (source, target, test_atom_lfre) of the first split; the diagnostics of
        :mod:`latentatlas.diagnostics` (``lfre_flags``, ...).
    """
    from threadpoolctl import threadpool_limits

    from ..dataset import feature_arrays

    arrays = feature_arrays(features, names)
    subset_of_atom = features["subset"].values[features["atom_structure"].values]
    per_split, first = [], None
    diagnostics = SplitDiagnostics(features, "atom", "subset")
    for split in range(n_splits):
        seed = DEFAULT_SEED + split
        train, test = structure_split(features, seed=seed, stratify_by="subset")
        rng = np.random.default_rng(seed)
        sample = np.sort(np.concatenate([
            rng.choice(members, size=min(per_subset, len(members)), replace=False)
            for members in (test[subset_of_atom[test] == s] for s in np.unique(subset_of_atom[test]))
        ]))
        # Local fits are many tiny LAPACK calls: threads only contend (10x slower on a busy machine).
        with threadpool_limits(1, "blas"):
            pointwise = pointwise_fre_matrix(
                arrays, "lfre", train_idx=train, test_idx=sample, n_local_points=n_local_points,
                seed=seed, progress=progress, cv=cv,
            )
        diagnostics.add(pointwise, train, sample)
        per_split.append(rms(pointwise.values))
        if first is None:
            first = pointwise.rename({"test_sample": "test_atom_lfre"}).drop_vars(["alpha_index", "cutoff_at_edge"])
    out = xr.Dataset({"lfre_pointwise": first}, coords={"source": list(names), "target": list(names)})
    store_split_summary(out, "lfre", np.stack(per_split), first.attrs, diagnostics, split="by structure, stratified by subset")
    out["lfre"].attrs["test_sample"] = f"at most {per_subset} random test atoms per subset in each split"
    out["lfre_test_unseen_element"] = ("test_atom_lfre", diagnostics.first_unseen, {
        "description": "the test atom's structure holds an element absent from training (first split)"})
    return out


def cross_model(
    features: xr.Dataset,
    names: Sequence[str] | None = None,
    *,
    n_splits: int = 5,
    lfre_per_subset: int = 50,
    n_local_points: int = 100,
    progress: bool = True,
    cv: str = "grouped",
) -> xr.Dataset:
    """Analysis 1: GFRE (all test atoms) and LFRE (sampled test atoms) between feature sets.

    Returns
    -------
    xarray.Dataset
        :func:`latentatlas.compare.compare`'s result for GFRE plus the variables of
        :func:`lfre_over_splits`; ``source``/``target`` are the feature-set names and the
        coordinates ``source_model``/``target_model`` give the featuriser of each.
    """
    names = list(features.data_vars) if names is None else list(names)
    result = compare(features, metrics=("gfre",), names=names, n_splits=n_splits, stratify_by="subset", progress=progress,
                     cv=cv)
    local = lfre_over_splits(features, names, n_splits=n_splits, per_subset=lfre_per_subset,
                             n_local_points=n_local_points, progress=progress, cv=cv)
    result = result.merge(local)
    result.attrs["metrics"] = ["gfre", "lfre"]
    return result


#: Measures set beside GFRE and LFRE in the ranking of model pairs (RBF CKA is left out: it
#: works on a subsample of at most 2,000 atoms).
RANKED_MEASURES = ("cka", "debiased_cka", "procrustes", "procrustes_cca", "cca", "svcca", "mknn")


def measure_rankings(
    features: xr.Dataset,
    cross: xr.Dataset,
    *,
    metrics: Sequence[str] = RANKED_MEASURES,
    n_splits: int = 5,
    progress: bool = True,
) -> xr.Dataset:
    """Analysis 8: do the measures rank model pairs alike? GFRE, LFRE, CKA, Procrustes, CCA, ... side by side.

    The other measures are computed by :func:`latentatlas.compare.compare` on the same
    structure-level splits as ``cross`` (the cross-model result, whose GFRE and LFRE are
    reused). Each unordered pair of feature sets gets one value per measure (FRE, which is
    asymmetric, as the mean of both directions) and a rank (1: most similar pair).

    Returns
    -------
    xarray.Dataset
        Per measure ``m``: ``m``, ``m_std`` (source, target) and ``m_map`` (source, axis), a
        classical-MDS model map; ``pair_value`` and ``pair_rank`` (pair, measure), the pair's
        feature sets in coordinates ``a`` and ``b`` (pair);
        ``rank_correlation`` (measure, other_measure): Spearman's rank correlation between
        the measures' values over the pairs (sign-aligned, so +1 means the same ranking).
    """
    from scipy.stats import rankdata

    from ..similarity import model_map
    from ..similarity.registry import direction

    names = [str(n) for n in cross.source.values]
    other = compare(features, metrics=metrics, names=names, n_splits=n_splits, stratify_by="subset", progress=progress)
    measures = ["gfre", "lfre", *[str(m) for m in other.attrs["metrics"]]]
    data = {}
    for m in measures:
        ds = cross if m in ("gfre", "lfre") else other
        data[m] = ds[m].assign_coords(source=names, target=names).reset_coords(drop=True)
        data[f"{m}_std"] = ds[f"{m}_std"].assign_coords(source=names, target=names).reset_coords(drop=True)
        if np.all(np.isfinite(data[m].values)):
            data[f"{m}_map"] = model_map(data[m]).rename(feature_set="source")
    i, j = np.triu_indices(len(names), k=1)
    values = np.stack([(data[m].values[i, j] + data[m].values[j, i]) / 2 for m in measures], axis=1)
    # rank 1 = most similar: distances and errors ascending, similarities descending
    ranks = np.stack([rankdata(direction(m) * values[:, k]) for k, m in enumerate(measures)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(ranks.T) if len(i) > 1 else np.full((len(measures),) * 2, np.nan)
    out = xr.Dataset(data)
    out["pair_value"] = (("pair", "measure"), values, {"description": "mean of both directions for FRE"})
    out["pair_rank"] = (("pair", "measure"), ranks, {"description": "1 = most similar pair (ties share the mean rank)"})
    out["rank_correlation"] = (("measure", "other_measure"), np.atleast_2d(correlation),
                               {"description": "Spearman rank correlation between the measures over the pairs"})
    pairs = {"pair": np.arange(len(i)), "a": ("pair", [names[a] for a in i]), "b": ("pair", [names[b] for b in j])}
    return out.assign_coords(**pairs, measure=measures, other_measure=measures).assign_attrs(n_splits=n_splits)


def _model_index(result: xr.Dataset, model: str) -> str | None:
    """The feature-set name of ``model`` on the ``source`` axis of a cross-model result."""
    hits = [s for s, m in zip(result.source.values, result.source_model.values) if m == model]
    return str(hits[0]) if hits else None


def pair_table(result: xr.Dataset, pairs: Sequence[tuple[str, str, str]], metrics=("gfre", "lfre")) -> xr.Dataset:
    """FRE of model pairs in both directions, with spreads, from a cross-model result.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`cross_model` (or :func:`compare` with ``source_model``).
    pairs : sequence of (model a, model b, label)
        Pairs whose models are not in ``result`` are left out.

    Returns
    -------
    xarray.Dataset over dim ``pair``
        ``<metric>_ab`` (a → b), ``<metric>_ba`` (b → a) and their ``_std``; coords
        ``a``, ``b``, ``label``.
    """
    rows = [(a, b, label, _model_index(result, a), _model_index(result, b)) for a, b, label in pairs]
    rows = [r for r in rows if r[3] is not None and r[4] is not None]
    data = {}
    for metric in metrics:
        if metric not in result:
            continue
        for suffix in ("", "_std"):
            m = result[metric + suffix]
            data[f"{metric}_ab{suffix}"] = ("pair", [float(m.sel(source=sa, target=sb)) for *_, sa, sb in rows])
            data[f"{metric}_ba{suffix}"] = ("pair", [float(m.sel(source=sb, target=sa)) for *_, sa, sb in rows])
    return xr.Dataset(
        data,
        coords={"pair": np.arange(len(rows)), "a": ("pair", [r[0] for r in rows]), "b": ("pair", [r[1] for r in rows]),
                "label": ("pair", [r[2] for r in rows])},
    )


def architecture(model: str) -> str:
    """The architecture of a model, ``"descriptor"`` for SOAP; a model outside the registry
    (a metatomic model file, named by its metadata) is its own architecture."""
    return ARCHITECTURE.get(str(model), str(model))


def unrelated_pairs(models: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every unordered pair of uMLIPs of different architectures (descriptors excluded)."""
    arch = {m: architecture(m) for m in models}
    mlips = [m for m in models if arch[m] != "descriptor"]
    return [
        (a, b, f"{arch[a]} vs {arch[b]}")
        for i, a in enumerate(mlips) for b in mlips[i + 1:]
        if arch[a] != arch[b]
    ]


def variants(result: xr.Dataset) -> xr.Dataset:
    """Analysis 2: the variant pairs of :data:`VARIANT_PAIRS` present in ``result``."""
    return pair_table(result, VARIANT_PAIRS)


def fine_tuning(result: xr.Dataset, layerwise: xr.Dataset | None = None) -> xr.Dataset:
    """Analysis 3: fine-tuned model vs its parent, against every unrelated pair.

    Parameters
    ----------
    result : xarray.Dataset
        Cross-model result (last layers).
    layerwise : xarray.Dataset, optional
        :func:`compare` GFRE result over every layer of both models (names
        ``"<model>:<layer>"``); adds the parent/fine-tuned GFRE at each shared layer.

    Returns
    -------
    xarray.Dataset
        ``finetuned`` (pair table of the fine-tuned/parent pair), ``unrelated`` (pair
        table of cross-architecture pairs), and with ``layerwise``: ``layer_gfre_ab``
        (fine-tuned → parent), ``layer_gfre_ba`` and their ``_std`` over dim ``layer``.
    """
    child, parent = FINE_TUNED
    models = [str(m) for m in result.source_model.values]
    tuned = pair_table(result, [(child, parent, "fine-tuned vs parent")])
    unrelated = pair_table(result, unrelated_pairs(models))
    out = xr.merge([prefixed(tuned, "finetuned"), prefixed(unrelated, "unrelated")])
    if layerwise is not None:
        name = {(str(m), str(l)): str(n) for n, m, l in zip(layerwise.source.values, layerwise.source_model.values,
                                                           layerwise.source_layer.values)}
        layers = [l for m, l in name if m == child and (parent, l) in name]
        for key, (s, t) in {"ab": (child, parent), "ba": (parent, child)}.items():
            for suffix in ("", "_std"):
                out[f"layer_gfre_{key}{suffix}"] = ("layer", [
                    float(layerwise["gfre" + suffix].sel(source=name[s, l], target=name[t, l])) for l in layers
                ])
        out = out.assign_coords(layer=layers)
    out.attrs.update(finetuned=child, parent=parent)
    return out


def layers_within(
    features: xr.Dataset, models: str | Sequence[str], *, n_splits: int = 5, progress: bool = True, cv: str = "grouped"
) -> xr.Dataset:
    """Analysis 4: GFRE between every pair of layers of one model (or of several), both directions.

    Returns
    -------
    xarray.Dataset
        :func:`compare`'s ``gfre`` and ``gfre_std`` (source, target) over the layers of
        ``models``, with coordinates ``source_layer``/``target_layer`` and
        ``source_model``/``target_model``.
    """
    models = [models] if isinstance(models, str) else list(models)
    names = [n for n in features.data_vars if features[n].attrs.get("model") in models]
    if len(names) < 2:
        raise ValueError(f"{models} have {len(names)} layer(s) in the features; need at least 2 to compare layers")
    result = compare(features, metrics=("gfre",), names=names, n_splits=n_splits, stratify_by="subset", progress=progress,
                     cv=cv)
    return result[["gfre", "gfre_std", "gfre_flags"]]


def prefixed(ds: xr.Dataset, prefix: str, keep: Sequence[str] = ()) -> xr.Dataset:
    """``ds`` with every variable, coordinate and dimension not in ``keep`` renamed ``<prefix>_<name>``."""
    return ds.rename({k: f"{prefix}_{k}" for k in {*ds.data_vars, *ds.coords, *ds.dims} if k not in keep})


def cumulant_steps(
    features: xr.Dataset, name: str, *, max_order: int = 8, n_splits: int = 5, progress: bool = True, cv: str = "grouped"
) -> xr.Dataset:
    """Analysis 5: does each cumulant order add information? GFRE between φ^(k) of one feature set.

    φ^(k) = [κ1 … κk] per structure (:func:`latentatlas.cumulants.structure_features`);
    samples are structures, split 50/50 within each subset.

    Returns
    -------
    xarray.Dataset
        ``gfre``/``gfre_std`` (source_order, target_order) for orders 1 … ``max_order``;
        ``first_to_k`` (order k = 1 … max_order): GFRE φ^(1) → φ^(k); ``step`` (order
        k = 1 … max_order - 1): GFRE φ^(k) → φ^(k+1); each with ``_std``.
    """
    from ..cumulants import cumulant_feature_name, structure_features

    if max_order < 2:
        raise ValueError(f"max_order must be at least 2 to compare cumulant orders, got {max_order}")
    parts = [structure_features(features, k, names=[name]) for k in range(1, max_order + 1)]
    structures = xr.merge(parts, combine_attrs="override")
    phis = [cumulant_feature_name(name, k) for k in range(1, max_order + 1)]
    result = compare(structures, metrics=("gfre",), names=phis, n_splits=n_splits, stratify_by="subset", progress=progress,
                     cv=cv)
    orders = np.arange(1, max_order + 1)
    g, s = result["gfre"].values, result["gfre_std"].values
    out = xr.Dataset(
        {
            "gfre": (("source_order", "target_order"), g, result["gfre"].attrs),
            "gfre_std": (("source_order", "target_order"), s),
            "first_to_k": ("order", g[0]),
            "first_to_k_std": ("order", s[0]),
            "step": ("step_order", np.diagonal(g, 1)),
            "step_std": ("step_order", np.diagonal(s, 1)),
        },
        coords={"source_order": orders, "target_order": orders, "order": orders, "step_order": orders[:-1]},
        attrs={"feature_set": name, "n_structures": int(structures.sizes["structure"])},
    )
    return out


def subset_breakdown(
    pointwise: xr.DataArray, features: xr.Dataset, *, n_boot: int = 200, seed: int = DEFAULT_SEED
) -> xr.Dataset:
    """Analysis 6: RMS of pointwise errors per subset, with a bootstrap spread over test structures.

    Parameters
    ----------
    pointwise : xarray.DataArray (source, target, test_atom...)
        Pointwise errors of one split; the last dim holds atom indices into ``features``.
    features : xarray.Dataset
        The atom features Dataset (for ``atom_structure`` and ``subset``).
    n_boot : int
        Bootstrap resamples of each subset's test *structures* (atoms of one structure are
        correlated, so structures are the independent units).

    Returns
    -------
    xarray.Dataset
        ``rms`` and ``rms_std`` (subset, source, target); ``n_test_atoms`` (subset).
    """
    atom_dim = pointwise.dims[-1]
    atoms = pointwise[atom_dim].values
    owner = features["atom_structure"].values[atoms]
    subsets = features["subset"].values[owner]
    sq = pointwise.values**2  # (s, t, n)
    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(features["subset"].values.tolist()))
    names = [s for s in names if np.any(subsets == s)]
    values, spread, counts = [], [], []
    for subset in names:
        mask = subsets == subset
        structures, inverse = np.unique(owner[mask], return_inverse=True)
        sse = np.zeros((len(structures),) + sq.shape[:2])
        np.add.at(sse, inverse, np.moveaxis(sq[:, :, mask], -1, 0))
        n = np.bincount(inverse, minlength=len(structures)).astype(float)
        values.append(np.sqrt(sse.sum(axis=0) / n.sum()))
        draws = rng.integers(0, len(structures), size=(n_boot, len(structures)))
        boot = np.sqrt(sse[draws].sum(axis=1) / n[draws].sum(axis=1)[:, None, None])
        spread.append(boot.std(axis=0, ddof=1))
        counts.append(int(mask.sum()))
    return xr.Dataset(
        {
            "rms": (("subset", "source", "target"), np.stack(values), {"metric": pointwise.attrs.get("metric", "")}),
            "rms_std": (("subset", "source", "target"), np.stack(spread),
                        {"description": f"bootstrap standard deviation over test structures ({n_boot} resamples)"}),
            "n_test_atoms": ("subset", counts),
        },
        coords={"subset": names, "source": pointwise.source.values, "target": pointwise.target.values},
    )
