"""Vectorised concept probes against scikit-learn, one fit at a time."""

import numpy as np
import pytest
from scipy.stats import false_discovery_control
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from latentatlas.concepts import LinearProbes, balanced_accuracy, benjamini_hochberg, moad


def _layers(seed=0, n=300):
    """Two layers of different widths and three binary concepts of different prevalence."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    a = np.c_[latent @ rng.normal(size=(3, 5)), rng.normal(size=(n, 2))] * rng.uniform(0.5, 4, 7)
    b = np.maximum(latent @ rng.normal(size=(3, 12)) + rng.normal(size=(n, 12)), 0) + 3.0
    Y = np.c_[latent[:, 0] > 0, latent[:, 1] + 0.5 * rng.normal(size=n) > 0.8, latent[:, 2] < -1.0]
    return {"a": a, "b": b}, Y


def test_matches_sklearn_per_layer_and_concept():
    X, Y = _layers()
    probes = LinearProbes(C=0.1, tol=1e-9, dtype="float64").fit(X, Y)
    for i, (name, values) in enumerate(X.items()):
        Z = (values - values.mean(0)) / values.std(0)
        for k in range(Y.shape[1]):
            # lbfgs in scikit-learn does not penalise the intercept either
            ref = LogisticRegression(C=0.1, class_weight="balanced", tol=1e-12, max_iter=10_000).fit(Z, Y[:, k])
            width = values.shape[1]
            np.testing.assert_allclose(probes.coef_[i, :width, k], ref.coef_[0], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(probes.intercept_[i, k], ref.intercept_[0], rtol=1e-4, atol=1e-6)
            assert np.all(probes.coef_[i, width:, k] == 0)
            proba = probes.predict_proba(X)[i, :, k]
            np.testing.assert_allclose(proba, ref.predict_proba(Z)[:, 1], atol=1e-6)


def test_float32_default_close_to_float64():
    X, Y = _layers(seed=1)
    p32 = LinearProbes().fit(X, Y).predict_proba(X)
    p64 = LinearProbes(dtype="float64", tol=1e-9).fit(X, Y).predict_proba(X)
    np.testing.assert_allclose(p32, p64, atol=2e-3)


def test_score_is_balanced_accuracy():
    X, Y = _layers(seed=2)
    train, test = slice(0, 200), slice(200, None)
    probes = LinearProbes().fit({k: v[train] for k, v in X.items()}, Y[train])
    score = probes.score({k: v[test] for k, v in X.items()}, Y[test])
    pred = probes.decision_function({k: v[test] for k, v in X.items()}) > 0
    for i in range(2):
        for k in range(3):
            assert score[i, k] == pytest.approx(balanced_accuracy_score(Y[test, k], pred[i, :, k]))
    assert score.shape == (2, 3)
    assert (score > 0.6).all()


def test_constant_feature_and_single_value_column():
    X, Y = _layers(seed=3)
    X["a"][:, 0] = 7.0
    probes = LinearProbes().fit(X, Y)
    assert probes.coef_[0, 0].tolist() == [0.0, 0.0, 0.0]
    Y[:, 1] = True
    with pytest.raises(ValueError, match=r"concept columns \[1\] have a single value"):
        LinearProbes().fit(X, Y)
    with pytest.raises(ValueError, match="has 299 samples but Y has 300"):
        LinearProbes().fit({"a": X["a"][:-1]}, Y)


def test_balanced_accuracy_broadcasts():
    rng = np.random.default_rng(0)
    y = rng.random((50, 4)) < 0.3
    pred = rng.random((3, 50, 4)) < 0.5
    out = balanced_accuracy(y, pred)
    ref = [[balanced_accuracy_score(y[:, k], pred[l, :, k]) for k in range(4)] for l in range(3)]
    np.testing.assert_allclose(out, ref)


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(0).random((4, 5, 3)) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p.ravel()).reshape(p.shape))


def test_moad_matches_pairwise_cosines():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    X[3] = 0.0
    Y = rng.random((40, 3)) < [0.3, 0.5, 0.8]
    U = np.divide(X, np.linalg.norm(X, axis=1, keepdims=True), out=np.zeros_like(X), where=X.any(1, keepdims=True))
    cos = U @ U.T
    expected = []
    for k in range(3):
        pos, neg = np.flatnonzero(Y[:, k]), np.flatnonzero(~Y[:, k])
        within = [cos[i, j] for i in pos for j in pos if i != j]
        across = [cos[i, j] for i in pos for j in neg]
        expected.append(np.mean(within) - np.mean(across))
    np.testing.assert_allclose(moad(X, Y), expected)
    # a concept that groups samples scores higher than one that does not
    X2 = np.r_[rng.normal(3, 1, (20, 4)), rng.normal(-3, 1, (20, 4))]
    Y2 = np.c_[np.arange(40) < 20, rng.random(40) < 0.5]
    score = moad(X2, Y2)
    assert score[0] > 1.0 > abs(score[1])
