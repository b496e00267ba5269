"""The concept app served for real (``panel serve app/concepts.py``) and its static export, in headless Chromium.

Screenshots go to ``test-artifacts/concepts-*.png``.
"""

from __future__ import annotations

import itertools
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

# The app's state as the browser holds it (its twin, a Bokeh model named concept_state) and the graph's
# node, edge and profile data and the heatmap's outlined row and layer selector that show it.
STATE = """() => {
    const named = """ + FIND_PLOT + """;
    const graph = named('concept_graph'), profile = named('concept_profile'), heat = named('concept_heatmap');
    const twin = Bokeh.documents.map((d) => d.get_model_by_name('concept_state')).find((m) => m != null);
    const select = Bokeh.documents.map((d) => d.get_model_by_name('concept_layer')).find((m) => m != null);
    const src = (view, column) => view.model.renderers.map((r) => r.data_source).find((s) => s.data[column] !== undefined);
    const nodes = src(graph, 'id'), presence = src(graph, 'spurious'), lines = src(profile, 'xs');
    return {layer: twin.layer, node: twin.node, select: select.value,
            id: Array.from(nodes.data.id), x: Array.from(nodes.data.x), y: Array.from(nodes.data.y),
            selected: Array.from(nodes.selected.indices),
            edges: {concept: Array.from(presence.data.concept), cls: Array.from(presence.data['class']),
                    model: Array.from(presence.data.model), spurious: Array.from(presence.data.spurious),
                    width: Array.from(presence.data.width)},
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
    # the views render one by one
    page.wait_for_function(f"() => window.Bokeh?.index != null && ['concept_graph', 'concept_profile', 'concept_heatmap']"
                           f".every((name) => ({FIND_PLOT})(name) != null)", timeout=60_000)


def tap_node(page, state, node):
    k = state["id"].index(node)
    click_plot(page, "concept_graph", state["x"][k], state["y"][k])


def check_class_profile(state, result, cls):
    assert state["node"] == f"class:{cls}" and state["selected"] == [state["id"].index(f"class:{cls}")]
    k = state["lines"]["label"].index("class-probe accuracy")
    np.testing.assert_allclose(state["lines"]["ys"][k], result["class_accuracy"].sel({"class": cls}).values, rtol=1e-9)


def check_layer(state, result, layer):
    from latentatlas.concepts import spurious_correlations

    assert state["layer"] == state["select"] == state["band"] == layer
    at = result.sel(layer=layer)
    model = [float(at["model_presence"].sel(concept=k, **{"class": c})) for k, c in zip(state["edges"]["concept"],
                                                                                          state["edges"]["cls"])]
    np.testing.assert_allclose(state["edges"]["model"], model, rtol=1e-9)
    flagged = spurious_correlations(result).sel(layer=layer)
    assert state["edges"]["spurious"] == [int(flagged.sel(concept=k, **{"class": c}))
                                          for k, c in zip(state["edges"]["concept"], state["edges"]["cls"])]


def settle_on_layer(page, layer):
    """Wait until the page shows ``layer`` and the server has taken it (its examples say so)."""
    page.wait_for_function(f"() => ({STATE})().layer == {layer!r}", timeout=10_000)
    page.wait_for_function(f"() => ({TEXT})().includes('that the {layer} probe')", timeout=30_000)


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
    assert state["node"] == "concept:background=purple"
    check_layer(state, result, "head")
    k = [i for i, (c, s) in enumerate(zip(state["edges"]["cls"], state["edges"]["concept"]))
         if (c, s) == ("circle", "background=purple")][0]
    assert state["edges"]["spurious"][k] == 1

    tap_node(page, state, "class:square")
    page.wait_for_function(f"() => ({STATE})().node == 'class:square'", timeout=10_000)
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
    page.wait_for_function(f"() => ({STATE})().node == 'class:triangle'", timeout=10_000)
    check_class_profile(page.evaluate(STATE), result, "triangle")
    page.get_by_label("Layer", exact=True).select_option("block1")
    page.wait_for_function(f"() => ({STATE})().layer == 'block1'", timeout=10_000)
    check_layer(page.evaluate(STATE), result, "block1")
    screenshot(page, "concepts-static")
    assert watch.errors == []
    assert watch.outside(OFFLINE) == []


# The heatmap's cells as the browser holds them.
CELLS = """() => {
    const heat = (""" + FIND_PLOT + """)('concept_heatmap');
    const cells = heat.model.renderers.map((r) => r.data_source).find((s) => s.data.value !== undefined);
    const twin = Bokeh.documents.map((d) => d.get_model_by_name('concept_state')).find((m) => m != null);
    return {show: twin.show, value: Array.from(cells.data.value), label: Array.from(cells.data.label),
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
    page.wait_for_function(f"() => ({CELLS})().show == 'sensitivity'", timeout=10_000)
    after = page.evaluate(CELLS)
    expected = sensitivity_cells(result)
    np.testing.assert_allclose(after["value"], expected["sens_value"], rtol=1e-9)
    assert after["label"] == expected["sens_label"].tolist()
    assert (after["layer"], after["concept"]) == (before["layer"], before["concept"])
    screenshot(page, "concepts-sensitivity")
    page.get_by_role("button", name="probe accuracy").click()
    page.wait_for_function(f"() => ({CELLS})().show == 'probe accuracy'", timeout=10_000)
    np.testing.assert_allclose(page.evaluate(CELLS)["value"], before["value"])

    # hover the midpoint of the planted edge at the opening layer: the tooltip says why it is flagged
    state = page.evaluate(STATE)
    layer = state["layer"]
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
        assert page.evaluate(STATE)["layer"] == "head"
        assert watch.errors == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# The layer each view shows, read from the data it draws: the graph's chosen (largest) layer node and
# the heatmap's outlined row, sampled every 10 ms into window.shownLayers whenever either changes.
RECORD_SHOWN = """() => {
    const named = """ + FIND_PLOT + """;
    const graph = named('concept_graph'), heat = named('concept_heatmap');
    const sources = (view) => view.model.renderers.map((r) => r.data_source);
    const shown = () => {
        const nodes = sources(graph).find((s) => s.data.kind !== undefined).data;
        let best = -1, layer = null;
        nodes.kind.forEach((kind, i) => { if (kind == 'layer' && nodes.size[i] > best) { best = nodes.size[i]; layer = nodes.label[i]; } });
        return layer + '|' + sources(heat).find((s) => s.data.layer?.length == 1).data.layer[0];
    };
    window.shownLayers = [shown()];
    setInterval(() => { const s = shown(); if (s != window.shownLayers.at(-1)) { window.shownLayers.push(s); } }, 10);
}"""

SLOW_APP = '''
"""The concept app on a server slowed down as under load: every change the browser sends takes 0.3 s to apply."""
import time

import panel as pn

from latentatlas.viz import ConceptAtlas
from latentatlas.viz.serving import local_resources

pn.extension()
local_resources()
ConceptAtlas().servable()
pn.state.onload(lambda: pn.state.curdoc.on_change(lambda event: time.sleep(0.3)))
'''


def test_served_layer_never_flickers_back_under_load(page, tmp_path):
    """Two layers chosen quickly on a slow server: once the views show the newer one, no late server echo of the
    older one ever replaces it (today's flicker)."""
    app = tmp_path / "slow_concepts.py"
    app.write_text(SLOW_APP)
    with panel_serve(str(app)) as url:
        watch = Watch(page)
        open_app(page, url)
        page.wait_for_function(f"() => ({TEXT})().includes('that the head probe')", timeout=60_000)
        page.wait_for_timeout(1500)  # let the page settle before recording
        page.evaluate(RECORD_SHOWN)
        layer = page.get_by_label("Layer", exact=True)
        layer.select_option("block2")
        layer.select_option("block1")
        # the server has caught up with both choices once its examples are ranked by block1
        page.wait_for_function(f"() => ({TEXT})().includes('that the block1 probe')", timeout=120_000)
        page.wait_for_timeout(2000)
        shown = page.evaluate("() => window.shownLayers")
        assert "block1|block1" in shown, shown
        assert shown[shown.index("block1|block1"):] == ["block1|block1"], f"the views went back after block1: {shown}"
        assert watch.errors == []


# Every entry of the concept graph's legends as drawn: its label, how many pixels its sample painted and the
# commonest colour of its opaque pixels that are not white (markers have a white outline); and the node size key
# (the renderer named node_size_key).
LEGENDS = """() => {
    const v = (""" + FIND_PLOT + """)('concept_graph');
    const entries = [];
    for (const legend of v.model.below.filter((m) => m.items !== undefined)) {
        for (const e of v.views.find_one(legend).entries) {
            const c = e.glyph.canvas, d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let painted = 0;
            const counts = new Map();
            for (let i = 0; i < d.length; i += 4) {
                if (d[i + 3] > 0) { painted++; }
                const white = d[i] > 240 && d[i + 1] > 240 && d[i + 2] > 240;
                if (d[i + 3] == 255 && !white) { const k = `${d[i]},${d[i + 1]},${d[i + 2]}`; counts.set(k, (counts.get(k) ?? 0) + 1); }
            }
            const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
            entries.push({legend: legend.name, label: e.label, painted, rgb: top ? top[0].split(',').map(Number) : null});
        }
    }
    const key = v.model.renderers.find((r) => r.name == 'node_size_key');
    return {entries, key: key ? {size: Array.from(key.data_source.data.size), visible: key.visible,
                                 y: Array.from(key.data_source.data.y), y0: v.model.y_range.start} : null};
}"""


def hex_rgb(colour: str) -> list[int]:
    return [int(colour[i:i + 2], 16) for i in (1, 3, 5)]


def test_spurious_legend_entry_has_a_line_sample(page, report):
    """At the opening layer (flagged edges) and at one without any flagged edge alike."""
    open_app(page, report.as_uri())
    for layer in ("head", "block3"):
        page.get_by_label("Layer", exact=True).select_option(layer)
        page.wait_for_timeout(500)
        entries = {e["label"]: e for e in page.evaluate(LEGENDS)["entries"]}
        spurious = entries["suspected spurious at this layer"]
        assert spurious["painted"] > 20 and np.abs(np.subtract(spurious["rgb"], hex_rgb("#d62728"))).max() < 30, spurious


def test_node_colours_and_sizes_have_a_legend(page, report):
    open_app(page, report.as_uri())
    drawn = page.evaluate(LEGENDS)
    # one entry per node kind, each painted in the colour its nodes are drawn in
    nodes = [e for e in drawn["entries"] if e["legend"] == "concept_node_legend"]
    colours = page.evaluate("""() => { const v = (""" + FIND_PLOT + """)('concept_graph');
        const d = v.model.renderers.map((r) => r.data_source).find((s) => s.data.kind !== undefined).data;
        return Object.fromEntries(d.kind.map((k, i) => [k, d.color[i]])); }""")
    assert sorted(e["label"].split(" ")[0] for e in nodes) == ["class", "concept", "layer"], drawn["entries"]
    for e in nodes:
        assert e["painted"] > 20 and np.abs(np.subtract(e["rgb"], hex_rgb(colours[e["label"].split(" ")[0]]))).max() < 30, e
    # node sizes: a key of concept nodes at increasing probe accuracy, drawn inside the plot
    key = drawn["key"]
    assert key is not None and key["visible"] and np.all(np.diff(key["size"]) > 0) and min(key["y"]) > key["y0"]


def test_edge_widths_span_the_presences(page, report, result):
    """52 class-concept edges: widths spread over the presences actually taken, the same scale at every layer."""
    open_app(page, report.as_uri())
    edges = """() => { const d = (""" + FIND_PLOT + """)('concept_graph').model.renderers.map((r) => r.data_source)
        .find((s) => s.data.spurious !== undefined).data;
        return {width: Array.from(d.width), concept: Array.from(d.concept), cls: Array.from(d['class'])}; }"""
    widths, presences = [], []
    for layer in ("head", "block1"):
        page.get_by_label("Layer", exact=True).select_option(layer)
        page.wait_for_timeout(500)
        shown = page.evaluate(edges)
        width = np.array(shown["width"])
        assert len(width) == result.sizes["concept"] * result.sizes["class"]
        assert width.max() / width.min() > 3 and width.max() - width.min() > 5, (layer, width.min(), width.max())
        widths.append(width)
        presences.append([float(result["model_presence"].sel(layer=layer, concept=k, **{"class": c}))
                          for k, c in zip(shown["concept"], shown["cls"])])
    order = np.argsort(np.concatenate(widths))
    assert np.all(np.diff(np.concatenate(presences)[order]) >= 0)  # one scale: wider is more presence, across layers


# For each named plot, in page pixels: its box, the part of it the page shows (clipped by every ancestor that hides
# overflow, crossing Panel's shadow roots, and by the window), the extent of its title text and, for the graph,
# of every node label (the drawn text boxes of each text renderer of the column 'label').
FIT = """(names) => names.map((name) => {
    const v = (""" + FIND_PLOT + """)(name);
    const canvas = v.canvas_view.el.getBoundingClientRect();
    const shown = {left: Math.max(canvas.left, 0), right: Math.min(canvas.right, window.innerWidth)};
    for (let node = v.el; node != null; node = node.parentElement ?? node.getRootNode().host ?? null) {
        if (node !== v.el && getComputedStyle(node).overflowX != 'visible') {
            const r = node.getBoundingClientRect();
            shown.left = Math.max(shown.left, r.left);
            shown.right = Math.min(shown.right, r.right);
        }
    }
    const title = v.views.find_one(v.model.title), box = title.layout?.bbox ?? title.bbox;
    const extent = (left, right) => [canvas.left + left, canvas.left + right];
    const labels = [];
    for (const r of v.model.renderers.filter((r) => r.glyph.text?.field == 'label')) {
        const glyph = v.views.find_one(r).glyph;
        for (let i = 0; i < glyph.data_size; i++) {
            const rect = glyph.rect_i(i), xs = [rect.p0.x, rect.p1.x, rect.p2.x, rect.p3.x];
            labels.push({text: glyph.text.get(i), x: extent(Math.min(...xs), Math.max(...xs))});
        }
    }
    return {name, box: [canvas.left, canvas.top, canvas.right, canvas.bottom], shown: [shown.left, shown.right], title: extent(box.left, box.left + title._get_size().width), labels};
})"""


def test_fits_1024_px_wide(page, server):
    """At 1024 px no plot, title, class label or layer label of the concept app is cut off or covered, and nothing
    scrolls sideways."""
    page.set_viewport_size({"width": 1024, "height": 900})
    open_app(page, server)
    page.wait_for_timeout(1000)  # the layout settles after the last view renders
    fits = page.evaluate(FIT, ["concept_graph", "concept_profile", "concept_heatmap"])
    inside = lambda x, plot: plot["shown"][0] - 0.5 <= x[0] and x[1] <= plot["shown"][1] + 0.5  # noqa: E731
    for plot in fits:
        assert inside([plot["box"][0], plot["box"][2]], plot), plot  # the whole plot, toolbar included
        assert inside(plot["title"], plot), plot
    for a, b in itertools.combinations(fits, 2):  # no plot drawn over another
        (l0, t0, r0, b0), (l1, t1, r1, b1) = a["box"], b["box"]
        assert min(r0, r1) <= max(l0, l1) + 0.5 or min(b0, b1) <= max(t0, t1) + 0.5, (a["name"], a["box"], b["name"], b["box"])
    graph = fits[0]
    n_nodes = page.evaluate(f"() => ({FIND_PLOT})('concept_graph').model.renderers.map((r) => r.data_source)"
                            ".find((s) => s.data.kind !== undefined).data.kind.length")
    assert len(graph["labels"]) == n_nodes  # every node's label was measured
    for label in graph["labels"]:
        assert inside(label["x"], graph), (label, graph["shown"])
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1024
    screenshot(page, "concepts-1024")


def test_every_plot_says_what_it_is(page, report):
    """Each plot has a "What is this?" note that opens in place (offline too)."""
    open_app(page, report.as_uri())
    for name in ("concept_graph", "concept_profile", "concept_heatmap"):
        note = f"({DEEP_ALL})('details[data-plot=\"{name}\"]')"
        assert page.evaluate(f"() => {note}.length") == 1, name
        assert not page.evaluate(f"() => {note}[0].open")
        page.evaluate(f"() => {note}[0].querySelector('summary').click()")
        assert page.evaluate(f"() => {note}[0].open")
        text = page.evaluate(f"() => {note}[0].textContent")
        assert text.startswith("What is this?") and len(text) > 200, text
