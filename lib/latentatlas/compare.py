"""Comparison of feature sets: FRE matrices with their spread over splits, in one Dataset.

This is what the dashboard shows and what ``latentatlas fre --out`` writes: the features'
coordinates (structures, atoms, positions) plus, per metric, the mean matrix over several
random splits, its spread, and the pointwise errors of the first split, so that every
matrix cell can be traced back to atoms.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .dataset import common_sample_dim, feature_arrays
from .fre import DEFAULT_SEED, default_split, pointwise_fre_matrix, rms
from .fre._scale import fit_scaler
from .schema import feature_set_coords, stamp

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
) -> xr.Dataset:
    """FRE matrices between feature sets, with spread over random structure-level splits.

    Parameters
    ----------
    features : xarray.Dataset
        A features Dataset (atom- or structure-level).
    metrics : sequence of {"gfre", "gfrd", "lfre"}
    names : sequence of str, optional
        Feature sets to compare; default all.
    n_splits : int, default 5
        Number of random splits (seeds 0x5F3759DF, +1, ...); the spread is their standard deviation.
    n_local_points : int
        Neighbourhood size for LFRE.
    stratify_by : str or None
        Structure coordinate whose values are split evenly (default ``"subset"``).

    Returns
    -------
    xarray.Dataset
        Coordinates of ``features``; per metric ``m``: ``m`` (source, target), mean over
        splits; ``m_std`` (source, target); ``m_pointwise`` (source, target, test_<sample>)
        for the first split. ``pca`` (source, <sample>, pc): 2-D PCA map of each source.
        Each feature set's attrs as coordinates ``source_<key>`` and ``target_<key>``
        (:func:`latentatlas.schema.feature_set_coords`); stamped ``comparison``.
    """
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    arrays = feature_arrays(features, names)
    names = list(arrays)
    sample = common_sample_dim(features, names)
    if stratify_by is not None and stratify_by not in features.coords:
        raise KeyError(f"cannot stratify by {stratify_by!r}: no such coordinate; use one of {list(features.coords)} or None")
    out = xr.Dataset(coords=features.coords, attrs=dict(features.attrs))
    for metric in metrics:
        per_split = []
        for split in range(n_splits):
            train, test = structure_split(features, seed=DEFAULT_SEED + split, stratify_by=stratify_by)
            pointwise = pointwise_fre_matrix(
                arrays, metric, train_idx=train, test_idx=test, n_local_points=n_local_points,
                seed=DEFAULT_SEED + split, progress=progress,
            ).rename({"test_sample": f"test_{sample}"})
            if split == 0:
                out[f"{metric}_pointwise"] = pointwise
            per_split.append(rms(pointwise.values))
        per_split = np.stack(per_split)
        attrs = {k: v for k, v in pointwise.attrs.items() if k not in ("seed", "n_train", "n_test")}
        attrs.update(n_splits=n_splits, split="by structure, stratified by " + str(stratify_by),
                     first_seed=DEFAULT_SEED)
        out[metric] = (("source", "target"), per_split.mean(axis=0), attrs)
        out[f"{metric}_std"] = (("source", "target"), per_split.std(axis=0, ddof=1) if n_splits > 1
                                else np.full(per_split.shape[1:], np.nan), {"description": f"standard deviation of {metric} over splits"})
    out = out.assign_coords(source=names, target=names)
    out = out.assign_coords(feature_set_coords({n: features[n].attrs for n in names}))
    out["pca"] = (("source", sample, "pc"), np.stack([_pca(arrays[n]) for n in names]))
    out.attrs["metrics"] = list(metrics)
    return stamp(out, "comparison")
