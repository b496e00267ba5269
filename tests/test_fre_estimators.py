"""GlobalFRE and LocalFRE: scikit-learn estimators equal to the FRE measures of the same split."""

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

from latentatlas import fre
from latentatlas.fre import GlobalFRE, LocalFRE


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((160, 4))
    X = np.hstack([latent, latent[:, :2] ** 2]) + 0.01 * rng.standard_normal((160, 6))
    Y = np.tanh(latent @ rng.standard_normal((4, 5))) + 0.05 * rng.standard_normal((160, 5))
    groups = np.repeat(np.arange(40), 4)
    return X, Y, groups, *fre.default_split(len(X))


@pytest.mark.parametrize("estimator", [GlobalFRE(), LocalFRE(n_local_points=10)], ids=["global", "local"])
def test_passes_scikit_learns_estimator_checks(estimator):
    check_estimator(estimator)


@pytest.mark.parametrize("cv", ["skmatter", "grouped"])
def test_global_estimator_equals_gfre_and_gfrd_of_the_split(data, cv):
    X, Y, groups, train, test = data
    est = GlobalFRE(cv=cv).fit(X[train], Y[train], groups=groups[train])
    kwargs = dict(train_idx=train, test_idx=test, cv=cv, groups=groups)
    np.testing.assert_array_equal(est.pointwise_error(X[test], Y[test]), fre.pointwise_gfre(X, Y, **kwargs))
    assert -est.score(X[test], Y[test]) == fre.gfre(X, Y, **kwargs)
    np.testing.assert_array_equal(est.pointwise_distortion(X[test]), fre.pointwise_gfrd(X, Y, **kwargs))
    matrix = fre.pointwise_fre_matrix({"x": X, "y": Y}, "gfre", train_idx=train, test_idx=test, cv=cv, groups=groups,
                                      progress=False)
    cell = matrix.sel(source="x", target="y")
    # the matrix takes the training rows in fold order: equal to rounding, as its cells to gfre
    np.testing.assert_allclose(est.pointwise_error(X[test], Y[test]), cell.values, rtol=1e-12)
    assert est.alpha_index_ == cell.alpha_index.item() and est.cutoff_at_edge_ == cell.cutoff_at_edge.item()
    assert est.alpha_ == matrix.attrs["alphas"][est.alpha_index_]


@pytest.mark.parametrize("cv", ["skmatter", "grouped"])
def test_local_estimator_equals_lfre_of_the_split(data, cv):
    X, Y, _, train, test = data
    est = LocalFRE(n_local_points=20, cv=cv, chunk_size=16).fit(X[train], Y[train])
    kwargs = dict(train_idx=train, test_idx=test, n_local_points=20, cv=cv)
    np.testing.assert_array_equal(est.pointwise_error(X[test], Y[test]), fre.pointwise_lfre(X, Y, **kwargs))
    assert -est.score(X[test], Y[test]) == fre.lfre(X, Y, **kwargs)
    cell = fre.pointwise_fre_matrix({"x": X, "y": Y}, "lfre", progress=False, **kwargs).sel(source="x", target="y")
    np.testing.assert_array_equal(est.pointwise_error(X[test], Y[test]), cell.values)
    best, at_edge = est.cutoffs(X[test])
    np.testing.assert_array_equal(best, cell.alpha_index.values)
    np.testing.assert_array_equal(at_edge, cell.cutoff_at_edge.values)


@pytest.mark.parametrize("estimator", [GlobalFRE(), LocalFRE(n_local_points=20)], ids=["global", "local"])
def test_predict_reconstructs_the_target_in_its_units(data, estimator):
    X, Y, _, train, test = data
    est = clone(estimator).fit(X[train], 3 * Y[train] + 7)
    residual = (3 * Y[test] + 7 - est.predict(X[test])) / est.y_scale_
    np.testing.assert_allclose(np.linalg.norm(residual, axis=1), est.pointwise_error(X[test], 3 * Y[test] + 7),
                               rtol=1e-10)
    one = clone(estimator).fit(X[train], Y[train, 0])
    assert one.predict(X[test]).shape == (len(test),)


def test_grid_search_chooses_the_cutoff_with_the_smallest_held_out_gfre(data):
    X, Y, *_ = data
    grid = [1e-8, 1e-2, 0.3, 0.8]
    folds = KFold(3, shuffle=True, random_state=1)
    search = GridSearchCV(GlobalFRE(), {"alphas": grid}, cv=folds).fit(X, Y)
    expected = [np.mean([-fre.gfre(X, Y, train_idx=tr, test_idx=te, alphas=[a]) for tr, te in folds.split(X)])
                for a in grid]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected, rtol=1e-12)
    assert search.best_params_ == {"alphas": grid[int(np.argmax(expected))]}
    assert search.best_estimator_.alphas_.tolist() == [search.best_params_["alphas"]]


def test_grid_search_routes_the_groups_to_the_grouped_inner_cv(data):
    X, Y, groups, *_ = data
    grid, folds = [1e-8, 0.3], GroupKFold(4)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(GlobalFRE(cv="grouped").set_fit_request(groups=True), {"alphas": grid}, cv=folds)
        search.fit(X, Y, groups=groups)
    expected = [np.mean([-fre.gfre(X, Y, train_idx=tr, test_idx=te, alphas=[a], cv="grouped", groups=groups)
                         for tr, te in folds.split(X, Y, groups)]) for a in grid]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected, rtol=1e-12)


def test_pipeline_and_parameters(data):
    X, Y, _, train, test = data
    pipe = make_pipeline(PCA(4), LocalFRE(n_local_points=20)).set_params(localfre__alphas=[1e-6, 1e-2])
    assert pipe.get_params()["localfre__alphas"] == [1e-6, 1e-2]
    pipe.fit(X[train], Y[train])
    reduced = PCA(4).fit(X[train]).transform(X)
    expected = fre.lfre(reduced, Y, n_local_points=20, alphas=[1e-6, 1e-2], train_idx=train, test_idx=test)
    assert -pipe.score(X[test], Y[test]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("params, message", [
    ({"alphas": [1.5]}, "alphas must lie in"), ({"alphas": []}, "non-empty"), ({"cv": "random"}, "unknown cv mode"),
])
def test_bad_parameters_fail_at_fit_with_the_fix(data, params, message):
    X, Y, *_ = data
    for estimator in (GlobalFRE(**params), LocalFRE(n_local_points=10, **params)):
        with pytest.raises(ValueError, match=message):
            estimator.fit(X, Y)
    with pytest.raises(ValueError, match="needs groups"):
        GlobalFRE(cv="grouped").fit(X, Y)
