"""FRE matrices between every pair of feature sets, as labelled xarray objects."""

from __future__ import annotations

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .._xarray import labelled_array
from ..dataset import common_sample_dim, feature_arrays
from ..schema import FRE_METRICS as METRICS
from ._local import local_errors
from ._parallel import parallel_map
from ._ridge import FoldTargets, SharedRidge, check_alphas, column_blocks
from ._scale import fit_scaler, scale_rows, scale_split
from ._split import DEFAULT_SEED, check_cv, check_local_points, inner_folds, resolve_split
from .metrics import orthogonal_map, rms

__all__ = ["METRICS", "fre_matrix", "pointwise_fre_matrix"]

_TEST_CHUNK = 256

# What the inner folds keep together, per (is LFRE, cv), for the attrs.
CV_DESCRIPTION = (
    {"skmatter": "random (scikit-matter's KFold(2, shuffle=True))", "grouped": "by the given groups (structures)"},
    {"skmatter": "random (scikit-matter's KFold(2, shuffle=True))",
     "grouped": "identical source vectors of each neighbourhood in one fold"},
)


def pointwise_fre_matrix(
    features,
    metric: str = "gfre",
    *,
    names=None,
    train_idx=None,
    test_idx=None,
    n_local_points: int = 100,
    alphas=None,
    seed: int = DEFAULT_SEED,
    n_jobs: int = -1,
    progress: bool = True,
    strict_local_points: bool = False,
    cv: str = "skmatter",
    groups=None,
) -> xr.DataArray:
    """Pointwise reconstruction errors between every ordered pair of feature sets.

    Work is shared: for each source, the factorisations of its training features (and, for
    LFRE, its test samples' neighbourhoods) are computed once and serve every target.

    Parameters
    ----------
    features : xarray.Dataset or dict of name -> array-like (n_samples, n_features)
        Feature sets over the same samples (e.g. from ``latentatlas.features`` or
        ``latentatlas.cumulants.structure_features``).
    metric : {"gfre", "gfrd", "lfre"}
    names : sequence of str, optional
        Feature sets to compare, in order; default all.
    train_idx, test_idx : array-like of int, optional
        Default: scikit-matter's 50/50 split (see :func:`default_split`).
    n_local_points : int, default 100
        Neighbourhood size for LFRE; above the number of training samples, all of them are
        used with a warning (scikit-matter's behaviour), or an error if ``strict_local_points``.
    alphas : array-like, optional
        Relative ridge cut-offs; default ``geomspace(1e-9, 0.9, 20)``.
    seed : int
    n_jobs : int, default -1
        Worker threads (-1: one per available core); results do not depend on it.
    progress : bool
        Show a progress bar over sources.
    cv : {"skmatter", "grouped"}, default "skmatter"
        Inner CV folds that choose the ridge cut-off: random (scikit-matter's numbers), or
        grouped: by ``groups`` for GFRE/GFRD, by identical source vector inside each LFRE
        neighbourhood (see :mod:`latentatlas.fre.metrics`).
    groups : array-like of shape (n_samples,), optional
        Group (e.g. structure) of every sample; needed for grouped GFRE/GFRD (LFRE ignores it).

    Returns
    -------
    xarray.DataArray of shape (n_sets, n_sets, n_test)
        Named ``"<metric>_pointwise"``, dims ``("source", "target", "test_<sample>")``, where
        the coordinate ``test_<sample>`` holds the test samples' indices; attrs record the
        metric, split, scaler, regulariser and ``cv``. The coordinate ``alpha_index`` holds
        the index into ``attrs["alphas"]`` of each chosen cut-off: dims (source, target)
        for GFRE/GFRD, (source, target, test_<sample>) for LFRE (one local fit per sample);
        ``cutoff_at_edge`` (same dims) whether it lies at an edge of the grid that matters:
        the largest alpha, or the smallest where it keeps more components than the next.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    check_cv(cv)
    check_alphas(alphas)
    arrays = feature_arrays(features, names)
    n = next(iter(arrays.values())).shape[0]
    train_idx, test_idx = resolve_split(n, train_idx, test_idx, seed)
    if metric == "lfre":
        n_local_points = check_local_points(n_local_points, len(train_idx), strict_local_points)
    names = list(arrays)
    if metric == "lfre":
        scaled = [scale_split(arrays[name], train_idx, test_idx, name) for name in names]
        values, best, at_edge = map(np.stack, zip(*(
            local_errors(X_train, X_test, scaled, n_local_points, alphas, seed, n_jobs=n_jobs, progress=False, cv=cv)
            for X_train, X_test in tqdm(scaled, desc="LFRE", unit="source", disable=not progress)
        )))
    else:
        folds = inner_folds(len(train_idx), cv, None if groups is None else np.asarray(groups)[train_idx], seed)
        values, best, at_edge = _global_errors([arrays[name] for name in names], train_idx, test_idx, names, metric, alphas,
                                      folds, n_jobs, progress)
    test_dim = test_dim_name(features, names)
    attrs = result_attrs(metric, alphas, seed, train_idx, test_idx, cv=cv)
    if metric == "lfre":
        attrs["n_local_points"] = int(n_local_points)
    best_dims = ("source", "target", test_dim)[: best.ndim]
    return labelled_array(values, ("source", "target", test_dim), {"source": names, "target": names, test_dim: test_idx},
                          extra_coords={"alpha_index": (best_dims, best), "cutoff_at_edge": (best_dims, at_edge)},
                          name=f"{metric}_pointwise", attrs=attrs)


def test_dim_name(features, names) -> str:
    """``test_<sample>``: the dimension of pointwise errors over the test samples of ``features``."""
    sample = common_sample_dim(features, names) if isinstance(features, xr.Dataset) else "sample"
    return f"test_{sample}"


def result_attrs(metric, alphas, seed, train_idx, test_idx, cv="skmatter", **extra) -> dict:
    """Attributes of an FRE result: metric, scaler, estimator, inner CV, cut-offs, seed and split sizes, plus ``extra``."""
    return {
        "metric": metric,
        "scaler": "centred, unit total variance (training statistics)",
        "estimator": "ridge without intercept, relative singular-value cut-off chosen by 2-fold CV",
        "cv": cv,
        "cv_folds": CV_DESCRIPTION[metric == "lfre"][cv],
        "alphas": check_alphas(alphas),
        "seed": int(seed),
        "n_train": int(len(train_idx)),
        "n_test": int(len(test_idx)),
        **extra,
    }


def _global_errors(arrays, train_idx, test_idx, names, metric, alphas, inner, n_jobs, progress):
    """Pointwise GFRE or GFRD (n_sets, n_sets, n_test), chosen alpha indices and edge flags (n_sets, n_sets)."""
    # Training rows in CV-fold order make each fold a slice: splitting the targets is then free.
    # The statistics come from the rows in their given order, so every number equals that of the pairwise functions.
    rows1, rows2 = inner
    fold_order = np.concatenate([rows1, rows2])
    folds = (slice(0, len(rows1)), slice(len(rows1), None))
    # All sets side by side, so that each source meets every target in one large product.
    widths = [a.shape[1] for a in arrays]
    blocks = column_blocks(widths)
    Y_train = np.empty((len(train_idx), sum(widths)))
    Y_test = np.empty((len(test_idx), sum(widths)))

    def scale(i):
        mean, scale = fit_scaler(arrays[i][train_idx], names[i])
        scale_rows(arrays[i], train_idx[fold_order], mean, scale, out=Y_train[:, blocks[i]])
        scale_rows(arrays[i], test_idx, mean, scale, out=Y_test[:, blocks[i]])

    parallel_map(scale, range(len(arrays)), n_jobs, progress=False)
    targets = FoldTargets(Y_train, widths, folds=folds)
    values = np.empty((len(arrays), len(arrays), len(test_idx)))
    best = np.empty((len(arrays), len(arrays)), dtype=np.int16)
    at_edge = np.empty((len(arrays), len(arrays)), dtype=bool)

    def errors(i):
        ridge = SharedRidge(Y_train[:, blocks[i]], alphas, folds=folds)
        W, _, best[i] = ridge.fit(targets)
        at_edge[i] = ridge.at_grid_edge(best[i])
        if metric == "gfrd":
            W = W - np.hstack([orthogonal_map(ridge.gram_times(W[:, b])) for b in blocks])
        # a few hundred test rows at a time: the residual stays in cache between product, subtraction and norms
        for start in range(0, len(test_idx), _TEST_CHUNK):
            rows = slice(start, start + _TEST_CHUNK)
            residual = Y_test[rows, blocks[i]] @ W
            if metric == "gfre":
                residual -= Y_test[rows]
            values[i, :, rows] = [np.sqrt(np.einsum("ij,ij->i", residual[:, b], residual[:, b])) for b in blocks]

    # Sources in parallel: their SVDs do not speed up with more BLAS threads, threads over sources do.
    # Largest first, so that no large source is left running alone at the end.
    order = np.argsort(widths)[::-1]
    parallel_map(errors, order, n_jobs, desc=metric.upper(), unit="source", progress=progress)
    return values, best, at_edge


def fre_matrix(features, metric: str = "gfre", **kwargs) -> xr.DataArray:
    """Global reconstruction measure between every ordered pair of feature sets.

    Same parameters as :func:`pointwise_fre_matrix`; the value of each (source, target)
    cell is the RMS of its pointwise errors over the test samples.

    Returns
    -------
    xarray.DataArray of shape (n_sets, n_sets)
        Named ``metric``, dims ``("source", "target")``, same attrs.
    """
    pointwise = pointwise_fre_matrix(features, metric, **kwargs)
    test_dim = pointwise.dims[-1]
    return labelled_array(rms(pointwise.values), ("source", "target"),
                          {"source": pointwise.source.values, "target": pointwise.target.values},
                          name=metric, attrs={**pointwise.attrs, "test_samples": test_dim})
