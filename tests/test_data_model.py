"""The features Dataset: layout, exact netCDF round trip, fingerprints, atomic writes."""

import numpy as np
import pytest
import xarray as xr
from ase.build import bulk, fcc111, molecule

from latentatlas import io
from latentatlas.dataset import FeatureError, add_feature_set, empty_features, feature_arrays, frames_from_features
from latentatlas.frames import fingerprint, read_frames


@pytest.fixture
def frames():
    slab = fcc111("Pt", size=(2, 2, 3), vacuum=8.0)
    slab.info["subset"] = "surface"
    water = molecule("H2O")
    water.info["subset"] = "molecule"
    return [bulk("NaCl", "rocksalt", a=5.64), slab, water]


@pytest.fixture
def features(frames):
    ds = empty_features(frames)
    rng = np.random.default_rng(0)
    ds = add_feature_set(ds, rng.standard_normal((ds.sizes["atom"], 8)), model="chgnet-0.3.0", layer="conv1",
                         model_version="0.3.0", backend="chgnet")
    return add_feature_set(ds, rng.standard_normal((ds.sizes["atom"], 3)).astype(np.float32), model="soap", layer="last")


def test_layout(features, frames):
    assert features.sizes["atom"] == sum(len(a) for a in frames)
    assert features.sizes["structure"] == 3
    assert list(features.subset.values) == ["all", "surface", "molecule"]
    assert list(features.n_atoms.values) == [2, 12, 3]
    np.testing.assert_array_equal(features.atom_structure.values, np.repeat([0, 1, 2], [2, 12, 3]))
    np.testing.assert_array_equal(features.species.values[:2], [11, 17])
    var = features["chgnet-0.3.0:conv1"]
    assert var.dims == ("atom", "chgnet-0.3.0:conv1:feature")
    assert var.attrs["model"] == "chgnet-0.3.0" and var.attrs["layer"] == "conv1"
    assert features.attrs["fingerprint"] == fingerprint(frames)


def test_exact_netcdf_round_trip(features, frames, tmp_path):
    path = io.save(features, tmp_path / "features.nc")
    back = io.load(path, frames=frames)
    xr.testing.assert_identical(back, features)
    assert back["soap:last"].dtype == np.float32
    assert fingerprint(frames_from_features(back)) == features.attrs["fingerprint"]


def test_fingerprint_mismatch_is_an_error(features, frames, tmp_path):
    io.save(features, tmp_path / "features.nc")
    moved = [a.copy() for a in frames]
    moved[2].positions[0, 0] += 1e-6
    with pytest.raises(io.FingerprintMismatchError, match="recompute the features"):
        io.load(tmp_path / "features.nc", frames=moved)


def test_failed_write_leaves_previous_file_and_no_temp(features, tmp_path):
    path = io.save(features, tmp_path / "features.nc")
    before = path.read_bytes()
    bad = features.copy()
    bad.attrs["unserialisable"] = {"a": 1}  # netCDF cannot store a dict attribute
    with pytest.raises(Exception):
        io.save(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["features.nc"]


def test_load_explains_unreadable_files(tmp_path):
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(ValueError, match="not a readable netCDF file"):
        io.load(tmp_path / "junk.nc")
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "missing.nc")


def test_feature_set_validation(frames):
    ds = empty_features(frames)
    with pytest.raises(FeatureError, match="has 5 rows but the dataset has 17 atoms"):
        add_feature_set(ds, np.zeros((5, 2)), model="m", layer="l")
    ds = add_feature_set(ds, np.ones((17, 2)), model="m", layer="l")
    ds["m:l"][3, 1] = np.inf
    with pytest.raises(FeatureError, match="'m:l' has 1 NaN/inf values in 1 samples \\(first: \\[3\\]\\)"):
        feature_arrays(ds)


def test_read_frames_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_frames([tmp_path / "nope.xyz"])
    (tmp_path / "bad.cif").write_text("garbage\n")
    with pytest.raises(ValueError, match="ase could not read"):
        read_frames([tmp_path / "bad.cif"])
