"""FRE matrices: labelled, equal to the pairwise functions, and fail clearly on bad input."""

import numpy as np
import pytest
import xarray as xr
from ase.build import bulk, molecule

from latentatlas import fre
from latentatlas.dataset import FeatureError, add_feature_set, empty_features


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    frames = [molecule("CH3CH2OH"), bulk("Si", "diamond", a=5.43) * (2, 2, 2), molecule("C6H6")] * 8
    ds = empty_features(frames)
    n = ds.sizes["atom"]
    base = rng.standard_normal((n, 6))
    ds = add_feature_set(ds, base, model="toy", layer="a")
    ds = add_feature_set(ds, np.tanh(base @ rng.standard_normal((6, 9))), model="toy", layer="b")
    ds = add_feature_set(ds, rng.standard_normal((n, 4)), model="noise", layer="c")
    return ds


@pytest.mark.parametrize("metric", ["gfre", "gfrd", "lfre"])
def test_matrix_cells_equal_pairwise_functions(features, metric):
    matrix = fre.fre_matrix(features, metric, n_local_points=30, progress=False)
    assert matrix.dims == ("source", "target")
    assert list(matrix.source.values) == list(features.data_vars)
    assert matrix.attrs["metric"] == metric and matrix.attrs["test_samples"] == "test_atom"
    function = {"gfre": fre.gfre, "gfrd": fre.gfrd, "lfre": fre.lfre}[metric]
    extra = {"n_local_points": 30} if metric == "lfre" else {}
    for source in matrix.source.values:
        for target in matrix.target.values:
            expected = function(features[source].values, features[target].values, **extra)
            assert matrix.sel(source=source, target=target).item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_pointwise_matrix_links_cells_to_test_atoms(features):
    pointwise = fre.pointwise_fre_matrix(features, "gfre", progress=False)
    train, test = fre.default_split(features.sizes["atom"])
    assert pointwise.dims == ("source", "target", "test_atom")
    np.testing.assert_array_equal(pointwise.test_atom.values, test)
    np.testing.assert_allclose(np.diagonal(pointwise.values).max(), 0, atol=1e-7)


def test_matrix_survives_netcdf(features, tmp_path):
    from latentatlas import io

    matrix = fre.fre_matrix(features, "gfre", progress=False)
    io.save(matrix, tmp_path / "m.nc")
    back = io.load(tmp_path / "m.nc")["gfre"]
    xr.testing.assert_identical(back, matrix)


def test_dict_input_and_stratified_split():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 5))
    labels = np.repeat(["bulk", "surface", "molecule"], 40)
    train, test = fre.default_split(120, stratify=labels)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 120
    assert all((labels[test] == s).sum() == 20 for s in ("bulk", "surface", "molecule"))
    m = fre.fre_matrix({"x": X, "y": X[:, :2]}, train_idx=train, test_idx=test, progress=False)
    assert m.sel(source="x", target="y") < 1e-8 < m.sel(source="y", target="x")


@pytest.mark.parametrize(
    "features, message",
    [
        ({"a": np.full((50, 3), np.nan), "b": np.ones((50, 2))}, "'a' has 150 NaN/inf"),
        ({"a": np.random.rand(50, 3), "b": np.random.rand(40, 2)}, "'b' has 40 samples but 'a' has 50"),
        ({"a": np.random.rand(50, 3), "b": np.zeros((50, 0))}, "'b' is empty"),
        ({"a": np.random.rand(50, 3), "b": np.ones((50, 2))}, "'b' has zero variance"),
        ({}, "no feature set"),
    ],
)
def test_bad_features_name_the_feature_set(features, message):
    with pytest.raises(FeatureError, match=message):
        fre.fre_matrix(features, progress=False)


def test_too_many_local_points_use_the_whole_training_set_with_a_warning():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    with pytest.warns(UserWarning, match="n_local_points=100 exceeds the 20 training samples"):
        matrix = fre.fre_matrix({"a": X, "b": Y}, "lfre", progress=False)
    assert matrix.attrs["n_local_points"] == 20
    assert matrix.sel(source="a", target="b").item() == pytest.approx(fre.lfre(X, Y, n_local_points=20), rel=1e-12)
    with pytest.raises(FeatureError, match="n_local_points=100 but the training set has 20"):
        fre.fre_matrix({"a": X, "b": X}, "lfre", progress=False, strict_local_points=True)
    with pytest.raises(FeatureError, match="n_local_points"):
        fre.lfre(X, X, n_local_points=30, strict_local_points=True)
    with pytest.raises(FeatureError, match="n_local_points=3"):
        fre.lfre(X, X, n_local_points=3)


def test_unknown_metric_and_feature_set():
    with pytest.raises(ValueError, match="unknown metric 'xyz'"):
        fre.fre_matrix({"a": np.eye(5)}, "xyz")
    with pytest.raises(KeyError, match="not found; available"):
        fre.fre_matrix({"a": np.eye(5)}, names=["b"])
