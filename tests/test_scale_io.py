"""Zarr storage: lazy, chunked along atom, same attrs and fingerprint as netCDF, atomic."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from ase.build import bulk, fcc111, molecule

from latentatlas import io
from latentatlas.dataset import add_feature_set, empty_features


@pytest.fixture
def frames():
    slab = fcc111("Pt", size=(2, 2, 3), vacuum=8.0)
    slab.info["subset"] = "surface"
    return [bulk("NaCl", "rocksalt", a=5.64), slab, molecule("H2O")]


@pytest.fixture
def features(frames):
    ds = empty_features(frames)
    rng = np.random.default_rng(0)
    ds = add_feature_set(ds, rng.standard_normal((ds.sizes["atom"], 8)), model="chgnet-0.3.0", layer="conv1",
                         model_version="0.3.0", backend="chgnet")
    ds = add_feature_set(ds, rng.standard_normal((ds.sizes["atom"], 3)).astype(np.float32), model="soap", layer="last")
    ds.attrs["skipped_frames"] = np.array([4, 7])
    return ds


def test_zarr_round_trip_is_lazy_chunked_and_identical(features, frames, tmp_path, monkeypatch):
    monkeypatch.setattr(io, "ZARR_CHUNK_ATOMS", 5)
    path = io.save(features, tmp_path / "features.zarr")
    assert path.is_dir()
    back = io.load(path, frames=frames)
    for name in features.data_vars:
        assert isinstance(back[name].data, da.Array), "features must load lazily"
        assert back[name].chunks[0] == (5, 5, 5, 2), "one chunk per 5 atoms"
        assert back[name].dtype == features[name].dtype
    xr.testing.assert_identical(back.compute(), features)
    np.testing.assert_array_equal(back.attrs["skipped_frames"], [4, 7])
    # zarr and netCDF give the same Dataset
    xr.testing.assert_identical(back.compute(), io.load(io.save(features, tmp_path / "features.nc")))


def test_zarr_fingerprint_is_checked(features, frames, tmp_path):
    io.save(features, tmp_path / "f.zarr")
    with pytest.raises(io.FingerprintMismatchError):
        io.load(tmp_path / "f.zarr", frames=frames[:2])


def test_zarr_overwrite_replaces_whole_store_and_leaves_no_temp(features, tmp_path):
    path = tmp_path / "f.zarr"
    io.save(features, path)
    io.save(features[["soap:last"]], path)
    assert list(io.load(path).data_vars) == ["soap:last"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr"]


def test_zarr_and_netcdf_saves_create_missing_folders(features, tmp_path):
    for name in ("f.nc", "f.zarr"):
        path = io.save(features, tmp_path / "new" / name.split(".")[1] / name)
        xr.testing.assert_identical(io.load(path).compute(), io.load(tmp_path / "new" / "nc" / "f.nc"))


def test_failed_zarr_write_keeps_previous_store(features, tmp_path):
    path = tmp_path / "f.zarr"
    io.save(features, path)
    bad = features.copy()
    bad["broken"] = xr.DataArray(da.from_delayed(_explode(), shape=(3,), dtype=float), dims="x")
    with pytest.raises(RuntimeError, match="boom"):
        io.save(bad, path)
    xr.testing.assert_identical(io.load(path).compute(), features)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr"]


def _explode():
    import dask

    @dask.delayed
    def fail():
        raise RuntimeError("boom")

    return fail()


def test_unreadable_zarr_is_a_clear_error(tmp_path):
    (tmp_path / "x.zarr").mkdir()
    with pytest.raises(ValueError, match="not a readable zarr store"):
        io.load(tmp_path / "x.zarr")


def test_dashboard_and_fre_cli_open_zarr_stores(tmp_path):
    from _toy import toy_features, toy_frames

    from latentatlas.cli import main
    from latentatlas.cli.serve import levels_from_results, split_results

    ds = toy_features(toy_frames())
    io.save(ds.chunk({"atom": 16}), tmp_path / "features.zarr")

    # on a local cluster of one worker process, as on a remote scheduler with --scheduler
    assert main(["fre", str(tmp_path / "features.zarr"), "--splits", "2", "--out", str(tmp_path / "cmp.zarr"), "--workers", "1"]) == 0
    in_memory = tmp_path / "cmp.nc"
    io.save(ds, tmp_path / "features.nc")
    assert main(["fre", str(tmp_path / "features.nc"), "--splits", "2", "--out", str(in_memory)]) == 0
    stored = io.load(tmp_path / "cmp.zarr")
    np.testing.assert_allclose(stored.gfre.values, io.load(in_memory).gfre.values, rtol=1e-8, atol=1e-12)

    # the dashboard reads a zarr comparison once into memory, and compares a zarr features store on loading
    comparisons, concepts = split_results([tmp_path / "cmp.zarr", tmp_path / "features.zarr"])
    assert concepts is None
    levels = list(levels_from_results(comparisons).values())
    assert len(levels) == 2
    for level in levels:
        assert level["gfre_pointwise"].chunks is None and level["pca"].chunks is None
    np.testing.assert_allclose(levels[0].gfre.values, stored.gfre.values, rtol=1e-8, atol=1e-12)
    in_memory_level = next(iter(levels_from_results([("features.nc", ds)]).values()))
    for metric in ("gfre", "gfrd", "lfre"):
        np.testing.assert_allclose(levels[1][metric].values, in_memory_level[metric].values, rtol=1e-8, atol=1e-12)
