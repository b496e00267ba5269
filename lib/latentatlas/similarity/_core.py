"""Matrices of similarity measures over many feature sets, with the work shared.

Every measure here is computed for a *list* of feature sets at once: what depends on one
set only (centring, whitening, an SVD, a neighbour list) is done once per set, and what
depends on a pair is reduced to small (d × d) blocks of one cross-covariance. The
pairwise functions of :mod:`latentatlas.similarity.measures` are the 2-set case of the
same code, so a matrix cell always equals the pairwise value.

Per-set work and pairs run in fre's thread pool (LAPACK/BLAS release the GIL), one BLAS
thread per worker. All measures are symmetric, so each unordered pair is computed once.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..fre._parallel import parallel_map

#: Relative singular-value tolerance below which a direction counts as absent (rank cut-off).
_RANK_RTOL_FACTOR = np.finfo(float).eps


def _pairs(n_sets: int, diagonal: bool = True) -> list[tuple[int, int]]:
    """Unordered pairs (i ≤ j), largest work not singled out: all blocks cost about the same."""
    return [(i, j) for i, j in itertools.combinations_with_replacement(range(n_sets), 2) if diagonal or i != j]


def _symmetric(n_sets: int, values: dict) -> np.ndarray:
    out = np.empty((n_sets, n_sets))
    for (i, j), v in values.items():
        out[i, j] = out[j, i] = v
    return out


def centred(X: np.ndarray, mean_rows=slice(None)) -> np.ndarray:
    """``X`` minus the mean of ``X[mean_rows]`` (a new float64 array)."""
    return X - X[mean_rows].mean(axis=0)


def _rank(s: np.ndarray, shape) -> int:
    """Numerical rank from singular values (NumPy's ``matrix_rank`` tolerance)."""
    return int(np.sum(s > s[0] * max(shape) * _RANK_RTOL_FACTOR)) if s.size and s[0] > 0 else 0


# --- CKA -------------------------------------------------------------------------------


def cka_values(arrays, *, debiased=False, n_jobs=-1, progress=False):
    """Linear CKA (or debiased CKA) between every pair of sets, (n_sets, n_sets).

    Only d_i × d_j cross-covariances ``X_iᵀ X_j`` of centred features are formed: one per
    unordered pair, never an n × n Gram matrix.
    """
    n = arrays[0].shape[0]
    if debiased and n < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples, got {n}")
    Z = parallel_map(centred, arrays, n_jobs, progress=False)
    pairs = _pairs(len(Z))

    def hsic(pair):
        i, j = pair
        cross = Z[i].T @ Z[j]
        return float(np.einsum("ij,ij->", cross, cross))

    H = _symmetric(len(Z), dict(zip(pairs, parallel_map(hsic, pairs, n_jobs, desc="CKA", unit="pair",
                                                         progress=progress))))
    if debiased:
        # Unbiased HSIC (Song et al. 2012) of linear kernels, written with d × d blocks and
        # the squared row norms r_i = ‖x_i‖² (Kornblith et al. 2019, feature-space form).
        r = np.stack([np.einsum("ij,ij->i", z, z) for z in Z])
        total = r.sum(axis=1)
        H = H - n / (n - 2) * (r @ r.T) + np.outer(total, total) / ((n - 1) * (n - 2))
    diag = np.diag(H).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return H / np.sqrt(np.outer(diag, diag))


def rbf_gram(X: np.ndarray, sigma: float) -> np.ndarray:
    """Centred RBF Gram matrix ``H K H``, bandwidth ``sigma`` × the median pairwise distance."""
    sq = np.einsum("ij,ij->i", X, X)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0)
    median = np.median(d2)
    K = np.exp(-d2 / (2 * sigma**2 * median)) if median > 0 else np.ones_like(d2)
    K -= K.mean(axis=0)
    K -= K.mean(axis=1)[:, None]
    return K


def rbf_cka_values(arrays, *, sigma=1.0, n_jobs=-1, progress=False):
    """RBF-kernel CKA between every pair of sets (on the rows given: subsample before)."""
    K = parallel_map(lambda X: rbf_gram(centred(X), sigma), arrays, n_jobs, progress=False)
    pairs = _pairs(len(K))
    H = _symmetric(len(K), dict(zip(pairs, parallel_map(lambda p: float(np.vdot(K[p[0]], K[p[1]])), pairs,
                                                         n_jobs, desc="RBF CKA", unit="pair", progress=progress))))
    diag = np.diag(H).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return H / np.sqrt(np.outer(diag, diag))


# --- CCA and SVCCA -----------------------------------------------------------------------


def _basis(X, variance=None, criterion="variance"):
    """Orthonormal basis (n, r) of the centred column space, cut at numerical rank or at ``variance``.

    ``criterion="variance"`` keeps the leading directions holding that fraction of the sum
    of squared singular values; ``"singular_values"`` of their plain sum.
    """
    U, s, _ = np.linalg.svd(centred(X), full_matrices=False)
    r = _rank(s, X.shape)
    if variance is not None and r:
        weight = s[:r] ** 2 if criterion == "variance" else s[:r]
        explained = np.cumsum(weight) / np.sum(weight)
        r = int(np.searchsorted(explained, variance - 1e-12) + 1)
    return U[:, :r]


def canonical_correlations(Ux, Uy) -> np.ndarray:
    """Canonical correlations of two orthonormal bases: singular values of ``Uxᵀ Uy``, clipped to 1."""
    return np.minimum(np.linalg.svd(Ux.T @ Uy, compute_uv=False), 1.0)


def cca_values(arrays, *, variance=None, criterion="variance", n_jobs=-1, progress=False):
    """Mean canonical correlation (SVCCA when ``variance`` is given) between every pair of sets."""
    if criterion not in ("variance", "singular_values"):
        raise ValueError(f"criterion must be 'variance' or 'singular_values', got {criterion!r}")
    bases = parallel_map(lambda X: _basis(X, variance, criterion), arrays, n_jobs, progress=False)
    for X, U in zip(arrays, bases):
        if U.shape[1] == 0:
            raise ValueError(f"a feature set of shape {X.shape} is constant over the samples; CCA is undefined")
    pairs = _pairs(len(bases), diagonal=False)
    values = dict(zip(pairs, parallel_map(lambda p: float(np.mean(canonical_correlations(bases[p[0]], bases[p[1]]))),
                                           pairs, n_jobs, desc="CCA", unit="pair", progress=progress)))
    values.update({(i, i): 1.0 for i in range(len(bases))})
    return _symmetric(len(bases), values)


# --- Procrustes / shape metrics ---------------------------------------------------------


def whitening(XtX: np.ndarray, alpha: float, eigval_tol: float = 1e-7) -> np.ndarray | None:
    """Partial whitening matrix of Williams et al. (netrep's ``whiten``), None for alpha = 1.

    ``Z = V diag(alpha + (1 − alpha) λ^(−1/2)) Vᵀ`` from the eigenpairs of ``XᵀX`` (λ clipped
    at ``eigval_tol``), rescaled so that ``XZ`` keeps the total variance of ``X``.
    """
    if alpha > 1 - eigval_tol:
        return None
    lam, V = np.linalg.eigh(XtX)
    lam = np.maximum(lam, eigval_tol)
    d = alpha + (1 - alpha) * lam**-0.5
    new_var = np.sum(alpha**2 * lam + 2 * alpha * (1 - alpha) * lam**0.5 + (1 - alpha) ** 2)
    d *= np.sqrt(np.trace(XtX) / new_var)
    return (V * d) @ V.T


class _ShapeSet:
    """One set centred with training means and (partially) whitened, train and test rows."""

    def __init__(self, X, train_idx, test_idx, alpha):
        mean = X[train_idx].mean(axis=0)
        self.train, self.test = X[train_idx] - mean, X[test_idx] - mean
        W = whitening(self.train.T @ self.train, alpha)
        if W is not None:
            self.train, self.test = self.train @ W, self.test @ W
        self.test_norm = float(np.linalg.norm(self.test))


def procrustes_values(arrays, train_idx, test_idx, *, alpha=1.0, pointwise=False, n_jobs=-1, progress=False):
    """Cross-validated angular shape distance between every pair of sets.

    Returns
    -------
    values : ndarray (n_sets, n_sets)
        Angle (radians) between the aligned test representations.
    pointwise : ndarray (n_sets, n_sets, n_test) or None
        Per test sample, the distance between the aligned representations, each scaled to
        unit RMS norm over the test samples.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1] (1: rotations only, 0: CCA), got {alpha}")
    sets = parallel_map(lambda X: _ShapeSet(X, train_idx, test_idx, alpha), arrays, n_jobs, progress=False)
    for X, s in zip(arrays, sets):
        if s.test_norm == 0 or not np.any(s.train):
            raise ValueError(f"a feature set of shape {X.shape} is constant over the samples; its shape is undefined")
    n_test = len(test_idx)
    pairs = _pairs(len(sets), diagonal=False)

    def pair(p):
        a, b = sets[p[0]], sets[p[1]]
        cross = a.train.T @ b.train
        U, s, Vt = np.linalg.svd(cross, full_matrices=False)
        # Directions the training rows do not determine (zero singular values: fewer training
        # samples than features) would be paired arbitrarily; they contribute nothing here.
        r = _rank(s, cross.shape)
        U, Vt = U[:, :r], Vt[:r]
        # <A_test U, B_test V> = tr(Uᵀ A_testᵀ B_test V): one d × d cross-covariance on the test rows.
        cos = float(np.einsum("ij,ij->", U.T @ (a.test.T @ b.test), Vt)) / (a.test_norm * b.test_norm)
        angle = float(np.arccos(np.clip(cos, -1.0, 1.0)))
        if not pointwise:
            return angle, None
        scale = np.sqrt(n_test)
        residual = (a.test @ U) * (scale / a.test_norm) - (b.test @ Vt.T) * (scale / b.test_norm)
        return angle, np.sqrt(np.einsum("ij,ij->i", residual, residual))

    results = dict(zip(pairs, parallel_map(pair, pairs, n_jobs, desc="Procrustes", unit="pair", progress=progress)))
    # A set against itself aligns exactly; arccos(1 − rounding) would give ~1e-8 instead of 0.
    angles = {p: r[0] for p, r in results.items()} | {(i, i): 0.0 for i in range(len(sets))}
    values = _symmetric(len(sets), angles)
    if not pointwise:
        return values, None
    point = np.zeros((len(sets), len(sets), n_test))
    for (i, j), (_, e) in results.items():
        point[i, j] = point[j, i] = e
    return values, point


# --- mutual k-nearest neighbours ----------------------------------------------------------


def nearest_neighbours(X: np.ndarray, k: int, chunk_size: int = 256) -> np.ndarray:
    """Indices (n, k) of each row's k nearest other rows (Euclidean), in ascending index order.

    Ties at the k-th distance (equal after rounding) are broken by the lower index, so the
    lists do not depend on the partition algorithm. Distances are computed ``chunk_size``
    rows at a time, so memory stays O(chunk_size × n).
    """
    n = X.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k={k} nearest neighbours need 1 <= k < number of samples ({n})")
    sq = np.einsum("ij,ij->i", X, X)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk_size):
        rows = np.arange(start, min(n, start + chunk_size))
        d2 = X[rows] @ X.T
        d2 *= -2
        d2 += sq
        d2 += sq[rows, None]
        d2[np.arange(len(rows)), rows] = np.inf
        nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(d2, nearest, axis=1).max(axis=1, keepdims=True)
        # Only rows with more than k samples within the k-th distance have a choice to make.
        tied = np.flatnonzero(np.count_nonzero(d2 <= kth, axis=1) > k)
        if tied.size:
            below = d2[tied] < kth[tied]
            ties = d2[tied] == kth[tied]
            keep = below | (ties & (np.cumsum(ties, axis=1) <= k - below.sum(axis=1, keepdims=True)))
            nearest[tied] = np.nonzero(keep)[1].reshape(len(tied), k)
        out[rows] = np.sort(nearest, axis=1)
    return out


def neighbour_overlap(Nx: np.ndarray, Ny: np.ndarray) -> np.ndarray:
    """Per row, the fraction of shared entries of two sorted neighbour lists (n, k) -> (n,)."""
    both = np.sort(np.concatenate([Nx, Ny], axis=1), axis=1)
    return np.sum(both[:, 1:] == both[:, :-1], axis=1) / Nx.shape[1]


def mutual_knn_values(arrays, *, k=10, n_jobs=-1, progress=False):
    """Mutual k-NN alignment between every pair of sets: mean (n_sets, n_sets) and per sample (…, n)."""
    neighbours = parallel_map(lambda X: nearest_neighbours(centred(X), k), arrays, n_jobs, desc="kNN",
                              unit="set", progress=progress)
    pairs = _pairs(len(neighbours), diagonal=False)
    n = arrays[0].shape[0]
    point = np.ones((len(arrays), len(arrays), n))
    for (i, j), overlap in zip(pairs, parallel_map(lambda p: neighbour_overlap(neighbours[p[0]], neighbours[p[1]]),
                                                     pairs, n_jobs, progress=False)):
        point[i, j] = point[j, i] = overlap
    return point.mean(axis=2), point


def subsample(n_samples: int, max_samples: int | None, seed: int) -> np.ndarray:
    """Sorted random rows (without replacement) when ``n_samples > max_samples``, else all rows."""
    if max_samples is None or n_samples <= max_samples:
        return np.arange(n_samples)
    return np.sort(np.random.default_rng(seed).choice(n_samples, size=max_samples, replace=False))
