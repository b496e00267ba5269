"""Vectorised concept probes against scikit-learn's liblinear, one fit at a time."""

import numpy as np
import pytest
from scipy.stats import false_discovery_control
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from latentatlas.concepts import LinearProbes, balanced_accuracy, benjamini_hochberg, moad
from latentatlas.concepts import probes as probes_module


def _layers(seed=0, n=300):
    """Two layers of different widths and three binary concepts of different prevalence."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    a = np.c_[latent @ rng.normal(size=(3, 5)), rng.normal(size=(n, 2))] * rng.uniform(0.5, 4, 7)
    b = np.maximum(latent @ rng.normal(size=(3, 12)) + rng.normal(size=(n, 12)), 0) + 3.0
    Y = np.c_[latent[:, 0] > 0, latent[:, 1] + 0.5 * rng.normal(size=n) > 0.8, latent[:, 2] < -1.0]
    return {"a": a, "b": b}, Y


def _liblinear(Z, y, tol=1e-4):
    """The reference probe of one (layer, concept): BAGEL's scikit-learn estimator."""
    return LogisticRegression(solver="liblinear", class_weight="balanced", C=0.1, tol=tol).fit(Z, y)


def _objective(Z, y, coef, intercept, C=0.1):
    """liblinear's objective: intercept penalised like a weight, balanced weights times C."""
    weight = np.where(y, len(y) / (2 * y.sum()), len(y) / (2 * (~y).sum()))
    logits = Z @ coef + intercept
    return 0.5 * (coef @ coef + intercept**2) + C * weight @ np.logaddexp(0, np.where(y, -logits, logits))


def _check_against_liblinear(X, Y, probes):
    for i, (name, values) in enumerate(X.items()):
        std = values.std(0)
        Z = (values - values.mean(0)) / np.where(std > 0, std, 1)
        width = values.shape[1]
        assert np.all(probes.coef_[i, width:] == 0)
        proba = probes.predict_proba(X)[i]
        for k in range(Y.shape[1]):
            ref = _liblinear(Z, Y[:, k], tol=1e-10)
            coef, intercept = probes.coef_[i, :width, k], probes.intercept_[i, k]
            np.testing.assert_allclose(coef, ref.coef_[0], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(intercept, ref.intercept_[0], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(proba[:, k], ref.predict_proba(Z)[:, 1], atol=1e-7)
            # both minimise the same objective: ours is not worse than liblinear's
            ours, theirs = _objective(Z, Y[:, k], coef, intercept), _objective(Z, Y[:, k], ref.coef_[0], ref.intercept_[0])
            assert ours <= theirs * (1 + 1e-12)


def test_matches_liblinear_per_layer_and_concept():
    X, Y = _layers()
    _check_against_liblinear(X, Y, LinearProbes(C=0.1, tol=1e-9).fit(X, Y))


def test_rank_deficient_layers_match_liblinear():
    # more features than samples, and exactly dependent columns: the probes drop the null
    # directions of the activations, which must not move the optimum
    X, Y = _layers(seed=4, n=60)
    rng = np.random.default_rng(4)
    X["wide"] = np.c_[X["b"], X["b"] @ rng.normal(size=(12, 70)), X["a"][:, :3]]
    X["copy"] = np.c_[X["a"], X["a"]]
    probes = LinearProbes(C=0.1, tol=1e-9).fit(X, Y)
    assert probes.rank_.tolist() == [6, 13, 16, 6]  # independent directions + constant ("a" spans 3 + 2)
    _check_against_liblinear(X, Y, probes)


def test_default_tolerance_predicts_like_liblinear_default():
    X, Y = _layers(seed=5, n=400)
    train, test = slice(0, 200), slice(200, None)
    probes = LinearProbes().fit({k: v[train] for k, v in X.items()}, Y[train])
    pred = probes.decision_function({k: v[test] for k, v in X.items()}) > 0
    for i, values in enumerate(X.values()):
        mean, std = values[train].mean(0), values[train].std(0)
        for k in range(Y.shape[1]):
            ref = _liblinear((values[train] - mean) / std, Y[train, k])
            assert (pred[i, :, k] == ref.predict((values[test] - mean) / std)).mean() >= 0.99


def test_column_chunks_give_the_same_probes(monkeypatch):
    X, Y = _layers(seed=7)
    Y = np.c_[Y, ~Y[:, :2]]
    whole = LinearProbes(tol=1e-8).fit(X, Y)
    # 2 layers x 300 samples x 2 columns: three chunks, the last one narrower
    monkeypatch.setattr(probes_module, "_CHUNK_ELEMENTS", 2 * 300 * 2)
    chunked = LinearProbes(tol=1e-8).fit(X, Y)
    np.testing.assert_allclose(chunked.coef_, whole.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(chunked.intercept_, whole.intercept_, rtol=1e-6, atol=1e-9)


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


def test_warns_when_not_converged():
    X, Y = _layers(seed=6)
    with pytest.warns(RuntimeWarning, match=r"6 probe\(s\) not converged after max_iter=1"):
        LinearProbes(max_iter=1).fit(X, Y)


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


def test_a_scikit_learn_estimator_in_a_pipeline():
    from sklearn.base import clone
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline

    X, Y = _layers()
    probes = LinearProbes(C=0.5, tol=1e-8)
    copy = clone(probes).set_params(max_iter=50)
    assert copy.get_params() == {"C": 0.5, "tol": 1e-8, "max_iter": 50} and probes.max_iter == 100
    pipe = make_pipeline(PCA(n_components=4), LinearProbes(tol=1e-8)).fit(X["b"], Y)
    reduced = PCA(n_components=4).fit_transform(X["b"])
    alone = LinearProbes(tol=1e-8).fit({"X": reduced}, Y)
    np.testing.assert_allclose(pipe.predict_proba(X["b"]), alone.predict_proba({"X": reduced}), rtol=1e-12, atol=1e-12)
    assert pipe.predict_proba(X["b"]).shape == (1, len(Y), Y.shape[1])
    with pytest.raises(ValueError, match="one 2-D array"):
        LinearProbes().fit(X["b"][:, 0], Y)
