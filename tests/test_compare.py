"""The comparison Dataset and the `latentatlas fre` command."""

import numpy as np
import pytest
import xarray as xr

from _toy import toy_features, toy_frames
from latentatlas import fre, io
from latentatlas.cli import main
from latentatlas.compare import compare, structure_split


@pytest.fixture(scope="module")
def features():
    return toy_features(toy_frames())


def test_structure_split_keeps_structures_whole_and_stratifies(features):
    train, test = structure_split(features)
    owner = features.atom_structure.values
    assert not set(owner[train]) & set(owner[test])
    assert len(train) + len(test) == features.sizes["atom"]
    test_structures = np.unique(owner[test])
    subsets = features.subset.values[test_structures]
    assert (subsets == "bulk").sum() == (subsets == "molecule").sum() == 12


def test_compare_layout_and_values(features):
    result = compare(features, metrics=("gfre", "lfre"), n_splits=3, n_local_points=30, progress=False)
    assert result.gfre.dims == ("source", "target") and result.gfre_std.dims == ("source", "target")
    assert result.gfre_pointwise.dims == ("source", "target", "test_atom")
    assert result.pca.dims == ("source", "atom", "pc")
    assert "positions" in result.coords and result.attrs["fingerprint"] == features.attrs["fingerprint"]
    # The mean over splits is the mean of independent fre_matrix runs on those splits.
    values = []
    for split in range(3):
        train, test = structure_split(features, seed=fre.DEFAULT_SEED + split)
        values.append(fre.fre_matrix(features, "gfre", train_idx=train, test_idx=test, seed=fre.DEFAULT_SEED + split,
                                     cv="grouped", groups=features.atom_structure.values, progress=False).values)
    np.testing.assert_allclose(result.gfre.values, np.mean(values, axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(result.gfre_std.values, np.std(values, axis=0, ddof=1), rtol=1e-9, atol=1e-14)
    assert 0 < result.gfre.sel(source="a:x", target="b:y") < result.gfre.sel(source="b:y", target="a:x")


def test_cli_fre_prints_and_writes(features, tmp_path, capsys):
    io.save(features, tmp_path / "features.nc")
    assert main(["fre", str(tmp_path / "features.nc"), "--splits", "2", "--out", str(tmp_path / "cmp.nc")]) == 0
    out = capsys.readouterr().out
    assert "GFRE (row: source, column: target)" in out and "a:x" in out and "±" in out
    saved = io.load(tmp_path / "cmp.nc")
    assert saved.gfre.shape == (2, 2)


def test_cli_fre_structure_level(features, tmp_path, capsys):
    io.save(features, tmp_path / "features.nc")
    assert main(["fre", str(tmp_path / "features.nc"), "--splits", "2", "--cumulant-order", "2"]) == 0
    assert "a:x:phi2" in capsys.readouterr().out


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main(["fre", str(tmp_path / "missing.nc")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_compare_takes_every_measure_on_the_same_splits(features):
    from latentatlas import similarity as sim

    result = compare(features, metrics=("gfre", "cka", "procrustes", "mutual_knn", "svcca"), n_splits=2,
                     progress=False)
    assert result.attrs["metrics"] == ["gfre", "cka", "procrustes", "mknn", "svcca"]
    assert "cka_pointwise" not in result and result.mknn_pointwise.dims == ("source", "target", "test_atom")
    values = []
    for split in range(2):
        train, test = structure_split(features, seed=fre.DEFAULT_SEED + split)
        values.append(sim.linear_cka(features["a:x"].values[test], features["b:y"].values[test]))
    assert result.cka.sel(source="a:x", target="b:y").item() == pytest.approx(np.mean(values), rel=1e-12)
    assert result.cka_std.sel(source="a:x", target="b:y").item() == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    assert result.procrustes_map.dims == ("source", "axis") and result.procrustes.attrs["lower_is_better"] == 1


def test_cli_fre_other_measures(features, tmp_path, capsys):
    io.save(features, tmp_path / "features.nc")
    assert main(["fre", str(tmp_path / "features.nc"), "--splits", "2", "--metrics", "cka", "mknn",
                 "--out", str(tmp_path / "cmp.nc")]) == 0
    out = capsys.readouterr().out
    assert "CKA (row: source, column: target)" in out and "MKNN (row" in out
    assert set(io.load(tmp_path / "cmp.nc").attrs["metrics"]) == {"cka", "mknn"}
    with pytest.raises(SystemExit):
        main(["fre", str(tmp_path / "features.nc"), "--metrics", "nonsense"])
