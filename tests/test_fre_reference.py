"""GFRE, GFRD and LFRE agree with scikit-matter, the reference implementation."""

import zlib

import numpy as np
import pytest
from skmatter.metrics import (
    global_reconstruction_distortion,
    global_reconstruction_error,
    local_reconstruction_error,
    pointwise_global_reconstruction_error,
    pointwise_local_reconstruction_error,
)

from latentatlas import fre

RTOL = 1e-8
# Where the true error is 0, both sides return rounding noise; compare absolutely there.
ATOL = 1e-10


def _random(rng, n, dx, dy):
    X = rng.standard_normal((n, dx)) @ rng.standard_normal((dx, dx))
    Y = np.tanh(X @ rng.standard_normal((dx, dy)) / np.sqrt(dx)) + 0.1 * rng.standard_normal((n, dy))
    return X, Y


def _low_rank(rng, n, dx, dy):
    Z = rng.standard_normal((n, 5))
    return Z @ rng.standard_normal((5, dx)), np.sin(Z @ rng.standard_normal((5, dy)))


def _collinear(rng, n, dx, dy):
    X, Y = _random(rng, n, dx, dy)
    X[:, 1] = 2 * X[:, 0]
    X[:, 2] = X[:, 0] - X[:, 3]
    return X, Y


def _constant_columns(rng, n, dx, dy):
    X, Y = _random(rng, n, dx, dy)
    X[:, :3] = 7.0
    Y[:, -2:] = -1.0
    return X, Y


def _wide(rng, n, dx, dy):  # fewer samples than features
    return _random(rng, n, dx, dy)


def _subset(rng, n, dx, dy):  # a superset reconstructs its subset
    X, _ = _random(rng, n, dx, dy)
    return X, X[:, : min(dy, dx)] @ rng.standard_normal((min(dy, dx), min(dy, dx)))


CASES = {
    "random": (_random, 400, 24, 16),
    "random-tall-target": (_random, 300, 12, 30),
    "low-rank": (_low_rank, 300, 20, 12),
    "collinear": (_collinear, 300, 15, 10),
    "constant-columns": (_constant_columns, 300, 15, 10),
    "n<d": (_wide, 60, 100, 40),
    "subset": (_subset, 300, 20, 8),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request):
    make, n, dx, dy = CASES[request.param]
    return make(np.random.default_rng(zlib.crc32(request.param.encode())), n, dx, dy)


def test_gfre_matches_skmatter(case):
    X, Y = case
    expected = global_reconstruction_error(X, Y)
    assert fre.gfre(X, Y) == pytest.approx(expected, rel=RTOL, abs=ATOL)


def test_pointwise_gfre_matches_skmatter_sample_by_sample(case):
    X, Y = case
    expected = pointwise_global_reconstruction_error(X, Y)
    np.testing.assert_allclose(fre.pointwise_gfre(X, Y), expected, rtol=RTOL, atol=ATOL)


def test_lfre_matches_skmatter(case):
    X, Y = case
    k = min(40, len(X) // 2)
    expected = pointwise_local_reconstruction_error(X, Y, k)
    np.testing.assert_allclose(fre.pointwise_lfre(X, Y, n_local_points=k, chunk_size=37), expected, rtol=RTOL, atol=ATOL)
    assert fre.lfre(X, Y, n_local_points=k) == pytest.approx(local_reconstruction_error(X, Y, k), rel=RTOL, abs=ATOL)


def test_gfrd_matches_skmatter_where_it_is_defined(case):
    X, Y = case
    if X.shape[1] > Y.shape[1]:
        X, Y = Y, X  # scikit-matter only handles dim X <= dim Y
    expected = global_reconstruction_distortion(X, Y)
    assert fre.gfrd(X, Y) == pytest.approx(expected, rel=1e-7, abs=ATOL)


def test_gfrd_works_where_skmatter_fails():
    X, Y = _random(np.random.default_rng(3), 300, 20, 8)
    with pytest.raises(ValueError):
        global_reconstruction_distortion(X, Y)
    value = fre.gfrd(X, Y)
    assert np.isfinite(value) and value > 0


@pytest.mark.parametrize("train, test", [(np.arange(0, 300, 3), None), (None, np.arange(50, 250)), (np.arange(200), np.arange(150, 300))])
def test_explicit_splits_match_skmatter(train, test):
    X, Y = _random(np.random.default_rng(5), 300, 10, 7)
    expected = global_reconstruction_error(X, Y, train_idx=train, test_idx=test)
    assert fre.gfre(X, Y, train_idx=train, test_idx=test) == pytest.approx(expected, rel=RTOL)


def test_default_split_is_skmatters():
    from skmatter.model_selection import train_test_split

    for n in (10, 11, 1001):
        train, test = train_test_split(np.arange(n), train_size=0.5, test_size=0.5, random_state=0x5F3759DF, shuffle=True)
        ours_train, ours_test = fre.default_split(n)
        np.testing.assert_array_equal(ours_train, train)
        np.testing.assert_array_equal(ours_test, test)


def test_cv_folds_are_kfolds():
    from sklearn.model_selection import KFold

    from latentatlas.fre._split import two_folds

    for n in (9, 10, 100):
        expected = next(KFold(n_splits=2, shuffle=True, random_state=0x5F3759DF).split(np.zeros(n)))
        for ours, theirs in zip(two_folds(n, 0x5F3759DF), expected):
            np.testing.assert_array_equal(ours, theirs)


def test_cv_scores_match_ridge2foldcv():
    from skmatter.linear_model import Ridge2FoldCV

    from latentatlas.fre._ridge import DEFAULT_ALPHAS, SharedRidge

    X, Y = _random(np.random.default_rng(8), 200, 15, 9)
    est = Ridge2FoldCV(alphas=DEFAULT_ALPHAS, alpha_type="relative", regularization_method="cutoff",
                       random_state=0x5F3759DF, shuffle=True, scoring="neg_root_mean_squared_error").fit(X, Y)
    W, scores, best = SharedRidge(X).fit(Y)
    np.testing.assert_allclose(scores[0], est.cv_values_, rtol=1e-12)
    assert DEFAULT_ALPHAS[best[0]] == est.alpha_
    np.testing.assert_allclose(W, est.coef_.T, rtol=1e-9, atol=1e-12)


def test_targets_side_by_side_are_fit_as_if_alone():
    from latentatlas.fre._ridge import SharedRidge

    rng = np.random.default_rng(9)
    X, Y = _random(rng, 300, 12, 5)
    Z = np.sin(X[:, :3])
    ridge = SharedRidge(X)
    W, scores, best = ridge.fit(np.hstack([Y, Z]), widths=[5, 3])
    for (W_alone, scores_alone, best_alone), cols, i in ((ridge.fit(Y), slice(0, 5), 0), (ridge.fit(Z), slice(5, 8), 1)):
        np.testing.assert_allclose(W[:, cols], W_alone, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(scores[i], scores_alone[0])
        assert best[i] == best_alone[0]


def test_lfre_does_not_depend_on_chunking_or_threads():
    X, Y = _random(np.random.default_rng(11), 300, 10, 6)
    reference = fre.pointwise_lfre(X, Y, n_local_points=30, chunk_size=1000, n_jobs=1)
    np.testing.assert_array_equal(fre.pointwise_lfre(X, Y, n_local_points=30, chunk_size=16, n_jobs=3), reference)
