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
    wait_http,
)

pytestmark = UI_MARKS

DRILL_STATE = """() => {
    const v = (""" + FIND_PLOT + """)('drill_map');
    const src = v.model.renderers[0].data_source;
    return {title: v.model.title.text, error: Array.from(src.data.error), structure: Array.from(src.data.structure),
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


def open_dashboard(page, url):
    page.goto(url)
    page.wait_for_function("() => window.Bokeh && Bokeh.index && Bokeh.index.query_one((v) => v.frame != null)",
                           timeout=60_000)
    page.wait_for_function(STRUCTURE_DRAWN, timeout=60_000)


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
    if before["title"].startswith(f"{source} → {target}:"):
        source, target = names[0], names[-1]
    click_plot(page, "fre_matrix", target, source)
    page.wait_for_function(f"() => ({DRILL_STATE})().title.startsWith({f'{source} → {target}:'!r})", timeout=10_000)
    after = page.evaluate(DRILL_STATE)
    expected = demo["gfre_pointwise"].sel(source=source, target=target).values
    assert np.allclose(after["error"], expected, rtol=1e-6)
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
        titles = {p.evaluate(DRILL_STATE)["title"] for p in pages}
        assert len(titles) == 1
        assert [w.errors for w in watches] == [[]] * len(pages)
    finally:
        for p in pages:
            p.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """``latentatlas export`` of the built-in comparison (both levels)."""
    path = tmp_path_factory.mktemp("export") / "report.html"
    subprocess.run([Path(sys.executable).parent / "latentatlas", "export", "--html", str(path)], cwd=ROOT, check=True)
    return path


def test_static_export_offline_with_drilldown_and_linked_selection(page, report, demo):
    watch = Watch(page)
    page.goto(report.as_uri())
    page.wait_for_function(f"() => window.Bokeh && Bokeh.index && ({STRUCTURE_DRAWN})()", timeout=60_000)
    names = [str(s) for s in demo["source"].values]
    source, target = names[0], names[-1]
    click_plot(page, "fre_matrix", target, source)
    page.wait_for_function(f"() => ({DRILL_STATE})().title.startsWith({f'{source} → {target}:'!r})", timeout=10_000)
    state = page.evaluate(DRILL_STATE)
    assert np.allclose(state["error"], demo["gfre_pointwise"].sel(source=source, target=target).values, rtol=1e-6)
    # box-select on the map: the selection lives on the data source both drill-down plots draw
    x0, x1 = np.percentile(state["x"], [10, 90])
    y0, y1 = np.percentile(state["y"], [10, 90])
    a, b = page.evaluate(PLOT_XY, ["drill_map", x0, y0]), page.evaluate(PLOT_XY, ["drill_map", x1, y1])
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
