"""The dashboard's viewers on a real comparison (real features, real latentatlas.compare), no browser."""

from __future__ import annotations

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from latentatlas.io import load, save  # noqa: E402


@pytest.fixture(scope="module")
def features():
    from latentatlas.features import get_featurizer
    from latentatlas.structures import builtin_frames

    frames = builtin_frames(small=True)[::2]
    ds = get_featurizer("chgnet-0.3.0").featurize(frames, ["conv1", "last"], progress=False)
    return ds.assign(get_featurizer("soap").featurize(frames, progress=False).data_vars)


@pytest.fixture(scope="module")
def comparison(features):
    from latentatlas.compare import compare

    return compare(features, n_splits=2, n_local_points=20)


@pytest.fixture(scope="module")
def structure_comparison(features):
    from latentatlas.compare import compare
    from latentatlas.cumulants import structure_features

    return compare(structure_features(features, 2), metrics=("gfre",), n_splits=2)


def test_check_comparison_names_the_problem(features, comparison):
    from latentatlas.viz.fre.data import check_comparison

    with pytest.raises(ValueError, match="is a features result, not a comparison result"):
        check_comparison(features)
    with pytest.raises(ValueError, match="no metric with per-sample values"):
        check_comparison(comparison[["pca"]])
    with pytest.raises(ValueError, match="lacks \\['pca'\\]"):
        check_comparison(comparison.drop_vars("pca"))
    assert check_comparison(comparison) is comparison


def test_heatmap_shows_the_matrix_and_click_selects_a_pair(comparison):
    from latentatlas.viz import FREMatrix

    view = FREMatrix(comparison, metric="gfre")
    data = view.source.data
    for s, t, v, sd in zip(data["source"], data["target"], data["value"], data["spread"]):
        assert v == comparison["gfre"].sel(source=s, target=t).item()
        assert sd == comparison["gfre_std"].sel(source=s, target=t).item()
    view.metric = "lfre"
    assert np.array_equal(np.sort(view.source.data["value"]), np.sort(comparison["lfre"].values.ravel()))
    # what a click in the browser does: select one cell
    k = int(np.flatnonzero((np.asarray(view.source.data["source"]) == "soap:power_spectrum")
                           & (np.asarray(view.source.data["target"]) == "chgnet-0.3.0:last"))[0])
    view.source.selected.indices = [k]
    assert view.pair == ("soap:power_spectrum", "chgnet-0.3.0:last")
    view.sources = ["chgnet-0.3.0:last", "soap:power_spectrum"]
    assert len(view.source.data["value"]) == 4
    assert list(view.figure.x_range.factors) == ["chgnet-0.3.0:last", "soap:power_spectrum"]


def test_drilldown_shows_the_pairs_pointwise_errors_and_quartiles(comparison):
    from latentatlas.viz import DrillDown

    pair = ("chgnet-0.3.0:conv1", "soap:power_spectrum")
    view = DrillDown(comparison, metric="gfre", pair=pair)
    expected = comparison["gfre_pointwise"].sel(source=pair[0], target=pair[1]).values
    assert np.array_equal(view.points.data["error"], expected)
    test_atoms = comparison["test_atom"].values
    assert np.array_equal(view.points.data["x"], comparison["pca"].sel(source=pair[0]).values[test_atoms, 0])
    subset = comparison["subset"].values[comparison["atom_structure"].values[test_atoms]]
    for k, name in enumerate(view.box.data["subset"]):
        q1, q2, q3 = np.percentile(expected[subset == name], [25, 50, 75])
        assert np.allclose([view.box.data["q1"][k], view.box.data["q2"][k], view.box.data["q3"][k]], [q1, q2, q3])
    view.pair = pair[::-1]
    assert np.array_equal(view.points.data["error"],
                          comparison["gfre_pointwise"].sel(source=pair[1], target=pair[0]).values)
    assert view.map.title.text.startswith("soap:power_spectrum → chgnet-0.3.0:conv1")
    # the browser-side store holds every pair, keyed by position in the source list
    names = list(comparison["source"].values)
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            assert np.array_equal(view.store.data[f"e{i}_{j}"], comparison["gfre_pointwise"].sel(source=s, target=t).values)
    # selecting samples opens the structure of the worst one among them
    picked = [0, 1, 2]
    view.points.selected.indices = picked
    worst = picked[int(np.argmax(np.asarray(view.points.data["error"])[picked]))]
    assert view.structure == comparison["atom_structure"].values[test_atoms[worst]]


def test_structure_level_drilldown_runs_over_structures(structure_comparison):
    from latentatlas.viz import Atlas

    atlas = Atlas({"structure level": structure_comparison})
    assert atlas.drill.points.data["element"][0] == "-"
    assert np.array_equal(atlas.drill.points.data["structure"], structure_comparison["test_structure"].values)
    assert atlas.viewer.atom_errors is None and atlas.viewer.structure_errors is not None  # one error per structure


def test_atlas_links_matrix_drilldown_and_structure(comparison):
    from latentatlas.viz import Atlas

    atlas = Atlas(comparison)
    assert atlas.drill.pair == atlas.matrix.pair
    atlas.matrix.pair = ("soap:power_spectrum", "chgnet-0.3.0:conv1")
    assert atlas.drill.pair == atlas.matrix.pair
    errors = atlas.viewer.atom_errors
    test_atoms = comparison["test_atom"].values
    assert np.array_equal(errors[test_atoms], comparison["gfre_pointwise"].sel(
        source="soap:power_spectrum", target="chgnet-0.3.0:conv1").values)
    assert np.isnan(np.delete(errors, test_atoms)).all()
    atlas.drill.points.selected.indices = [5]
    assert atlas.viewer.structure == comparison["atom_structure"].values[test_atoms[5]]
    atlas.metric = "gfrd"
    assert atlas.matrix.source.data["value"].max() == comparison["gfrd"].values.max()
    assert "GFRD" in atlas.viewer.error_label


def test_atlas_shows_other_measures_with_a_model_map(features):
    from latentatlas.compare import compare
    from latentatlas.viz import Atlas

    ds = compare(features, metrics=("gfre", "cka", "mknn"), n_splits=2, progress=False)
    atlas = Atlas(ds)
    assert atlas.param.metric.objects == ["gfre", "cka", "mknn"]
    atlas.metric = "cka"
    assert atlas.matrix.source.data["value"].min() == ds["cka"].values.min()
    assert "each pair of feature sets" in atlas.matrix.figure.title.text
    # CKA has no per-sample form: the drill-down keeps the pair on GFRE and says so
    assert atlas.drill.metric == "gfre" and "no per-sample form" in atlas._drill_note.object
    assert atlas._map.visible and "Model map from linear CKA" in atlas._map.object.title.text
    np.testing.assert_array_equal(atlas._map.object.renderers[0].data_source.data["x"],
                                  ds["cka_map"].sel(axis=0).values)
    atlas.metric = "mknn"
    assert atlas.drill.metric == "mknn" and atlas._drill_note.object == ""
    assert "mutual k-NN" in atlas.viewer.error_label
    # the least similar pair (smallest shared fraction) is the default cell
    values = ds["mknn"].values.copy()
    np.fill_diagonal(values, np.inf)
    i, j = np.unravel_index(np.argmin(values), values.shape)
    from latentatlas.viz.fre.data import default_pair

    assert default_pair(ds, "mknn") == (str(ds.source.values[i]), str(ds.target.values[j]))


def test_upload_bad_file_shows_message_and_good_file_replaces_data(tmp_path, comparison, features):
    from latentatlas.viz import Atlas

    atlas = Atlas(comparison)
    atlas._upload.filename = "notes.nc"
    atlas._upload.value = b"this is not netCDF"
    assert atlas._message.visible and "Could not open notes.nc" in atlas._message.object
    assert "not a readable netCDF file" in atlas._message.object
    assert "notes.nc is not" in atlas._message.object and "/tmp" not in atlas._message.object

    save(features.drop_vars(["chgnet-0.3.0:conv1", "chgnet-0.3.0:last"]), tmp_path / "one.nc")
    atlas._upload.filename = "one.nc"
    atlas._upload.value = (tmp_path / "one.nc").read_bytes()
    assert "at least two feature sets" in atlas._message.object

    save(comparison, tmp_path / "mine.nc")
    atlas._upload.filename = "mine.nc"
    atlas._upload.value = (tmp_path / "mine.nc").read_bytes()
    assert not atlas._message.visible
    assert list(atlas.levels) == ["mine.nc: atom level"]


def test_upload_features_file_is_compared(tmp_path, features):
    from latentatlas.viz.fre.app import comparison_from_file

    save(features.drop_vars("chgnet-0.3.0:conv1"), tmp_path / "features.nc")
    (level, ds), = comparison_from_file(tmp_path / "features.nc").items()
    assert level == "atom level"
    assert list(ds["source"].values) == ["chgnet-0.3.0:last", "soap:power_spectrum"]


def test_export_is_self_contained_and_atomic(tmp_path, comparison, structure_comparison):
    from latentatlas.viz.export import export_html

    path = export_html({"atom level": comparison, "structure level": structure_comparison}, tmp_path / "r.html",
                       max_structures=5)
    html = path.read_text()
    assert "cdn.holoviz.org" not in html and "cdn.bokeh.org" not in html
    tab = "{} \\u00b7 {}"  # tab titles sit JSON-escaped in the embedded document
    assert tab.format("GFRE", "structure level") in html and tab.format("LFRE", "atom level") in html
    with pytest.raises(ValueError, match="no metric with per-sample values"):
        export_html(comparison[["pca"]], tmp_path / "bad.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # nothing half-written


def test_cli_export_and_load_roundtrip(tmp_path, comparison):
    from latentatlas.cli import main

    save(comparison, tmp_path / "c.nc")
    assert main(["export", str(tmp_path / "c.nc"), "--html", str(tmp_path / "c.html"), "--max-structures", "3"]) == 0
    assert (tmp_path / "c.html").stat().st_size > 1e6  # bokeh and panel inlined
    assert main(["export", str(tmp_path / "missing.nc"), "--html", str(tmp_path / "x.html")]) == 2
    assert not (tmp_path / "x.html").exists()
    assert load(tmp_path / "c.nc").identical(comparison)


def test_show_displays_in_a_notebook(comparison):
    import latentatlas

    atlas = latentatlas.show(comparison)
    bundle, _ = atlas._repr_mimebundle_()
    assert any("bokeh" in k or "html" in k for k in bundle)


def test_heatmap_marks_flagged_cells_and_plots_the_learning_curve(features, comparison):
    from latentatlas.compare import learning_curve
    from latentatlas.diagnostics import cell_marks
    from latentatlas.viz import FREMatrix

    flags = comparison["gfre_flags"].values.copy()
    flags[0, 1] |= 2  # plant "above one" on one cell, as a file with such a cell would hold
    ds = comparison.assign(gfre_flags=(("source", "target"), flags, comparison["gfre_flags"].attrs))
    pair = (str(ds.source.values[0]), str(ds.target.values[1]))
    ds = ds.merge(learning_curve(features, fractions=(0.5, 1.0), n_splits=2, progress=False))
    view = FREMatrix(ds, metric="gfre", pair=pair)
    data = view.source.data
    for s, t, label, note in zip(data["source"], data["target"], data["label"], data["notes"]):
        marks = cell_marks(ds["gfre_flags"].sel(source=s, target=t))
        assert label.endswith(marks) and (note == "none") == (marks == "")
    k = list(zip(data["source"], data["target"])).index(pair)
    assert "!" in data["label"][k] and "worse than predicting the training mean" in data["notes"][k]
    curve = ds["learning_gfre"].sel(source=pair[0], target=pair[1]).values
    np.testing.assert_array_equal(view.curve.data["value"], curve)
    assert view._pane[1].visible
    view.metric = "lfre"  # no learning curve for LFRE in this file: the plot hides
    assert not view._pane[1].visible and len(view.curve.data["value"]) == 0
