"""Similarity measures against their published formulas, written plainly here, and reference libraries.

Plain references use n × n Gram matrices (CKA, HSIC), scipy's principal angles (CCA), scipy's
Procrustes, netrep's LinearMetric algorithm as published, and scikit-learn's nearest neighbours;
repsim (PyPI) is the installed third-party reference for CKA and CCA. Data: random and
structured (low rank, constant columns, fewer samples than features).
"""

import zlib

import numpy as np
import pytest
import repsim
from scipy.linalg import subspace_angles
from scipy.spatial import procrustes as scipy_procrustes
from sklearn.neighbors import NearestNeighbors

from latentatlas import similarity as sim
from latentatlas.fre import default_split

RTOL = 1e-10


def _random(rng):
    X = rng.standard_normal((80, 6)) @ rng.standard_normal((6, 6))
    return X, np.tanh(X @ rng.standard_normal((6, 5))) + 0.3 * rng.standard_normal((80, 5))


def _low_rank(rng):
    Z = rng.standard_normal((80, 3))
    return Z @ rng.standard_normal((3, 7)), np.sin(Z @ rng.standard_normal((3, 5))) + 0.1 * rng.standard_normal((80, 5))


def _constant_columns(rng):
    X, Y = _random(rng)
    X[:, 2] = 3.0
    Y[:, 0] = -1.5
    return X, Y


def _few_samples(rng):
    X = rng.standard_normal((15, 30))
    return X, X[:, :20] @ rng.standard_normal((20, 25)) + rng.standard_normal((15, 25))


DATA = {"random": _random, "low_rank": _low_rank, "constant_columns": _constant_columns, "n_below_d": _few_samples}


@pytest.fixture(params=list(DATA))
def pair(request):
    return DATA[request.param](np.random.default_rng(zlib.crc32(request.param.encode())))


# --- plain published formulas --------------------------------------------------------------------------

def _centre_gram(K):
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    return H @ K @ H


def _hsic(K, L):
    return np.sum(_centre_gram(K) * _centre_gram(L))


def _cka_gram(K, L):
    return _hsic(K, L) / np.sqrt(_hsic(K, K) * _hsic(L, L))


def _hsic_unbiased(K, L):
    """Song et al. (2012), eq. 5: diagonals zeroed, uncentred Gram matrices."""
    n = len(K)
    K, L = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))


def _rbf(X, sigma=1.0):
    d2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=2)
    return np.exp(-d2 / (2 * sigma**2 * np.median(d2)))


def _cca_plain(X, Y):
    rho = np.cos(subspace_angles(X - X.mean(0), Y - Y.mean(0)))
    return rho.mean()


def _svcca_plain(X, Y, v=0.99):
    bases = []
    for A in (X, Y):
        U, s, _ = np.linalg.svd(A - A.mean(0), full_matrices=False)
        s = s[s > s[0] * max(A.shape) * np.finfo(float).eps]
        k = next(i + 1 for i in range(len(s)) if np.sum(s[: i + 1] ** 2) >= v * np.sum(s**2) - 1e-12)
        bases.append(U[:, :k] * s[:k])
    return _cca_plain(*bases)


def _netrep_linear_metric(X, Y, train, test, alpha):
    """netrep's LinearMetric(alpha, center_columns=True, zero_pad=True, score_method="angular"), step by step."""
    d = max(X.shape[1], Y.shape[1])
    X = np.hstack([X, np.zeros((len(X), d - X.shape[1]))])
    Y = np.hstack([Y, np.zeros((len(Y), d - Y.shape[1]))])

    def whiten(A):
        if alpha > 1 - 1e-7:
            return np.eye(A.shape[1])
        lam, V = np.linalg.eigh(A.T @ A)
        lam = np.maximum(lam, 1e-7)
        dd = alpha + (1 - alpha) * lam ** (-1 / 2)
        new_var = np.sum(alpha**2 * lam + 2 * alpha * (1 - alpha) * lam**0.5 + (1 - alpha) ** 2 * np.ones_like(lam))
        dd *= np.sqrt(np.trace(A.T @ A) / new_var)
        return (V * dd[None, :]) @ V.T

    mx, my = X[train].mean(0), Y[train].mean(0)
    Zx, Zy = whiten(X[train] - mx), whiten(Y[train] - my)
    U, _, Vt = np.linalg.svd(((X[train] - mx) @ Zx).T @ ((Y[train] - my) @ Zy))
    tX, tY = (X[test] - mx) @ Zx @ U, (Y[test] - my) @ Zy @ Vt.T
    return np.arccos(np.clip(np.sum(tX * tY) / (np.linalg.norm(tX) * np.linalg.norm(tY)), -1, 1))


# --- agreement -----------------------------------------------------------------------------------------

def test_linear_cka_equals_the_gram_formula(pair):
    X, Y = pair
    assert sim.linear_cka(X, Y) == pytest.approx(_cka_gram(X @ X.T, Y @ Y.T), rel=RTOL)


def test_debiased_cka_equals_song_s_unbiased_hsic(pair):
    X, Y = pair
    K, L = X @ X.T, Y @ Y.T
    expected = _hsic_unbiased(K, L) / np.sqrt(_hsic_unbiased(K, K) * _hsic_unbiased(L, L))
    assert sim.debiased_cka(X, Y) == pytest.approx(expected, rel=1e-9)


def test_rbf_cka_equals_the_gram_formula(pair):
    X, Y = pair
    assert sim.rbf_cka(X, Y, max_samples=None) == pytest.approx(_cka_gram(_rbf(X), _rbf(Y)), rel=RTOL)
    assert sim.rbf_cka(X, Y, sigma=0.5, max_samples=None) == pytest.approx(_cka_gram(_rbf(X, 0.5), _rbf(Y, 0.5)), rel=RTOL)


def test_rbf_cka_subsample_is_seeded_and_shared():
    X, Y = _random(np.random.default_rng(3))
    rows = np.sort(np.random.default_rng(7).choice(len(X), size=30, replace=False))
    assert sim.rbf_cka(X, Y, max_samples=30, seed=7) == pytest.approx(_cka_gram(_rbf(X[rows]), _rbf(Y[rows])), rel=RTOL)


def test_cca_equals_principal_angles(pair):
    X, Y = pair
    assert sim.cca_similarity(X, Y) == pytest.approx(_cca_plain(X, Y), rel=RTOL)


def test_svcca_equals_truncated_svd_then_cca(pair):
    X, Y = pair
    for v in (0.99, 0.9, 0.5):
        assert sim.svcca(X, Y, variance=v) == pytest.approx(_svcca_plain(X, Y, v), rel=RTOL)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0])
def test_procrustes_equals_netrep_s_linear_metric(pair, alpha):
    X, Y = pair
    if len(X) // 2 < max(X.shape[1], Y.shape[1]):
        pytest.skip("fewer training samples than features: netrep pairs the undetermined directions arbitrarily")
    train, test = default_split(len(X))
    expected = _netrep_linear_metric(X, Y, train, test, alpha)
    assert sim.procrustes_distance(X, Y, alpha=alpha) == pytest.approx(expected, rel=1e-8, abs=1e-10)


def test_in_sample_procrustes_equals_scipy_procrustes():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((50, 4))
    Y = X @ rng.standard_normal((4, 4)) + 0.5 * rng.standard_normal((50, 4))
    everything = np.arange(50)
    angle = sim.procrustes_distance(X, Y, train_idx=everything, test_idx=everything)
    # scipy standardises both to unit norm and returns 1 − (Σ singular values)² = 1 − cos²θ
    assert angle == pytest.approx(np.arccos(np.sqrt(1 - scipy_procrustes(X, Y)[2])), rel=RTOL)


def test_pointwise_procrustes_is_the_aligned_chord():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 5))
    Y = X @ np.linalg.qr(rng.standard_normal((5, 5)))[0] + 0.4 * rng.standard_normal((60, 5))
    angle, pointwise = sim.pointwise_procrustes_distance(X, Y)
    assert np.sqrt(np.mean(pointwise**2)) == pytest.approx(2 * np.sin(angle / 2), rel=1e-10)


def test_mutual_knn_equals_scikit_learn_neighbours(pair):
    X, Y = pair
    k = 5
    nx = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(return_distance=False)
    ny = NearestNeighbors(n_neighbors=k).fit(Y).kneighbors(return_distance=False)
    expected = np.array([len(set(a) & set(b)) / k for a, b in zip(nx, ny)])
    np.testing.assert_array_equal(sim.pointwise_mutual_knn(X, Y, k=k), expected)
    assert sim.mutual_knn(X, Y, k=k) == pytest.approx(expected.mean(), rel=RTOL)


def test_mutual_knn_breaks_ties_by_index():
    X = np.repeat(np.arange(5.0), 4)[:, None]  # groups of 4 identical samples
    neighbours = sim._core.nearest_neighbours(X, 4)
    assert neighbours[0].tolist() == [1, 2, 3, 4]  # 3 exact twins, then the lowest index at distance 1


# --- third-party library: repsim ------------------------------------------------------------------------

def test_repsim_agrees_on_cka_and_cca(pair):
    X, Y = pair
    assert sim.linear_cka(X, Y) == pytest.approx(repsim.cka([X, Y], "linear", "gretton")[0, 1], rel=1e-9)
    if X.shape[0] > max(X.shape[1], Y.shape[1]) and not np.any(np.ptp(X, axis=0) == 0):
        # repsim's CCA inverts covariances: only defined for full-rank sets with more samples than features
        assert sim.cca_similarity(X, Y) == pytest.approx(repsim.cca([X, Y], "pillai")[0, 1], rel=1e-8)
    # (repsim's SVCCA is no reference: on larger sets it keeps a number of directions that neither
    # variance rule explains; its source is not published with the wheel)


# --- properties ----------------------------------------------------------------------------------------

SIMILARITIES = {
    "linear_cka": sim.linear_cka,
    "debiased_cka": sim.debiased_cka,
    "rbf_cka": sim.rbf_cka,
    "procrustes": sim.procrustes_distance,
    "procrustes_cca": lambda X, Y: sim.procrustes_distance(X, Y, alpha=0.0),
    "cca": sim.cca_similarity,
    "svcca": sim.svcca,
    "mknn": sim.mutual_knn,
}


@pytest.mark.parametrize("name", list(SIMILARITIES))
def test_symmetric_and_invariant_to_translation_rotation_and_scale(name):
    f = SIMILARITIES[name]
    rng = np.random.default_rng(9)
    X, Y = _random(rng)
    Q = np.linalg.qr(rng.standard_normal((Y.shape[1], Y.shape[1])))[0]
    value = f(X, Y)
    assert f(Y, X) == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert f(X, 3.7 * Y @ Q + 5.0) == pytest.approx(value, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ["cca", "procrustes_cca"])
def test_cca_measures_are_invariant_to_invertible_maps(name):
    rng = np.random.default_rng(10)
    X, Y = _random(rng)
    A = rng.standard_normal((5, 5)) + 3 * np.eye(5)
    assert SIMILARITIES[name](X, Y @ A) == pytest.approx(SIMILARITIES[name](X, Y), rel=1e-7)


def test_identical_spaces_are_maximally_similar():
    X, _ = _random(np.random.default_rng(11))
    for name in ("linear_cka", "debiased_cka", "rbf_cka", "cca", "svcca", "mknn"):
        assert SIMILARITIES[name](X, X) == pytest.approx(1.0, rel=1e-12)
    assert sim.procrustes_distance(X, 2 * X) == pytest.approx(0.0, abs=1e-7)
