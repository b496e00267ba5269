"""Grouped inner cross-validation, diagnostics and learning curves on planted cases.

Planted data where the answer is known: a linear map plus noise, and crystal-like
structures whose atoms repeat one environment many times, where scikit-matter's random
inner folds (``cv="skmatter"``) choose a too small cut-off and blow up, and the grouped
folds recover.
"""

import numpy as np
import pytest
from ase.build import bulk

from _toy import toy_features, toy_frames
from latentatlas import fre
from latentatlas.cli import main
from latentatlas.compare import compare, learning_curve
from latentatlas.dataset import add_feature_set
from latentatlas.diagnostics import FLAGS, caveats, cell_flags, cell_marks, cell_notes
from latentatlas.fre._split import grouped_fold2, grouped_two_folds, two_folds


def _bit(name):
    return FLAGS[name][0]


@pytest.mark.parametrize("n", [4, 5, 9, 100, 101])
def test_grouped_folds_with_single_sample_groups_are_scikit_matters(n):
    for ours, theirs in zip(grouped_two_folds(np.arange(n) * 7 + 3), two_folds(n)):
        np.testing.assert_array_equal(ours, theirs)


def test_grouped_folds_keep_groups_whole_and_balanced():
    groups = np.repeat(np.arange(13), 6)[::-1]
    fold1, fold2 = grouped_two_folds(groups)
    assert not set(groups[fold1]) & set(groups[fold2])
    assert abs(len(fold1) - len(fold2)) <= 6 and len(fold1) + len(fold2) == len(groups)
    # the batched form: independent label rows, each kept whole
    labels = np.stack([np.repeat(np.arange(0, 20, 4), 4), np.arange(20)])
    in2 = grouped_fold2(labels, 20)
    assert all(len(set(in2[0][labels[0] == g])) == 1 for g in np.unique(labels[0]))
    np.testing.assert_array_equal(np.flatnonzero(in2[1]), two_folds(20)[1])
    with pytest.raises(ValueError, match="at least 2 groups"):
        grouped_two_folds(np.zeros(10))


def test_grouped_mode_without_repeats_is_bit_identical_to_skmatter_mode():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(120, 7)), rng.normal(size=(120, 5))
    for f in (fre.pointwise_gfre, fre.pointwise_gfrd):
        np.testing.assert_array_equal(f(X, Y, cv="grouped", groups=np.arange(120)), f(X, Y))
    np.testing.assert_array_equal(fre.pointwise_lfre(X, Y, n_local_points=30, cv="grouped", n_jobs=1),
                                  fre.pointwise_lfre(X, Y, n_local_points=30, n_jobs=1))
    with pytest.raises(ValueError, match="needs groups"):
        fre.gfre(X, Y, cv="grouped")
    with pytest.raises(ValueError, match="unknown cv mode"):
        fre.gfre(X, Y, cv="random")


def test_linear_map_plus_noise_gives_the_noise_share_in_both_modes():
    # Y = X A + E with independent noise: the best linear reconstruction leaves exactly E, whose
    # share of Y's total variance is known; structures of 4 atoms with distinct environments.
    rng = np.random.default_rng(3)
    n, sigma = 2000, 0.5
    X = rng.normal(size=(n, 6))
    A = rng.normal(size=(6, 4))
    Y = X @ A + sigma * rng.normal(size=(n, 4))
    expected = np.sqrt(4 * sigma**2 / np.sum(np.var(X @ A, axis=0) + sigma**2))
    groups = np.repeat(np.arange(n // 4), 4)
    train = np.flatnonzero(groups % 2 == 0)
    for cv in ("skmatter", "grouped"):
        value = fre.gfre(X, Y, train_idx=train, cv=cv, groups=groups)
        assert value == pytest.approx(expected, rel=0.05)


def _crystals(seed=1, n_structures=40, n_env=3, n_copies=8, d=12):
    """Structures of n_env environments each repeated n_copies times (equivalent atoms of a crystal).

    Y is a linear map of X plus noise that belongs to the *environment* (shared by its copies).
    The test structures (odd) vary along directions that are nearly flat in training, as a
    structure holding something new does.
    """
    rng = np.random.default_rng(seed)
    env = rng.normal(size=(n_structures, n_env, d))
    env[:, :, 8:] *= 1e-3
    env[1::2, :, 8:] *= 1e3
    Y_env = env @ rng.normal(size=(d, 6)) + 0.3 * rng.normal(size=(n_structures, n_env, 6))
    X = np.repeat(env, n_copies, axis=1).reshape(-1, d) + 1e-9 * rng.normal(size=(n_structures * n_env * n_copies, d))
    Y = np.repeat(Y_env, n_copies, axis=1).reshape(-1, 6)
    groups = np.repeat(np.arange(n_structures), n_env * n_copies)
    return X, Y, groups, np.flatnonzero(groups % 2 == 0), np.flatnonzero(groups % 2 == 1)


def test_repeated_atoms_blow_up_gfre_with_random_folds_and_grouped_folds_recover():
    X, Y, groups, train, test = _crystals()
    exact = fre.gfre(X, Y, train_idx=train, test_idx=test)
    grouped = fre.gfre(X, Y, train_idx=train, test_idx=test, cv="grouped", groups=groups)
    assert exact > 5  # the random folds see every atom's twin: smallest cut-off, wild extrapolation
    assert grouped < 1  # with whole structures held out, the CV sees the extrapolation and cuts it off
    # the matrix uses the same folds as the single-pair function
    matrix = fre.fre_matrix({"x": X, "y": Y}, train_idx=train, test_idx=test, cv="grouped", groups=groups, progress=False)
    assert float(matrix.sel(source="x", target="y")) == pytest.approx(grouped, rel=1e-10)
    assert matrix.attrs["cv"] == "grouped"


def test_repeated_neighbours_blow_up_lfre_with_random_folds_and_grouped_folds_recover():
    rng = np.random.default_rng(2)
    n_structures, n_env, n_copies, d = 60, 8, 4, 10
    env = np.zeros((n_structures, 1, d))
    env[:, 0, :3] = rng.normal(size=(n_structures, 3))
    env = env + np.concatenate([np.zeros((n_structures, n_env, 3)), 1e-3 * rng.normal(size=(n_structures, n_env, d - 3))], axis=2)
    env[1::2, :, 3:] *= 50  # test structures: environments new along the nearly flat directions
    Y_env = np.tanh(env[..., :3] @ rng.normal(size=(3, 5))) + 0.2 * rng.normal(size=(n_structures, n_env, 5))
    X = np.repeat(env, n_copies, axis=1).reshape(-1, d)
    Y = np.repeat(Y_env, n_copies, axis=1).reshape(-1, 5)
    groups = np.repeat(np.arange(n_structures), n_env * n_copies)
    train, test = np.flatnonzero(groups % 2 == 0), np.flatnonzero(groups % 2 == 1)
    kwargs = dict(train_idx=train, test_idx=test, n_local_points=64, n_jobs=1)
    exact = fre.pointwise_lfre(X, Y, **kwargs)
    grouped = fre.pointwise_lfre(X, Y, cv="grouped", **kwargs)  # identical vectors in one fold
    assert fre.rms(exact) > 5 and np.median(exact) > 5
    assert fre.rms(grouped) < fre.rms(exact) / 4 and np.median(grouped) < 1
    matrix = fre.pointwise_fre_matrix({"x": X, "y": Y}, "lfre", cv="grouped", groups=groups, progress=False, **kwargs)
    np.testing.assert_allclose(matrix.sel(source="x", target="y").values, grouped, rtol=1e-10)
    assert matrix.cutoff_at_edge.dims == ("source", "target", "test_sample")


def test_diagnostics_stay_quiet_on_clean_data():
    result = compare(toy_features(toy_frames()), metrics=("gfre", "lfre"), n_splits=3, n_local_points=30, progress=False)
    assert result.attrs["cv"] == "grouped" and result.gfre.attrs["cv"] == "grouped"
    for metric in ("gfre", "lfre"):
        assert not result[f"{metric}_flags"].values.any(), cell_notes(result, metric, "a:x", "b:y")
        assert result[f"{metric}_flags"].attrs["flag_meanings"].split() == list(FLAGS)
    assert not result.test_unseen_element.values.any()
    assert caveats(result) == []


def test_diagnostics_fire_on_planted_conditions(tmp_path, capsys):
    # A subset of two structures with elements nobody else has: one of them is always tested
    # against a training set without its element.
    exotic = []
    for element, a in (("Ge", 5.66), ("Sn", 6.49)):
        crystal = bulk(element, "diamond", a=a) * (2, 1, 1)
        crystal.info["subset"] = "exotic"
        exotic.append(crystal)
    ds = toy_features(toy_frames(exotic))
    rng = np.random.default_rng(5)
    ds = add_feature_set(ds, rng.standard_normal((ds.sizes["atom"], 40)), model="noise", layer="z")
    result = compare(ds, metrics=("gfre",), n_splits=3, progress=False)
    unseen = result.test_unseen_element
    owner = result.atom_structure.values[unseen[unseen.dims[0]].values]
    np.testing.assert_array_equal(unseen.values, np.isin(owner, [48, 49]))
    assert unseen.values.sum() == 4  # the 4 atoms of whichever exotic crystal is tested
    flags = result.gfre_flags
    assert int(flags.sel(source="a:x", target="noise:z")) & _bit("above_one")  # nothing predicts noise
    assert all(int(v) & _bit("few_training_structures") for v in flags.values.ravel())  # 1 exotic in training
    assert "!" in cell_marks(flags.sel(source="a:x", target="noise:z"))
    lines = caveats(result)
    assert any("absent from training" in line for line in lines)
    assert any("exotic: 1" in line for line in lines)
    # the CLI shows marks and the caveats, and writes the diagnostics
    from latentatlas import io

    io.save(ds, tmp_path / "f.nc")
    assert main(["fre", str(tmp_path / "f.nc"), "--splits", "2", "--out", str(tmp_path / "c.nc")]) == 0
    out = capsys.readouterr().out
    assert "inner CV: grouped" in out and "Caveats:" in out and "!" in out
    saved = io.load(tmp_path / "c.nc")
    assert saved.gfre_flags.dtype == np.uint8 and list(saved.gfre_flags.attrs["flag_masks"]) == [1, 2, 4, 8, 16]


def test_cell_flags_spread_and_edge():
    mean = np.array([[0.0, 0.2], [0.5, 1.2]])
    std = np.array([[0.0, 0.3], [0.1, 0.1]])
    edge = np.array([[1.0, 0.6], [0.2, 0.0]])
    flags = cell_flags(mean, std, edge_fraction=edge)
    assert flags[0, 0] == 0  # the diagonal's edge cut-off is expected (a set reconstructs itself)
    assert flags[0, 1] == _bit("spread_exceeds_value") | _bit("cutoff_at_grid_edge")
    assert flags[1, 0] == 0 and flags[1, 1] == _bit("above_one")


def test_learning_curve_and_cli(tmp_path, capsys):
    ds = toy_features(toy_frames())
    curve = learning_curve(ds, fractions=(0.25, 1.0), n_splits=2, progress=False)
    assert curve.learning_gfre.dims == ("train_fraction", "source", "target")
    assert list(curve.learning_n_train_structures.values) == [6, 24]
    full = compare(ds, metrics=("gfre",), n_splits=2, progress=False)
    # at 100 % the curve is the comparison itself
    np.testing.assert_allclose(curve.learning_gfre.sel(train_fraction=1.0).values, full.gfre.values, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.learning_gfre_std.sel(train_fraction=1.0).values, full.gfre_std.values,
                               rtol=1e-9, atol=1e-15)
    from latentatlas import io

    io.save(ds, tmp_path / "f.nc")
    assert main(["fre", str(tmp_path / "f.nc"), "--splits", "2", "--learning-curve", "0.5", "1",
                 "--out", str(tmp_path / "c.nc")]) == 0
    assert "GFRE learning curve" in capsys.readouterr().out
    assert io.load(tmp_path / "c.nc").learning_gfre.sizes["train_fraction"] == 2


def test_skmatter_mode_is_scikit_matter_on_crystal_like_data():
    # the documented exact mode gives scikit-matter's numbers, blow-up included
    from skmatter.metrics import global_reconstruction_error, local_reconstruction_error

    X, Y, groups, train, test = _crystals(n_structures=12)
    # exact copies: with copies 1e-9 apart, which copy ranks first among near-equal distances (and
    # so which fold it joins) depends on rounding, and both codes agree only to about 1 %
    X = np.round(X, 6)
    split = dict(train_idx=train, test_idx=test)
    assert fre.gfre(X, Y, cv="skmatter", **split) == pytest.approx(global_reconstruction_error(X, Y, **split), rel=1e-8)
    assert fre.lfre(X, Y, n_local_points=20, cv="skmatter", **split) == pytest.approx(
        local_reconstruction_error(X, Y, 20, **split), rel=1e-8)
