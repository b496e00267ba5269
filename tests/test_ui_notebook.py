"""``notebooks/fre_dashboard.ipynb`` as people open it: a real JupyterLab server, headless Chromium.

The notebook runs top to bottom in a live kernel ("Run All Cells" from JupyterLab's Run menu); a click on
the dashboard's FRE matrix then travels through Panel's Jupyter comms to the kernel, whose callbacks
recolour the 3D viewer by the clicked pair's per-atom errors. A static render (nbconvert HTML, the
offline report) keeps only the browser-side part of the drill-down, so the check on the 3D viewer fails
without a kernel.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.request

import pytest

pytest.importorskip("playwright")
pytest.importorskip("jupyterlab")
from jupyter_client import BlockingKernelClient  # noqa: E402  (installed with jupyterlab)
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from _ui import (  # noqa: E402
    ARTIFACTS,
    LOCAL,
    ROOT,
    UI_MARKS,
    Watch,
    browser_context_args,  # noqa: F401  (fixture)
    browser_type_launch_args,  # noqa: F401  (fixture)
    click_plot,
    free_port,
    plot_xy,
    wait_http,
)

pytestmark = [*UI_MARKS, pytest.mark.slow]

NOTEBOOK = "fre_dashboard.ipynb"
# the project's settings (loopback only, no news feed or update check), run by whoever the test runs as
LAB_OPTIONS = [f"--config={ROOT / 'notebooks' / 'jupyter_lab_config.py'}", "--no-browser", "--allow-root",
               "--ServerApp.port_retries=0"]
# JupyterLab's own settings and state live in the test's folder: a user's settings change nothing.
# Nothing covers the notebook: no "Select Kernel" dialog (JupyterLab connects to the kernel the test
# started), no notification asking about the news feed.
LAB_SETTINGS = {"notebook-extension/tracker": {"autoStartDefaultKernel": True},
                "apputils-extension/notification": {"fetchNews": "false"}}
LAB_DIRS = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTERLAB_SETTINGS_DIR": "settings", "JUPYTERLAB_WORKSPACES_DIR": "workspaces", "IPYTHONDIR": "ipython"}

# The dashboard's views are those shown in the output of the cell that displays `atlas` (later cells show
# a matrix and a drill-down of their own). Panel draws inside shadow roots: climb out of them to test
# which cell holds a view.
IN_DASHBOARD = """(el) => {
    const cell = [...document.querySelectorAll('.jp-CodeCell')].find(
        (c) => c.querySelector('.jp-InputArea-editor')?.textContent.includes('atlas = latentatlas.show'));
    for (let node = el; node != null; node = node.parentNode ?? node.host) { if (node === cell) { return true; } }
    return false;
}"""
FIND_DASHBOARD_PLOT = f"""(name) => Bokeh.index.query_one((v) => v.model.name === name && v.frame != null
    && v.el.getClientRects().length > 0 && ({IN_DASHBOARD})(v.el))"""
DASHBOARD_XY = plot_xy(FIND_DASHBOARD_PLOT)
# every named plot: its name, whether it has a box on the page, whether it is the dashboard's
PLOTS_SHOWN = f"""() => window.Bokeh == null ? 'no BokehJS' : [...Bokeh.index.query((v) => v.model.name?.length > 0)]
    .map((v) => [v.model.name, v.el.getClientRects().length, ({IN_DASHBOARD})(v.el)])"""
# what the dashboard shows: the pair named above the drill-down (its Div drill_pair, as text),
# the 3D viewer's title and legend entries
FIND_DASHBOARD_VIEW = f"""(name) => Bokeh.index.query_one((v) => v.model.name === name
    && v.el.getClientRects().length > 0 && ({IN_DASHBOARD})(v.el))"""
DASHBOARD_STATE = f"""() => {{
    const drill = ({FIND_DASHBOARD_VIEW})('drill_pair'), scene = ({FIND_DASHBOARD_PLOT})('structure');
    if (drill == null || scene == null) {{ return null; }}
    const atoms = scene.model.renderers.find((r) => r.data_source.data.element != null)?.data_source.data;
    return {{drill: drill.model.text.replace(/<[^>]*>/g, ''), structure: scene.model.title.text,
             groups: atoms == null ? [] : [...new Set(atoms.group)]}};
}}"""
MATRIX_LABELS = f"""() => {{
    const v = ({FIND_DASHBOARD_PLOT})('fre_matrix');
    return v == null ? null : [v.model.y_range.factors, v.model.x_range.factors];
}}"""
# code cells show "[ ]:" before they run, "[*]:" while queued or running, "[n]:" once run
PROMPTS = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map((p) => p.textContent.trim())"
CELLS_STARTED = f"() => ({PROMPTS})().some((p) => p !== '[ ]:')"
CELLS_DONE = f"() => ({PROMPTS})().length > 0 && ({PROMPTS})().every((p) => /^\\[\\d+\\]:$/.test(p))"


def start_kernel(api: str, token: str, runtime_dir, timeout: float = 120) -> None:
    """Start the notebook's kernel and wait until it answers, as when a user reopens a running notebook.

    A page that connects while its kernel is still starting can give up on its first websocket
    (jupyter-server/jupyter_server#1265 on the server's side), connect again, and keep a kernel
    connection with comms disabled ("Comms are disabled on this kernel connection"): Panel's views
    render but never reach the kernel.
    """
    request = urllib.request.Request(
        f"{api}/sessions", method="POST", headers={"Authorization": f"token {token}"},
        data=json.dumps({"path": NOTEBOOK, "name": NOTEBOOK, "type": "notebook", "kernel": {"name": "python3"}}).encode())
    with urllib.request.urlopen(request, timeout=60) as answer:
        kernel = json.load(answer)["kernel"]["id"]
    client = BlockingKernelClient(connection_file=str(runtime_dir / f"kernel-{kernel}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
    finally:
        client.stop_channels()


@pytest.fixture
def jupyterlab(tmp_path):
    """``jupyter lab`` on a free loopback port, serving a copy of the notebook; yields the notebook's URL."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root)  # JupyterLab saves outputs into the file it runs
    env = {**os.environ, **{k: str(tmp_path / v) for k, v in LAB_DIRS.items()}}
    for plugin, settings in LAB_SETTINGS.items():
        path = tmp_path / LAB_DIRS["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(settings))
    port, token = free_port(), secrets.token_hex(16)
    # the server and its kernels log to a file: a pipe nobody reads would fill up and stall them
    with open(tmp_path / "jupyterlab.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", *LAB_OPTIONS, f"--ServerApp.port={port}",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
    try:
        api = f"http://127.0.0.1:{port}/api"
        wait_http(f"{api}/status?token={token}", proc)
        start_kernel(api, token, tmp_path / LAB_DIRS["JUPYTER_RUNTIME_DIR"])
        yield f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        print((tmp_path / "jupyterlab.log").read_text())  # shown by pytest when the test fails


def run_all_cells(page, tries=3):
    """Run > Run All Cells, as a user would, once the page is connected to the kernel.

    JupyterLab marks every queued cell "[*]" as soon as the command runs; a click that the menu lost
    while redrawing itself (it does when the kernel's status changes) leaves them "[ ]": click again.
    """
    for _ in range(tries):
        page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=60_000)
        page.locator(".lm-MenuBar-item", has_text="Run").click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]:not(.lm-mod-disabled)').click()
        try:
            page.wait_for_function(CELLS_STARTED, timeout=10_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")  # close the menu if it is still open
    raise AssertionError(f"Run All Cells ran nothing: {page.evaluate(PROMPTS)}")


@contextlib.contextmanager
def diagnosed(page, watch):
    """On failure: a screenshot, the cells' prompts and outputs, where the named plots are, browser errors."""
    try:
        yield
    except Exception:
        page.screenshot(path=ARTIFACTS / "notebook-jupyterlab-failed.png")
        print(page.evaluate(PROMPTS))
        print(page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output')].map(
            (o) => [o.dataset.mimeType, o.childElementCount, o.innerText.slice(0, 300)])"""))
        print(page.evaluate(PLOTS_SHOWN))
        print(watch.errors)
        raise


def test_notebook_dashboard_in_jupyterlab_click_reaches_the_kernel(page, jupyterlab):
    watch = Watch(page)
    page.goto(jupyterlab)
    with diagnosed(page, watch):
        run_all_cells(page)
        # the last cell exports the offline report: every cell ran once its output is there
        page.locator(".jp-OutputArea-output", has_text="report.html").wait_for(timeout=240_000)
        page.wait_for_function(CELLS_DONE, timeout=30_000)
        page.locator(".jp-CodeCell", has_text="atlas = latentatlas.show").scroll_into_view_if_needed()
        page.wait_for_function(f"() => ({DASHBOARD_STATE})()?.groups.length > 0", timeout=60_000)
        before = page.evaluate(DASHBOARD_STATE)
        sources, targets = page.evaluate(MATRIX_LABELS)
        source, target = next((s, t) for s in sources for t in targets  # not the pair shown first
                              if s != t and not before["drill"].startswith(f"{s} → {t}:"))
        label = f"GFRE {source} → {target}"
        assert label not in before["groups"]

        click_plot(page, "fre_matrix", target, source, locate=DASHBOARD_XY)
        page.wait_for_function(f"() => ({DASHBOARD_STATE})()?.drill.startsWith({f'{source} → {target}:'!r})",
                               timeout=30_000)
        # only the kernel knows per-atom errors: the 3D viewer recoloured by the clicked pair came through comms
        page.wait_for_function(f"() => ({DASHBOARD_STATE})()?.groups.includes({label!r})", timeout=30_000)
    page.screenshot(path=ARTIFACTS / "notebook-jupyterlab.png")
    assert watch.outside(LOCAL) == []
