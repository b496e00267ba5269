"""LFRE at scale: neighbours from a faiss index, test samples in chunks across dask workers.

The in-memory LFRE (:mod:`latentatlas.fre._local`) finds each test sample's neighbours
from a dense block of distances to every training sample. Here a faiss index over the
scaled training features of each source answers the queries instead:

* ``approximate=False`` (default): ``IndexFlatL2``, an exact brute-force search in float32.
  It returns ``n_candidates`` (default ``n_local_points + 32``) candidates, which are
  re-ranked by their float64 distances computed exactly as in memory; the ``n_local_points``
  nearest are kept. A true neighbour can only be lost if more than 32 training samples lie
  within float32 rounding (~1e-7 relative) of the k-th distance, so the neighbourhoods,
  and hence the values, are those of the in-memory LFRE (to rounding).
* ``approximate=True``: ``IndexHNSWFlat`` (32 links per node, ``efSearch`` = 2 ×
  candidates), a graph search that may miss true neighbours; candidates are re-ranked the
  same way. Its effect on the values, measured by ``benchmarks/scale.py`` (2 synthetic
  sets of 64 columns, 1e5 training and 2,000 test samples, k = 100): 99.97 % of the exact
  neighbours found; 2.8 % of the pointwise LFRE values of the off-diagonal pairs change
  (median change 0, largest 20 % relative, where a neighbour was missed); the LFRE matrix
  changes by 6.5e-5 relative. Use it for overviews, exact search for reported numbers.

Everything after the neighbour search is the in-memory code: the chunk's neighbourhoods
are gathered (``chunk_size × n_local_points`` rows of each set) and fit by
:class:`~latentatlas.fre._local._LocalChunk`, all targets sharing one source factorisation.
Chunks run on the active ``dask.distributed`` client if there is one (a bounded number in
flight, so memory stays O(workers × chunk)), else in a thread pool.

Memory: the training features of every set are held (scaled, float64) by the process that
drives the search, plus the index (float32 copy of the source); the test samples are read
set by set. Workers receive only gathered neighbourhoods.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..dataset import FeatureError
from ._local import _FixedFolds, _LocalChunk
from ._parallel import parallel_map
from ._ridge import check_alphas
from .matrix import result_attrs, test_dim_name
from ._scale import fit_scaler, scale_rows
from ._split import DEFAULT_SEED, check_cv, check_local_points, resolve_split, two_folds

__all__ = ["NeighbourIndex", "indexed_lfre_matrix", "indexed_pointwise_lfre_matrix"]

_EXTRA_CANDIDATES = 32


class NeighbourIndex:
    """Nearest training samples of query points: a faiss index, re-ranked in float64.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, d)
        Scaled training features of the source.
    approximate : bool
        HNSW graph search instead of exact brute force.
    """

    def __init__(self, X_train, approximate=False):
        import faiss

        self.X_train = X_train
        self.sq_train = np.sum(X_train**2, axis=1)
        self.approximate = approximate
        data = np.ascontiguousarray(X_train, dtype=np.float32)
        self.index = faiss.IndexHNSWFlat(data.shape[1], 32) if approximate else faiss.IndexFlatL2(data.shape[1])
        self.index.add(data)

    def query(self, X, k, n_candidates=None):
        """Indices (n, k) of the ``k`` nearest training rows of each row of ``X``, nearest first."""
        n_candidates = min(len(self.X_train), k + _EXTRA_CANDIDATES if n_candidates is None else max(k, n_candidates))
        if self.approximate:
            self.index.hnsw.efSearch = 2 * n_candidates
        _, candidates = self.index.search(np.ascontiguousarray(X, dtype=np.float32), n_candidates)
        candidates = np.where(candidates < 0, 0, candidates)  # HNSW pads with -1 when it finds too few
        # the in-memory expansion of the squared distance, so that ranks and ties come out alike
        d2 = self.sq_train[candidates] + np.sum(X**2, axis=1)[:, None] - 2 * np.einsum("bd,bkd->bk", X, self.X_train[candidates])
        order = np.argsort(d2, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(candidates, order, axis=1)


def _chunk_errors(Xl, x, targets, alphas, folds, seed):
    """Pointwise LFRE, chosen alpha indices and edge flags, each (n_targets, b), of a chunk.

    ``Xl`` (b, k, d) holds each test sample's neighbours in the source (gathered from the
    training set), ``targets`` the pairs (Yl (b, k, d_t), y (b, d_t)) of every target.
    """
    b, k, d = Xl.shape
    neighbours = np.arange(b * k).reshape(b, k)
    chunk = _LocalChunk(Xl.reshape(b * k, d), x, neighbours, alphas, folds, seed)
    return tuple(map(np.stack, zip(*(chunk.errors(Yl.reshape(b * k, -1), y) for Yl, y in targets))))


def _scaled_sets(features, names, train_idx, test_idx, seed):
    """Training and test rows of every set, centred and scaled with training statistics."""
    from ..dataset import select_feature_sets, validate_features

    names, getter = select_feature_sets(features, names)
    arrays = {name: X if hasattr(X, "dask") else np.asarray(X) for name, X in zip(names, map(getter, names))}
    n = {X.shape[0] for X in arrays.values()}
    if len(n) != 1:
        raise FeatureError(f"feature sets have different numbers of samples {sorted(n)}; all must describe the same samples")
    n = n.pop()
    train_idx, test_idx = resolve_split(n, train_idx, test_idx, seed)
    out = []
    for name, X in arrays.items():
        # dask arrays are read once for the training rows and once for the test rows
        X_train, X_test = (np.asarray(X[np.sort(idx)], dtype=np.float64)[np.argsort(np.argsort(idx))] for idx in (train_idx, test_idx))
        validate_features({name: X_train})
        validate_features({name: X_test})
        mean, scale = fit_scaler(X_train, name)
        out.append((scale_rows(X_train, slice(None), mean, scale, out=X_train), scale_rows(X_test, slice(None), mean, scale)))
    return names, out, train_idx, test_idx


def _active_client():
    from .streamed import _active_client as client

    return client()


def _run_chunks(job, starts, desc, progress):
    """``job(start)`` for every chunk start: on the dask client's workers if there is one, else in threads."""
    from tqdm.auto import tqdm

    client = _active_client()
    if client is None:
        return parallel_map(lambda start: _chunk_errors(*job(start)), starts, -1, desc=desc, unit="chunk", progress=progress)
    from distributed import as_completed

    limit = 2 * max(1, len(client.scheduler_info()["workers"]))
    results, pending = {}, as_completed()
    todo = iter(starts)
    with tqdm(total=len(starts), desc=desc, unit="chunk", disable=not progress, leave=False) as bar:
        def submit():
            start = next(todo, None)
            if start is not None:
                future = client.submit(_chunk_errors, *job(start), pure=False)
                future.start = start
                pending.add(future)

        for _ in range(limit):
            submit()
        for future in pending:
            results[future.start] = future.result()
            bar.update()
            submit()
    return [results[s] for s in starts]


def indexed_pointwise_lfre_matrix(
    features, *, names=None, train_idx=None, test_idx=None, n_local_points: int = 100, alphas=None,
    seed: int = DEFAULT_SEED, approximate: bool = False, n_candidates: int | None = None, chunk_size: int = 128,
    progress: bool = True, cv: str = "skmatter",
) -> xr.DataArray:
    """Pointwise LFRE between every ordered pair of feature sets, neighbours from a faiss index.

    Parameters
    ----------
    features : xarray.Dataset or dict of name -> array-like (n_samples, n_features)
        In memory or dask-backed (e.g. a zarr store).
    names, train_idx, test_idx, n_local_points, alphas, seed
        As :func:`latentatlas.fre.pointwise_fre_matrix`.
    approximate : bool
        HNSW search instead of exact (see the module docstring for its effect).
    n_candidates : int, optional
        Candidates re-ranked in float64; default ``n_local_points + 32``.
    chunk_size : int
        Test samples per task.
    progress : bool
    cv : {"skmatter", "grouped"}
        Inner folds of each local fit, as in memory: random, or identical source vectors
        of a neighbourhood in one fold.

    Returns
    -------
    xarray.DataArray of shape (n_sets, n_sets, n_test)
        As :func:`latentatlas.fre.pointwise_fre_matrix` with ``metric="lfre"`` (with the
        coordinates ``alpha_index`` and ``cutoff_at_edge`` of every local fit).
    """
    from tqdm.auto import tqdm

    alphas_ = check_alphas(alphas)
    names, scaled, train_idx, test_idx = _scaled_sets(features, names, train_idx, test_idx, seed)
    n_local_points = check_local_points(n_local_points, len(train_idx))
    folds = _FixedFolds(*two_folds(n_local_points, seed)) if check_cv(cv) == "skmatter" else None
    starts = list(range(0, len(test_idx), chunk_size))
    values = np.empty((len(names), len(names), len(test_idx)))
    best = np.empty(values.shape, dtype=np.int16)
    at_edge = np.empty(values.shape, dtype=bool)
    for i, (X_train, X_test) in enumerate(tqdm(scaled, desc="LFRE", unit="source", disable=not progress)):
        index = NeighbourIndex(X_train, approximate)

        def job(start, X_train=X_train, X_test=X_test, index=index):
            x = X_test[start : start + chunk_size]
            nb = index.query(x, n_local_points, n_candidates)
            targets = [(Y_train[nb], Y_test[start : start + chunk_size]) for Y_train, Y_test in scaled]
            return X_train[nb], x, targets, alphas_, folds, seed

        values[i], best[i], at_edge[i] = (np.concatenate(part, axis=1) for part in zip(*_run_chunks(job, starts, "LFRE chunks", progress)))
    test_dim = test_dim_name(features, names)
    neighbours = "faiss HNSW (approximate)" if approximate else "faiss exact"
    attrs = result_attrs("lfre", alphas, seed, train_idx, test_idx, cv=cv, n_local_points=int(n_local_points),
                         neighbours=neighbours + ", re-ranked in float64")
    return xr.DataArray(
        values, dims=("source", "target", test_dim),
        coords={"source": names, "target": names, test_dim: test_idx, "alpha_index": (("source", "target", test_dim), best),
                "cutoff_at_edge": (("source", "target", test_dim), at_edge)},
        name="lfre_pointwise", attrs=attrs,
    )


def indexed_lfre_matrix(features, **kwargs) -> xr.DataArray:
    """LFRE matrix (RMS over test samples) from :func:`indexed_pointwise_lfre_matrix`."""
    from .metrics import rms

    pointwise = indexed_pointwise_lfre_matrix(features, **kwargs)
    return xr.DataArray(
        rms(pointwise.values), dims=("source", "target"),
        coords={"source": pointwise.source.values, "target": pointwise.target.values},
        name="lfre", attrs=pointwise.attrs,
    ).assign_attrs(test_samples=pointwise.dims[-1])
