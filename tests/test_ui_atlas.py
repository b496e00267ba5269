"""The dashboard served for real (``panel serve app/atlas.py``) and the static export, in headless Chromium.

Chromium is Debian's (``make browser``); screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("playwright")
pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs /usr/bin/chromium: run 'make browser'"),
]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Browser-side helpers: find a Bokeh plot by its title and turn data coordinates into page pixels.
FIND_PLOT = """(prefix) => Bokeh.index.query_one(
    (v) => v.model.title != null && v.model.title.text != null && v.model.title.text.startsWith(prefix) && v.frame != null)"""
PLOT_XY = f"""([prefix, x, y]) => {{
    const v = ({FIND_PLOT})(prefix);
    v.el.scrollIntoView({{block: "center"}});
    const r = v.canvas_view.el.getBoundingClientRect();
    return [r.left + v.frame.x_scale.compute(x), r.top + v.frame.y_scale.compute(y)];
}}"""
DRILL_STATE = """() => {
    const v = Bokeh.index.query_one((v) => v.model.title != null && v.model.title.text != null
        && v.model.title.text.includes(": pointwise") && v.frame != null);
    const src = v.model.renderers[0].data_source;
    return {title: v.model.title.text, error: Array.from(src.data.error), structure: Array.from(src.data.structure),
            x: Array.from(src.data.x), y: Array.from(src.data.y), selected: Array.from(src.selected.indices)};
}"""
# Panel renders each pane inside a shadow root: search them all.
DEEP_ALL = """(selector) => {
    const found = [];
    const visit = (root) => {
        found.push(...root.querySelectorAll(selector));
        for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) { visit(el.shadowRoot); } }
    };
    visit(document);
    return found;
}"""
PLOTLY_TITLE = f"() => ({DEEP_ALL})('.js-plotly-plot .gtitle').map((e) => e.textContent).join('')"
PLOTLY_LEGEND = f"() => ({DEEP_ALL})('.js-plotly-plot .legendtext').map((e) => e.textContent)"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=5).read(1)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


@pytest.fixture(scope="module")
def server():
    """``panel serve app/atlas.py`` on a free loopback port: the real app on the built-in data."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "app/atlas.py", "--port", str(port), "--address", "127.0.0.1",
         "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/atlas"
    try:
        wait_http(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def demo():
    from latentatlas.viz.data import demo_comparison_paths, load_levels

    return next(iter(load_levels(demo_comparison_paths()).values()))


class Watch:
    """Console errors, page errors and every request a page makes."""

    def __init__(self, page):
        self.errors, self.requests = [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def outside(self, allowed: tuple[str, ...]) -> list[str]:
        return [u for u in self.requests if not u.startswith(allowed)]


def open_dashboard(page, url):
    page.goto(url)
    page.wait_for_function("() => window.Bokeh && Bokeh.index && Bokeh.index.query_one((v) => v.frame != null)",
                           timeout=60_000)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)


def click_plot(page, prefix, x, y):
    px, py = page.evaluate(PLOT_XY, [prefix, x, y])
    page.mouse.click(px, py)


def screenshot_views(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)  # no hover tooltip over the pictures
    page.wait_for_timeout(300)
    page.screenshot(path=ARTIFACTS / f"{name}-full.png", full_page=True)
    for view, selector in [("matrix", "canvas >> nth=0"), ("structure", ".js-plotly-plot")]:
        page.locator(selector).first.screenshot(path=ARTIFACTS / f"{name}-{view}.png")


def test_served_dashboard_click_cell_updates_drilldown_and_structure(page, server, demo):
    watch = Watch(page)
    open_dashboard(page, server)
    before = page.evaluate(DRILL_STATE)
    names = [str(s) for s in demo["source"].values]
    source, target = names[-1], names[0]  # a cell that is not the initial (largest) pair
    if before["title"].startswith(f"{source} → {target}:"):
        source, target = names[0], names[-1]
    click_plot(page, "GFRE:", target, source)
    page.wait_for_function(f"() => ({DRILL_STATE})().title.startsWith({f'{source} → {target}:'!r})", timeout=10_000)
    after = page.evaluate(DRILL_STATE)
    expected = demo["gfre_pointwise"].sel(source=source, target=target).values
    assert np.allclose(after["error"], expected, rtol=1e-6)
    assert np.allclose(after["x"], demo["pca"].sel(source=source).values[demo["test_atom"].values, 0], rtol=1e-5)
    # the server hears the click too: the 3D viewer now colours atoms by this pair's error
    page.wait_for_function(f"() => ({PLOTLY_LEGEND})().some((t) => t.includes({f'{source} → {target}'!r}))",
                           timeout=15_000)

    # tap the worst sample on the map: its structure opens in 3D
    worst = int(np.argmax(expected))
    structure = int(after["structure"][worst])
    click_plot(page, f"{source} → {target}:", after["x"][worst], after["y"][worst])
    page.wait_for_function(f"() => ({PLOTLY_TITLE})().startsWith('structure {structure}:')", timeout=15_000)
    assert page.evaluate(DRILL_STATE)["selected"] == [worst]
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
            p.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
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
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    names = [str(s) for s in demo["source"].values]
    source, target = names[0], names[-1]
    click_plot(page, "GFRE:", target, source)
    page.wait_for_function(f"() => ({DRILL_STATE})().title.startsWith({f'{source} → {target}:'!r})", timeout=10_000)
    state = page.evaluate(DRILL_STATE)
    assert np.allclose(state["error"], demo["gfre_pointwise"].sel(source=source, target=target).values, rtol=1e-6)
    # box-select on the map: the selection lives on the data source both drill-down plots draw
    prefix = f"{source} → {target}:"
    x0, x1 = np.percentile(state["x"], [10, 90])
    y0, y1 = np.percentile(state["y"], [10, 90])
    a, b = page.evaluate(PLOT_XY, [prefix, x0, y0]), page.evaluate(PLOT_XY, [prefix, x1, y1])
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => ({DRILL_STATE})().selected.length > 0", timeout=10_000)
    x, y = np.array(state["x"]), np.array(state["y"])
    inside = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    assert sorted(page.evaluate(DRILL_STATE)["selected"]) == inside.tolist()
    strip_selected = page.evaluate("""() => Bokeh.index.query_one((v) => v.model.title?.text?.startsWith('Distribution'))
        .model.renderers.at(-1).data_source.selected.indices.length""")
    assert strip_selected == inside.size
    screenshot_views(page, "static")
    assert watch.errors == []
    assert watch.outside(("file://", "data:", "blob:")) == []


def test_cli_serve_binds_loopback_and_serves_the_dashboard():
    port = free_port()
    proc = subprocess.Popen([Path(sys.executable).parent / "latentatlas", "serve", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/atlas", proc)
        html = urllib.request.urlopen(f"http://127.0.0.1:{port}/atlas", timeout=60).read().decode()
        assert "<title>latentatlas</title>" in html
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
