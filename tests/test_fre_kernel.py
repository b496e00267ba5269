"""The one cross-validated ridge kernel (latentatlas.fre._ridge.CVRidge) that GFRE, GFRD and LFRE share."""

import numpy as np
import pytest

from latentatlas import fre
from latentatlas.fre._ridge import CVRidge, SharedRidge


def _problems(rng, b=6, m1=14, m2=11, d=5, t=3):
    """A batch of independent regression problems split into two folds; fold 2 padded with zero rows."""
    X1, X2 = rng.standard_normal((b, m1, d)), rng.standard_normal((b, m2, d))
    W = rng.standard_normal((b, d, t))
    Y1 = X1 @ W + 0.3 * rng.standard_normal((b, m1, t))
    Y2 = X2 @ W + 0.3 * rng.standard_normal((b, m2, t))
    n2 = m2 - np.arange(b) % 3  # some problems have fewer fold-2 samples: zero rows stand in
    for i, n in enumerate(n2):
        X2[i, n:] = Y2[i, n:] = 0.0
    return X1, X2, Y1, Y2, n2


@pytest.mark.parametrize("exact", [True, False])
def test_a_batch_equals_its_problems_fit_one_at_a_time(exact):
    X1, X2, Y1, Y2, n2 = _problems(np.random.default_rng(0))
    m1 = X1.shape[1]
    batch = CVRidge(X1, X2, 25, m1, n2)
    fit = batch.fit(Y1, Y2, exact=exact)
    coords = batch.coordinates(X1[:, 0])
    for i in range(len(X1)):
        one = CVRidge(X1[i : i + 1], X2[i : i + 1], 25, m1, n2[i : i + 1])
        fit_one = one.fit(Y1[i : i + 1], Y2[i : i + 1], exact=exact)
        np.testing.assert_array_equal(fit_one.best, fit.best[i : i + 1])
        np.testing.assert_array_equal(fit_one.scores, fit.scores[i : i + 1])
        np.testing.assert_allclose(one.predict(fit_one, one.coordinates(X1[i : i + 1, 0])), batch.predict(fit, coords)[i : i + 1],
                                   rtol=1e-12)
        np.testing.assert_allclose(one.coef(fit_one, [Y1.shape[2]]), batch.coef(fit, [Y1.shape[2]])[i : i + 1], rtol=1e-12)


def test_both_summation_orders_give_the_same_scores_and_cutoffs():
    X1, X2, Y1, Y2, n2 = _problems(np.random.default_rng(1), b=8)
    ridge = CVRidge(X1, X2, 25, X1.shape[1], n2)
    exact, expanded = ridge.fit(Y1, Y2, exact=True), ridge.fit(Y1, Y2, exact=False)
    np.testing.assert_allclose(expanded.scores, exact.scores, rtol=1e-10)
    np.testing.assert_array_equal(expanded.best, exact.best)


def test_the_global_fit_is_a_batch_of_one():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((60, 7)), rng.standard_normal((60, 4))
    shared = SharedRidge(X)
    W, scores, best = shared.fit(Y)
    rows1, rows2 = shared.folds
    kernel = CVRidge(X[rows1][None], X[rows2][None], 60, len(rows1), len(rows2))
    fit = kernel.fit(Y[rows1][None], Y[rows2][None])
    np.testing.assert_array_equal(fit.scores[0], scores)
    np.testing.assert_array_equal(kernel.coef(fit, [4])[0], W)


@pytest.mark.parametrize("alphas", [[1.5], [-0.1, 0.5], [], [np.nan], [[0.1, 0.2]]])
@pytest.mark.parametrize("measure", ["gfre", "lfre", "gfrd matrix", "lfre matrix"])
def test_bad_alphas_are_refused_by_every_measure(alphas, measure):
    X = np.random.default_rng(3).standard_normal((40, 3))
    call = {
        "gfre": lambda: fre.gfre(X, X**2, alphas=alphas),
        "lfre": lambda: fre.lfre(X, X**2, n_local_points=10, alphas=alphas),
        "gfrd matrix": lambda: fre.fre_matrix({"a": X, "b": X**2}, "gfrd", alphas=alphas, progress=False),
        "lfre matrix": lambda: fre.fre_matrix({"a": X, "b": X**2}, "lfre", n_local_points=10, alphas=alphas, progress=False),
    }[measure]
    with pytest.raises(ValueError, match="alphas"):
        call()
