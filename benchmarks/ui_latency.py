"""Dashboard latency in headless Chromium on the built-in data: first render and click-to-update.

Serves ``app/atlas.py`` (or ``--app``) with ``panel serve`` on a free loopback port and drives it with the
system Chromium (``make browser``). Prints medians over repeated page loads and clicks:

- first render: navigation start until the heatmap, the drill-down and the 3D viewer are drawn
  (target < 3 s);
- click a heatmap cell -> drill-down redrawn with that pair (browser-side, target < 0.5 s);
- click a heatmap cell -> 3D viewer recoloured by that pair's error (server round trip);
- click a sample on the map -> its structure drawn in 3D (server round trip).

With ``--sessions N`` it measures instead a group sharing one ``latentatlas serve``: N sessions of
/atlas opened at once (time until every page shows its heatmap) while an already open page clicks a cell
(drill-down and 3D recolour latency during the load), for each ``--variants`` (serve options) side by side in one
run (interleaved repeats), with the machine's load average and the server's CPU time.

Usage: ``python benchmarks/ui_latency.py [--repeats 5] [--app app/atlas.py]``
or ``python benchmarks/ui_latency.py --sessions 10 --variants "" "--num-threads 4" [--repeats 2]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _ui import CHROMIUM_ARGS, FIND_PLOT, PLOT_XY, free_port, wait_http  # noqa: E402  (the UI tests' helpers: one definition)
from test_ui_atlas import DRILL_STATE, STRUCTURE_STATE, open_dashboard  # noqa: E402


def click_cell(page, source, target) -> tuple[float, float]:
    """Click the GFRE cell (source, target): seconds until the drill-down, and until the 3D viewer, show that pair."""
    xy = page.evaluate(PLOT_XY, ["fre_matrix", target, source])
    t = time.perf_counter()
    page.mouse.click(*xy)
    page.wait_for_function(f"() => ({DRILL_STATE})().pair.startsWith({f'{source} → {target}:'!r})",
                           polling="raf", timeout=300_000)
    drill = time.perf_counter() - t
    page.wait_for_function(f"() => ({STRUCTURE_STATE})().group.includes({f'GFRE {source} → {target}'!r})",
                           polling="raf", timeout=300_000)
    return drill, time.perf_counter() - t


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_group(browser, variant: str, n_sessions: int, names: list[str]) -> dict:
    """Serve with options ``variant``, open ``n_sessions`` pages at once, click a cell on another page meanwhile."""
    port = free_port()
    extra = variant.split()
    server = subprocess.Popen([Path(sys.executable).parent / "latentatlas", "serve", "--port", str(port), *extra],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/atlas"
    try:
        wait_http(url, server)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        clicker = context.new_page()
        open_dashboard(clicker, url)  # warm-up, and the page a user is working on meanwhile
        load, cpu = os.getloadavg()[0], cpu_seconds(server.pid)
        pages = [context.new_page() for _ in range(n_sessions)]
        t = time.perf_counter()
        for page in pages:
            page.goto(url, wait_until="commit", timeout=300_000)
        drill, recolour = click_cell(clicker, names[1], names[-1])
        for page in pages:
            page.wait_for_function(f"() => window.Bokeh && Bokeh.index && ({FIND_PLOT})('fre_matrix') != null",
                                   polling=100, timeout=300_000)
        shown = time.perf_counter() - t
        cpu = cpu_seconds(server.pid) - cpu
        context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"all shown": shown, "click -> drill-down": drill, "click -> 3D": recolour,
            "server CPU": cpu, "load before": load}


def sessions_case(args, names) -> None:
    from playwright.sync_api import sync_playwright

    results = {variant: [] for variant in args.variants}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(args.repeats):
            for variant in args.variants:  # interleaved: a busy spell of the machine hits every setting alike
                results[variant].append(one_group(browser, variant, args.sessions, names))
        browser.close()
    print(f"latentatlas serve, /atlas; {args.sessions} sessions opened at once; {args.repeats} repeats interleaved; "
          f"{os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}")
    base = args.variants[0]
    for variant, rows in results.items():
        medians = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        ratio = medians["all shown"] / statistics.median(r["all shown"] for r in results[base])
        print(f"{variant or '(defaults)':24s}: all heatmaps {medians['all shown']:6.1f} s ({ratio:.2f}x of {base or '(defaults)'}; "
              f"target < 10 s), click -> drill-down {medians['click -> drill-down']:.2f} s, -> 3D "
              f"{medians['click -> 3D']:.2f} s (target < 0.5 s); server CPU {medians['server CPU']:.1f} s; "
              f"load average before {medians['load before']:.1f}; runs: "
              + ", ".join(f"{r['all shown']:.1f}" for r in rows))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--app", default="app/atlas.py", help="Panel app serving the dashboard (a variant to compare)")
    parser.add_argument("--sessions", type=int, default=0, help="measure N sessions opened at once instead")
    parser.add_argument("--variants", nargs="+", default=["", "--num-threads 4"],
                        help="`latentatlas serve` options compared by --sessions, one string each ('': the defaults)")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from latentatlas.viz.fre.data import demo_comparison_paths, load_levels

    demo = next(iter(load_levels(demo_comparison_paths()).values()))
    names = [str(s) for s in demo["source"].values]
    if args.sessions:
        sessions_case(args, names)
        return
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", args.app, "--port", str(port), "--address", "127.0.0.1",
         "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/{Path(args.app).stem}"
    render, drill, recolour, structure = [], [], [], []
    try:
        wait_http(url, server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            open_dashboard(browser.new_page(), url)  # warm-up: server imports, browser caches
            for k in range(args.repeats):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t = time.perf_counter()
                open_dashboard(page, url)
                render.append(time.perf_counter() - t)
                source, target = names[k % len(names)], names[(k + 1) % len(names)]
                xy = page.evaluate(PLOT_XY, ["fre_matrix", target, source])
                t = time.perf_counter()
                page.mouse.click(*xy)
                page.wait_for_function(f"() => ({DRILL_STATE})().pair.startsWith({f'{source} → {target}:'!r})",
                                       polling="raf")
                drill.append(time.perf_counter() - t)
                page.wait_for_function(
                    f"() => ({STRUCTURE_STATE})().group.includes({f'GFRE {source} → {target}'!r})", polling="raf")
                recolour.append(time.perf_counter() - t)
                state = page.evaluate(DRILL_STATE)
                shown = page.evaluate(STRUCTURE_STATE)["title"].split(":")[0] + ":"
                # the worst sample of another structure: a tap there opens that structure
                pick = max((i for i, s in enumerate(state["structure"]) if f"structure {s}:" != shown),
                           key=lambda i: state["error"][i])
                xy = page.evaluate(PLOT_XY, ["drill_map", state["x"][pick], state["y"][pick]])
                t = time.perf_counter()
                page.mouse.click(*xy)
                # overlapping points may all be hit: whichever structure opens, it is a new one
                page.wait_for_function(f"() => !({STRUCTURE_STATE})().title.startsWith({shown!r})", polling="raf")
                structure.append(time.perf_counter() - t)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    n_test = demo.sizes["test_atom"]
    print(f"{args.app}; built-in data: {len(names)} feature sets, {demo.sizes['structure']} structures, "
          f"{n_test} test atoms; {args.repeats} page loads, headless Chromium")
    for label, times, target in [
        ("first render (heatmap + drill-down + 3D)", render, 3.0),
        ("click cell -> drill-down updated", drill, 0.5),
        ("click cell -> 3D recoloured (server)", recolour, 0.5),
        ("click sample -> structure shown (server)", structure, 0.5),
    ]:
        med = statistics.median(times)
        print(f"{label:45s} median {med:6.3f} s  (min {min(times):.3f}, max {max(times):.3f}; "
              f"target < {target} s: {'met' if med < target else 'MISSED'})")


if __name__ == "__main__":
    main()
