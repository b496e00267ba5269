"""Comparison of feature sets: FRE (and any other measure's) matrices with their spread over splits.

This is what the dashboard shows and what ``latentatlas fre --out`` writes: the features'
coordinates (structures, atoms, positions) plus, per metric, the mean matrix over several
random splits, its spread, the pointwise values of the first split (so that every matrix
cell can be traced back to atoms) and a model map. Any measure of
:data:`latentatlas.similarity.MEASURES` can be asked for (``"gfre"``, ``"lfre"``, ``"cka"``,
``"procrustes"``, ``"mknn"``, ...); all of them use the same splits.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .dataset import common_sample_dim, feature_arrays
from .fre import DEFAULT_SEED, default_split
from .fre._scale import fit_scaler
from .similarity import measure_matrices, model_map, resolve_metric

__all__ = ["compare", "structure_split"]


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


def _pca(X, n_components=2):
    """Projection of standardised ``X`` on its first principal components, (n_samples, n_components)."""
    mean, scale = fit_scaler(X)
    Z = (X - mean) / scale
    _, _, Vt = np.linalg.svd(Z[:: max(1, len(Z) // 5000)], full_matrices=False)
    out = np.zeros((len(Z), n_components))
    k = min(n_components, Vt.shape[0])
    out[:, :k] = Z @ Vt[:k].T
    return out


def compare(
    features: xr.Dataset,
    *,
    metrics=("gfre", "gfrd", "lfre"),
    names=None,
    n_splits: int = 5,
    n_local_points: int = 100,
    stratify_by: str | None = "subset",
    progress: bool = True,
    options: dict | None = None,
) -> xr.Dataset:
    """Matrices of FRE and other measures between feature sets, with spread over structure-level splits.

    Parameters
    ----------
    features : xarray.Dataset
        A features Dataset (atom- or structure-level).
    metrics : sequence of str
        Names of :data:`latentatlas.similarity.MEASURES`: ``"gfre"``, ``"gfrd"``, ``"lfre"``,
        ``"cka"``, ``"debiased_cka"``, ``"rbf_cka"``, ``"procrustes"``, ``"procrustes_cca"``,
        ``"cca"``, ``"svcca"``, ``"mknn"`` (or their long function names). In-sample measures
        are evaluated on the test samples of each split.
    names : sequence of str, optional
        Feature sets to compare; default all.
    n_splits : int, default 5
        Number of random splits (seeds 0x5F3759DF, +1, ...); the spread is their standard deviation.
    n_local_points : int
        Neighbourhood size for LFRE.
    stratify_by : str or None
        Structure coordinate whose values are split evenly (default ``"subset"``).
    options : dict, optional
        Further options of the measures (``k`` for mutual k-NN, ``sigma`` and ``max_samples``
        for RBF CKA, ``svcca_variance``, ``alphas``).

    Returns
    -------
    xarray.Dataset
        Coordinates of ``features``; per metric ``m``: ``m`` (source, target), mean over
        splits; ``m_std`` (source, target); ``m_pointwise`` (source, target, test_<sample>)
        for the first split, for measures with a per-sample form; ``m_map`` (source, axis):
        classical MDS of the symmetrised mean matrix (see
        :func:`latentatlas.similarity.model_map`). ``pca`` (source, <sample>, pc): 2-D PCA
        map of each source.
    """
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    arrays = feature_arrays(features, names)
    names = list(arrays)
    sample = common_sample_dim(features, names)
    if stratify_by is not None and stratify_by not in features.coords:
        raise KeyError(f"cannot stratify by {stratify_by!r}: no such coordinate; use one of {list(features.coords)} or None")
    metrics = [resolve_metric(m).name for m in metrics]
    out = xr.Dataset(coords=features.coords, attrs=dict(features.attrs))
    for metric in metrics:
        per_split = []
        for split in range(n_splits):
            train, test = structure_split(features, seed=DEFAULT_SEED + split, stratify_by=stratify_by)
            matrix, pointwise = measure_matrices(
                arrays, metric, train_idx=train, test_idx=test, n_local_points=n_local_points,
                seed=DEFAULT_SEED + split, progress=progress, pointwise=split == 0, **(options or {}),
            )
            if pointwise is not None:
                out[f"{metric}_pointwise"] = pointwise.rename({"test_sample": f"test_{sample}"})
            per_split.append(matrix.values)
        per_split = np.stack(per_split)
        attrs = {k: v for k, v in matrix.attrs.items() if k not in ("seed", "n_train", "n_test")}
        attrs.update(n_splits=n_splits, split="by structure, stratified by " + str(stratify_by),
                     first_seed=DEFAULT_SEED)
        out[metric] = (("source", "target"), per_split.mean(axis=0), attrs)
        out[f"{metric}_std"] = (("source", "target"), per_split.std(axis=0, ddof=1) if n_splits > 1
                                else np.full(per_split.shape[1:], np.nan), {"description": f"standard deviation of {metric} over splits"})
        if np.all(np.isfinite(out[metric].values)):
            out[f"{metric}_map"] = model_map(out[metric].assign_coords(source=names, target=names)).rename(
                feature_set="source")
    out = out.assign_coords(source=names, target=names)
    out["pca"] = (("source", sample, "pc"), np.stack([_pca(arrays[n]) for n in names]))
    for name in names:
        out.attrs[f"feature_set:{name}"] = ", ".join(f"{k}={v}" for k, v in features[name].attrs.items())
    out.attrs["metrics"] = list(metrics)
    return out
