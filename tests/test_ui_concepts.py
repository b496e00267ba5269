"""The concept app served for real (``panel serve app/concepts.py``) and its static export, in headless Chromium.

Screenshots go to ``test-artifacts/concepts-*.png``.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("playwright")

from _ui import (  # noqa: E402
    ARTIFACTS,
    DEEP_ALL,
    FIND_PLOT,
    LOCAL,
    OFFLINE,
    ROOT,
    UI_MARKS,
    Watch,
    browser_context_args,  # noqa: F401  (fixture)
    browser_type_launch_args,  # noqa: F401  (fixture)
    click_plot,
    PLOT_XY,
    free_port,
    panel_serve,
    wait_http,
)

from latentatlas import data as shipped  # noqa: E402

pytestmark = UI_MARKS

GRAPH = "Knowledge graph at layer "  # the graph's title says which layer it shows
# The graph's node, edge and profile data as the browser holds them.
STATE = """() => {
    const named = """ + FIND_PLOT + """;
    const graph = named('concept_graph'), profile = named('concept_profile'), heat = named('concept_heatmap');
    const src = (view, column) => view.model.renderers.map((r) => r.data_source).find((s) => s.data[column] !== undefined);
    const nodes = src(graph, 'id'), presence = src(graph, 'spurious'), lines = src(profile, 'xs');
    return {graph: graph.model.title.text, profile: profile.model.title.text,
            id: Array.from(nodes.data.id), x: Array.from(nodes.data.x), y: Array.from(nodes.data.y),
            selected: Array.from(nodes.selected.indices),
            edges: {concept: Array.from(presence.data.concept), cls: Array.from(presence.data['class']),
                    model: Array.from(presence.data.model), spurious: Array.from(presence.data.spurious)},
            lines: {label: Array.from(lines.data.label), ys: Array.from(lines.data.ys, (y) => Array.from(y))},
            band: heat.model.renderers.map((r) => r.data_source).find((s) => s.data.layer?.length == 1).data.layer[0]};
}"""
TEXT = f"() => ({DEEP_ALL})('.markdown, .bk-panel-models-markup-HTML, p').map((e) => e.textContent).join(' ')"


@pytest.fixture(scope="module")
def server():
    with panel_serve("app/concepts.py") as url:
        yield url


@pytest.fixture(scope="module")
def result():
    from latentatlas.viz.concepts.data import builtin_concepts_path, load_concepts

    return load_concepts(builtin_concepts_path())


def open_app(page, url):
    page.goto(url)
    # the views render one by one: until all have, reading their state throws
    page.wait_for_function(f"() => {{ try {{ return ({STATE})().id.length > 0; }} catch (e) {{ return false; }} }}",
                           timeout=60_000)


def tap_node(page, state, node):
    k = state["id"].index(node)
    click_plot(page, "concept_graph", state["x"][k], state["y"][k])


def check_class_profile(state, result, cls):
    assert state["profile"].startswith(f"Class {cls} across layers")
    k = state["lines"]["label"].index("class-probe accuracy")
    np.testing.assert_allclose(state["lines"]["ys"][k], result["class_accuracy"].sel({"class": cls}).values, rtol=1e-9)


def check_layer(state, result, layer):
    from latentatlas.concepts import spurious_correlations

    assert state["graph"].startswith(f"{GRAPH}{layer}:") and state["band"] == layer
    at = result.sel(layer=layer)
    model = [float(at["model_presence"].sel(concept=k, **{"class": c})) for k, c in zip(state["edges"]["concept"],
                                                                                          state["edges"]["cls"])]
    np.testing.assert_allclose(state["edges"]["model"], model, rtol=1e-9)
    flagged = spurious_correlations(result).sel(layer=layer)
    assert state["edges"]["spurious"] == [int(flagged.sel(concept=k, **{"class": c}))
                                          for k, c in zip(state["edges"]["concept"], state["edges"]["cls"])]


def settle_on_layer(page, layer):
    """Wait until the server has taken ``layer`` (its examples say so) and the page shows it.

    The browser switches the layer at once; under load the server's echo of an earlier
    selection can still arrive afterwards and briefly switch it back, so the page is read
    only after the server has caught up.
    """
    page.wait_for_function(f"() => ({TEXT})().includes('that the {layer} probe')", timeout=30_000)
    page.wait_for_function(f"() => ({STATE})().graph.startsWith({GRAPH + layer + ':'!r})", timeout=10_000)


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)  # no hover tooltip over the pictures
    page.wait_for_timeout(300)
    page.screenshot(path=ARTIFACTS / f"{name}-full.png", full_page=True)


def test_served_tap_node_shows_profile_and_layer_change_updates_views(page, server, result):
    watch = Watch(page)
    open_app(page, server)
    state = page.evaluate(STATE)
    # opens on the planted spurious link of the biased run, flagged in the graph at the head layer
    assert state["profile"].startswith("Concept background=purple across layers")
    check_layer(state, result, "head")
    k = [i for i, (c, s) in enumerate(zip(state["edges"]["cls"], state["edges"]["concept"]))
         if (c, s) == ("circle", "background=purple")][0]
    assert state["edges"]["spurious"][k] == 1

    tap_node(page, state, "class:square")
    page.wait_for_function(f"() => ({STATE})().profile.startsWith('Class square')", timeout=10_000)
    check_class_profile(page.evaluate(STATE), result, "square")
    # the server hears the tap: the examples now show squares
    page.wait_for_function(f"() => ({TEXT})().includes('held-out square samples')", timeout=15_000)

    # a layer node picks that layer: graph edges, heatmap outline and (server side) the examples follow
    tap_node(page, page.evaluate(STATE), "layer:block2")
    settle_on_layer(page, "block2")
    check_layer(page.evaluate(STATE), result, "block2")

    # the layer selector does the same
    page.get_by_label("Layer", exact=True).select_option("block3")
    settle_on_layer(page, "block3")
    check_layer(page.evaluate(STATE), result, "block3")
    screenshot(page, "concepts-served")
    assert watch.errors == []
    assert watch.outside(LOCAL) == []


def test_bad_upload_shows_message(page, server):
    watch = Watch(page)
    open_app(page, server)
    comparison = (shipped.folder() / "demo_comparison.nc").read_bytes()
    for name, data, why in [("broken.nc", b"definitely not netCDF", "is not a readable netCDF file"),
                            ("comparison.nc", comparison, "is a comparison result, not a concepts result")]:
        page.locator("input[type=file]").set_input_files(
            files=[{"name": name, "mimeType": "application/x-netcdf", "buffer": data}])
        page.get_by_text(f"Could not open {name}").wait_for(timeout=15_000)
        page.get_by_text(why).wait_for(timeout=1_000)
    assert page.evaluate(STATE)["id"]  # the graph is still there
    assert watch.errors == []


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """``latentatlas export`` of the built-in concept result."""
    path = tmp_path_factory.mktemp("export") / "concepts.html"
    subprocess.run([Path(sys.executable).parent / "latentatlas", "export", str(shipped.folder() / "demo_concepts_shapes.nc"),
                    "--html", str(path)], cwd=ROOT, check=True)
    return path


def test_static_export_offline_tap_and_layer(page, report, result):
    watch = Watch(page)
    open_app(page, report.as_uri())
    tap_node(page, page.evaluate(STATE), "class:triangle")
    page.wait_for_function(f"() => ({STATE})().profile.startsWith('Class triangle')", timeout=10_000)
    check_class_profile(page.evaluate(STATE), result, "triangle")
    page.get_by_label("Layer", exact=True).select_option("block1")
    page.wait_for_function(f"() => ({STATE})().graph.startsWith({GRAPH + 'block1:'!r})", timeout=10_000)
    check_layer(page.evaluate(STATE), result, "block1")
    screenshot(page, "concepts-static")
    assert watch.errors == []
    assert watch.outside(OFFLINE) == []


# The heatmap's cells as the browser holds them.
CELLS = """() => {
    const heat = (""" + FIND_PLOT + """)('concept_heatmap');
    const cells = heat.model.renderers.map((r) => r.data_source).find((s) => s.data.value !== undefined);
    return {title: heat.model.title.text, value: Array.from(cells.data.value), label: Array.from(cells.data.label),
            layer: Array.from(cells.data.layer), concept: Array.from(cells.data.concept)};
}"""


def test_static_export_sensitivity_toggle_and_why_flagged(page, report, result):
    """Offline: the heatmap switches to sensitivity; a flagged edge's hover says which conditions held."""
    from latentatlas.concepts.graph import rule_conditions, why
    from latentatlas.viz.concepts.data import sensitivity_cells

    watch = Watch(page)
    open_app(page, report.as_uri())
    before = page.evaluate(CELLS)
    np.testing.assert_allclose(before["value"], result["probe_accuracy"].transpose("layer", "concept").values.ravel())
    page.get_by_role("button", name="sensitivity").click()
    page.wait_for_function(f"() => ({CELLS})().title.startsWith('Sensitivity per layer')", timeout=10_000)
    after = page.evaluate(CELLS)
    expected = sensitivity_cells(result)
    np.testing.assert_allclose(after["value"], expected["sens_value"], rtol=1e-9)
    assert after["label"] == expected["sens_label"].tolist()
    assert (after["layer"], after["concept"]) == (before["layer"], before["concept"])
    screenshot(page, "concepts-sensitivity")
    page.get_by_role("button", name="probe accuracy").click()
    page.wait_for_function(f"() => ({CELLS})().title.startsWith('Probe balanced accuracy')", timeout=10_000)

    # hover the midpoint of the planted edge at the opening layer: the tooltip says why it is flagged
    state = page.evaluate(STATE)
    layer = state["graph"][len(GRAPH):].split(":")[0]
    ids = state["id"]
    concept, cls = ids.index("concept:background=purple"), ids.index("class:circle")
    mx, my = 0.5 * (state["x"][concept] + state["x"][cls]), 0.5 * (state["y"][concept] + state["y"][cls])
    x, y = page.evaluate(PLOT_XY, ["concept_graph", mx, my])
    page.mouse.move(x - 3, y, steps=3)
    page.mouse.move(x, y, steps=3)
    expected_why = why(rule_conditions(result).sel(layer=layer, concept="background=purple", **{"class": "circle"}))
    assert expected_why.startswith("flagged:")
    page.get_by_text(expected_why).first.wait_for(timeout=10_000)  # the tooltip (in Bokeh's shadow DOM)
    page.get_by_text("sensitivity (TCAV) / derivative").first.wait_for(timeout=1_000)
    assert watch.errors == []
    assert watch.outside(OFFLINE) == []


def test_cli_serve_serves_both_apps(page):
    port = free_port()
    proc = subprocess.Popen([Path(sys.executable).parent / "latentatlas", "serve", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/concepts", proc)
        assert "<title>latentatlas</title>" in urllib.request.urlopen(f"http://127.0.0.1:{port}/atlas", timeout=60).read().decode()
        watch = Watch(page)
        open_app(page, f"http://127.0.0.1:{port}/concepts")
        assert page.evaluate(STATE)["graph"].startswith(f"{GRAPH}head:")
        assert watch.errors == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
