"""Local feature reconstruction errors, batched over test samples.

For every test sample scikit-matter finds its nearest training neighbours from a dense
test × train distance matrix and fits a fresh ``Ridge2FoldCV`` on them, one Python call
per sample. Here test samples are processed in chunks: distances for one chunk at a
time (memory bounded by ``chunk_size × n_train``), and the local cross-validated ridges
of all samples of the chunk as one batch of :class:`~latentatlas.fre._ridge.CVRidge`, the
kernel of the global measures too, in stacked LAPACK/BLAS calls. The arithmetic is the
same (same neighbours, folds, cut-offs and CV scores), so the values agree to rounding.
:func:`local_errors` gives the pointwise LFRE, :func:`local_predictions` the local
reconstructions themselves (:class:`latentatlas.fre.LocalFRE`).

With ``cv="grouped"`` the two CV folds of each neighbourhood keep identical source
feature vectors together (within :data:`DUPLICATE_TOLERANCE`): in ideal crystals many
training atoms share one vector, and with random folds a copy of every held-out sample
sits in the other fold, so the CV cannot see extrapolation. Fold sizes then differ
between neighbourhoods; each fold is padded with zero rows to the chunk's largest, which
changes neither the SVDs' non-zero part nor any residual.
"""

from __future__ import annotations

import numpy as np

from ._parallel import parallel_map
from ._ridge import CVRidge, check_alphas
from ._split import DEFAULT_SEED, check_cv, grouped_fold2, two_folds

# Two source vectors closer than this (in units where the training set has unit total
# variance) count as one: float32 models give symmetry-equivalent atoms ~1e-7 apart.
DUPLICATE_TOLERANCE = 1e-5


def _nearest(X_train, X_test, sq_train, k):
    """Indices (n_chunk, k) of the k nearest training rows, nearest first."""
    # Same expansion of the squared distance as scikit-matter, so ties resolve alike.
    d2 = sq_train + np.sum(X_test**2, axis=1)[:, None] - 2 * X_test @ X_train.T
    part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(d2, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _same_vector(Xl):
    """Whether rows i and j of each neighbourhood are the same vector, (b, k, k) bool."""
    sq = np.einsum("bkd,bkd->bk", Xl, Xl)
    d2 = sq[:, :, None] + sq[:, None, :] - 2 * Xl @ np.swapaxes(Xl, 1, 2)
    return d2 <= DUPLICATE_TOLERANCE**2


def _component_labels(linked):
    """Label (b, k) of each row: the smallest row index of its connected component in ``linked`` (b, k, k)."""
    k = linked.shape[1]
    labels = np.tile(np.arange(k), (linked.shape[0], 1))
    while True:
        new = np.where(linked, labels[:, None, :], k).min(axis=2)
        if np.array_equal(new, labels):
            return labels
        labels = new


class _PaddedFolds:
    """Per-neighbourhood fold rows (b, m), padded with the index of an appended zero row."""

    def __init__(self, in_fold2):
        b, k = in_fold2.shape
        order = np.argsort(in_fold2, axis=1, kind="stable")  # fold-1 rows first, each fold in row order
        self.n1 = k - in_fold2.sum(axis=1)
        self.n2 = k - self.n1
        position = np.arange(k)
        first = np.where(position[None, : self.n1.max()] < self.n1[:, None], order[:, : self.n1.max()], k)
        at = self.n1[:, None] + position[None, : self.n2.max()]
        second = np.where(at < k, np.take_along_axis(order, np.minimum(at, k - 1), axis=1), k)
        self.rows = (first, second)

    def split(self, A):
        """Rows (b, m1, ·) and (b, m2, ·) of neighbourhood arrays ``A`` (b, k, ·)."""
        padded = np.concatenate([A, np.zeros_like(A[:, :1])], axis=1)
        return tuple(np.take_along_axis(padded, rows[:, :, None], axis=1) for rows in self.rows)


class _FixedFolds:
    """The same fold rows for every neighbourhood (scikit-matter's split)."""

    def __init__(self, rows1, rows2):
        self.rows = (rows1, rows2)
        self.n1, self.n2 = len(rows1), len(rows2)

    def split(self, A):
        return A[:, self.rows[0]], A[:, self.rows[1]]


def _grouped_folds(Xl, seed):
    """Folds keeping identical rows of each neighbourhood together (random where all rows are one vector).

    Only identical vectors are linked, not atoms of one structure: a neighbourhood often
    holds a few large structures, and folds of whole structures are then so unequal that
    the CV scores of all cut-offs tie and the smallest wins (measured: LFRE up to 200 on the
    built-in benchmark where random folds give 6).
    """
    k = Xl.shape[1]
    labels = _component_labels(_same_vector(Xl))
    one_group = np.all(labels == 0, axis=1)  # one vector only: the local map is the mean whatever the folds
    in_fold2 = grouped_fold2(labels, k, seed)
    if np.any(one_group):
        fixed = np.zeros(k, dtype=bool)
        fixed[two_folds(k, seed)[1]] = True
        in_fold2[one_group] = fixed
    return _PaddedFolds(in_fold2)


class _LocalChunk:
    """The CV ridges of the neighbourhoods of a chunk of test samples (one :class:`CVRidge` batch).

    Everything here depends on the source features only, so one chunk serves every target.
    """

    def __init__(self, X_train, x, neighbours, alphas, folds, seed):
        self.neighbours = neighbours
        Xl = X_train[neighbours]  # (b, k, d)
        x_mean = Xl.mean(axis=1)
        Xl = Xl - x_mean[:, None]
        self.folds = _grouped_folds(Xl, seed) if folds is None else folds
        self.ridge = CVRidge(*self.folds.split(Xl), Xl.shape[1], self.folds.n1, self.folds.n2, alphas)
        self.coords = self.ridge.coordinates(x - x_mean)  # test sample in the local basis

    def predict(self, Y_train):
        """Local reconstructions (b, t) of the chunk's test samples for one target, the chosen
        alpha indices (b,) and whether each lies at an edge of the grid that matters (b,)."""
        Yl = Y_train[self.neighbours]
        y_mean = Yl.mean(axis=1)
        fit = self.ridge.fit(*self.folds.split(Yl - y_mean[:, None]), exact=False)
        return y_mean + self.ridge.predict(fit, self.coords), fit.best[:, 0], self.ridge.at_grid_edge(fit.best)[:, 0]

    def errors(self, Y_train, y):
        """Pointwise LFRE (b,) of the chunk's test samples, whose targets are ``y`` (b, t), and :meth:`predict`'s cut-offs."""
        prediction, best, at_edge = self.predict(Y_train)
        return np.linalg.norm(y - prediction, axis=1), best, at_edge


def _each_chunk(X_train, X_test, n_local_points, alphas, seed, chunk_size, n_jobs, progress, cv, use):
    """The local ridges of every chunk of test samples: ``use(chunk, rows)`` with each :class:`_LocalChunk`."""
    alphas = check_alphas(alphas)
    folds = _FixedFolds(*two_folds(n_local_points, seed)) if check_cv(cv) == "skmatter" else None
    sq_train = np.sum(X_train**2, axis=1)

    def run(start):
        rows = slice(start, start + chunk_size)
        neighbours = _nearest(X_train, X_test[rows], sq_train, n_local_points)
        use(_LocalChunk(X_train, X_test[rows], neighbours, alphas, folds, seed), rows)

    starts = range(0, len(X_test), chunk_size)
    show = progress if progress is not None else len(starts) >= 4
    parallel_map(run, starts, n_jobs, desc="LFRE", unit="chunk", progress=show)


def local_errors(
    X_train, X_test, targets, n_local_points, alphas=None, seed=DEFAULT_SEED, chunk_size=128, n_jobs=-1, progress=None,
    cv="skmatter",
):
    """Pointwise LFRE of every test sample for each target, and the chosen cut-offs.

    Parameters
    ----------
    X_train, X_test : ndarray (n_train, d), (n_test, d)
        Scaled source features.
    targets : list of (Y_train, Y_test) pairs of scaled target features
    n_local_points : int
    chunk_size : int
        Test samples processed together; memory is O(chunk_size × (n_train + k·d)) per worker.
    n_jobs : int
        Worker threads over chunks (-1: one per available core). The stacked LAPACK calls
        release the GIL, so threads run in parallel; results do not depend on n_jobs.
    cv : {"skmatter", "grouped"}
        Inner folds: random (scikit-matter's) or keeping identical source vectors together.

    Returns
    -------
    errors : ndarray of shape (n_targets, n_test)
    best : ndarray of int, shape (n_targets, n_test)
        Index into ``alphas`` of each local fit's chosen cut-off.
    at_edge : ndarray of bool, shape (n_targets, n_test)
        Whether that cut-off lies at an edge of the grid that matters (see
        :meth:`latentatlas.fre._ridge.CVRidge.at_grid_edge`).
    """
    errors = np.empty((len(targets), len(X_test)))
    best = np.empty((len(targets), len(X_test)), dtype=np.int16)
    at_edge = np.empty((len(targets), len(X_test)), dtype=bool)

    def run(chunk, rows):
        for j, (Y_train, Y_test) in enumerate(targets):
            errors[j, rows], best[j, rows], at_edge[j, rows] = chunk.errors(Y_train, Y_test[rows])

    _each_chunk(X_train, X_test, n_local_points, alphas, seed, chunk_size, n_jobs, progress, cv, run)
    return errors, best, at_edge


def local_predictions(
    X_train, X_test, Y_train, n_local_points, alphas=None, seed=DEFAULT_SEED, chunk_size=128, n_jobs=-1, progress=None,
    cv="skmatter",
):
    """Local reconstruction of every test sample's target (n_test, t), and the chosen cut-offs (n_test,).

    Parameters as :func:`local_errors`, with one target ``Y_train`` (n_train, t) (scaled).
    Returns the reconstructions, the indices into ``alphas`` and the grid-edge flags.
    """
    out = np.empty((len(X_test), Y_train.shape[1]))
    best = np.empty(len(X_test), dtype=np.int16)
    at_edge = np.empty(len(X_test), dtype=bool)

    def run(chunk, rows):
        out[rows], best[rows], at_edge[rows] = chunk.predict(Y_train)

    _each_chunk(X_train, X_test, n_local_points, alphas, seed, chunk_size, n_jobs, progress, cv, run)
    return out, best, at_edge
