"""Model maps: an embedding of feature sets (models, layers) from any matrix of distances."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .registry import resolve_metric

__all__ = ["classical_mds", "model_map"]


def classical_mds(D, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Classical (Torgerson) multidimensional scaling of a distance matrix.

    .. math::
        B = -\\tfrac12 J D^{\\circ 2} J, \\qquad Y = V_k \\Lambda_k^{1/2}

    with :math:`J` the centring matrix and :math:`(\\Lambda_k, V_k)` the k largest eigenpairs
    of B (negative eigenvalues, from a non-Euclidean D, are set to zero).

    Parameters
    ----------
    D : array-like of shape (n, n)
        Symmetric distances with a zero diagonal.
    n_components : int

    Returns
    -------
    coordinates : ndarray of shape (n, n_components)
    eigenvalues : ndarray of shape (n,)
        All eigenvalues of B, largest first (how much each axis, and the negative part, holds).
    """
    D = np.asarray(D, dtype=float)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"need a square distance matrix, got shape {D.shape}")
    if not np.all(np.isfinite(D)):
        raise ValueError("the distance matrix has NaN/inf entries; drop the feature sets they belong to")
    n = D.shape[0]
    J = np.eye(n) - 1.0 / n
    B = -0.5 * J @ (D**2) @ J
    lam, V = np.linalg.eigh((B + B.T) / 2)
    lam, V = lam[::-1], V[:, ::-1]
    k = min(n_components, n)
    coords = np.zeros((n, n_components))
    coords[:, :k] = V[:, :k] * np.sqrt(np.maximum(lam[:k], 0.0))
    # a fixed sign per axis (largest |coordinate| positive), so maps do not flip between runs
    flip = np.sign(coords[np.argmax(np.abs(coords), axis=0), np.arange(n_components)])
    return coords * np.where(flip == 0, 1.0, flip), lam


def model_map(matrix: xr.DataArray, n_components: int = 2) -> xr.DataArray:
    """2-D map of the feature sets of a (source, target) matrix of any registered measure.

    Distances are symmetrised, ``(M + Mᵀ)/2``; similarities s (CKA, CCA, SVCCA, mutual k-NN,
    where 1 means identical) become distances ``1 − s``; the diagonal is set to zero.

    Returns
    -------
    xarray.DataArray of shape (n_sets, n_components)
        Dims ``("feature_set", "axis")``; attrs ``metric`` and ``explained`` (fraction of the
        positive eigenvalues held by the axes shown).
    """
    name = str(matrix.attrs.get("metric", matrix.name))
    values = np.asarray(matrix.transpose("source", "target").values, dtype=float)
    if list(matrix.source.values) != list(matrix.target.values):
        raise ValueError("a model map needs the same feature sets as sources and targets")
    D = (values + values.T) / 2
    if not resolve_metric(name).lower_is_better:
        D = 1.0 - D
    np.fill_diagonal(D, 0.0)
    coords, lam = classical_mds(np.maximum(D, 0.0), n_components)
    positive = lam[lam > 0].sum()
    explained = float(np.maximum(lam[:n_components], 0).sum() / positive) if positive > 0 else 0.0
    return xr.DataArray(coords, dims=("feature_set", "axis"),
                        coords={"feature_set": [str(s) for s in matrix.source.values], "axis": np.arange(n_components)},
                        name=f"{name}_map", attrs={"metric": name, "explained": explained})
