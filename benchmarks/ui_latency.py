"""Dashboard latency in headless Chromium on the built-in data: first render and click-to-update.

Serves ``app/atlas.py`` (or ``--app``) with ``panel serve`` on a free loopback port and drives it with the
system Chromium (``make browser``). Prints medians over repeated page loads and clicks:

- first render: navigation start until the heatmap, the drill-down and the 3D viewer are drawn
  (target < 3 s);
- click a heatmap cell -> drill-down redrawn with that pair (browser-side, target < 0.5 s);
- click a heatmap cell -> 3D viewer recoloured by that pair's error (server round trip);
- click a sample on the map -> its structure drawn in 3D (server round trip).

Usage: ``python benchmarks/ui_latency.py [--repeats 5] [--app app/atlas.py]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _ui import CHROMIUM_ARGS, PLOT_XY, free_port, wait_http  # noqa: E402  (the UI tests' helpers: one definition)
from test_ui_atlas import DRILL_STATE, STRUCTURE_STATE, open_dashboard  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--app", default="app/atlas.py", help="Panel app serving the dashboard (a variant to compare)")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from latentatlas.viz.data import demo_comparison_paths, load_levels

    demo = next(iter(load_levels(demo_comparison_paths()).values()))
    names = [str(s) for s in demo["source"].values]
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
                page.wait_for_function(f"() => ({DRILL_STATE})().title.startsWith({f'{source} → {target}:'!r})",
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
