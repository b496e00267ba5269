"""``latentatlas serve`` shared by a group: many sessions at once, with the outside network blocked, in headless Chromium."""

from __future__ import annotations

import contextlib
import gc
import subprocess
import sys
import time
import urllib.request
import weakref
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from _ui import (  # noqa: E402
    DEEP_ALL,
    FIND_PLOT,
    ROOT,
    UI_MARKS,
    Watch,
    block_outside,
    click_plot,
    browser_context_args,  # noqa: F401  (fixture)
    browser_type_launch_args,  # noqa: F401  (fixture)
    free_port,
    wait_http,
)
from test_ui_atlas import DRILL_STATE, STRUCTURE_STATE, STRUCTURE_DRAWN, open_dashboard  # noqa: E402
from test_ui_atlas import demo, report  # noqa: E402, F401  (fixtures)
from test_ui_concepts import STATE as CONCEPT_STATE, TEXT  # noqa: E402

pytestmark = UI_MARKS

@contextlib.contextmanager
def cli_serve(*args):
    """``latentatlas serve`` on a free loopback port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([Path(sys.executable).parent / "latentatlas", "serve", "--port", str(port), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/atlas", proc, timeout=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served():
    with cli_serve() as url:
        yield url


def test_session_rebuilt_after_a_slow_page_load_requests_nothing_outside(browser):
    """A page slower than the server's unused-session lifetime gets a new session from its websocket.

    On a busy server (10 sessions at once) the lifetime, 15 s by default, passes while the page loads;
    here it is 1 s and Bokeh's script is held back 4 s. That second session must not point at the CDN.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "app/atlas.py", "app/concepts.py", "--port", str(port),
         "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}",
         "--unused-session-lifetime", "1000", "--check-unused-sessions", "500"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = browser.new_context()
    try:
        wait_http(f"http://127.0.0.1:{port}/atlas", proc)
        outside = block_outside(context)

        def slow_bokeh(r):
            time.sleep(4)
            r.fallback()

        context.route("**/bokeh.min.js*", slow_bokeh)
        page = context.new_page()
        for app in ("atlas", "concepts"):
            page.goto(f"http://127.0.0.1:{port}/{app}")
            page.wait_for_function("() => window.Bokeh && Bokeh.index && Bokeh.index.query_one((v) => v.frame != null)",
                                   timeout=120_000)
            page.wait_for_load_state("networkidle")
        assert outside == []
    finally:
        context.close()
        proc.terminate()
        proc.wait(timeout=30)


def test_ten_sessions_at_once_request_nothing_outside(browser, served):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside = block_outside(context)
    apps = ["atlas"] * 7 + ["concepts"] * 3
    pages = [context.new_page() for _ in apps]
    watches = [Watch(p) for p in pages]
    try:
        for page, app in zip(pages, apps):
            page.goto(f"{served}/{app}", wait_until="commit")
        for page, app in zip(pages, apps):
            page.wait_for_function("() => window.Bokeh && Bokeh.index && Bokeh.index.query_one((v) => v.frame != null)",
                                   timeout=240_000)
            if app == "atlas":
                page.wait_for_function(STRUCTURE_DRAWN, timeout=240_000)
            else:
                page.wait_for_function(
                    f"() => {{ try {{ return ({CONCEPT_STATE})().id.length > 0; }} catch (e) {{ return false; }} }}",
                    timeout=240_000)
        assert outside == []
        assert [w.outside(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) for w in watches] == [[]] * len(pages)
        assert [w.errors for w in watches] == [[]] * len(pages)
    finally:
        context.close()


def test_first_document_holds_the_heatmap_and_the_rest_follows(page, served):
    """The page's first document is the heatmap and what precedes it; drill-down and 3D viewer come after it is drawn."""
    docs = []

    def on_socket(ws):
        ws.on("framereceived", lambda payload: isinstance(payload, str) and payload.startswith('{"doc":')
              and docs.append(payload))

    page.on("websocket", on_socket)
    open_dashboard(page, f"{served}/atlas")  # waits for the 3D viewer: the rest did follow
    assert len(docs) == 1
    assert '"name":"fre_matrix"' in docs[0]
    assert '"name":"drill_map"' not in docs[0] and '"name":"structure"' not in docs[0]
    before = page.evaluate(DRILL_STATE)["pair"]
    names = page.evaluate(f"() => ({FIND_PLOT})('fre_matrix').model.x_range.factors")
    click_plot(page, "fre_matrix", names[0], names[-1])  # the browser-side link to the drill-down came with it
    page.wait_for_function(f"() => ({DRILL_STATE})().pair.startsWith({f'{names[-1]} → {names[0]}:'!r})", timeout=30_000)
    assert page.evaluate(DRILL_STATE)["pair"] != before


def test_closed_sessions_are_released(browser):
    """Every object a session built is freed once its page is closed (only Panel's template session stays)."""
    import panel as pn

    from latentatlas.cli.serve import apps, configure, levels_from_results

    built = []

    def tracked(app):
        def session():
            view = app()
            built.append(weakref.ref(view))
            return view
        return session

    port = free_port()
    configure()
    server = pn.serve({name: tracked(app) for name, app in apps(levels_from_results([])).items()},
                      port=port, address="127.0.0.1", websocket_origin=[f"127.0.0.1:{port}"], show=False,
                      threaded=True, check_unused_sessions_milliseconds=500, unused_session_lifetime_milliseconds=2_000)
    context = browser.new_context()
    try:
        for _ in range(240):  # the server thread starts listening soon after pn.serve returns
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/atlas", timeout=120).read()
                break
            time.sleep(0.5)
        for _ in range(2):
            pages = [context.new_page() for _ in range(3)]
            for page, app in zip(pages, ["atlas", "atlas", "concepts"]):
                page.goto(f"http://127.0.0.1:{port}/{app}")
            for page in pages[:2]:
                page.wait_for_function(STRUCTURE_DRAWN, timeout=120_000)  # everything built, the deferred rest too
            pages[2].wait_for_function(f"() => window.Bokeh && Bokeh.index && ({FIND_PLOT})('concept_graph') != null",
                                       timeout=120_000)
            for page in pages:
                page.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            gc.collect()
            alive = [ref for ref in built if ref() is not None]
            if len(alive) <= 2:  # the template sessions of /atlas and /concepts (reuse_sessions)
                break
            time.sleep(0.5)
        assert len(built) >= 6
        assert len(alive) <= 2, f"{len(alive)} of {len(built)} sessions' views still alive after their pages closed"
    finally:
        context.close()
        server.stop()
        pn.config.reuse_sessions = False


def upload(page, name, data):
    page.locator("input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "application/x-netcdf", "buffer": data}])


def test_empty_upload_says_so_and_a_new_file_clears_the_old_error(page, served):
    watch = Watch(page)
    open_dashboard(page, f"{served}/atlas")
    upload(page, "broken.nc", b"definitely not netCDF")
    page.get_by_text("is not a readable netCDF file").wait_for(timeout=30_000)
    upload(page, "empty.nc", b"")
    page.get_by_text("Could not open empty.nc").wait_for(timeout=30_000)
    page.get_by_text("the file is empty").wait_for(timeout=1_000)
    assert page.get_by_text("broken.nc").count() == 0  # the old error is gone
    assert watch.errors == []


def test_concept_result_in_the_fre_app_points_to_the_concept_app(page, served):
    from latentatlas import data as shipped

    open_dashboard(page, f"{served}/atlas")
    upload(page, "shapes.nc", (shipped.folder() / "demo_concepts_shapes.nc").read_bytes())
    page.get_by_text("Could not open shapes.nc").wait_for(timeout=60_000)
    page.get_by_text("is a concept result").wait_for(timeout=1_000)
    page.get_by_text("open it in the concept app").wait_for(timeout=1_000)


def test_removing_a_feature_set_moves_drilldown_and_3d_off_it(page, served, demo):
    open_dashboard(page, f"{served}/atlas")
    source = page.evaluate(DRILL_STATE)["pair"].split(" → ")[0]
    assert source in [str(s) for s in demo["source"].values]
    # the chooser's remove button of that feature set (Choices.js inside the MultiChoice's shadow root)
    button = page.evaluate_handle(f"""() => ({DEEP_ALL})('.choices__item[data-value]')
        .find((e) => e.dataset.value == {source!r}).querySelector('.choices__button')""")
    button.as_element().click()
    page.wait_for_function(f"() => !({DRILL_STATE})().pair.startsWith({source + ' → '!r})", timeout=30_000)
    page.wait_for_function(f"() => !({STRUCTURE_STATE})().group.join().includes({source + ' → '!r})", timeout=30_000)
    drill = page.evaluate(DRILL_STATE)["pair"]
    assert source not in drill.split(": ")[0].split(" → ")


SERVED_ONLY = "select samples to open their structure"


def test_intro_promises_structure_selection_only_when_served(page, served, report):
    open_dashboard(page, f"{served}/atlas")
    assert SERVED_ONLY in page.evaluate(TEXT)
    page.goto(report.as_uri())
    page.wait_for_function(f"() => window.Bokeh && ({STRUCTURE_DRAWN})()", timeout=60_000)
    text = page.evaluate(TEXT)
    assert "feature reconstruction error" in text and SERVED_ONLY not in text


COLOUR_BAR = f"() => ({FIND_PLOT})('fre_matrix').model.right.find((r) => r.color_mapper != null).title"


def test_gfre_colour_bar_and_help_name_the_same_unit(page, served):
    open_dashboard(page, f"{served}/atlas")
    bar = page.evaluate(COLOUR_BAR)
    drill = page.evaluate(DRILL_STATE)["pair"]
    help_line = next(t for t in page.evaluate(f"() => ({DEEP_ALL})('li').map((e) => e.textContent)")
                     if t.startswith("GFRE"))
    assert "dimensionless" not in bar
    unit = drill.split(" (")[1].split(")")[0]  # the drill-down's unit, e.g. "target σ"
    assert unit in bar and unit in help_line
