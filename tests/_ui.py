"""Helpers shared by the UI tests: headless Chromium settings, a served app, page watching.

Test modules import the two fixtures below by name so that pytest-playwright uses them.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: marks of every UI test module: needs Debian's Chromium
UI_MARKS = [
    pytest.mark.ui,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs /usr/bin/chromium: run 'make browser'"),
]
#: URL prefixes a served page may request (everything else would be an outside request)
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")
#: host names of this machine's loopback
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: URL prefixes an exported file may request
OFFLINE = ("file://", "data:", "blob:")

# Browser-side helpers: find a Bokeh plot by its name (the ``name`` the viewers give their figures:
# fre_matrix, drill_map, drill_strip, structure, concept_graph, concept_profile, concept_heatmap) among
# those shown (a static export holds one per tab), and turn data coordinates into page pixels.
FIND_PLOT = """(name) => Bokeh.index.query_one(
    (v) => v.model.name === name && v.frame != null && v.el.getClientRects().length > 0)"""


def plot_xy(find: str) -> str:
    """Browser-side ``([name, x, y]) => [px, py]``: the page pixel of data point (x, y) in the plot
    that ``find`` (a browser-side function of the name) returns, scrolled into view."""
    return f"""([name, x, y]) => {{
    const v = ({find})(name);
    v.el.scrollIntoView({{block: "center"}});
    const r = v.canvas_view.el.getBoundingClientRect();
    return [r.left + v.frame.x_scale.compute(x), r.top + v.frame.y_scale.compute(y)];
}}"""


PLOT_XY = plot_xy(FIND_PLOT)
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
            output = proc.stdout.read() if proc.stdout else "(see its log)"
            raise RuntimeError(f"server exited with {proc.returncode}: {output}")
        try:
            # a loaded machine can take longer than a few seconds to build the first session; an
            # abandoned request still costs the server that session, so wait for the answer
            urllib.request.urlopen(url, timeout=60).read(1)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


@contextlib.contextmanager
def panel_serve(app: str):
    """``panel serve app/<name>.py`` on a free loopback port; yields the app's URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", app, "--port", str(port), "--address", "127.0.0.1",
         "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/{Path(app).stem}"
    try:
        wait_http(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Watch:
    """Console errors, page errors and every request a page makes."""

    def __init__(self, page):
        self.errors, self.requests = [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def outside(self, allowed: tuple[str, ...]) -> list[str]:
        return [u for u in self.requests if not u.startswith(allowed)]


def block_outside(context) -> list[str]:
    """Abort every request of ``context`` to a host other than this machine's loopback; returns the list of them."""
    outside = []

    def route(r):
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    context.route("**/*", route)
    return outside


def settled_xy(page, name, x, y, locate=PLOT_XY):
    """Page pixels of data point (x, y) of the shown plot called ``name``, once the page layout has settled.

    Views still sizing themselves (or panes rendering above) move the plot between reading its
    position and using it, so the position is read until two readings agree. ``locate`` is the
    browser-side function giving that position (:data:`PLOT_XY`, or one that picks among several
    plots of that name).
    """
    previous, xy = None, page.evaluate(locate, [name, x, y])
    for _ in range(20):
        if xy == previous:
            break
        page.wait_for_timeout(150)
        previous, xy = xy, page.evaluate(locate, [name, x, y])
    return xy


def click_plot(page, name, x, y, locate=PLOT_XY):
    """Click data point (x, y) of the shown plot called ``name`` once the page layout has settled (:func:`settled_xy`)."""
    page.mouse.click(*settled_xy(page, name, x, y, locate))
