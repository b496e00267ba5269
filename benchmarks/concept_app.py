"""Cost of one /concepts session, for two or more checkouts side by side in one run.

For each checkout (a repository root: its ``lib`` goes first on the path), a fresh Python process
builds concept-app sessions the way ``panel serve app/concepts.py`` does (``ConceptAtlas`` on the
shipped result, laid out into a Bokeh document and serialised as the server sends it) and reports
its CPU time (``time.process_time``: the machine is shared, so wall time says little):

- cold: the first session of a process, reading the shipped result included;
- warm: each later session (median), the result already in memory.

With ``--browser`` it also serves each checkout's ``app/concepts.py`` and measures in headless
Chromium the wall time from navigation until the knowledge graph is drawn (first page, then the
median of the later ones). Checkouts run interleaved, ``--repeats`` times; ratios are to the first.

Usage: ``python benchmarks/concept_app.py /work/main . [--sessions 5] [--repeats 3] [--browser]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SESSIONS = """
import json, sys, time
t0 = time.process_time()
import panel as pn
from bokeh.document import Document
from latentatlas.viz import ConceptAtlas
from latentatlas.viz.concepts.data import builtin_concepts_path, load_concepts
pn.extension()
imported = time.process_time() - t0

def session(result):
    t = time.process_time()
    doc = Document()
    ConceptAtlas(result).__panel__().server_doc(doc)
    doc.to_json()
    return time.process_time() - t

t = time.process_time()
result = load_concepts(builtin_concepts_path()).load()
cold = time.process_time() - t + session(result)
warm = [session(result) for _ in range(int(sys.argv[1]))]
print(json.dumps({"import": imported, "cold": cold, "warm": warm}))
"""


def env_for(checkout: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(checkout / "lib"), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def cpu_run(checkout: Path, sessions: int) -> dict:
    out = subprocess.run([sys.executable, "-c", SESSIONS, str(sessions)], env=env_for(checkout), cwd=checkout,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def browser_run(browser, checkout: Path, pages: int) -> list[float]:
    """Seconds from navigation until the concept graph is drawn, for ``pages`` pages opened one after another."""
    sys.path.insert(0, str(ROOT / "tests"))
    from _ui import FIND_PLOT, free_port, wait_http

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "app/concepts.py", "--port", str(port), "--address", "127.0.0.1",
         "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=checkout, env=env_for(checkout), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/concepts"
    times = []
    try:
        wait_http(f"http://127.0.0.1:{port}/static/js/bokeh.min.js", server)  # up, and no concept session built yet
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        for _ in range(pages):
            page = context.new_page()
            t = time.perf_counter()
            page.goto(url, wait_until="commit", timeout=300_000)
            page.wait_for_function(f"() => window.Bokeh?.index != null && ({FIND_PLOT})('concept_graph') != null",
                                   polling=20, timeout=300_000)
            times.append(time.perf_counter() - t)
            page.close()
        context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="*", type=Path, default=[ROOT], help="repository roots (default: this one)")
    parser.add_argument("--sessions", type=int, default=5, help="warm sessions per process (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    parser.add_argument("--browser", action="store_true", help="also time the first view in headless Chromium")
    parser.add_argument("--pages", type=int, default=4, help="pages per server with --browser (default 4)")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkouts]
    load = os.getloadavg()[0]
    cold, warm, first, later = ({c: [] for c in checkouts} for _ in range(4))
    browser = None
    if args.browser:
        from playwright.sync_api import sync_playwright

        sys.path.insert(0, str(ROOT / "tests"))
        from _ui import CHROMIUM_ARGS

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    for _ in range(args.repeats):
        for c in checkouts:
            run = cpu_run(c, args.sessions)
            cold[c].append(run["cold"])
            warm[c] += run["warm"]
            if browser is not None:
                times = browser_run(browser, c, args.pages)
                first[c].append(times[0])
                later[c] += times[1:]
    print(f"load average at start {load:.1f}, at end {os.getloadavg()[0]:.1f}; {args.repeats} interleaved repeats")
    base = checkouts[0]
    rows = [("CPU s, first session (reads the result)", cold, True), ("CPU s, each later session", warm, True)]
    if browser is not None:
        rows += [("wall s to graph, first page", first, False), ("wall s to graph, later pages", later, False)]
    for label, data, _ in rows:
        print(f"\n{label} (median; ratio to {base})")
        for c in checkouts:
            m = statistics.median(data[c])
            print(f"  {str(c):40s} {m:7.3f}   x{m / statistics.median(data[base]):.2f}")


if __name__ == "__main__":
    main()
