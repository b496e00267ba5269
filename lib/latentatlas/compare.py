"""Comparison of feature sets: FRE (and any other measure's) matrices with their spread over splits.

This is what the dashboard shows and what ``latentatlas fre --out`` writes: the features'
coordinates (structures, atoms, positions) plus, per metric, the mean matrix over several
random splits, its spread, the pointwise values of the first split (so that every matrix
cell can be traced back to atoms), the diagnostics of every FRE cell
(:mod:`latentatlas.diagnostics`) and a model map per metric. The inner CV that picks the
ridge cut-off keeps each structure in one fold by default (``cv="grouped"``), as the outer
split does. Any measure of :data:`latentatlas.similarity.MEASURES` can be asked for
(``"gfre"``, ``"lfre"``, ``"cka"``, ``"procrustes"``, ``"mknn"``, ...); all use the same splits.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .dataset import common_sample_dim, feature_arrays, select_feature_sets
from .diagnostics import SplitDiagnostics
from .fre import DEFAULT_SEED, default_split, pointwise_fre_matrix, rms
from .fre._scale import scale_from_variance
from .fre._split import check_cv
from .schema import FRE_METRICS, feature_set_coords, stamp
from .similarity import measure_matrices, model_map, resolve_metric

__all__ = ["compare", "learning_curve", "sample_structures", "structure_split"]

LEARNING_FRACTIONS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def structure_split(features: xr.Dataset, *, seed: int = DEFAULT_SEED, stratify_by: str | None = "subset"):
    """Train/test split of the samples that keeps each structure on one side.

    Structures are split 50/50 within each value of ``stratify_by`` (a coordinate on
    ``structure``, e.g. ``"subset"``), so the test set represents every subset; atom-level
    samples follow their structure, so no test atom has a sibling in the training set.

    Returns
    -------
    train_idx, test_idx : ndarray of int
        Indices along the features' sample dimension (``atom`` or ``structure``).
    """
    labels = features[stratify_by].values if stratify_by else None
    train_s, test_s = default_split(features.sizes["structure"], stratify=labels, seed=seed)
    sample = common_sample_dim(features)
    if sample == "structure":
        return train_s, test_s
    owner = features["atom_structure"].values
    return np.flatnonzero(np.isin(owner, train_s)), np.flatnonzero(np.isin(owner, test_s))


def sample_structures(features: xr.Dataset, sample: str) -> np.ndarray:
    """Structure of every sample (the groups of grouped CV): ``atom_structure``, or the structures themselves."""
    return features["atom_structure"].values if sample == "atom" else np.arange(features.sizes["structure"])


def _pca(X, n_components=2):
    """Projection of standardised ``X`` on its first principal components, (n_samples, n_components).

    ``X`` may be a dask array: the statistics, the subsample and the projection are then
    computed chunk by chunk, and only the result is held.
    """
    X = X.astype(np.float64)
    mean = np.asarray(X.mean(axis=0))
    scale = scale_from_variance(float(((X - mean) ** 2).mean(axis=0).sum()))
    step = max(1, X.shape[0] // 5000)
    _, _, Vt = np.linalg.svd((np.asarray(X[::step]) - mean) / scale, full_matrices=False)
    out = np.zeros((X.shape[0], n_components))
    k = min(n_components, Vt.shape[0])
    out[:, :k] = np.asarray(((X - mean) / scale) @ Vt[:k].T)
    return out


def _checked(features, names, n_splits, stratify_by, cv):
    """The feature sets to compare, the sample dimension and whether they are dask-backed, after checking the options.

    Feature sets in memory come as validated float64 arrays; dask-backed ones (a zarr
    store) as their dask arrays, validated chunk by chunk when they are read.
    """
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    check_cv(cv)
    names, getter = select_feature_sets(features, names)
    lazy = any(features[name].chunks is not None for name in names)
    arrays = {name: getter(name) for name in names} if lazy else feature_arrays(features, names)
    if stratify_by is not None and stratify_by not in features.coords:
        raise KeyError(f"cannot stratify by {stratify_by!r}: no such coordinate; use one of {list(features.coords)} or None")
    return arrays, common_sample_dim(features, list(arrays)), lazy


def _pointwise(arrays, metric, lazy, **kwargs):
    """Pointwise FRE matrix of one split: in memory, or streamed (GFRE, GFRD) / indexed (LFRE) for dask arrays."""
    if not lazy:
        return pointwise_fre_matrix(arrays, metric, **kwargs)
    if metric == "lfre":
        from .fre.indexed import indexed_pointwise_lfre_matrix

        kwargs.pop("groups")  # LFRE's grouped CV groups identical source vectors, as in memory
        return indexed_pointwise_lfre_matrix(arrays, **kwargs)
    from .fre.streamed import streamed_pointwise_fre_matrix

    kwargs.pop("n_local_points")
    return streamed_pointwise_fre_matrix(arrays, metric, **kwargs)


def compare(
    features: xr.Dataset,
    *,
    metrics=("gfre", "gfrd", "lfre"),
    names=None,
    n_splits: int = 5,
    n_local_points: int = 100,
    stratify_by: str | None = "subset",
    progress: bool = True,
    cv: str = "grouped",
    options: dict | None = None,
) -> xr.Dataset:
    """Matrices of FRE and other measures between feature sets, with spread over structure-level splits.

    Parameters
    ----------
    features : xarray.Dataset
        A features Dataset (atom- or structure-level). Dask-backed feature sets (a zarr
        store from :func:`latentatlas.io.load`) are compared chunk by chunk: GFRE and GFRD
        from streamed statistics (:mod:`latentatlas.fre.streamed`), LFRE with a neighbour
        index (:mod:`latentatlas.fre.indexed`); the values are the in-memory ones.
    metrics : sequence of str
        Names of :data:`latentatlas.similarity.MEASURES`: ``"gfre"``, ``"gfrd"``, ``"lfre"``,
        ``"cka"``, ``"debiased_cka"``, ``"rbf_cka"``, ``"procrustes"``, ``"procrustes_cca"``,
        ``"cca"``, ``"svcca"``, ``"mknn"`` (or their long function names). In-sample measures
        are evaluated on the test samples of each split; measures other than FRE need the
        features in memory.
    names : sequence of str, optional
        Feature sets to compare; default all.
    n_splits : int, default 5
        Number of random splits (seeds 0x5F3759DF, +1, ...); the spread is their standard deviation.
    n_local_points : int
        Neighbourhood size for LFRE.
    stratify_by : str or None
        Structure coordinate whose values are split evenly (default ``"subset"``).
    cv : {"grouped", "skmatter"}, default "grouped"
        Inner CV folds of the ridge: by structure (GFRE, GFRD) and by identical source
        vector (LFRE neighbourhoods), or random as scikit-matter (its published numbers).
    options : dict, optional
        Further options of the other measures (``k`` for mutual k-NN, ``sigma`` and
        ``max_samples`` for RBF CKA, ``svcca_variance``).

    Returns
    -------
    xarray.Dataset
        Coordinates of ``features``; per metric ``m``: ``m`` (source, target), mean over
        splits (attrs record ``cv``); ``m_std`` (source, target); ``m_pointwise`` (source,
        target, test_<sample>) for the first split, for measures with a per-sample form;
        the diagnostics ``m_flags``, ``m_unseen_error_share``, ``m_edge_cutoff_fraction``
        (source, target) and ``test_unseen_element`` (test_<sample>) of
        :mod:`latentatlas.diagnostics` for FRE; ``m_map`` (source, axis): classical MDS of
        the symmetrised mean matrix (:func:`latentatlas.similarity.model_map`).
        ``pca`` (source, <sample>, pc): 2-D PCA map of each source. Each feature set's attrs
        as coordinates ``source_<key>`` and ``target_<key>``
        (:func:`latentatlas.schema.feature_set_coords`); stamped ``comparison``.
    """
    arrays, sample, lazy = _checked(features, names, n_splits, stratify_by, cv)
    names = list(arrays)
    metrics = [resolve_metric(m).name for m in metrics]
    others = [m for m in metrics if m not in FRE_METRICS]
    if lazy and others:
        raise ValueError(f"{others} need the features in memory (these are dask-backed, from a zarr store); "
                         "load them with features.load(), or compare only gfre, gfrd, lfre")
    out = xr.Dataset(coords=features.coords, attrs=dict(features.attrs))
    groups = sample_structures(features, sample)
    for metric in metrics:
        per_split = []
        diagnostics = SplitDiagnostics(features, sample, stratify_by)
        for split in range(n_splits):
            train, test = structure_split(features, seed=DEFAULT_SEED + split, stratify_by=stratify_by)
            if metric not in FRE_METRICS:
                matrix, pointwise = measure_matrices(
                    arrays, metric, train_idx=train, test_idx=test, seed=DEFAULT_SEED + split, progress=progress,
                    pointwise=split == 0, **(options or {}),
                )
                if pointwise is not None:
                    out[f"{metric}_pointwise"] = pointwise.rename({"test_sample": f"test_{sample}"})
                per_split.append(matrix.values)
                continue
            pointwise = _pointwise(
                arrays, metric, lazy, train_idx=train, test_idx=test, n_local_points=n_local_points,
                seed=DEFAULT_SEED + split, progress=progress, cv=cv, groups=groups,
            ).rename({"test_sample": f"test_{sample}"})
            diagnostics.add(pointwise, train, test)
            if split == 0:
                out[f"{metric}_pointwise"] = pointwise.drop_vars(["alpha_index", "cutoff_at_edge"])
                out["test_unseen_element"] = (f"test_{sample}", diagnostics.first_unseen, {
                    "description": "the test sample's structure holds an element absent from training (first split)"})
            per_split.append(rms(pointwise.values))
        split_label = "by structure, stratified by " + str(stratify_by)
        if metric in FRE_METRICS:
            store_split_summary(out, metric, np.stack(per_split), pointwise.attrs, diagnostics, split=split_label)
        else:
            _store_mean_spread(out, metric, np.stack(per_split), matrix.attrs, split_label)
        if np.all(np.isfinite(out[metric].values)):
            out[f"{metric}_map"] = model_map(out[metric].assign_coords(source=names, target=names)).rename(
                feature_set="source")
    out = out.assign_coords(source=names, target=names)
    out = out.assign_coords(feature_set_coords({n: features[n].attrs for n in names}))
    out["pca"] = (("source", sample, "pc"), np.stack([_pca(arrays[n]) for n in names]))
    out.attrs["metrics"] = list(metrics)
    out.attrs["cv"] = cv
    return stamp(out, "comparison")


def store_split_summary(out, metric, per_split, attrs, diagnostics, split):
    """Mean, spread and diagnostics of ``per_split`` (n_splits, source, target) into ``out``."""
    mean, std = _store_mean_spread(out, metric, per_split, attrs, split)
    variables, extra = diagnostics.variables(metric, mean, std)
    out[metric].attrs.update(extra)
    for name, value in variables.items():
        out[name] = value


def _store_mean_spread(out, metric, per_split, attrs, split):
    """``metric`` (mean over splits) and ``metric_std`` into ``out``; returns (mean, std)."""
    n_splits = len(per_split)
    attrs = {k: v for k, v in attrs.items() if k not in ("seed", "n_train", "n_test")}
    attrs.update(n_splits=n_splits, split=split, first_seed=DEFAULT_SEED)
    mean = per_split.mean(axis=0)
    std = per_split.std(axis=0, ddof=1) if n_splits > 1 else np.full(per_split.shape[1:], np.nan)
    out[metric] = (("source", "target"), mean, attrs)
    out[f"{metric}_std"] = (("source", "target"), std, {"description": f"standard deviation of {metric} over splits"})
    return mean, std


def learning_curve(
    features: xr.Dataset,
    *,
    metric: str = "gfre",
    names=None,
    fractions=LEARNING_FRACTIONS,
    n_splits: int = 5,
    n_local_points: int = 100,
    stratify_by: str | None = "subset",
    cv: str = "grouped",
    progress: bool = True,
) -> xr.Dataset:
    """FRE against the number of training structures: has the value converged?

    For each split of :func:`compare` (same seeds), the test half stays fixed and the
    matrix is computed from a random ``fraction`` of the training structures (nested:
    each fraction's structures include the smaller fractions'; at least 2 structures).

    Parameters
    ----------
    features : xarray.Dataset
    metric : {"gfre", "gfrd", "lfre"}
    fractions : sequence of float in (0, 1]
        Fractions of the training half; default 10 % … 100 %.
    n_splits, n_local_points, stratify_by, cv, names
        As in :func:`compare`.

    Returns
    -------
    xarray.Dataset
        ``learning_<metric>`` and ``learning_<metric>_std`` (train_fraction, source, target):
        mean and standard deviation over splits; ``learning_n_train_structures``
        (train_fraction): mean number of training structures.
    """
    fractions = np.asarray(sorted(set(float(f) for f in fractions)))
    if fractions.size == 0 or fractions[0] <= 0 or fractions[-1] > 1:
        raise ValueError(f"fractions must lie in (0, 1], got {list(fractions)}")
    arrays, sample, lazy = _checked(features, names, n_splits, stratify_by, cv)
    names = list(arrays)
    groups = sample_structures(features, sample)
    values = np.empty((len(fractions), n_splits, len(names), len(names)))
    n_structures = np.empty((len(fractions), n_splits))
    from tqdm.auto import tqdm

    steps = tqdm(total=len(fractions) * n_splits, desc=f"learning curve {metric.upper()}", disable=not progress)
    for split in range(n_splits):
        seed = DEFAULT_SEED + split
        train, test = structure_split(features, seed=seed, stratify_by=stratify_by)
        order = np.random.default_rng(seed).permutation(np.unique(groups[train]))
        for i, fraction in enumerate(fractions):
            count = max(2, int(round(fraction * len(order))))
            sub = train[np.isin(groups[train], order[:count])]
            while len(sub) < 4 and count < len(order):  # the inner 2-fold CV needs 4 samples
                count += 1
                sub = train[np.isin(groups[train], order[:count])]
            pointwise = _pointwise(arrays, metric, lazy, train_idx=sub, test_idx=test, seed=seed, cv=cv, groups=groups,
                                   n_local_points=min(n_local_points, len(sub)), progress=False)
            values[i, split] = rms(pointwise.values)
            n_structures[i, split] = count
            steps.update()
    steps.close()
    dims = ("train_fraction", "source", "target")
    std = values.std(axis=1, ddof=1) if n_splits > 1 else np.full(values[:, 0].shape, np.nan)
    return xr.Dataset(
        {
            f"learning_{metric}": (dims, values.mean(axis=1), {"metric": metric, "cv": cv, "n_splits": n_splits,
                                                              "description": f"{metric} from a fraction of the training "
                                                                             "structures, same test half; mean over splits"}),
            f"learning_{metric}_std": (dims, std, {"description": "standard deviation over splits"}),
            "learning_n_train_structures": ("train_fraction", n_structures.mean(axis=1)),
        },
        coords={"train_fraction": fractions, "source": names, "target": names},
    )
