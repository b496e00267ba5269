"""Features from anywhere: per-atom arrays in extxyz files and .npz files become features Datasets."""

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule

from latentatlas.cli import main
from latentatlas.dataset import FeatureError
from latentatlas.features.external import arrays_from_frames, arrays_from_npz, import_features
from latentatlas.frames import fingerprint, read_frames
from latentatlas.io import load


def frames_with_arrays():
    rng = np.random.default_rng(0)
    frames = [molecule("CH4"), bulk("NaCl", "rocksalt", a=5.64), molecule("H2O")]
    for atoms in frames:
        atoms.arrays["soap"] = rng.normal(size=(len(atoms), 4))
        atoms.arrays["charge_like"] = rng.normal(size=len(atoms))
    return frames


def test_extxyz_arrays_round_trip_to_features(tmp_path):
    frames = frames_with_arrays()
    ase.io.write(tmp_path / "s.xyz", frames, format="extxyz")
    read = read_frames([tmp_path / "s.xyz"])
    ds = import_features(read, arrays_from_frames(read), model="my-code")
    assert set(ds.data_vars) == {"my-code:soap", "my-code:charge_like"}
    np.testing.assert_allclose(ds["my-code:soap"].values, np.concatenate([a.arrays["soap"] for a in frames]))
    assert ds["my-code:charge_like"].shape == (10, 1)
    assert ds.attrs["fingerprint"] == fingerprint(read)
    assert ds["my-code:soap"].attrs["backend"] == "import"


def test_npz_rows_follow_atoms_and_fingerprint_matches_a_model(tmp_path):
    frames = frames_with_arrays()
    X = np.arange(10 * 3, dtype=float).reshape(10, 3)
    np.savez(tmp_path / "f.npz", desc=X)
    ds = import_features(frames, arrays_from_npz(tmp_path / "f.npz"), model="ext")
    np.testing.assert_array_equal(ds["ext:desc"].values, X)
    assert list(ds["atom_structure"].values) == [0] * 5 + [1] * 2 + [2] * 3
    np.testing.assert_array_equal(ds["species"].values, np.concatenate([a.numbers for a in frames]))
    assert ds.attrs["fingerprint"] == fingerprint(frames)


def test_atom_count_mismatch_is_a_clear_error():
    frames = frames_with_arrays()
    with pytest.raises(FeatureError, match="9 rows but the 3 structures have 10 atoms"):
        import_features(frames, {"x": np.zeros((9, 2))}, model="ext")


def test_nan_is_located(tmp_path):
    frames = frames_with_arrays()
    X = np.zeros((10, 2))
    X[6, 1] = np.inf  # structure #1 (NaCl), its second atom
    with pytest.raises(FeatureError, match=r"NaN/inf values in 1 atoms \(first: atom 1 of structure #1, ClNa\)"):
        import_features(frames, {"x": X}, model="ext")


def test_missing_or_bad_arrays_are_clear_errors(tmp_path):
    frames = frames_with_arrays()
    del frames[2].arrays["soap"]
    with pytest.raises(KeyError, match="structure #2 has no per-atom array 'soap'"):
        arrays_from_frames(frames, ["soap"])
    with pytest.raises(ValueError, match="carry no per-atom feature arrays"):
        arrays_from_frames([molecule("CH4")])
    np.savez(tmp_path / "s.npz", names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match="features must be real numbers"):
        arrays_from_npz(tmp_path / "s.npz")
    with pytest.raises(FileNotFoundError):
        arrays_from_npz(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="contain no ':' or '/'"):
        import_features(frames, {"a:b": np.zeros((10, 1))}, model="ext")


def test_cli_import_npz_and_extxyz(tmp_path, capsys):
    frames = frames_with_arrays()
    ase.io.write(tmp_path / "s.xyz", frames, format="extxyz")
    np.savez(tmp_path / "f.npz", desc=np.ones((10, 2)), other=np.zeros((10, 1)))
    assert main(["import", str(tmp_path / "s.xyz"), "--npz", str(tmp_path / "f.npz"), "--arrays", "desc", "-m", "ext", "-o", str(tmp_path / "a.nc")]) == 0
    assert list(load(tmp_path / "a.nc").data_vars) == ["ext:desc"]
    assert main(["import", str(tmp_path / "s.xyz"), "--arrays", "soap", "-m", "ext", "-o", str(tmp_path / "b.nc")]) == 0
    assert load(tmp_path / "b.nc")["ext:soap"].shape == (10, 4)
    np.savez(tmp_path / "bad.npz", desc=np.ones((7, 2)))
    assert main(["import", str(tmp_path / "s.xyz"), "--npz", str(tmp_path / "bad.npz"), "-m", "ext", "-o", str(tmp_path / "c.nc")]) == 2
    assert "7 rows but the 3 structures have 10 atoms" in capsys.readouterr().err
    assert not (tmp_path / "c.nc").exists()
