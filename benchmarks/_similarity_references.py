"""Reference implementations for benchmarks/similarity.py: one call per pair, no latentatlas import.

Imported alone in a fresh process for the cold small-problem timings, so it must not pull
in latentatlas (whose import is part of the other side's cold time).
"""

from __future__ import annotations

import numpy as np

SEED = 0x5F3759DF


def split(n_samples):
    """scikit-matter's default 50/50 split (scikit-learn's ShuffleSplit arithmetic, without importing it)."""
    n_test, n_train = -(-n_samples // 2), n_samples // 2
    perm = np.random.RandomState(SEED).permutation(n_samples)
    return perm[n_test : n_test + n_train], perm[:n_test]


def rbf_rows(n_rows, max_samples=2000, seed=SEED):
    """The rows of latentatlas's documented RBF CKA subsample (sorted, seeded, without replacement)."""
    if n_rows <= max_samples:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_samples, replace=False))


def ref_feature_space_cka(X, Y, debiased=False):
    """Kornblith et al. (2019), feature_space_linear_cka."""
    X = X - X.mean(0, keepdims=True)
    Y = Y - Y.mean(0, keepdims=True)
    xty = np.linalg.norm(X.T @ Y) ** 2
    nx, ny = np.linalg.norm(X.T @ X), np.linalg.norm(Y.T @ Y)
    if debiased:
        n = X.shape[0]
        rx, ry = np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", Y, Y)
        sx, sy = rx.sum(), ry.sum()

        def helper(v, a, b, sa, sb):
            return v - n / (n - 2.0) * a.dot(b) + sa * sb / ((n - 1) * (n - 2))

        xty = helper(xty, rx, ry, sx, sy)
        nx, ny = np.sqrt(helper(nx**2, rx, rx, sx, sx)), np.sqrt(helper(ny**2, ry, ry, sy, sy))
    return xty / (nx * ny)


def ref_rbf_cka(X, Y):
    """Kornblith et al. (2019): cka(gram_rbf(X), gram_rbf(Y)) with center_gram."""

    def gram_rbf(A):
        dot = A @ A.T
        sq = np.diag(dot)
        d2 = -2 * dot + sq[:, None] + sq[None, :]
        return np.exp(-d2 / (2 * np.median(d2)))

    def center(K):
        K = K.copy()
        means = K.mean(0)
        means -= means.mean() / 2
        K -= means[:, None]
        K -= means[None, :]
        return K

    K, L = center(gram_rbf(X)), center(gram_rbf(Y))
    return (K.ravel() @ L.ravel()) / (np.linalg.norm(K) * np.linalg.norm(L))


class NetrepLinearMetric:
    """netrep's LinearMetric(alpha, center_columns=True, zero_pad=True, score_method="angular")."""

    def __init__(self, alpha):
        self.alpha = alpha

    def _whiten(self, A):
        if self.alpha > 1 - 1e-7:
            return A, np.eye(A.shape[1])
        lam, V = np.linalg.eigh(A.T @ A)
        lam = np.maximum(lam, 1e-7)
        a = self.alpha
        d = a + (1 - a) * lam ** (-1 / 2)
        d *= np.sqrt(np.trace(A.T @ A) / np.sum(a**2 * lam + 2 * a * (1 - a) * lam**0.5 + (1 - a) ** 2))
        Z = (V * d[None, :]) @ V.T
        return A @ Z, Z

    @staticmethod
    def _pad(X, Y):
        d = max(X.shape[1], Y.shape[1])
        return (np.hstack([X, np.zeros((len(X), d - X.shape[1]))]), np.hstack([Y, np.zeros((len(Y), d - Y.shape[1]))]))

    def fit(self, X, Y):
        X, Y = self._pad(X, Y)
        self.mx, self.my = X.mean(0), Y.mean(0)
        Xw, self.Wx = self._whiten(X - self.mx)
        Yw, self.Wy = self._whiten(Y - self.my)
        U, _, Vt = np.linalg.svd(Xw.T @ Yw)
        self.Wx, self.Wy = self.Wx @ U, self.Wy @ Vt.T
        return self

    def score(self, X, Y):
        X, Y = self._pad(X, Y)
        tX, tY = (X - self.mx) @ self.Wx, (Y - self.my) @ self.Wy
        return np.arccos(np.clip(np.sum(tX * tY) / (np.linalg.norm(tX) * np.linalg.norm(tY)), -1, 1))


def ref_svcca(X, Y, variance=0.99):
    """Raghu et al. (2017): keep the top singular directions holding ``variance``, then mean CCA."""
    from scipy.linalg import subspace_angles

    reduced = []
    for A in (X, Y):
        U, s, _ = np.linalg.svd(A - A.mean(0), full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), variance) + 1)
        reduced.append(U[:, :k] * s[:k])
    return np.mean(np.cos(subspace_angles(*reduced)))


def ref_mutual_knn(X, Y, k=10):
    from sklearn.neighbors import NearestNeighbors

    nx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X).kneighbors(return_distance=False)
    ny = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(Y).kneighbors(return_distance=False)
    both = np.sort(np.concatenate([nx, ny], axis=1), axis=1)
    return np.mean(np.sum(both[:, 1:] == both[:, :-1], axis=1) / k)


def reference(metric, X, Y, train, test):
    """The reference value of one pair (symmetric measures: X, Y unordered)."""
    if metric in ("cka", "debiased_cka"):
        return ref_feature_space_cka(X[test], Y[test], debiased=metric == "debiased_cka")
    if metric == "rbf_cka":
        rows = test[rbf_rows(len(test))]
        return ref_rbf_cka(X[rows], Y[rows])
    if metric in ("procrustes", "procrustes_cca"):
        metric_ = NetrepLinearMetric(1.0 if metric == "procrustes" else 0.0).fit(X[train], Y[train])
        return metric_.score(X[test], Y[test])
    if metric == "cca":
        import repsim
    if metric in ("gfre", "gfrd"):
        from skmatter.metrics import global_reconstruction_distortion, global_reconstruction_error
    if metric == "cca":
        return repsim.cca([X[test], Y[test]], "pillai")[0, 1]
    if metric == "svcca":
        return ref_svcca(X[test], Y[test])
    if metric == "mknn":
        return ref_mutual_knn(X[test], Y[test])
    if metric == "gfre":
        return global_reconstruction_error(X, Y, train_idx=train, test_idx=test)
    if metric == "gfrd":  # scikit-matter's GFRD needs dim X <= dim Y (a known upstream defect)
        return global_reconstruction_distortion(X, Y, train_idx=train, test_idx=test)
    raise ValueError(metric)
