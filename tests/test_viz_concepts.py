"""The concept app's viewers on the shipped biased shapes analysis and on a real per-atom analysis, no browser."""

from __future__ import annotations

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from latentatlas.concepts import examples, knowledge_graph, spurious_correlations  # noqa: E402
from latentatlas.io import load, save  # noqa: E402
from latentatlas.viz.concepts.layout import AGREEMENT_COLOURS, WIDTHS  # noqa: E402
from latentatlas.viz.concepts.data import (  # noqa: E402
    builtin_concepts_path,
    check_concepts,
    example_images,
    graph_tables,
    load_concepts,
    profiles,
)


@pytest.fixture(scope="module")
def result():
    return load_concepts(builtin_concepts_path())


def test_builtin_result_is_small_and_flags_the_planted_link(result):
    assert builtin_concepts_path().stat().st_size < 1_000_000
    assert bool(spurious_correlations(result).sel(layer="head", concept="background=purple", **{"class": "circle"}))


def test_graph_tables_follow_the_knowledge_graph_at_every_layer(result):
    tables = graph_tables(result)
    flagged = spurious_correlations(result)
    for layer, t in tables.items():
        G = knowledge_graph(result, layer=layer)
        p = t["presence"]
        assert len(p["model"]) == result.sizes["concept"] * result.sizes["class"]
        for k, c, model, colour, spurious in zip(p["concept"], p["class"], p["model"], p["color"], p["spurious"]):
            edge = G.edges[f"class:{c}", f"concept:{k}"]
            assert model == edge["weight"] == float(result["model_presence"].sel(layer=layer, concept=k, **{"class": c}))
            assert colour == AGREEMENT_COLOURS[edge["agreement"]]
            assert spurious == int(flagged.sel(layer=layer, concept=k, **{"class": c}))
        assert t["nodes"]["id"] == list(G.nodes)  # the same order at every layer: a switch swaps columns only
        # edge widths span the model presences over all layers (not 0.5 + 7 * presence: all alike)
        low, high = float(result["model_presence"].min()), float(result["model_presence"].max())
        np.testing.assert_allclose(p["width"], WIDTHS[0] + (WIDTHS[1] - WIDTHS[0]) * (np.array(p["model"]) - low) / (high - low))
    assert sum(tables["head"]["presence"]["spurious"]) >= 1


def test_profiles_read_the_result(result):
    p = profiles(result)
    assert set(p) == {f"{kind}:{v}" for kind in ("layer", "concept", "class") for v in result[kind].values.astype(str)}
    lines = p["concept:background=purple"]["lines"]
    k = lines["label"].index("probe accuracy")
    np.testing.assert_array_equal(lines["ys"][k], result["probe_accuracy"].sel(concept="background=purple").values)
    k = lines["label"].index("dataset presence in circle")
    assert lines["dash"][k] == "dashed"
    assert set(lines["ys"][k]) == {float(result["dataset_presence"].sel(concept="background=purple", **{"class": "circle"}))}
    # the planted concept leads the circle profile's excess lines: it is the flagged one
    assert p["class:circle"]["lines"]["label"][1] == "excess of background=purple"
    assert len(p["class:circle"]["points"]["x"]) == sum(len(xs) for xs in p["class:circle"]["lines"]["xs"])


def test_tap_on_node_updates_profile_examples_and_layer(result):
    from latentatlas.viz import ConceptAtlas

    app = ConceptAtlas(result)
    state = app.state
    assert (state.layer, state.node) == ("head", "concept:background=purple")
    assert app.profile.figure.title.text.startswith("Concept background=purple")
    # what a tap in the browser does, by the same declaration the browser runs
    app.graph.tap("class:square")
    assert state.node == "class:square" and state.class_name == "square"
    np.testing.assert_array_equal(app.profile.lines.data["ys"][0], result["class_accuracy"].sel({"class": "square"}).values)
    assert "held-out `square` samples" in app.examples._caption.object
    app.graph.tap("layer:block2")
    assert state.layer == "block2" and state.node == "layer:block2"
    assert app.graph.select.value == "block2" and app.heatmap.band.data["layer"] == ["block2"]
    assert app.graph.presence.data["model"] == graph_tables(result)["block2"]["presence"]["model"]
    assert "the `block2` probe" in app.examples._caption.object
    # a cell of the heatmap: its layer and concept
    app.heatmap.tap("head", "colour=red")
    assert (state.layer, state.node, state.concept) == ("head", "concept:colour=red", "colour=red")
    assert app.graph.nodes.selected.indices == [list(app.graph.nodes.data["id"]).index("concept:colour=red")]
    # the heatmap's toggle
    state.show = "sensitivity"
    assert app.heatmap.toggle.active == 1 and app.heatmap.figure.title.text.startswith("Sensitivity")


def test_a_choice_made_in_the_browser_is_mirrored_not_sent_back(result):
    """The browser draws its own choices: Python takes them into the state and redraws only server-side views."""
    from latentatlas.viz import ConceptAtlas
    from latentatlas.viz.concepts.state import StateModel

    app = ConceptAtlas(result)
    twin = app.state._link.model
    assert isinstance(twin, StateModel) and (twin.layer, twin.node) == ("head", "concept:background=purple")
    shown = dict(app.graph.presence.data)
    twin.layer = "block1"  # as the browser's change arrives at the server
    assert app.state.layer == "block1" and "the `block1` probe" in app.examples._caption.object
    assert app.graph.presence.data == shown and app.graph.select.value == "head"  # nothing to send back
    # a change made in Python reaches the twin (and so the browser) and is drawn by Python
    app.state.layer = "block2"
    assert twin.layer == "block2" and app.graph.select.value == "block2"


def test_views_declare_what_the_browser_runs(result):
    """Every view's browser callbacks come from its declarations: one twin per state, tables as in Python."""
    import json

    from bokeh.models import CustomJS

    from latentatlas.viz import ConceptAtlas

    app = ConceptAtlas(result)
    twin = app.state._link.model
    callbacks = {p: [cb for cb in cbs if isinstance(cb, CustomJS)] for p, cbs in twin.js_property_callbacks.items()}
    assert set(callbacks) == {"change:layer", "change:node", "change:show"}
    tables = {(cb.args["model"].id, cb.args["attr"]): json.loads(cb.args["table_json"]) for cb in callbacks["change:layer"]}
    assert tables[app.graph.presence.id, "data"]["block3"]["model"] == graph_tables(result)["block3"]["presence"]["model"]
    assert tables[app.heatmap.band.id, "data"]["block1"] == {"layer": ["block1"]}
    # the graph's tap tool and selector, the heatmap's tap tool and toggle all set the same twin
    picks = [app.graph.select.js_property_callbacks["change:value"][0], app.heatmap.toggle.js_property_callbacks["change:active"][0]]
    taps = [t.callback for v in (app.graph, app.heatmap) for t in v.figure.tools if getattr(t, "callback", None)]
    assert len(taps) == 2 and all(cb.args["state"] is twin for cb in picks + taps)


def test_examples_are_the_ranked_held_out_images(result):
    from latentatlas.viz import ConceptExamples

    view = ConceptExamples(result, concept="background=purple", class_name="circle", layer="head", n=5)
    idx, proba, label = view.ranked()
    np.testing.assert_array_equal(idx, examples(result, "background=purple", "circle", layer="head", n=5))
    assert np.all(np.diff(proba) <= 0) and set(result["sample_class"].sel(sample=idx).values) == {"circle"}
    images = example_images(result, idx)
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
    # the redrawn background is the labelled one: purple corners exactly where the label says so
    # (bottom left: the watermark patch may sit at the top left)
    from latentatlas.demos.shapes import BACKGROUNDS

    purple = np.round(np.array(BACKGROUNDS["purple"]) * 255)
    corner = images[:, -2:, :2].reshape(5, -1, 3).mean(1)
    assert np.array_equal(np.abs(corner - purple).max(1) < 40, label)
    figure = view._body.objects[0].object
    assert len(figure.renderers[0].data_source.data["image"]) == 5


def test_compact_refuses_images_it_cannot_redraw(tmp_path):
    from latentatlas.demos.shapes import QUICK, shapes_demo
    from latentatlas.demos.concepts import compact

    full = shapes_demo(0.9, progress=False, n_permutations=2, epochs=1, **QUICK)
    small = compact(full)
    assert "image" not in small and small["probability"].dtype == np.float32
    np.testing.assert_array_equal(example_images(small, full["sample"].values[:7]),
                                  full["image"].values[:7].transpose(0, 2, 3, 1))
    tampered = full.copy()
    tampered["image"] = full["image"].copy(data=full["image"].values[::-1])
    with pytest.raises(ValueError, match="does not redraw the stored images"):
        compact(tampered)


def test_bad_input_names_the_problem(result, tmp_path):
    from latentatlas.viz import ConceptAtlas
    from latentatlas.viz.fre.data import demo_comparison_paths

    with pytest.raises(ValueError, match="is a comparison result, not a concepts result"):
        check_concepts(load(demo_comparison_paths()[0]))
    with pytest.raises(ValueError, match="holds no probe accuracies"):
        check_concepts(result.drop_vars("probe_accuracy"))
    with pytest.raises(ValueError, match=r"lacks \['probability'\]"):
        check_concepts(result.drop_vars("probability"))
    with pytest.raises(ValueError, match="not an xarray.Dataset"):
        check_concepts({"probe_accuracy": 1})
    bad = tmp_path / "bad.nc"
    bad.write_text("not netCDF")
    with pytest.raises(ValueError, match="not a readable netCDF file"):
        load_concepts(bad)
    # an upload in the page: a message, and the app keeps its result
    app = ConceptAtlas(result)
    app._upload.filename = "bad.nc"
    app._upload.value = b"not netCDF"
    assert app._message.visible and "Could not open bad.nc" in app._message.object
    assert app.result is result and app.state.result is result


def test_cli_export_and_show_detect_a_concept_result(result, tmp_path, capsys):
    from latentatlas import show
    from latentatlas.cli import main
    from latentatlas.viz import Atlas, ConceptAtlas

    out = tmp_path / "concepts.html"
    assert main(["export", str(builtin_concepts_path()), "--html", str(out)]) == 0
    html = out.read_text()
    assert '"concept_graph"' in html and "cdn.holoviz.org" not in html
    assert isinstance(show(result), ConceptAtlas) and isinstance(show(builtin_concepts_path()), ConceptAtlas)
    assert isinstance(show(), Atlas)
    two = [str(builtin_concepts_path())] * 2
    assert main(["export", *two, "--html", str(tmp_path / "x.html")]) == 2
    assert "at most one concept result" in capsys.readouterr().err
    broken = result.drop_vars("sample_class")
    save(broken, tmp_path / "broken.nc")
    assert main(["export", str(tmp_path / "broken.nc"), "--html", str(tmp_path / "y.html")]) == 2
    assert "lacks ['sample_class']" in capsys.readouterr().err
    assert not (tmp_path / "y.html").exists()


def test_atoms_result_shows_the_structure_of_the_top_atom():
    from latentatlas.concepts.atoms import analyse_atoms
    from latentatlas.features import get_featurizer
    from latentatlas.structures import builtin_frames
    from latentatlas.viz import ConceptAtlas, ConceptExamples

    frames = builtin_frames(small=True)
    features = get_featurizer("soap").featurize(frames, progress=False)
    atoms_result = analyse_atoms(features, frames, n_permutations=2)
    view = ConceptExamples(atoms_result, concept="metal", class_name=str(atoms_result["class"].values[0]),
                           layer=str(atoms_result["layer"].values[0]))
    assert (view.state.concept, view.state.layer) == ("metal", str(atoms_result["layer"].values[0]))
    idx, proba, _ = view.ranked()
    structure, colours = view.shown
    assert structure == int(atoms_result["sample_structure"].sel(sample=idx[0]))
    first = sum(len(a) for a in frames[:structure])
    assert colours[idx[0] - first] == proba[0] == np.nanmax(colours)
    held_out = atoms_result["sample"].values[atoms_result["sample_structure"].values == structure] - first
    assert np.isfinite(colours).sum() == len(held_out) and np.isfinite(colours[held_out]).all()
    assert ConceptAtlas(atoms_result).examples.frames is not None  # found by fingerprint


def test_upload_gives_a_new_state_and_leaves_other_sessions_alone(result, tmp_path):
    from latentatlas.viz import ConceptAtlas

    app, other = ConceptAtlas(result), ConceptAtlas(result)
    two_layers = save(result.isel(layer=[0, 1]), tmp_path / "two_layers.nc")
    app._upload.filename = "two_layers.nc"
    app._upload.value = two_layers.read_bytes()
    assert not app._message.visible
    assert app.state.param.layer.objects == ["block1", "block2"] == app.graph.select.options
    assert app.state.layer in ("block1", "block2") and app.graph.presence.data["model"]
    assert other.state.param.layer.objects == ["block1", "block2", "block3", "head"]
    other.state.layer = "block3"  # the other session's state still accepts its own layers
    assert other.graph.select.value == "block3"


def test_template_puts_the_upload_in_the_sidebar_and_the_views_in_the_main_area(result):
    from latentatlas.viz import ConceptAtlas

    app = ConceptAtlas(result)
    template = app.template()
    assert isinstance(template, pn.template.BootstrapTemplate)
    assert app._upload in template.sidebar.objects
    assert any(app._views in getattr(o, "objects", []) for o in template.main.objects)
    # the plain layout has the upload too, but not in a static report (no server to read the file)
    assert app.__panel__().select(pn.widgets.FileInput) == [app._upload]
    assert ConceptAtlas(result, static=True).__panel__().select(pn.widgets.FileInput) == []
