"""GFRE and GFRD matrices from chunk-wise sufficient statistics, in memory bounded by the feature width.

The in-memory engine (:mod:`latentatlas.fre.matrix`) needs every feature set as one array.
Here the samples are read chunk by chunk (dask arrays, e.g. from a zarr store, on a
``dask.distributed`` cluster if a client is active) and each chunk is reduced to the
statistics of its rows in each group -- CV fold 1, CV fold 2 and test -- for all feature
sets side by side (``D`` columns in all):

* the number of rows ``n`` and their mean (D,);
* their centred scatter ``Σ (z − z̄)(z − z̄)ᵀ`` (D, D), the Gram matrix ``XᵀX, XᵀY, YᵀY`` of
  every pair of sets at once (``method="gram"``), or a triangular factor ``R`` with
  ``RᵀR`` equal to it (``method="qr"``, a tall-skinny QR).

Chunks merge exactly (Chan, Golub & LeVeque's pairwise update), so memory is O(D²) per
worker whatever the number of samples. The training mean and total-variance scale of each
set follow from the merged folds; re-centring each group on the training mean is one more
rank-one update. Every group then becomes a small matrix ``A`` (≤ D rows) with
``AᵀA`` equal to the Gram matrix of its scaled, centred rows. Any such ``A`` stands in
exactly for the rows themselves: singular values and right singular vectors of any set of
columns, projections of one set on another's singular vectors, residual norms -- all that
the cross-validated ridge of :class:`~latentatlas.fre._ridge.SharedRidge` uses -- depend on
the rows only through ``AᵀA``. So the same code computes the same cut-offs, CV scores,
weights and test errors as in memory; each source's factorisation serves every target.

Numerics: the cut-off
    scikit-matter's regulariser discards singular values ``σ_k`` of the source below
    ``alpha · σ_max``. The Gram route sees eigenvalues ``λ_k = σ_k²`` of ``XᵀX`` and takes
    ``σ_k = sqrt(λ_k)`` (via the symmetric square root ``A = diag(sqrt λ) Vᵀ``), so the same
    relative cut-off ``alpha`` applies to ``sqrt(λ_k / λ_max)``, i.e. ``alpha²`` to
    ``λ_k / λ_max``. Forming ``XᵀX`` rounds ``λ_k`` with an absolute error of about
    ``ε λ_max`` (ε = 2.2e-16): ``σ_k`` then carries a relative error of about
    ``ε / (2 r_k²)`` with ``r_k = σ_k / σ_max``, 1e-8 at ``r_k = 1e-4`` and 100 % at
    ``r_k ≈ 1e-8`` -- the Gram route squares the condition number. Rank-deficient sets
    (real features nearly always are) show noise singular values near 1e-8·σ_max instead
    of ~1e-16·σ_max, above the smallest default cut-off 1e-9. The QR route never forms
    ``XᵀX``: its ``R`` has the singular values of X to ``ε σ_max``, as the in-memory SVD.
    ``method="auto"`` (default) takes the Gram route, checks every source fold's spectrum
    and, if any singular value lies between ``min(alphas)·σ_max / 2`` and
    ``1e-4·σ_max`` (where the Gram route cannot guarantee 1e-8), warns and recomputes the
    statistics by QR (one more pass over the data, about 4x the flops of the Gram pass).
    ``method="gram"`` keeps the Gram result with the same warning.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import numpy as np
import xarray as xr

from ..dataset import FeatureError, select_feature_sets
from ._ridge import FoldTargets, SharedRidge, column_blocks
from ._scale import scale_from_variance
from ._split import DEFAULT_SEED, check_cv, inner_folds, resolve_split
from .matrix import result_attrs, test_dim_name
from .metrics import orthogonal_map

__all__ = ["GRAM_RESOLVED", "fold_labels", "streamed_fre_matrix", "streamed_pointwise_fre_matrix"]

#: Smallest ratio σ_k / σ_max the Gram route resolves to 1e-8 relative (ε / (2 r²) ≈ 1e-8).
GRAM_RESOLVED = 1e-4
#: Rows per chunk when the features are plain arrays (dask arrays keep their own chunks).
CHUNK_ROWS = 8192
_GROUPS = ("fold1", "fold2", "test")  # label 0 marks rows in none of them


# -- split ------------------------------------------------------------------------------------


def fold_labels(n_samples: int, train_idx, test_idx, folds) -> np.ndarray:
    """Group of every sample: 1, 2 (training rows of CV fold 1 or 2), 3 (test), 0 (unused).

    Parameters
    ----------
    n_samples : int
    train_idx, test_idx : ndarray of int
    folds : pair of ndarray of int
        Positions within ``train_idx`` of the two CV folds.

    Returns
    -------
    ndarray of int8, shape (n_samples,)

    Raises
    ------
    ValueError
        A sample is listed twice, or in both the training and the test set: statistics
        count each sample once.
    """
    labels = np.zeros(n_samples, dtype=np.int8)
    rows1, rows2 = folds
    for label, idx in ((1, train_idx[rows1]), (2, train_idx[rows2]), (3, test_idx)):
        if np.any(labels[idx] != 0) or len(np.unique(idx)) != len(idx):
            raise ValueError(
                "train_idx and test_idx must list distinct samples, each once, for streamed statistics; "
                "remove repeated or shared indices"
            )
        labels[idx] = label
    if sum(np.count_nonzero(labels == g) for g in (1, 2)) != len(train_idx):
        raise ValueError("the CV folds must cover every training sample exactly once")
    return labels


# -- chunk statistics -------------------------------------------------------------------------


class Moments(NamedTuple):
    """Count, mean and centred scatter (or a triangular factor of it) of a set of rows."""

    n: int
    mean: np.ndarray  # (D,)
    scatter: np.ndarray  # gram: (D, D) Σ (z - mean)(z - mean)ᵀ; qr: (r, D) upper triangular R, RᵀR = that


def _moments(Z, qr):
    n, D = Z.shape
    if n == 0:
        return Moments(0, np.zeros(D), np.zeros((0, D)) if qr else np.zeros((D, D)))
    mean = Z.mean(axis=0)
    Zc = Z - mean
    return Moments(n, mean, np.linalg.qr(Zc, mode="r") if qr else Zc.T @ Zc)


def merge_moments(a: Moments, b: Moments, qr: bool = False) -> Moments:
    """Statistics of the union of two disjoint sets of rows (exact pairwise update).

    ``qr`` says which form ``scatter`` has: Gram matrices add, triangular factors are
    stacked and re-triangularised.
    """
    if a.n == 0 or b.n == 0:
        return b if a.n == 0 else a
    n = a.n + b.n
    delta = b.mean - a.mean
    shift = np.sqrt(a.n * b.n / n) * delta
    if qr:
        scatter = np.linalg.qr(np.vstack([a.scatter, b.scatter, shift[None]]), mode="r")
    else:
        scatter = a.scatter + b.scatter + np.outer(shift, shift)
    return Moments(n, a.mean + delta * (b.n / n), scatter)


def _chunk_moments(labels, *blocks, names, qr):
    """Per-group :class:`Moments` of one chunk of rows of all sets side by side."""
    for name, X in zip(names, blocks):
        if not np.all(np.isfinite(X)):
            raise FeatureError(f"feature set {name!r} has NaN/inf values; recompute or drop those samples")
    Z = np.hstack([np.asarray(X, dtype=np.float64) for X in blocks])
    return tuple(_moments(Z[labels == g + 1], qr) for g in range(len(_GROUPS)))


def _merge_groups(a, b, qr):
    return tuple(merge_moments(x, y, qr) for x, y in zip(a, b))


# -- square roots and the fit -----------------------------------------------------------------


def _stand_in(m: Moments, centre, scale_cols, qr):
    """Rows ``A`` with ``AᵀA`` = Gram matrix of the group's rows centred on ``centre``, scaled."""
    shift = np.sqrt(m.n) * (m.mean - centre)
    if qr:
        A = np.linalg.qr(np.vstack([m.scatter, shift[None]]), mode="r") if m.n else m.scatter
    else:
        lam, V = np.linalg.eigh(m.scatter + np.outer(shift, shift))
        A = np.sqrt(np.maximum(lam, 0.0))[:, None] * V.T
    return A / scale_cols


class _Statistics(NamedTuple):
    names: list
    widths: list
    groups: tuple  # Moments of fold1, fold2, test
    qr: bool


class _Fit(NamedTuple):
    maps: list  # per source: (n_i, D) weights for all targets side by side (GFRD: W - Q)
    sq_errors: np.ndarray  # (n_sets, n_sets) sum over test samples of the squared pointwise error
    mean: np.ndarray  # (D,) training mean
    scale_cols: np.ndarray  # (D,) each column's set scale
    unresolved: bool  # Gram route and some source fold below GRAM_RESOLVED (see module doc)
    qr: bool
    best: np.ndarray  # (n_sets, n_sets) index into alphas of each chosen cut-off
    at_edge: np.ndarray  # (n_sets, n_sets) whether it lies at an edge of the grid that matters


def _unresolved(ridge, alphas):
    """Whether a source fold has singular values the Gram route cannot resolve to 1e-8 (see module doc)."""
    for s in ridge.fold_singular_values():
        r = s / s.max()
        if np.any((r < GRAM_RESOLVED) & (r > np.min(alphas) / 2)):
            return True
    return False


def _fit(stats: _Statistics, metric, alphas, progress):
    """Fit every source to all targets from the statistics; see :class:`_Fit`."""
    from tqdm.auto import tqdm

    f1, f2, test = stats.groups
    for label, n in (("training", f1.n + f2.n), ("test", test.n)):
        if n == 0:
            raise ValueError(f"no {label} samples; give a split with samples on both sides")
    train = merge_moments(f1, f2, stats.qr)
    blocks = column_blocks(stats.widths)
    diag = np.diag(train.scatter) if not stats.qr else np.einsum("ij,ij->j", train.scatter, train.scatter)
    scales = [scale_from_variance(diag[b].sum() / train.n, name) for name, b in zip(stats.names, blocks)]
    scale_cols = np.concatenate([np.full(w, s) for w, s in zip(stats.widths, scales)])
    A1, A2, At = (_stand_in(m, train.mean, scale_cols, stats.qr) for m in (f1, f2, test))
    folds = (slice(0, len(A1)), slice(len(A1), len(A1) + len(A2)))
    Y_train = np.vstack([A1, A2])
    targets = FoldTargets(Y_train, stats.widths, folds=folds)
    maps, sq_errors, unresolved = [], np.empty((len(blocks), len(blocks))), False
    best = np.empty((len(blocks), len(blocks)), dtype=np.int16)
    at_edge = np.empty((len(blocks), len(blocks)), dtype=bool)
    for i, b in enumerate(tqdm(blocks, desc=metric.upper(), unit="source", disable=not progress, leave=False)):
        ridge = SharedRidge(Y_train[:, b], alphas, folds=folds, fold_sizes=(f1.n, f2.n))
        unresolved |= not stats.qr and _unresolved(ridge, ridge.alphas)
        W, _, best[i] = ridge.fit(targets)
        at_edge[i] = ridge.at_grid_edge(best[i])
        if metric == "gfrd":
            W = W - np.hstack([orthogonal_map(ridge.gram_times(W[:, c])) for c in blocks])
        residual = At[:, b] @ W
        if metric == "gfre":
            residual -= At
        sq_errors[i] = [np.einsum("ij,ij->", residual[:, c], residual[:, c]) for c in blocks]
        maps.append(W)
    return _Fit(maps, sq_errors, train.mean, scale_cols, unresolved, stats.qr, best, at_edge)


# -- dask plumbing ----------------------------------------------------------------------------


def _as_dask(features, names, chunk_rows):
    """Feature sets as dask arrays with the same row chunks and one column chunk."""
    import dask.array as da

    names, getter = select_feature_sets(features, names)
    arrays = [X if isinstance(X, da.Array) else np.asarray(X) for X in map(getter, names)]
    for name, X in zip(names, arrays):
        if X.ndim != 2 or 0 in X.shape:
            raise FeatureError(f"feature set {name!r} must be a non-empty 2-D (samples, features) array, got shape {X.shape}")
    rows = {X.shape[0] for X in arrays}
    if len(rows) != 1:
        raise FeatureError(f"feature sets have different numbers of samples {sorted(rows)}; all must describe the same samples")
    first = next((X for X in arrays if isinstance(X, da.Array)), None)
    row_chunks = first.chunks[0] if first is not None else chunk_rows
    arrays = [
        (X if isinstance(X, da.Array) else da.from_array(X, chunks=(row_chunks, -1))).rechunk((row_chunks, -1))
        for X in arrays
    ]
    return names, arrays


def _active_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _tree(items, merge):
    """Pairwise merge tree over delayed objects (or futures), depth log2(len(items))."""
    from dask import delayed

    merge = delayed(merge, pure=True)
    while len(items) > 1:
        items = [merge(items[k], items[k + 1]) if k + 1 < len(items) else items[k] for k in range(0, len(items), 2)]
    return items[0]


def _compute_chunks(parts, desc, progress, merge=None):
    """Compute per-chunk delayed ``parts`` (merged pairwise by ``merge`` if given), showing progress per chunk.

    On a ``dask.distributed`` client the chunks and merges run on its workers; without
    one, in dask's local threaded scheduler.
    """
    from tqdm.auto import tqdm

    client = _active_client()
    bar = tqdm(total=len(parts), desc=desc, unit="chunk", disable=not progress, leave=False)
    with bar:
        if client is not None:
            from distributed import as_completed

            futures = client.compute(parts)
            total = client.compute(_tree(futures, merge)) if merge is not None else None
            for _ in as_completed(futures):
                bar.update()
            return total.result() if merge is not None else client.gather(futures)
        import dask
        from dask.callbacks import Callback

        keys = {p.key for p in parts}

        class _Progress(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                if key in keys:
                    bar.update()

        with _Progress():
            return dask.compute(_tree(parts, merge) if merge is not None else parts)[0]


def _chunk_blocks(labels, arrays):
    """(labels, blocks of every set) of each row chunk, as delayed objects."""
    import dask.array as da

    label_blocks = da.from_array(labels, chunks=(arrays[0].chunks[0],)).to_delayed().ravel()
    columns = [X.to_delayed()[:, 0] for X in arrays]
    return [(lab, [col[k] for col in columns]) for k, lab in enumerate(label_blocks)]


def _statistics(names, arrays, labels, qr, progress):
    from dask import delayed

    task = delayed(_chunk_moments, pure=True)
    parts = [task(lab, *blocks, names=names, qr=qr) for lab, blocks in _chunk_blocks(labels, arrays)]
    merge = functools.partial(_merge_groups, qr=qr)
    groups = _compute_chunks(parts, "statistics (QR)" if qr else "statistics", progress, merge)
    return _Statistics(names, [X.shape[1] for X in arrays], groups, qr)


# -- public API -------------------------------------------------------------------------------


def _prepare(features, names, train_idx, test_idx, folds, cv, groups, seed, chunk_rows):
    names, arrays = _as_dask(features, names, chunk_rows)
    n = arrays[0].shape[0]
    train_idx, test_idx = resolve_split(n, train_idx, test_idx, seed)
    if len(train_idx) < 4:
        raise ValueError(f"need at least 4 training samples for 2-fold cross-validation, got {len(train_idx)}")
    if folds is None:
        folds = inner_folds(len(train_idx), cv, None if groups is None else np.asarray(groups)[train_idx], seed)
    return names, arrays, train_idx, test_idx, fold_labels(n, train_idx, test_idx, folds)


def _fit_checked(names, arrays, labels, metric, alphas, method, progress):
    if method not in ("auto", "gram", "qr"):
        raise ValueError(f"unknown method {method!r}; choose 'auto', 'gram' or 'qr'")
    fit = _fit(_statistics(names, arrays, labels, method == "qr", progress), metric, alphas, progress)
    if fit.unresolved:
        message = (
            f"a source's training features have singular values below {GRAM_RESOLVED:g} of the largest, "
            "which the Gram route (XᵀX) cannot resolve to 1e-8 relative"
        )
        if method == "auto":
            warnings.warn(message + "; recomputing the statistics by QR (method='qr')", stacklevel=3)
            fit = _fit(_statistics(names, arrays, labels, True, progress), metric, alphas, progress)
        else:
            warnings.warn(message + "; use method='qr' or 'auto' for exact values", stacklevel=3)
    return fit


def _attrs(metric, alphas, seed, train_idx, test_idx, cv, fit):
    return result_attrs(metric, alphas, seed, train_idx, test_idx, cv=cv,
                        engine="streamed statistics, " + ("QR" if fit.qr else "Gram"))


def streamed_fre_matrix(
    features,
    metric: str = "gfre",
    *,
    names=None,
    train_idx=None,
    test_idx=None,
    folds=None,
    cv: str = "skmatter",
    groups=None,
    alphas=None,
    seed: int = DEFAULT_SEED,
    method: str = "auto",
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = True,
) -> xr.DataArray:
    """GFRE or GFRD between every ordered pair of feature sets, streamed over chunks of samples.

    Same values as :func:`latentatlas.fre.fre_matrix` (to rounding; see the module
    docstring for the numerics), in memory O(D²) for D feature columns in all, whatever the
    number of samples. Runs on the active ``dask.distributed`` client if there is one.

    Parameters
    ----------
    features : xarray.Dataset or dict of name -> array-like (n_samples, n_features)
        Dask-backed (e.g. :func:`latentatlas.io.load` of a zarr store: its chunks are the
        unit of work) or in memory (cut into ``chunk_rows`` rows).
    metric : {"gfre", "gfrd"}
    names : sequence of str, optional
        Feature sets to compare, in order; default all.
    train_idx, test_idx : array-like of int, optional
        Distinct samples; default scikit-matter's 50/50 split.
    folds : pair of array-like of int, optional
        Positions within ``train_idx`` of the two inner CV folds; default from ``cv``.
    cv : {"skmatter", "grouped"}, default "skmatter"
        Inner CV folds, as in memory: random (scikit-matter's), or whole ``groups`` per fold.
    groups : array-like of shape (n_samples,), optional
        Group (e.g. structure) of every sample, for ``cv="grouped"``.
    alphas : array-like, optional
        Relative ridge cut-offs; default ``geomspace(1e-9, 0.9, 20)``.
    seed : int
    method : {"auto", "gram", "qr"}
        Statistics as Gram matrices, as triangular factors, or Gram with a QR fall-back
        where the Gram route cannot be trusted (see the module docstring).
    chunk_rows : int
        Rows per chunk for in-memory features.
    progress : bool

    Returns
    -------
    xarray.DataArray of shape (n_sets, n_sets)
        Named ``metric``, dims ``("source", "target")``; attrs as ``fre_matrix`` plus
        ``engine``.
    """
    if metric not in ("gfre", "gfrd"):
        raise ValueError(f"streamed metrics are 'gfre' and 'gfrd', got {metric!r}; LFRE at scale: latentatlas.fre.indexed")
    check_cv(cv)
    names, arrays, train_idx, test_idx, labels = _prepare(features, names, train_idx, test_idx, folds, cv, groups, seed,
                                                          chunk_rows)
    fit = _fit_checked(names, arrays, labels, metric, alphas, method, progress)
    values = np.sqrt(fit.sq_errors / len(test_idx))
    attrs = _attrs(metric, alphas, seed, train_idx, test_idx, cv, fit)
    return xr.DataArray(
        values, dims=("source", "target"), coords={"source": names, "target": names}, name=metric, attrs=attrs
    ).assign_attrs(test_samples=test_dim_name(features, names))


def _chunk_pointwise(labels, *blocks, maps, mean, scale_cols, widths, metric):
    """Pointwise errors (n_sets, n_sets, n_test_rows) of the test rows of one chunk."""
    Z = (np.hstack([np.asarray(X, dtype=np.float64) for X in blocks])[labels == 3] - mean) / scale_cols
    blocks = column_blocks(widths)
    out = np.empty((len(blocks), len(blocks), len(Z)))
    for i, (b, W) in enumerate(zip(blocks, maps)):
        residual = Z[:, b] @ W
        if metric == "gfre":
            residual -= Z
        out[i] = [np.sqrt(np.einsum("ij,ij->i", residual[:, c], residual[:, c])) for c in blocks]
    return out


def streamed_pointwise_fre_matrix(features, metric: str = "gfre", **kwargs) -> xr.DataArray:
    """Pointwise GFRE or GFRD of every test sample, streamed: statistics, then a second pass.

    Parameters as :func:`streamed_fre_matrix`. The second pass applies each source's map to
    the test rows chunk by chunk; only the result (n_sets² × n_test values) is held.

    Returns
    -------
    xarray.DataArray of shape (n_sets, n_sets, n_test)
        As :func:`latentatlas.fre.pointwise_fre_matrix` (with the coordinates
        ``alpha_index`` and ``cutoff_at_edge``), the test samples in increasing order
        (coordinate ``test_<sample>``).
    """
    from dask import delayed

    if metric not in ("gfre", "gfrd"):
        raise ValueError(f"streamed metrics are 'gfre' and 'gfrd', got {metric!r}")
    progress, cv = kwargs.pop("progress", True), check_cv(kwargs.pop("cv", "skmatter"))
    names, arrays, train_idx, test_idx, labels = _prepare(
        features, kwargs.pop("names", None), kwargs.pop("train_idx", None), kwargs.pop("test_idx", None),
        kwargs.pop("folds", None), cv, kwargs.pop("groups", None), kwargs.get("seed", DEFAULT_SEED),
        kwargs.pop("chunk_rows", CHUNK_ROWS),
    )
    alphas, seed, method = kwargs.pop("alphas", None), kwargs.pop("seed", DEFAULT_SEED), kwargs.pop("method", "auto")
    if kwargs:
        raise TypeError(f"unexpected arguments {sorted(kwargs)}")
    fit = _fit_checked(names, arrays, labels, metric, alphas, method, progress)
    task = delayed(_chunk_pointwise, pure=True)
    parts = [
        task(lab, *blocks, maps=fit.maps, mean=fit.mean, scale_cols=fit.scale_cols,
             widths=[X.shape[1] for X in arrays], metric=metric)
        for lab, blocks in _chunk_blocks(labels, arrays)
    ]
    values = np.concatenate(_compute_chunks(parts, "pointwise " + metric.upper(), progress), axis=2)
    test_dim = test_dim_name(features, names)
    return xr.DataArray(
        values, dims=("source", "target", test_dim),
        coords={"source": names, "target": names, test_dim: np.flatnonzero(labels == 3),
                "alpha_index": (("source", "target"), fit.best), "cutoff_at_edge": (("source", "target"), fit.at_edge)},
        name=f"{metric}_pointwise", attrs=_attrs(metric, alphas, seed, train_idx, test_idx, cv, fit),
    )
