"""The reproduction of arXiv:2512.05717: analyses, computed verdicts, report, CLI and notebook."""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from latentatlas import fre, io
from latentatlas.cli import main
from latentatlas.compare import structure_split
from latentatlas.cumulants import cumulant_feature_name, structure_features
from latentatlas.dataset import add_feature_set, empty_features
from latentatlas.reproduce import Reproduction, Settings
from latentatlas.reproduce.analyses import (
    benchmark_frames,
    cumulant_steps,
    fine_tuning,
    cross_model,
    lfre_over_splits,
    measure_rankings,
    pair_table,
    subset_breakdown,
    unrelated_pairs,
)
from latentatlas.reproduce.findings import conclusions, findings, relation
from latentatlas.reproduce.report import markdown
from latentatlas.structures import builtin_frames

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_frames():
    return builtin_frames(small=True)


@pytest.fixture(scope="module")
def features(small_frames):
    """Two correlated random atom feature sets over the small benchmark (434 atoms)."""
    ds = empty_features(small_frames)
    rng = np.random.default_rng(1)
    base = rng.standard_normal((ds.sizes["atom"], 5))
    ds = add_feature_set(ds, base, model="a", layer="x")
    return add_feature_set(ds, np.tanh(base @ rng.standard_normal((5, 7))), model="b", layer="y")


def test_measure_rankings_put_the_measures_side_by_side(features):
    rng = np.random.default_rng(4)
    n = features.sizes["atom"]
    ds = add_feature_set(features, features["a:x"].values + 0.3 * rng.standard_normal((n, 5)), model="c", layer="z")
    ds = add_feature_set(ds, rng.standard_normal((n, 4)), model="noise", layer="w")
    cross = cross_model(ds, n_splits=2, lfre_per_subset=5, n_local_points=12, progress=False)
    ms = measure_rankings(ds, cross, metrics=("cka", "procrustes", "mknn"), n_splits=2, progress=False)
    assert list(ms.measure.values) == ["gfre", "lfre", "cka", "procrustes", "mknn"]
    assert ms.sizes["pair"] == 6 and ms.rank_correlation.shape == (5, 5)
    np.testing.assert_allclose(np.diag(ms.rank_correlation.values), 1.0)
    k = int(np.flatnonzero((ms.a.values == "a:x") & (ms.b.values == "b:y"))[0])
    g = cross.gfre.sel(source="a:x", target="b:y").item() + cross.gfre.sel(source="b:y", target="a:x").item()
    assert ms.pair_value.sel(measure="gfre").values[k] == pytest.approx(g / 2, rel=1e-12)
    # every measure ranks the pairs with the unrelated noise set as the least similar three
    noisy = [i for i, (a, b) in enumerate(zip(ms.a.values, ms.b.values)) if "noise" in a + b]
    assert np.all(ms.pair_rank.values[noisy] >= 4)
    assert ms.cka_map.dims == ("source", "axis")


def test_relation_uses_combined_spread():
    assert relation(0.1, 0.01, 0.5, 0.01) == "smaller than"
    assert relation(0.5, 0.01, 0.1, 0.01) == "larger than"
    # 0.2 apart but the combined spread is 0.1414 -> within 2 sigma
    assert relation(0.3, 0.1, 0.5, 0.1) == "indistinguishable from"
    assert relation(0.3, 0.05, 0.5, 0.05) == "smaller than"


def test_benchmark_frames_drops_isolated_atoms_and_subsamples_by_subset(small_frames):
    from ase.build import bulk

    from latentatlas.features import get_featurizer

    chgnet = get_featurizer("chgnet-0.2.0")  # cutoff 5 Å; bcc Cs has its nearest neighbours at 5.3 Å
    caesium = bulk("Cs", cubic=True).repeat(2)
    caesium.info.update(subset="bulk", name="Cs bcc")
    frames, dropped = benchmark_frames([chgnet], [*small_frames, caesium])
    assert dropped == {"Cs bcc (bulk)": len(small_frames)} and len(frames) == len(small_frames)
    part, _ = benchmark_frames([chgnet], small_frames, fraction=0.5, seed=3)
    names = [a.info["name"] for a in small_frames]
    assert [names.index(a.info["name"]) for a in part] == sorted(names.index(a.info["name"]) for a in part)
    for subset in {a.info["subset"] for a in small_frames}:
        n_all = sum(a.info["subset"] == subset for a in small_frames)
        assert sum(a.info["subset"] == subset for a in part) == max(2, round(0.5 * n_all))
    with pytest.raises(ValueError, match="fraction"):
        benchmark_frames([chgnet], small_frames, fraction=0)


def test_lfre_over_splits_is_lfre_on_sampled_test_atoms(features):
    result = lfre_over_splits(features, ["a:x", "b:y"], n_splits=1, per_subset=5, n_local_points=12, progress=False)
    train, test = structure_split(features, seed=fre.DEFAULT_SEED)
    sample = result.test_atom_lfre.values
    assert set(sample) <= set(test)
    subsets = features.subset.values[features.atom_structure.values[sample]]
    assert all(np.sum(subsets == s) == 5 for s in np.unique(features.subset.values))
    X, Y = features["a:x"].values, features["b:y"].values
    direct = fre.pointwise_lfre(X, Y, n_local_points=12, train_idx=train, test_idx=sample, seed=fre.DEFAULT_SEED,
                                cv="grouped")
    np.testing.assert_allclose(result.lfre_pointwise.sel(source="a:x", target="b:y").values, direct, rtol=1e-10)
    assert result.lfre.sel(source="a:x", target="b:y") == pytest.approx(fre.rms(direct), rel=1e-12)
    assert np.isnan(result.lfre_std).all()  # one split: no spread
    two = lfre_over_splits(features, ["a:x", "b:y"], n_splits=2, per_subset=5, n_local_points=12, progress=False)
    assert (two.lfre_std.values > 0).all()
    np.testing.assert_array_equal(two.lfre_pointwise.values, result.lfre_pointwise.values)


def test_subset_breakdown_matches_direct_rms(features):
    rng = np.random.default_rng(3)
    atoms = np.sort(rng.choice(features.sizes["atom"], 200, replace=False))
    pointwise = xr.DataArray(rng.random((2, 2, 200)), dims=("source", "target", "test_atom"),
                             coords={"source": ["p", "q"], "target": ["p", "q"], "test_atom": atoms})
    out = subset_breakdown(pointwise, features, n_boot=50)
    subset_of = features.subset.values[features.atom_structure.values[atoms]]
    for subset in out.subset.values:
        mask = subset_of == subset
        np.testing.assert_allclose(out.rms.sel(subset=subset).values, np.sqrt((pointwise.values[..., mask] ** 2).mean(axis=-1)))
        assert out.n_test_atoms.sel(subset=subset) == mask.sum()
    assert (out.rms_std.values > 0).all()
    # one structure per subset: resampling structures cannot change anything
    one = pointwise.isel(test_atom=features.atom_structure.values[atoms] == features.atom_structure.values[atoms][0])
    assert float(subset_breakdown(one, features, n_boot=20).rms_std.max()) < 1e-12


def _spread_features(small_frames, linear: bool):
    """One-column atom features whose per-structure spread is (or is not) a linear function of the mean."""
    ds = empty_features(small_frames)
    owner = ds.atom_structure.values
    rng = np.random.default_rng(5)
    mean = rng.uniform(1.0, 3.0, ds.sizes["structure"])
    spread = 0.3 * mean if linear else rng.uniform(0.1, 1.0, ds.sizes["structure"])
    values = np.empty(ds.sizes["atom"])
    for s in range(ds.sizes["structure"]):
        idx = np.flatnonzero(owner == s)
        z = np.arange(len(idx)) - (len(idx) - 1) / 2
        values[idx] = mean[s] + spread[s] * z / z.std()
    return add_feature_set(ds, values[:, None], model="m", layer="last")


def test_cumulant_steps_known_answer_and_direct_gfre(small_frames):
    linear = cumulant_steps(_spread_features(small_frames, True), "m:last", max_order=2, n_splits=2, progress=False)
    assert float(linear.step.sel(step_order=1)) < 1e-3  # sqrt(κ2) = 0.3 κ1 exactly: order 2 adds nothing
    ds = _spread_features(small_frames, False)
    free = cumulant_steps(ds, "m:last", max_order=3, n_splits=2, progress=False)
    assert float(free.step.sel(step_order=1)) > 0.3
    assert free.first_to_k.dims == ("order",) and free.step.dims == ("step_order",)
    # the value is GFRE φ^(k) -> φ^(k+1) on structure splits stratified by subset, averaged over splits
    phi = {k: structure_features(ds, k, names=["m:last"])[cumulant_feature_name("m:last", k)].values for k in (2, 3)}
    direct = []
    for split in range(2):
        train, test = structure_split(structure_features(ds, 2, names=["m:last"]), seed=fre.DEFAULT_SEED + split)
        direct.append(fre.gfre(phi[2], phi[3], train_idx=train, test_idx=test, seed=fre.DEFAULT_SEED + split))
    assert float(free.step.sel(step_order=2)) == pytest.approx(np.mean(direct), rel=1e-10)
    assert float(free.step_std.sel(step_order=2)) == pytest.approx(np.std(direct, ddof=1), rel=1e-8)


def _cross(values, spread=0.01):
    models = ["chgnet-0.3.0", "chgnet-r2scan", "sevennet-0", "soap"]
    names = [f"{m}:last" for m in models]
    data = {}
    for metric in ("gfre", "lfre"):
        data[metric] = (("source", "target"), np.asarray(values, dtype=float), {"n_splits": 3})
        data[f"{metric}_std"] = (("source", "target"), np.full((4, 4), spread))
    return xr.Dataset(data, coords={"source": names, "target": names, "source_model": ("source", models),
                                    "target_model": ("target", models)})


def test_pair_tables_read_the_right_cells():
    values = np.arange(16.0).reshape(4, 4) / 20
    cross = _cross(values)
    table = pair_table(cross, [("sevennet-0", "chgnet-0.3.0", "x"), ("chgnet-0.3.0", "not-there", "y")])
    assert list(table.a.values) == ["sevennet-0"]  # pairs with a missing model are left out
    assert float(table.gfre_ab[0]) == values[2, 0] and float(table.gfre_ba[0]) == values[0, 2]
    assert unrelated_pairs(list(cross.source_model.values)) == [
        ("chgnet-0.3.0", "sevennet-0", "CHGNet vs SevenNet"), ("chgnet-r2scan", "sevennet-0", "CHGNet vs SevenNet")]
    ft = fine_tuning(cross)
    assert float(ft.finetuned_gfre_ab[0]) == values[1, 0] and float(ft.finetuned_gfre_ba[0]) == values[0, 1]
    assert ft.sizes["unrelated_pair"] == 2


def _reproduction(cross, steps):
    orders = np.arange(1, len(steps) + 2)
    cum = xr.Dataset(
        {"step": (("feature_set", "step_order"), [steps]), "step_std": (("feature_set", "step_order"), [np.full(len(steps), 0.01)])},
        coords={"feature_set": ["chgnet-0.3.0:last"], "feature_set_model": ("feature_set", ["chgnet-0.3.0"]),
                "step_order": orders[:-1]},
    )
    return Reproduction(cross, pair_table(cross, []), fine_tuning(cross), {}, cum, xr.Dataset(), Settings(), {}, {})


def _verdicts(matrix, steps):
    return {r["question"].split(":")[0].split(" (")[0].split(" φ")[0]: r for r in conclusions(_reproduction(_cross(matrix), steps))}


def test_conclusions_are_computed_from_the_numbers():
    # models: chgnet-0.3.0, chgnet-r2scan (fine-tuned from it), sevennet-0, soap (descriptor)
    close = [[0, 0.6, 0.7, 0.5], [0.02, 0, 0.8, 0.5], [0.3, 0.9, 0, 0.5], [0.5, 0.5, 0.5, 0]]
    rows = _verdicts(close, [0.3, 0.35])
    tuned = rows["Fine-tuning bias"]
    assert tuned["verdict"] == "partly agrees"  # r2scan->0.3.0 0.02 < 0.3 (smallest unrelated); 0.3.0->r2scan 0.6 is not
    assert "0.020 ± 0.010" in tuned["ours"] and "sevennet-0→chgnet-0.3.0 0.300 ± 0.010" in tuned["ours"]
    assert rows["Cumulant steps"]["verdict"] == "agrees"
    asym = rows["Asymmetry of reconstruction"]
    assert asym["verdict"] == "agrees" and asym["ours"].startswith("chgnet-r2scan→chgnet-0.3.0 0.020")
    mean = rows["Mean off-diagonal GFRE / LFRE between unrelated uMLIPs"]
    assert "GFRE 0.675 ± 0.010" in mean["ours"] and mean["verdict"] == "differs"  # LFRE = GFRE here
    far = [[0, 0.9, 0.7, 0.5], [0.9, 0, 0.8, 0.5], [0.7, 0.8, 0, 0.5], [0.5, 0.5, 0.5, 0]]
    rows = _verdicts(far, [0.3, 0.01])
    assert rows["Fine-tuning bias"]["verdict"] == "differs"
    assert rows["Cumulant steps"]["verdict"] == "differs"
    assert rows["Asymmetry of reconstruction"]["verdict"] == "differs"  # symmetric matrix: no asymmetry


def test_report_renders_the_findings_it_is_given():
    close = [[0, 0.6, 0.7, 0.5], [0.02, 0, 0.8, 0.5], [0.3, 0.9, 0, 0.5], [0.5, 0.5, 0.5, 0]]
    result = _reproduction(_cross(close), [0.3, 0.35])
    rms = np.arange(2 * 16.0).reshape(2, 4, 4) / 40
    dims = ("subset", "source", "target")
    result.subsets = xr.Dataset(
        {"gfre_rms": (dims, rms), "gfre_rms_std": (dims, rms / 10), "lfre_rms": (dims, rms / 2),
         "lfre_rms_std": (dims, rms / 20), "gfre_n_test_atoms": ("subset", [30, 40])},
        coords={"subset": ["bulk", "molecule"]},
    )
    fo = ("feature_set", "order")
    result.cumulants = result.cumulants.assign(first_to_k=(fo, [[0.0, 0.3, 0.5]]), first_to_k_std=(fo, [[0.0, 0.01, 0.01]]))
    result.benchmark = {"n_structures": 9, "n_atoms": 70, "subsets": {"bulk": 4, "molecule": 5}, "dropped": {}, "models": []}
    found = findings(result)
    # plain data: sentences computed from the numbers (mean over uMLIP pairs: "molecule" 21/40, "bulk" 5/40)
    assert found.subset_ranking.startswith("Mean over off-diagonal uMLIP pairs. Largest GFRE: molecule (0.525 ± 0.052), which is larger than the second, bulk")
    assert found.learning_rows is None and found.measures is None and found.layers == []
    text = markdown(result, found, ["cross_model.nc"])
    for sentence in [found.lfre_floor, found.subset_ranking, found.uncertainty, *found.variants]:
        assert sentence in text
    assert all(f"**{r['verdict']}**" in text for r in found.conclusions)
    # the rendering states what it is given and computes no conclusion of its own
    altered = dataclasses.replace(found, uncertainty="(uncertainty)", subset_ranking="(ranking)",
                                  conclusions=[{**found.conclusions[0], "verdict": "(verdict)"}])
    text = markdown(result, altered, [])
    assert "(uncertainty)" in text and "(ranking)" in text and "**(verdict)**" in text
    assert found.uncertainty not in text and found.subset_ranking not in text


def test_cli_reproduce_quick_writes_consistent_results(tmp_path, capsys):
    out = tmp_path / "repro"
    code = main(["reproduce", "--quick", "--quiet", "--models", "chgnet-0.3.0", "chgnet-r2scan",
                 "--splits", "2", "--max-order", "3", "--out", str(out)])
    assert code == 0
    assert "report.md" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {"cross_model.nc", "variants.nc", "fine_tuning.nc", "cumulants.nc", "subsets.nc",
            "layers_chgnet-0.3.0.nc", "layers_chgnet-r2scan.nc", "report.md", "cross_model.png",
            "cumulants.png", "layers.png", "subsets.png", "learning_curve.nc", "learning_curve.png",
            "measures.nc", "measures.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    cross = io.load(out / "cross_model.nc")
    tuned = io.load(out / "fine_tuning.nc")
    report = (out / "report.md").read_text()
    g = float(cross.gfre.sel(source="chgnet-r2scan:last", target="chgnet-0.3.0:last"))
    s = float(cross.gfre_std.sel(source="chgnet-r2scan:last", target="chgnet-0.3.0:last"))
    assert f"{g:.3f} ± {s:.3f}" in report
    # the last-layer row of the layer-wise fine-tuning table is the cross-model cell (same splits)
    assert float(tuned.layer_gfre_ab.sel(layer="last")) == pytest.approx(g, rel=1e-10)
    assert list(tuned.layer.values) == ["conv1", "conv2", "conv3", "conv4", "last"]
    cum = io.load(out / "cumulants.nc")
    assert cum.step.dims == ("feature_set", "step_order") and cum.sizes["step_order"] == 2
    assert "paper" in report and "0.66" in report and "## 7. Uncertainty" in report
    # structure-grouped inner CV by default, said in the report; diagnostics and learning curve saved
    assert "Inner CV mode: **grouped**" in report and "## 8. Is the benchmark big enough?" in report
    assert cross.gfre.attrs["cv"] == "grouped" and cross.lfre.attrs["cv"] == "grouped"
    assert cross.gfre_flags.dims == cross.lfre_flags.dims == ("source", "target")
    curve = io.load(out / "learning_curve.nc")
    assert float(curve.learning_gfre.sel(train_fraction=1.0, source="chgnet-r2scan:last",
                                         target="chgnet-0.3.0:last")) == pytest.approx(g, rel=1e-10)
    measures = io.load(out / "measures.nc")
    assert "## 9. Other measures" in report and "linear CKA ↑" in report
    assert f"({measures.pair_rank.values[0, 0]:g})" in report


def test_cli_reproduce_bad_model_writes_nothing(tmp_path, capsys):
    assert main(["reproduce", "--quick", "--models", "chgnet-0.3.0", "no-such-model", "--out", str(tmp_path / "r")]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_notebook_runs_top_to_bottom_in_quick_mode(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "reproduce.ipynb", as_version=4)
    os.environ["LATENTATLAS_QUICK"] = "1"
    os.environ["LATENTATLAS_REPRODUCE_OUT"] = str(tmp_path / "nb")
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        del os.environ["LATENTATLAS_QUICK"], os.environ["LATENTATLAS_REPRODUCE_OUT"]
    assert (tmp_path / "nb" / "report.md").exists()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "GFRE (row: source" in text
