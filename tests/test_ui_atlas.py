"""The dashboard served for real (``panel serve app/atlas.py``) and the static export, in headless Chromium.

Chromium is Debian's (``make browser``); screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import socket
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
    PLOT_XY,
    ROOT,
    UI_MARKS,
    Watch,
    browser_context_args,  # noqa: F401  (fixture)
    browser_type_launch_args,  # noqa: F401  (fixture)
    click_plot,
    free_port,
    panel_serve,
    settled_xy,
    wait_http,
)

pytestmark = UI_MARKS

# Any shown Bokeh view (plot, Div, ...) by its model's name.
FIND_VIEW = """(name) => Bokeh.index.query_one((v) => v.model.name === name && v.el.getClientRects().length > 0)"""
# The drill-down as shown: its points (value of the pair, map position, structure, selection) and the
# heading that names the pair (a Div called drill_pair; shown, never read back as state).
DRILL_STATE = """() => {
    const v = (""" + FIND_PLOT + """)('drill_map');
    const src = v.model.renderers[0].data_source;
    const heading = (""" + FIND_VIEW + """)('drill_pair');
    return {pair: heading.model.text.replace(/<[^>]*>/g, ''), error: Array.from(src.data.error),
            structure: Array.from(src.data.structure), colour: Array.from(src.data.colour),
            x: Array.from(src.data.x), y: Array.from(src.data.y), selected: Array.from(src.selected.indices)};
}"""
# The 3D viewer (titled "structure <k>: ..."); its atoms as drawn (turned, depth-sorted) in the browser.
STRUCTURE_STATE = """() => {
    const v = (""" + FIND_PLOT + """)('structure');
    if (v == null) { return null; }
    const atoms = v.model.renderers.find((r) => r.data_source.data.element != null).data_source.data;
    const r = v.canvas_view.el.getBoundingClientRect();
    return {title: v.model.title.text, index: Array.from(atoms.index), element: Array.from(atoms.element),
            group: Array.from(atoms.group), x: Array.from(atoms.x), y: Array.from(atoms.y),
            px: Array.from(atoms.x, (x) => r.left + v.frame.x_scale.compute(x)),
            py: Array.from(atoms.y, (y) => r.top + v.frame.y_scale.compute(y)),
            span: v.model.x_range.end - v.model.x_range.start, centre: [r.left + r.width / 2, r.top + r.height / 2]};
}"""
STRUCTURE_DRAWN = f"() => ({STRUCTURE_STATE})()?.index.length > 0"
SHOW_STRUCTURE = """() => { const v = (""" + FIND_PLOT + """)('structure');
    v.el.scrollIntoView({block: "center"}); return v.el.getBoundingClientRect().toJSON(); }"""
TOOLTIPS = f"() => ({DEEP_ALL})('.bk-tooltip-content').map((e) => e.textContent)"


@pytest.fixture(scope="module")
def server():
    """``panel serve app/atlas.py`` on a free loopback port: the real app on the built-in data."""
    with panel_serve("app/atlas.py") as url:
        yield url


@pytest.fixture(scope="module")
def demo():
    from latentatlas.viz.fre.data import demo_comparison_paths, load_levels

    return next(iter(load_levels(demo_comparison_paths()).values()))


def between(values, q):
    """A value near the ``q`` th percentile of ``values`` halfway between two of them: equivalent atoms share
    a map position, and a box edge on such a stack would leave its selection to pixel rounding."""
    unique = np.unique(values)
    k = int(np.clip(np.searchsorted(unique, np.percentile(values, q)), 1, unique.size - 1))
    return (unique[k - 1] + unique[k]) / 2


def open_dashboard(page, url):
    page.goto(url)
    page.wait_for_function("() => window.Bokeh && Bokeh.index && Bokeh.index.query_one((v) => v.frame != null)",
                           timeout=60_000)
    page.wait_for_function(STRUCTURE_DRAWN, timeout=60_000)
    page.wait_for_function(f"() => ({FIND_PLOT})('drill_map') != null", timeout=60_000)  # both follow the first view


def screenshot_views(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)  # no hover tooltip over the pictures
    page.wait_for_timeout(300)
    page.screenshot(path=ARTIFACTS / f"{name}-full.png", full_page=True)
    page.locator("canvas").first.screenshot(path=ARTIFACTS / f"{name}-matrix.png")
    box = page.evaluate(SHOW_STRUCTURE)
    page.screenshot(path=ARTIFACTS / f"{name}-structure.png", clip={k: box[k] for k in ("x", "y", "width", "height")})


def test_served_dashboard_click_cell_updates_drilldown_and_structure(page, server, demo):
    watch = Watch(page)
    open_dashboard(page, server)
    before = page.evaluate(DRILL_STATE)
    names = [str(s) for s in demo["source"].values]
    source, target = names[-1], names[0]  # a cell that is not the initial (largest) pair
    if before["pair"].startswith(f"{source} → {target}:"):
        source, target = names[0], names[-1]
    click_plot(page, "fre_matrix", target, source)
    page.wait_for_function(f"() => ({DRILL_STATE})().pair.startsWith({f'{source} → {target}:'!r})", timeout=10_000)
    after = page.evaluate(DRILL_STATE)
    expected = demo["gfre_pointwise"].sel(source=source, target=target).values
    assert np.allclose(after["error"], expected, rtol=1e-6)
    assert "split 1 of 3" in after["pair"]  # says which split the per-sample values come from
    assert np.allclose(after["x"], demo["pca"].sel(source=source).values[demo["test_atom"].values, 0], rtol=1e-5)
    # the server hears the click too: the 3D viewer now colours atoms by this pair's error
    page.wait_for_function(f"() => ({STRUCTURE_STATE})().group.includes({f'GFRE {source} → {target}'!r})",
                           timeout=15_000)

    # tap the worst sample on the map: its structure opens in 3D
    worst = int(np.argmax(expected))
    structure = int(after["structure"][worst])
    click_plot(page, "drill_map", after["x"][worst], after["y"][worst])
    page.wait_for_function(f"() => ({STRUCTURE_STATE})().title.startsWith('structure {structure}:')", timeout=15_000)
    assert page.evaluate(DRILL_STATE)["selected"] == [worst]
    page.evaluate(SHOW_STRUCTURE)
    shown = page.evaluate(STRUCTURE_STATE)
    first_atom = int(np.flatnonzero(demo["atom_structure"].values == structure)[0])
    assert sorted(shown["index"]) == list(range(int(demo["n_atoms"].values[structure])))

    # hover the atom drawn on top: the tooltip names it and gives its error for the clicked pair
    from latentatlas.viz.fre.data import per_atom_errors

    errors = per_atom_errors(demo, "gfre", source, target)
    page.mouse.move(shown["px"][-1], shown["py"][-1])
    page.wait_for_function(f"() => ({TOOLTIPS})().some((t) => t.includes('atom '))", timeout=5_000)
    tip = next(t for t in page.evaluate(TOOLTIPS) if "atom " in t)
    k = shown["index"][-1]
    error = errors[first_atom + k]
    assert tip.startswith(f"atom {k} {shown['element'][-1]}")
    assert (f"GFRE {source} → {target}: {error:.4f}" if np.isfinite(error) else "not in the test set") in tip

    # drag turns the scene (same atoms, new screen positions); the wheel zooms
    page.mouse.move(*shown["centre"])
    page.mouse.down()
    page.mouse.move(shown["centre"][0] + 90, shown["centre"][1] + 40, steps=6)
    page.mouse.up()
    turned = page.evaluate(STRUCTURE_STATE)
    assert sorted(turned["index"]) == sorted(shown["index"])
    assert not np.allclose(sorted(turned["x"]), sorted(shown["x"]))
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"() => ({STRUCTURE_STATE})().span < {0.9 * turned['span']}", timeout=5_000)
    screenshot_views(page, "served")
    assert watch.errors == []
    assert watch.outside(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) == []


def test_bad_upload_shows_message_and_server_keeps_serving(page, server, context):
    watch = Watch(page)
    open_dashboard(page, server)
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "broken.nc", "mimeType": "application/x-netcdf", "buffer": b"definitely not netCDF"}])
    page.get_by_text("Could not open broken.nc").wait_for(timeout=15_000)
    page.get_by_text("is not a readable netCDF file").wait_for(timeout=1_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "served-bad-upload.png")
    other = context.new_page()
    open_dashboard(other, server)  # another session is unaffected
    assert other.get_by_text("Could not open").count() == 0
    assert watch.errors == []


def test_ten_concurrent_sessions(browser, server):
    pages = [browser.new_page() for _ in range(10)]
    watches = [Watch(p) for p in pages]
    try:
        for p in pages:
            p.goto(server, wait_until="commit")
        for p in pages:
            p.wait_for_function("() => window.Bokeh && Bokeh.index && Bokeh.index.query_one((v) => v.frame != null)",
                                timeout=120_000)
            p.wait_for_function(STRUCTURE_DRAWN, timeout=120_000)
        titles = {p.evaluate(DRILL_STATE)["pair"] for p in pages}
        assert len(titles) == 1
        assert [w.errors for w in watches] == [[]] * len(pages)
    finally:
        for p in pages:
            p.close()


# Layout elements (Panel layouts, template containers, Bokeh figures and canvases) whose content is wider than
# they are: a horizontal scroll bar or cut-off content. Bokeh's own drawing layers are left out.
OVERFLOWING = """() => {
    const out = [];
    const layout = (el) => /bk-panel-models-layout|bk-Figure|bk-Canvas$|bk-Column|bk-Row|pn-wrapper/.test(el.className)
        || ['MAIN', 'BODY', 'HTML'].includes(el.tagName) || ['main', 'sidebar', 'content'].includes(el.id);
    const visit = (root) => {
        for (const el of root.querySelectorAll('*')) {
            if (typeof el.className == 'string' && layout(el) && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
                out.push(`${el.tagName}.${el.className} ${el.scrollWidth} > ${el.clientWidth}`);
            }
            if (el.shadowRoot) { visit(el.shadowRoot); }
        }
    };
    visit(document);
    if (document.documentElement.scrollWidth > window.innerWidth) { out.push('page scrolls sideways'); }
    return out;
}"""
# Titles of the shown plots wider than their plot (Bokeh draws them on the canvas and cuts them there).
CUT_TITLES = """() => [...Bokeh.index.query((v) => v.frame != null && v.el.getClientRects().length > 0)].filter((v) => {
    const t = v.model.title;
    if (t == null || !t.text) { return false; }
    const c = document.createElement('canvas').getContext('2d');
    c.font = `${t.text_font_style} ${t.text_font_size} ${t.text_font}`;
    return c.measureText(t.text).width > v.el.getBoundingClientRect().width;
}).map((v) => v.model.name + ': ' + v.model.title.text)"""
RECT = "(name) => (" + FIND_PLOT + ")(name).el.getBoundingClientRect().toJSON()"
# Tick labels of a plot's colour bar at the two ends and in the middle, as its formatter writes them.
COLOUR_BAR = """([name, ticks]) => {
    const bar = (""" + FIND_PLOT + """)(name).model.right.find((m) => m.type == 'ColorBar' || m.color_mapper != null);
    return {title: bar.title, labels: bar.formatter.doFormat(ticks, {loc: 0})};
}"""
HELP_TEXT = f"() => ({DEEP_ALL})('.bk-tooltip-content, .bk-tooltip').map((e) => e.textContent).join(' ')"


def test_served_layout_matrix_beside_structure_controls_in_sidebar_fits_1024(page, server):
    watch = Watch(page)
    open_dashboard(page, server)
    # the matrix and the 3D structure side by side, as chemiscope puts map and structure
    matrix, structure = page.evaluate(RECT, "fre_matrix"), page.evaluate(RECT, "structure")
    assert structure["left"] >= matrix["right"] - 1
    assert structure["top"] < matrix["bottom"] and matrix["top"] < structure["bottom"]
    # the controls sit in the template's sidebar, the views in its main area
    sidebar = page.locator(".atlas-sidebar")
    assert sidebar.get_by_text("Level").count() >= 1 and sidebar.get_by_text("Load your own").count() == 1
    assert sidebar.get_by_role("button", name="GFRD").count() == 1
    # 1024 px wide: nothing scrolls sideways or is cut off; the structure moves under the matrix
    page.set_viewport_size({"width": 1024, "height": 900})
    page.wait_for_function(f"() => ({RECT})('structure').top >= ({RECT})('fre_matrix').bottom - 1", timeout=10_000)
    page.wait_for_timeout(500)
    assert page.evaluate(OVERFLOWING) == []
    assert page.evaluate(CUT_TITLES) == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "served-1024.png", full_page=True)
    assert watch.errors == []
    assert watch.outside(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) == []


def test_served_help_units_colour_bar_ends_and_gfrd_diagonal(page, server, demo):
    watch = Watch(page)
    open_dashboard(page, server)
    # a "what is this?" on each plot
    for plot, words in [("fre_matrix", "source"), ("model_map", "multidimensional scaling"),
                        ("drill_map", "principal components"), ("drill_strip", "quartile")]:
        icon = page.locator(f".help-{plot}").first
        icon.scroll_into_view_if_needed()
        icon.hover()
        page.wait_for_function(f"() => ({HELP_TEXT})().includes({words!r})", timeout=5_000)
        page.mouse.move(0, 0)
    # colour bars say which end is better, in the unit the help uses
    bar = page.evaluate(COLOUR_BAR, ["fre_matrix", [0, 0.5, 1]])
    assert bar["title"] == "GFRE (target σ)" and bar["labels"] == ["0 better", "0.5", "1 worse"]
    drill = page.evaluate(COLOUR_BAR, ["drill_map", [0, 1, 2]])
    assert drill["title"] == "GFRE (target σ)" and drill["labels"][0].endswith("better")
    assert page.locator(".atlas-sidebar").get_by_text("GFRE (target σ): Global feature reconstruction error").count() == 1
    # GFRD: why the diagonal is not 0, in the help and on the diagonal cells
    page.locator(".atlas-sidebar").get_by_role("button", name="GFRD").click()
    page.wait_for_function(f"() => ({COLOUR_BAR})(['fre_matrix', [0]]).title.startsWith('GFRD')", timeout=15_000)
    assert page.locator(".atlas-sidebar").get_by_text("GFRD(A, A) is not 0").count() == 1
    name = str(demo["source"].values[2])
    page.mouse.move(*settled_xy(page, "fre_matrix", name, name))
    page.wait_for_function(f"() => ({TOOLTIPS})().some((t) => t.includes('GFRD(A, A) > 0'))", timeout=5_000)
    assert watch.errors == []


def test_served_map_axes_colour_and_downloads(page, server, demo, tmp_path):
    import pandas as pd
    import xarray as xr

    watch = Watch(page)
    open_dashboard(page, server)
    before = page.evaluate(DRILL_STATE)
    source = before["pair"].split(" → ")[0]
    test_atoms = demo["test_atom"].values
    # any PC and any per-sample property on the map's axes and in its colour
    x_axis, _, colour = (page.locator("select:has(option:text-is('n_atoms'))").nth(k) for k in range(3))
    x_axis.select_option(label="PC 2 of the source")
    expected = demo["pca"].sel(source=source).values[test_atoms, 1]
    page.wait_for_function(f"() => Math.abs(({DRILL_STATE})().x[0] - {expected[0]}) < 1e-5", timeout=15_000)
    assert np.allclose(page.evaluate(DRILL_STATE)["x"], expected, rtol=1e-5)
    colour.select_option(label="n_atoms")
    n_atoms = demo["n_atoms"].values[demo["atom_structure"].values[test_atoms]]
    page.wait_for_function(f"() => ({DRILL_STATE})().colour[0] == {n_atoms[0]}", timeout=15_000)
    assert page.evaluate(DRILL_STATE)["colour"] == n_atoms.tolist()
    # the colour bar's title is a change of its own, which may reach the page after the data
    page.wait_for_function(f"() => ({COLOUR_BAR})(['drill_map', [0]]).title == 'n_atoms'", timeout=15_000)
    assert page.evaluate(COLOUR_BAR, ["drill_map", [0]])["title"] == "n_atoms"
    # downloads: the matrix shown (CSV, netCDF) and the selected samples (CSV)
    with page.expect_download() as csv:
        page.get_by_role("button", name="Matrix (CSV)").click()
    table = pd.read_csv(csv.value.path())
    assert csv.value.suggested_filename == "gfre_matrix.csv" and len(table) == demo.sizes["source"] ** 2
    cell = table.iloc[5]
    assert np.isclose(cell["gfre"], demo["gfre"].sel(source=cell["source"], target=cell["target"]).item(), rtol=1e-8)
    with page.expect_download() as nc:
        page.get_by_role("button", name="Matrix (netCDF)").click()
    nc.value.save_as(tmp_path / "m.nc")
    with xr.open_dataset(tmp_path / "m.nc") as matrix:
        np.testing.assert_array_equal(matrix["gfre"].values, demo["gfre"].values)
    value = np.array(page.evaluate(DRILL_STATE)["error"])
    worst = int(np.nanargmax(value))
    state = page.evaluate(DRILL_STATE)
    click_plot(page, "drill_map", state["x"][worst], state["y"][worst])
    page.wait_for_function(f"() => ({DRILL_STATE})().selected.includes({worst})", timeout=10_000)
    selected = sorted(page.evaluate(DRILL_STATE)["selected"])  # equivalent atoms share a map position
    page.wait_for_timeout(500)  # the selection reaches the server
    with page.expect_download() as picked:
        page.get_by_role("button", name="Selection (CSV)").click()
    rows = pd.read_csv(picked.value.path())
    assert list(rows["sample"]) == test_atoms[selected].tolist()
    np.testing.assert_allclose(rows.filter(like="gfre ").iloc[:, 0], value[selected], rtol=1e-6)
    assert watch.errors == []


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """``latentatlas export`` of the built-in comparison (both levels)."""
    path = tmp_path_factory.mktemp("export") / "report.html"
    subprocess.run([Path(sys.executable).parent / "latentatlas", "export", "--html", str(path)], cwd=ROOT, check=True)
    return path


def test_static_export_offline_with_drilldown_and_linked_selection(page, report, demo):
    import pandas as pd

    watch = Watch(page)
    page.goto(report.as_uri())
    page.wait_for_function(f"() => window.Bokeh && Bokeh.index && ({STRUCTURE_DRAWN})()", timeout=60_000)
    names = [str(s) for s in demo["source"].values]
    source, target = names[0], names[-1]
    click_plot(page, "fre_matrix", target, source)
    page.wait_for_function(f"() => ({DRILL_STATE})().pair.startsWith({f'{source} → {target}:'!r})", timeout=10_000)
    state = page.evaluate(DRILL_STATE)
    assert np.allclose(state["error"], demo["gfre_pointwise"].sel(source=source, target=target).values, rtol=1e-6)
    # box-select on the map: the selection lives on the data source both drill-down plots draw
    x0, x1 = between(state["x"], 10), between(state["x"], 90)
    y0, y1 = between(state["y"], 10), between(state["y"], 90)
    a, b = settled_xy(page, "drill_map", x0, y0), settled_xy(page, "drill_map", x1, y1)
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => ({DRILL_STATE})().selected.length > 0", timeout=10_000)
    x, y = np.array(state["x"]), np.array(state["y"])
    inside = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    assert sorted(page.evaluate(DRILL_STATE)["selected"]) == inside.tolist()
    strip_selected = page.evaluate("() => (" + FIND_PLOT + """)('drill_strip')
        .model.renderers.at(-1).data_source.selected.indices.length""")
    assert strip_selected == inside.size
    # the structure drop-down swaps the 3D scene in the browser
    first = page.evaluate(STRUCTURE_STATE)["title"]
    pick = page.locator("select").last
    label = pick.locator("option").nth(1).text_content()
    pick.select_option(label=label)
    page.wait_for_function(f"() => ({STRUCTURE_STATE})().title == {'structure ' + label!r}", timeout=10_000)
    assert page.evaluate(STRUCTURE_STATE)["title"] != first
    k = int(label.split(":")[0])
    assert sorted(page.evaluate(STRUCTURE_STATE)["index"]) == list(range(int(demo["n_atoms"].values[k])))
    screenshot_views(page, "static")
    # the matrix of the tab shown downloads offline (CSV embedded in the file)
    with page.expect_download() as csv:
        page.get_by_role("button", name="Matrix (CSV)").locator("visible=true").first.click()
    table = pd.read_csv(csv.value.path())
    assert list(table.columns[:3]) == ["source", "target", "gfre"] and len(table) == demo.sizes["source"] ** 2
    # the help works offline too, and the report fits 1024 px
    page.locator(".help-drill_map").first.hover()
    page.wait_for_function(f"() => ({HELP_TEXT})().includes('one train/test split')", timeout=5_000)
    page.set_viewport_size({"width": 1024, "height": 900})
    page.wait_for_timeout(1000)
    assert page.evaluate(OVERFLOWING) == [] and page.evaluate(CUT_TITLES) == []
    assert watch.errors == []
    assert watch.outside(("file://", "data:", "blob:")) == []


def test_cli_serve_binds_loopback_and_serves_both_apps(page):
    port = free_port()
    proc = subprocess.Popen([Path(sys.executable).parent / "latentatlas", "serve", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/atlas", proc)
        html = urllib.request.urlopen(f"http://127.0.0.1:{port}/atlas", timeout=60).read().decode()
        assert "<title>latentatlas</title>" in html
        # the dashboard links to the concept app served beside it, and back
        page.goto(f"http://127.0.0.1:{port}/atlas")
        page.get_by_text("Concept knowledge graphs").click(timeout=60_000)
        page.wait_for_url(f"http://127.0.0.1:{port}/concepts", timeout=30_000)
        page.get_by_text("which concepts does each layer encode").wait_for(timeout=60_000)
        page.get_by_text("Feature reconstruction atlas").click()
        page.wait_for_url(f"http://127.0.0.1:{port}/atlas", timeout=30_000)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outward interface
            other = probe.getsockname()[0]
        if other.startswith("127."):
            pytest.skip("this machine has no non-loopback address to test against")
        with socket.socket() as s:  # bound to 127.0.0.1 only: the machine's other addresses refuse
            s.settimeout(5)
            assert s.connect_ex((other, port)) != 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
