"""FRE at scale equals the in-memory engine, on a real dask cluster: streamed GFRE/GFRD, indexed LFRE."""

import warnings

import numpy as np
import pytest
import xarray as xr

from latentatlas import io
from latentatlas.dataset import FeatureError
from latentatlas.fre import fre_matrix, pointwise_fre_matrix
from latentatlas.fre.indexed import NeighbourIndex, indexed_lfre_matrix, indexed_pointwise_lfre_matrix
from latentatlas.fre._split import inner_folds
from latentatlas.fre.streamed import streamed_fre_matrix, streamed_pointwise_fre_matrix

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def _sets(n=2400, seed=0):
    """Four related feature sets of different widths, offsets and scales, all of full column rank."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 6))
    return {
        "a": base @ rng.standard_normal((6, 10)) + 0.1 * rng.standard_normal((n, 10)) + 5.0,
        "b": np.tanh(base @ rng.standard_normal((6, 7))) + 0.01 * rng.standard_normal((n, 7)),
        "c": base[:, :3] ** 2 + 0.05 * rng.standard_normal((n, 3)),
        "d": rng.standard_normal((n, 4)) * [1.0, 2.0, 3.0, 4.0] + 100.0,
    }


def _assert_equal_values(got, ref):
    # off-diagonal values to rtol 1e-8; the diagonal (X -> X) is zero up to rounding
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-8, atol=1e-12)
    assert list(got.source.values) == list(ref.source.values)


@pytest.mark.parametrize("metric, alphas", [("gfre", None), ("gfrd", [1e-6])])
def test_streamed_matrix_equals_in_memory_on_a_cluster(client, tmp_path, metric, alphas):
    sets = _sets()
    ds = xr.Dataset({k: (("atom", f"{k}:feature"), v) for k, v in sets.items()})
    io.save(ds.chunk({"atom": 500}), tmp_path / "f.zarr")
    lazy = io.load(tmp_path / "f.zarr")
    assert lazy["a"].chunks[0][0] == 500
    ref = fre_matrix(sets, metric, alphas=alphas, progress=False)
    got = streamed_fre_matrix(lazy, metric, alphas=alphas, progress=False)
    _assert_equal_values(got, ref)
    assert got.attrs["engine"] == "streamed statistics, Gram"
    qr = streamed_fre_matrix(lazy, metric, alphas=alphas, method="qr", progress=False)
    _assert_equal_values(qr, ref)
    # the chunks were read and reduced by the cluster's two worker processes
    assert len(client.scheduler_info()["workers"]) == 2


def test_streamed_pointwise_equals_in_memory_with_a_given_split(client):
    sets = _sets(900, seed=3)
    rng = np.random.default_rng(1)
    perm = rng.permutation(900)
    train, test = perm[:500], perm[500:800]  # 100 samples in neither
    ref = pointwise_fre_matrix(sets, "gfre", train_idx=train, test_idx=test, progress=False)
    got = streamed_pointwise_fre_matrix(sets, "gfre", train_idx=train, test_idx=test, chunk_rows=128, progress=False)
    order = np.argsort(test)
    np.testing.assert_array_equal(got.test_sample.values, test[order])
    np.testing.assert_allclose(got.values, ref.values[:, :, order], rtol=1e-8, atol=1e-12)


def _ill_conditioned(n, d, cond, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (Q * np.geomspace(1.0, 1.0 / cond, d)) @ V.T * np.sqrt(n)


@pytest.mark.parametrize("cond", [1e7, 1e12])
def test_ill_conditioned_sources_fall_back_to_qr_and_stay_exact(cond):
    rng = np.random.default_rng(2)
    X = _ill_conditioned(3000, 12, cond, rng)
    sets = {"x": X, "y": np.sin(X @ rng.standard_normal((12, 5))) + X[:, :5], "z": X[:, :6] @ rng.standard_normal((6, 4))}
    ref = fre_matrix(sets, "gfre", progress=False)
    with pytest.warns(UserWarning, match="recomputing the statistics by QR"):
        auto = streamed_fre_matrix(sets, "gfre", chunk_rows=700, progress=False)
    assert auto.attrs["engine"] == "streamed statistics, QR"
    _assert_equal_values(auto, ref)
    with pytest.warns(UserWarning, match="cannot resolve"):
        gram = streamed_fre_matrix(sets, "gfre", chunk_rows=700, method="gram", progress=False)
    if cond > 1e10:  # x's smallest singular values are below sqrt(eps): XᵀX has lost them
        big = ref.values > 1e-10
        assert np.max(np.abs(gram.values - ref.values)[big] / ref.values[big]) > 1e-8


def test_well_conditioned_sets_take_the_gram_route_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = streamed_fre_matrix(_sets(600), "gfre", chunk_rows=100, progress=False)
    assert got.attrs["engine"] == "streamed statistics, Gram"


def test_grouped_inner_cv_equals_in_memory():
    sets = _sets(400)
    structure = np.repeat(np.arange(80), 5)
    train, test = np.arange(0, 200), np.arange(200, 400)
    kwargs = dict(train_idx=train, test_idx=test, cv="grouped", groups=structure, progress=False)
    got = streamed_pointwise_fre_matrix(sets, "gfre", chunk_rows=64, **kwargs)
    ref = pointwise_fre_matrix(sets, "gfre", **kwargs)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(got.alpha_index.values, ref.alpha_index.values)
    np.testing.assert_array_equal(got.cutoff_at_edge.values, ref.cutoff_at_edge.values)
    assert got.attrs["cv"] == "grouped"
    # the same folds given explicitly
    folds = inner_folds(200, "grouped", structure[train])
    by_folds = streamed_fre_matrix(sets, train_idx=train, test_idx=test, folds=folds, progress=False)
    np.testing.assert_allclose(by_folds.values, fre_matrix(sets, **kwargs).values, rtol=1e-8, atol=1e-12)


def test_bad_input_is_named():
    sets = _sets(200)
    sets["b"] = sets["b"].copy()
    sets["b"][7, 2] = np.nan
    with pytest.raises(FeatureError, match="'b' has NaN"):
        streamed_fre_matrix(sets, progress=False)
    with pytest.raises(ValueError, match="distinct samples"):
        streamed_fre_matrix(_sets(200), train_idx=np.arange(120), test_idx=np.arange(100, 200), progress=False)
    with pytest.raises(ValueError, match="LFRE at scale"):
        streamed_fre_matrix(_sets(200), "lfre", progress=False)
    flat = _sets(200)
    flat["a"] = np.ones_like(flat["a"])
    with pytest.raises(FeatureError, match="zero variance"):
        streamed_fre_matrix(flat, progress=False)


def test_indexed_lfre_equals_in_memory_on_a_cluster(client, tmp_path):
    sets = {k: v for k, v in _sets(1200, seed=5).items() if k != "d"}
    ds = xr.Dataset({k: (("atom", f"{k}:feature"), v) for k, v in sets.items()})
    io.save(ds.chunk({"atom": 300}), tmp_path / "f.zarr")
    ref = pointwise_fre_matrix(sets, "lfre", n_local_points=30, progress=False)
    got = indexed_pointwise_lfre_matrix(io.load(tmp_path / "f.zarr"), n_local_points=30, chunk_size=50, progress=False)
    np.testing.assert_array_equal(got.test_atom.values, ref.test_sample.values)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-8, atol=1e-12)
    matrix = indexed_lfre_matrix(sets, n_local_points=30, progress=False)
    np.testing.assert_allclose(matrix.values, fre_matrix(sets, "lfre", n_local_points=30, progress=False).values,
                               rtol=1e-8, atol=1e-12)


def test_exact_index_finds_the_brute_force_neighbours():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((2000, 24))
    q = rng.standard_normal((50, 24))
    d2 = np.sum(X**2, axis=1) + np.sum(q**2, axis=1)[:, None] - 2 * q @ X.T
    expected = np.argsort(d2, axis=1, kind="stable")[:, :40]
    np.testing.assert_array_equal(NeighbourIndex(X).query(q, 40), expected)
    # the approximate graph search finds (nearly) the same neighbourhoods here
    approx = NeighbourIndex(X, approximate=True).query(q, 40)
    recall = np.mean([len(set(a) & set(b)) / 40 for a, b in zip(approx, expected)])
    assert recall > 0.9


def test_compare_and_cumulants_work_on_a_zarr_store(client, tmp_path):
    from _toy import toy_features, toy_frames

    from latentatlas.compare import compare
    from latentatlas.cumulants import structure_features
    from latentatlas.dataset import add_feature_set

    ds = toy_features(toy_frames())
    ds = add_feature_set(ds, (ds["a:x"].values[:, :3] ** 2).astype(np.float32), model="c", layer="z")
    io.save(ds.chunk({"atom": 50}), tmp_path / "f.zarr")  # chunks cut through structures
    lazy = io.load(tmp_path / "f.zarr")

    # cumulants: lazy, one task per chunk of whole structures, equal to the in-memory ones
    phi = structure_features(lazy, 3)
    assert phi["a:x:phi3"].chunks is not None
    xr.testing.assert_allclose(phi.compute(), structure_features(ds, 3), rtol=1e-12, atol=1e-12)

    # compare: streamed GFRE/GFRD and indexed LFRE give the in-memory comparison
    for cv in ("grouped", "skmatter"):
        kwargs = dict(metrics=("gfre", "lfre"), n_splits=2, n_local_points=20, progress=False, cv=cv)
        got, ref = compare(lazy, **kwargs), compare(ds, **kwargs)
        assert sorted(got.data_vars) == sorted(ref.data_vars)
        for var in ref.data_vars:
            if ref[var].dtype.kind == "f":
                np.testing.assert_allclose(got[var].values, ref[var].values, rtol=1e-8, atol=1e-10, err_msg=f"{cv} {var}")
            else:
                np.testing.assert_array_equal(got[var].values, ref[var].values, err_msg=f"{cv} {var}")
        assert got.gfre_pointwise.dims == ref.gfre_pointwise.dims
    structure_level = compare(phi, metrics=("gfre",), n_splits=2, progress=False)
    np.testing.assert_allclose(structure_level.gfre.values,
                               compare(phi.compute(), metrics=("gfre",), n_splits=2, progress=False).gfre.values,
                               rtol=1e-8, atol=1e-12)
    # the coordinates describing each split's fits come along
    pointwise = indexed_pointwise_lfre_matrix(lazy, n_local_points=20, progress=False, cv="grouped")
    ref = pointwise_fre_matrix(ds, "lfre", n_local_points=20, progress=False, cv="grouped")
    np.testing.assert_array_equal(pointwise.alpha_index.values, ref.alpha_index.values)
    np.testing.assert_array_equal(pointwise.cutoff_at_edge.values, ref.cutoff_at_edge.values)
