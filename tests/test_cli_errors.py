"""The command line on user mistakes: one clear line and status 2, checked before any work, inputs never overwritten."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule

from latentatlas import io
from latentatlas.cli import main
from latentatlas.cli._checks import user_error
from latentatlas.dataset import add_feature_set, empty_features

CIF_WITH_COINCIDENT_ATOMS = """data_test
_cell_length_a 5.0
_cell_length_b 5.0
_cell_length_c 5.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1 Na 0.0 0.0 0.0
Cl1 Cl 0.5 0.5 0.5
Cl2 Cl 0.5 0.5 0.5
"""


@pytest.fixture
def frames():
    return [bulk("Si", cubic=True), molecule("CH4"), bulk("NaCl", "rocksalt", a=5.64)]


@pytest.fixture
def features_file(frames, tmp_path):
    """A features file with two feature sets."""
    ds = empty_features(frames)
    rng = np.random.default_rng(0)
    for layer in ("a", "b"):
        ds = add_feature_set(ds, rng.standard_normal((ds.sizes["atom"], 4)), model="m", layer=layer)
    return io.save(ds, tmp_path / "features.nc")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _one_line_error(capsys, *expected):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for text in expected:
        assert text in err, err
    return err


def test_featurize_refuses_to_overwrite_its_structure_file(frames, tmp_path, capsys):
    victim = tmp_path / "victim.extxyz"
    ase.io.write(victim, frames)
    before = victim.read_bytes()
    assert main(["featurize", str(victim), "-m", "soap", "-o", str(victim), "-q"]) == 2
    _one_line_error(capsys, "is also an input")
    assert victim.read_bytes() == before


def test_featurize_and_import_refuse_to_overwrite_a_model_or_array_file(frames, tmp_path, capsys):
    model = tmp_path / "pet.pt"
    model.write_bytes((Path(__file__).parent / "data" / "metatomic" / "pet.pt").read_bytes())
    before = model.read_bytes()
    assert main(["featurize", "--builtin", "--small", "-m", str(model), "-o", str(model), "-q"]) == 2
    _one_line_error(capsys, "is also an input")
    structures = tmp_path / "s.extxyz"
    ase.io.write(structures, frames)
    arrays = tmp_path / "f.npz"
    np.savez(arrays, x=np.zeros((sum(len(a) for a in frames), 2)))
    assert main(["import", str(structures), "--npz", str(arrays), "-m", "x", "-o", str(arrays)]) == 2
    _one_line_error(capsys, "is also an input")
    assert model.read_bytes() == before


def test_fre_refuses_to_overwrite_its_features(features_file, capsys):
    before = features_file.read_bytes()
    assert main(["fre", str(features_file), "--splits", "1", "--out", str(features_file)]) == 2
    _one_line_error(capsys, "is also an input")
    # the same file by another spelling
    other = features_file.parent / "." / features_file.name
    assert main(["fre", str(other), "--splits", "1", "--out", str(features_file)]) == 2
    assert features_file.read_bytes() == before


def test_concepts_and_export_refuse_to_overwrite_their_input(features_file, capsys):
    assert main(["concepts", "--features", str(features_file), "--out", str(features_file)]) == 2
    _one_line_error(capsys, "--out", "is also an input")
    assert main(["export", str(features_file), "--html", str(features_file)]) == 2
    _one_line_error(capsys, "--html", "is also an input")


def test_output_is_checked_before_any_work(tmp_path, cache, capsys):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert main(["featurize", "--builtin", "--small", "-m", "soap", "-o", str(folder)]) == 2
    _one_line_error(capsys, "is a folder")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["featurize", "--builtin", "--small", "-m", "soap", "-o", str(blocker / "sub" / "f.nc")]) == 2
    _one_line_error(capsys, "is a file, so the folder")
    assert not cache.exists()  # nothing was featurised (results are cached as they are computed)
    assert main(["reproduce", "--quick", "--out", str(blocker)]) == 2
    _one_line_error(capsys, "give a folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder(features_file, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["fre", str(features_file), "--splits", "1", "--out", str(locked / "c.nc")]) == 2
        _one_line_error(capsys, "no permission to write")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    "args",
    [
        ["featurize", "--builtin", "-m", "soap", "-o", "f.nc", "--threads", "0"],
        ["featurize", "--builtin", "-m", "soap", "-o", "f.nc", "--batch-size", "0"],
        ["fre", "f.nc", "--cumulant-order", "0"],
        ["fre", "f.nc", "--splits", "-1"],
        ["serve", "--port", "70000"],
        ["concepts", "--demo", "shapes", "--out", "r.nc", "--test-fraction", "1.5"],
        ["reproduce", "--threads", "0"],
    ],
)
def test_invalid_numbers_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    assert "out of range" in capsys.readouterr().err


def test_fre_needs_two_feature_sets(frames, tmp_path, capsys):
    ds = add_feature_set(empty_features(frames), np.ones((sum(map(len, frames)), 3)), model="m", layer="only")
    path = io.save(ds, tmp_path / "one.nc")
    assert main(["fre", str(path)]) == 2
    _one_line_error(capsys, "has 1 (['m:only'])", "more models")


def test_a_file_whose_atoms_ase_merges_is_refused(tmp_path, capsys):
    cif = tmp_path / "coincident.cif"
    cif.write_text(CIF_WITH_COINCIDENT_ATOMS)
    assert main(["featurize", str(cif), "-m", "soap", "-o", str(tmp_path / "f.nc"), "-q"]) == 2
    _one_line_error(capsys, "lists atoms at the same position", "sites 1 and 2")
    assert not (tmp_path / "f.nc").exists()


def test_unreadable_input_is_one_line(tmp_path, capsys):
    assert main(["fre", str(tmp_path)]) == 2  # a folder, not a netCDF file
    _one_line_error(capsys, "is not a readable netCDF file")


def test_port_in_use(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    _one_line_error(capsys, f"port {port} on 127.0.0.1 is already in use", "--port")


def test_missing_optional_package_names_the_extra():
    """panel made unimportable in a real child process: the message is the install hint."""
    code = "import sys; sys.modules['panel'] = None; from latentatlas.cli import main; sys.exit(main(['serve', '--port', '0']))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "pip install 'latentatlas[app]'" in run.stderr


def test_debug_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.nc")
    for argv in (["--debug", "fre", missing], ["fre", missing, "--debug"]):
        with pytest.raises(FileNotFoundError):
            main(argv)


def test_bugs_keep_their_traceback():
    assert user_error(TypeError("unsupported operand")) is None
    assert user_error(PermissionError(13, "Permission denied", "/x")) == "Permission denied: /x"


def test_python_dash_m():
    run = subprocess.run([sys.executable, "-m", "latentatlas", "--version"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("latentatlas ")
