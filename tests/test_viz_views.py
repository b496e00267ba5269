"""The FRE app's viewers and their state on the shipped demo comparison (real latentatlas.compare output), no browser.

Real models are featurised in their own tests (test_features_*.py); here the built-in demo
files are the data, and the few tests that need a features file use small imported arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pn = pytest.importorskip("panel")

from latentatlas.io import load, save  # noqa: E402

PAIR = ("soap:power_spectrum", "chgnet-0.3.0:conv1")


@pytest.fixture(scope="module")
def levels():
    from latentatlas.viz.fre.data import demo_comparison_paths, load_levels

    return load_levels(demo_comparison_paths())


@pytest.fixture(scope="module")
def comparison(levels):
    return levels["atom level"]


@pytest.fixture(scope="module")
def structure_comparison(levels):
    return next(ds for label, ds in levels.items() if label.startswith("structure level"))


@pytest.fixture(scope="module")
def features(comparison):
    """Three small feature sets on the demo's structures: a, a linear map of a plus noise, and noise."""
    from latentatlas.dataset import frames_from_features
    from latentatlas.features.external import import_features

    frames = frames_from_features(comparison)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(comparison.sizes["atom"], 6))
    arrays = {"a": a, "b": a @ rng.normal(size=(6, 4)) + 0.1 * rng.normal(size=(len(a), 4)),
              "c": rng.normal(size=(len(a), 3))}
    return import_features(frames, arrays, model="toy")


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
    view.state.metric = "lfre"
    assert np.array_equal(np.sort(view.source.data["value"]), np.sort(comparison["lfre"].values.ravel()))
    # what a click in the browser does: select one cell
    k = list(zip(view.source.data["source"], view.source.data["target"])).index(PAIR)
    view.source.selected.indices = [k]
    assert view.state.pair == PAIR
    view.state.sources = ["chgnet-0.3.0:last", "soap:power_spectrum"]
    assert len(view.source.data["value"]) == 4
    assert list(view.figure.x_range.factors) == ["chgnet-0.3.0:last", "soap:power_spectrum"]
    # the selected pair lost a feature set: the state moves it to one still shown, and the cell follows
    assert set(view.state.pair) <= {"chgnet-0.3.0:last", "soap:power_spectrum"}
    assert [tuple(c) for c in np.c_[view.source.data["source"], view.source.data["target"]][
        view.source.selected.indices]] == [view.state.pair]


def test_a_view_takes_a_comparison_or_the_apps_state_not_both(comparison):
    from latentatlas.viz import DrillDown, FREMatrix
    from latentatlas.viz.fre.state import FREState

    state = FREState(comparison, pair=PAIR)
    matrix, drill = FREMatrix(state=state), DrillDown(state=state)
    assert matrix.state is drill.state is state
    with pytest.raises(ValueError, match="not both"):
        FREMatrix(comparison, state=state)
    with pytest.raises(ValueError, match="either a comparison"):
        DrillDown()


def test_state_keeps_itself_consistent_across_levels_metrics_and_feature_sets(levels, comparison):
    from latentatlas.viz.fre.data import default_pair, worst_sample
    from latentatlas.viz.fre.state import VALUE, FREState, pc_name

    state = FREState(levels, metric="gfrd", pair=PAIR)
    assert (state.level, state.metric, state.drill_metric, state.pair) == ("atom level", "gfrd", "gfrd", PAIR)
    assert (state.sample, state.structure) == (None, worst_sample(comparison, "gfrd", PAIR)[1])
    assert (state.map_x, state.map_y, state.map_colour) == (pc_name(0), pc_name(1), VALUE)
    state.metric = "cka"  # no per-sample form: the per-sample views keep the first metric that has one
    assert state.drill_metric == "gfre"
    state.selection = [3, 4]
    assert (state.sample, state.structure) == worst_sample(comparison, "gfre", PAIR, [3, 4])
    state.map_colour = "n_atoms"
    other = [label for label in levels if label != "atom level"][0]
    seen = []
    state.param.watch(lambda *events: seen.append({e.name for e in events}), ["comparison", "metric", "pair"])
    state.level = other
    assert seen == [{"comparison", "pair"}]  # one batch: no view ever sees the new comparison with the old pair
    assert state.comparison is levels[other] and state.metric == "cka" and state.selection == []
    assert state.pair == default_pair(levels[other], "cka") and state.map_colour == "n_atoms"
    state.sources = []  # none chosen shows all (the browser's chooser sends [] when a level replaces its options)
    assert state.sources == state.param.sources.objects
    state.show(comparison)  # another file: everything follows
    assert list(state.levels) == ["atom level"] and state.comparison is comparison
    assert FREState(comparison, map_x="n_atoms").map_x == "n_atoms"
    for wrong, match in [({"map_y": "no such property"}, "map_y"), ({"metric": "nope"}, "metric"),
                         ({"pair": ("a", "b")}, "not in the comparison")]:
        with pytest.raises(ValueError, match=match):
            FREState(comparison, **wrong)


def test_drilldown_shows_the_pairs_values_quartiles_and_split(comparison):
    from latentatlas.viz import DrillDown

    view = DrillDown(comparison, metric="gfre", pair=PAIR[::-1])
    expected = comparison["gfre_pointwise"].sel(source=PAIR[1], target=PAIR[0]).values
    assert np.array_equal(view.points.data["error"], expected)
    test_atoms = comparison["test_atom"].values
    assert np.array_equal(view.points.data["x"], comparison["pca"].sel(source=PAIR[1]).values[test_atoms, 0])
    subset = comparison["subset"].values[comparison["atom_structure"].values[test_atoms]]
    for k, name in enumerate(view.box.data["subset"]):
        q1, q2, q3 = np.percentile(expected[subset == name], [25, 50, 75])
        assert np.allclose([view.box.data["q1"][k], view.box.data["q2"][k], view.box.data["q3"][k]], [q1, q2, q3])
    view.state.pair = PAIR
    assert np.array_equal(view.points.data["error"], comparison["gfre_pointwise"].sel(source=PAIR[0], target=PAIR[1]).values)
    # the heading names the pair and the split the values come from, beside the matrix's mean over splits
    assert view.heading.text.startswith(f"<b>{PAIR[0]}</b> → <b>{PAIR[1]}</b>: GFRE of each test atom (target σ)")
    assert "251 test atoms of split 1 of 3, seed 0x5f3759df (the matrix shows the mean over all 3)" in view.heading.text
    # the browser-side store holds every pair, keyed by position in the source list
    names = list(comparison["source"].values)
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            assert np.array_equal(view.store.data[f"e{i}_{j}"], comparison["gfre_pointwise"].sel(source=s, target=t).values)
    # selecting samples opens the structure of the worst one among them
    picked = [0, 1, 2]
    view.points.selected.indices = picked
    worst = picked[int(np.argmax(np.asarray(view.points.data["error"])[picked]))]
    assert view.state.selection == picked
    assert view.state.structure == comparison["atom_structure"].values[test_atoms[worst]]


def test_drilldown_map_axes_and_colour_are_the_users_choice(comparison):
    from latentatlas.viz import DrillDown
    from latentatlas.viz.fre.state import VALUE, pc_name

    view = DrillDown(comparison, pair=PAIR)
    test_atoms = comparison["test_atom"].values
    assert view.state.param.map_x.objects == [VALUE, pc_name(0), pc_name(1), "species", "n_atoms"]
    view.state.param.update(map_x=pc_name(1), map_y=VALUE, map_colour="n_atoms")
    assert np.array_equal(view.points.data["x"], comparison["pca"].sel(source=PAIR[0]).values[test_atoms, 1])
    assert np.array_equal(view.points.data["y"], view.points.data["error"])
    n_atoms = comparison["n_atoms"].values[comparison["atom_structure"].values[test_atoms]]
    assert np.array_equal(view.points.data["colour"], n_atoms)
    assert view.map.xaxis.axis_label == pc_name(1) and view.map.yaxis.axis_label == "GFRE of the pair"
    assert view.colorbar.title == "n_atoms" and (view.mapper.low, view.mapper.high) == (0.0, np.sort(n_atoms)[
        int(np.floor(0.98 * (n_atoms.size - 1)))])
    # the browser runs the same table: its callback holds the columns Python just applied
    assert view.follows[0].callback.args["follows"][0]["columns"] == {
        "error": "e{i}_{j}", "x": "pc1_{i}", "y": "e{i}_{j}", "colour": "prop_n_atoms"}


def test_a_click_runs_the_same_declared_step_in_python_and_in_the_browser(comparison):
    from bokeh.models import CustomJS

    from latentatlas.viz import Atlas
    from latentatlas.viz.fre.links import CELL_TO_PAIR, pair_from_cell

    atlas = Atlas(comparison)
    cells = atlas.matrix.source
    (click,) = cells.selected.js_property_callbacks["change:indices"]
    assert click.args["fields"] == CELL_TO_PAIR and click.args["state"] is atlas.state.browser
    (follow, box) = atlas.state.browser.js_property_callbacks["change:data"]
    assert isinstance(follow, CustomJS) and follow.args["follows"][0]["target"] is atlas.drill.points
    assert box.args["follows"][0]["target"] is atlas.drill.box
    k = list(zip(cells.data["source"], cells.data["target"])).index(PAIR)
    assert pair_from_cell(cells, k) == {"source": [PAIR[0]], "target": [PAIR[1]], "i": [6], "j": [0]}
    cells.selected.indices = [k]  # what the browser sends back after a click
    assert atlas.state.pair == PAIR and dict(atlas.state.browser.data) == pair_from_cell(cells, k)
    for column, template in follow.args["follows"][0]["columns"].items():
        assert np.array_equal(atlas.drill.points.data[column], atlas.drill.store.data[template.format(i=6, j=0)])
    # no plot title or tag carries state
    for fig in (atlas.matrix.figure, atlas.drill.map, atlas.drill.strip):
        assert PAIR[0] not in (fig.title.text or "") and fig.tags == []


def test_structure_level_drilldown_runs_over_structures(structure_comparison):
    from latentatlas.viz import Atlas

    atlas = Atlas({"structure level": structure_comparison})
    assert atlas.drill.points.data["element"][0] == "-"
    assert np.array_equal(atlas.drill.points.data["structure"], structure_comparison["test_structure"].values)
    assert atlas.viewer.atom_errors is None and atlas.viewer.structure_errors is not None  # one error per structure
    assert "27 test structures of split 1 of 3" in atlas.drill.heading.text


def test_atlas_links_matrix_drilldown_and_structure(comparison):
    from latentatlas.viz import Atlas

    atlas = Atlas(comparison)
    assert atlas.drill.heading.text.startswith("<b>{}</b> → <b>{}</b>".format(*atlas.state.pair))
    atlas.state.pair = PAIR
    errors = atlas.viewer.atom_errors
    test_atoms = comparison["test_atom"].values
    assert np.array_equal(errors[test_atoms], comparison["gfre_pointwise"].sel(source=PAIR[0], target=PAIR[1]).values)
    assert np.isnan(np.delete(errors, test_atoms)).all()
    assert atlas.viewer.error_label == f"GFRE {PAIR[0]} → {PAIR[1]}"
    atlas.drill.points.selected.indices = [5]
    assert atlas.viewer.structure == comparison["atom_structure"].values[test_atoms[5]]
    atlas.state.metric = "gfrd"
    assert atlas.matrix.source.data["value"].max() == comparison["gfrd"].values.max()
    assert "GFRD" in atlas.viewer.error_label
    # removing a feature set of the selected pair moves every view off it
    atlas.state.sources = [s for s in atlas.state.sources if s != PAIR[0]]
    assert PAIR[0] not in atlas.state.pair and PAIR[0] not in atlas.viewer.error_label
    assert atlas.state.browser.data["source"][0] == atlas.state.pair[0]
    assert atlas.drill.heading.text.startswith(f"<b>{atlas.state.pair[0]}</b>")


def test_atlas_shows_other_measures_with_a_model_map(comparison):
    from latentatlas.viz import Atlas
    from latentatlas.viz.fre.data import default_pair

    atlas = Atlas(comparison)
    assert atlas.state.param.metric.objects == ["gfre", "gfrd", "lfre", "cka", "procrustes", "mknn"]
    atlas.state.metric = "cka"
    assert atlas.matrix.source.data["value"].min() == comparison["cka"].values.min()
    # CKA has no per-sample form: the drill-down keeps the pair on GFRE and says so
    assert atlas.state.drill_metric == "gfre" and "no per-sample form" in atlas._drill_note.object
    assert atlas._map.visible and "Model map from linear CKA" in atlas._map.object.title.text
    assert atlas._map.object.name == "model_map"
    np.testing.assert_array_equal(atlas._map.object.renderers[0].data_source.data["x"],
                                  comparison["cka_map"].sel(axis=0).values)
    atlas.state.metric = "mknn"
    assert atlas.state.drill_metric == "mknn" and atlas._drill_note.object == ""
    assert "mutual k-NN" in atlas.viewer.error_label
    # the least similar pair (smallest shared fraction) is the default cell
    values = comparison["mknn"].values.copy()
    np.fill_diagonal(values, np.inf)
    i, j = np.unravel_index(np.argmin(values), values.shape)
    assert default_pair(comparison, "mknn") == (str(comparison.source.values[i]), str(comparison.target.values[j]))


def test_units_and_help_agree_and_gfrd_diagonal_is_explained(comparison):
    from latentatlas.viz import Atlas
    from latentatlas.viz.fre.data import metric_unit
    from latentatlas.viz.fre.help import metric_help

    atlas = Atlas(comparison)
    help_text = metric_help(atlas.state.param.metric.objects)
    for metric, unit in [("gfre", "target σ"), ("lfre", "target σ"), ("gfrd", "dimensionless")]:
        atlas.state.metric = metric
        assert metric_unit(metric) == unit and atlas.matrix.colorbar.title.endswith(f"({unit})")
        assert atlas.drill.colorbar.title.endswith(f"({unit})")
        label = atlas.matrix.colorbar.title.split(" (")[0]
        assert f"- **{label}** ({unit})" in help_text
    notes = dict(zip(zip(atlas.matrix.source.data["source"], atlas.matrix.source.data["target"]),
                     atlas.matrix.source.data["notes"]))
    assert all("GFRD(A, A) > 0" in notes[(s, s)] for s in atlas.state.sources)
    assert "GFRD(A, A) > 0" not in notes[PAIR]
    assert "GFRD(A, A) is not 0" in help_text
    assert atlas.matrix.colorbar.formatter.args == {"low": "better", "high": "worse"}
    atlas.state.metric = "mknn"  # a similarity: the high end is the better one
    assert atlas.matrix.colorbar.formatter.args == {"low": "worse", "high": "better"}


def test_downloads_hold_the_matrix_shown_and_the_selection(comparison, tmp_path):
    import pandas as pd

    from latentatlas.viz import Atlas

    atlas = Atlas(comparison, metric="lfre")
    atlas.state.sources = list(atlas.state.sources)[:3]
    table = pd.read_csv(atlas.matrix._csv())
    assert len(table) == 9 and list(table.columns) == ["source", "target", "lfre", "lfre_std_over_splits"]
    for row in table.itertuples():
        assert np.isclose(row.lfre, comparison["lfre"].sel(source=row.source, target=row.target).item(), rtol=1e-8)
    (tmp_path / "m.nc").write_bytes(atlas.matrix._netcdf().read())
    matrix = xr.open_dataset(tmp_path / "m.nc").load()
    np.testing.assert_array_equal(matrix["lfre"].values, comparison["lfre"].sel(
        source=atlas.state.sources, target=atlas.state.sources).values)
    assert matrix["lfre"].attrs["n_splits"] == 3 and "latentatlas_kind" not in matrix.attrs
    assert "lfre_pointwise" not in matrix and "lfre_std" in matrix
    atlas.drill.points.selected.indices = [4, 9]
    picked = pd.read_csv(atlas.drill._selection_csv())
    column = f"lfre {atlas.state.pair[0]} -> {atlas.state.pair[1]}"
    assert atlas.state.drill_metric == "lfre" and list(picked["sample"]) == list(comparison["test_atom"].values[[4, 9]])
    np.testing.assert_allclose(picked[column], comparison["lfre_pointwise"].sel(
        source=atlas.state.pair[0], target=atlas.state.pair[1]).values[[4, 9]], rtol=1e-6)


def test_upload_bad_file_shows_message_and_good_file_replaces_data(tmp_path, comparison, features):
    from latentatlas.viz import Atlas

    atlas = Atlas(comparison)
    atlas._upload.filename = "notes.nc"
    atlas._upload.value = b"this is not netCDF"
    assert atlas._message.visible and "Could not open notes.nc" in atlas._message.object
    assert "not a readable netCDF file" in atlas._message.object
    assert "notes.nc is not" in atlas._message.object and "/tmp" not in atlas._message.object

    save(features.drop_vars(["toy:a", "toy:b"]), tmp_path / "one.nc")
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

    save(features.drop_vars("toy:c"), tmp_path / "features.nc")
    (level, ds), = comparison_from_file(tmp_path / "features.nc").items()
    assert level == "atom level"
    assert list(ds["source"].values) == ["toy:a", "toy:b"]


def test_export_is_self_contained_and_atomic(tmp_path, levels, comparison):
    from latentatlas.viz.export import export_html

    path = export_html(levels, tmp_path / "r.html", max_structures=5)
    html = path.read_text()
    assert "cdn.holoviz.org" not in html and "cdn.bokeh.org" not in html
    tab = "{} \\u00b7 {}"  # tab titles sit JSON-escaped in the embedded document
    assert tab.format("GFRE", "structure level (cumulants \\u03ba1\\u2026\\u03ba2)") in html
    assert tab.format("LFRE", "atom level") in html
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


def test_heatmap_marks_flagged_cells_and_plots_the_learning_curve(features):
    from latentatlas.compare import compare, learning_curve
    from latentatlas.diagnostics import cell_marks
    from latentatlas.viz import FREMatrix

    comparison = compare(features, metrics=("gfre", "lfre"), n_splits=2, n_local_points=20, progress=False)
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
    assert view._curve_pane.visible
    view.state.metric = "lfre"  # no learning curve for LFRE in this file: the plot hides
    assert not view._curve_pane.visible and len(view.curve.data["value"]) == 0



def test_template_holds_the_same_views_with_the_controls_in_its_sidebar(comparison):
    from latentatlas.viz import Atlas

    atlas = Atlas(comparison)
    template = atlas.template()
    assert atlas._level_widget in template.sidebar.objects and atlas._upload in template.sidebar.objects
    assert atlas._views in template.main[0].objects
