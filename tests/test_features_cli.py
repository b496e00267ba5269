"""``latentatlas featurize`` end to end on real files and the real SOAP/CHGNet backends."""

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule

from latentatlas.cli import main
from latentatlas.io import load

pytest.importorskip("featomic")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path / "cache"))


def test_files_to_features(tmp_path, capsys):
    frames = [bulk("Si", cubic=True), molecule("CH4")]
    ase.io.write(tmp_path / "a.extxyz", frames)
    ase.io.write(tmp_path / "b.cif", bulk("NaCl", "rocksalt", a=5.64))
    out = tmp_path / "f.nc"
    rc = main(["featurize", str(tmp_path / "a.extxyz"), str(tmp_path / "b.cif"), "-m", "soap", "-o", str(out), "-q"])
    assert rc == 0 and "wrote 1 feature sets for 3 structures (15 atoms)" in capsys.readouterr().out
    ds = load(out, frames=[*ase.io.read(tmp_path / "a.extxyz", ":"), ase.io.read(tmp_path / "b.cif")])
    assert ds["soap:power_spectrum"].shape[0] == 15


def test_builtin_with_two_models_and_layer_selection(tmp_path):
    out = tmp_path / "f.nc"
    args = ["featurize", "--builtin", "--small", "-m", "soap", "-m", "chgnet-0.3.0", "--layers", "last", "power_spectrum"]
    assert main([*args, "-o", str(out), "-q"]) == 0
    ds = load(out)
    assert sorted(ds.data_vars) == ["chgnet-0.3.0:last", "soap:power_spectrum"]
    assert ds.sizes["structure"] == 52 and np.isfinite(ds["chgnet-0.3.0:last"].values).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["-m", "nope", "--builtin"], "unknown featurizer 'nope'"),
        (["-m", "soap"], "give structure FILES or --builtin"),
        (["-m", "soap", "/no/such/file.xyz"], "does not exist"),
        (["-m", "soap", "--builtin", "--small", "--layers", "conv9"], "no model has layers"),
    ],
)
def test_errors_are_clear_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "f.nc"
    assert main(["featurize", *args, "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unreadable_and_empty_files(tmp_path, capsys):
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not a structure\n")
    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    for path in (bad, empty):
        assert main(["featurize", str(path), "-m", "soap", "-o", str(tmp_path / "f.nc")]) == 2
        assert str(path) in capsys.readouterr().err
    assert not (tmp_path / "f.nc").exists()
