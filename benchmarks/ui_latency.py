"""Dashboard latency in headless Chromium on the built-in data: issue 15's whole table, side by side in one run.

Each *variant* is ``latentatlas serve`` with some options (``--variants``), optionally run from another
library tree (``--baseline LIB``: e.g. ``/work/main/lib``, to compare before/after a change); variants take
turns in every repeat, so a busy spell of the machine hits them alike. Per variant it measures:

- first view: a new page of /atlas until the heatmap is drawn, and of /concepts until the knowledge graph is
  (one page at a time, browser cache warm as for a returning user; target < 1.5 s);
- click a heatmap cell -> drill-down redrawn with that pair (target < 0.2 s), -> 3D viewer recoloured by that
  pair's error (server round trip; target < 0.3 s);
- level switch (atom <-> structure level) -> the new heatmap drawn (target < 0.5 s);
- ``--sessions`` pages of /atlas opened at once until every heatmap is drawn (target < 10 s), while an open
  page clicks a cell (drill-down and 3D recolour during the load; target < 0.5 s);
- outside requests: every request of every page to a host other than this machine (they are blocked and
  counted; target: none).

It prints medians, the server's CPU time (all its processes) and Chromium's for the sessions case, and the
load average: on a shared machine CPU times and ratios are the fairer figures.

Usage: ``python benchmarks/ui_latency.py [--repeats 3] [--sessions 10] [--variants "" "--num-procs 2"]
[--baseline /path/to/other/lib]``; the first variant is the reference of the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _ui import CHROMIUM_ARGS, FIND_PLOT, PLOT_XY, block_outside, free_port, wait_http  # noqa: E402  (the UI tests' helpers: one definition)
from test_ui_atlas import DRILL_STATE, STRUCTURE_DRAWN, STRUCTURE_STATE  # noqa: E402

SHOWN = "() => window.Bokeh && Bokeh.index && ({find})({name!r}) != null"
#: (row, target in s) in the order printed
TABLE = [("first view /atlas", 1.5), ("first view /concepts", 1.5), ("click -> drill-down", 0.2),
         ("click -> 3D", 0.3), ("level switch", 0.5), ("N sessions: all heatmaps", 10.0),
         ("N sessions: click -> drill-down", 0.5), ("N sessions: click -> 3D", 0.5)]


def shown(name: str) -> str:
    return SHOWN.format(find=FIND_PLOT, name=name)


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU time of ``proc`` and its children (``--num-procs`` forks)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


class Variant:
    """One ``latentatlas serve`` (options, library tree) on a free loopback port."""

    def __init__(self, label: str, options: str, lib: str | None):
        self.label, self.options, self.lib = label, options.split(), lib

    def __enter__(self):
        port = free_port()
        env = {**os.environ, "PYTHONPATH": self.lib} if self.lib else None
        self.proc = subprocess.Popen([sys.executable, "-m", "latentatlas", "serve", "--port", str(port), *self.options],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.url}/atlas", self.proc, timeout=300)
        self.ps = psutil.Process(self.proc.pid)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def open_page(context, url: str, plot: str) -> tuple[object, float]:
    """A new page of ``url``: seconds from navigation until the plot named ``plot`` is drawn."""
    page = context.new_page()
    t = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=300_000)
    page.wait_for_function(shown(plot), polling="raf", timeout=300_000)
    return page, time.perf_counter() - t


def click_cell(page, source: str, target: str) -> tuple[float, float]:
    """Click the cell (source, target): seconds until the drill-down, and until the 3D viewer, show that pair."""
    xy = page.evaluate(PLOT_XY, ["fre_matrix", target, source])
    t = time.perf_counter()
    page.mouse.click(*xy)
    page.wait_for_function(f"() => ({DRILL_STATE})().pair.startsWith({f'{source} → {target}:'!r})",
                           polling="raf", timeout=300_000)
    drill = time.perf_counter() - t
    page.wait_for_function(f"() => ({STRUCTURE_STATE})().group.includes({f'GFRE {source} → {target}'!r})",
                           polling="raf", timeout=300_000)
    return drill, time.perf_counter() - t


def switch_level(page, label: str) -> float:
    """Choose level ``label``: seconds until the heatmap shows the new level's values.

    The app updates the heatmap in place (one state, :mod:`latentatlas.viz.fre.state`), so what
    changes is the cells' values, not the Bokeh model."""
    values = f"""() => {{ const v = ({FIND_PLOT})('fre_matrix');
        return v == null ? null : JSON.stringify(Array.from(v.model.renderers[0].data_source.data.value)); }}"""
    before = page.evaluate(values)
    t = time.perf_counter()
    page.locator("select").first.select_option(label=label)
    page.wait_for_function(f"() => {{ const now = ({values})(); return now != null && now != {before!r}; }}",
                           polling="raf", timeout=300_000)
    return time.perf_counter() - t


def quiet_case(browser, variant: Variant, names: list[str], levels: list[str], k: int) -> dict:
    """One page at a time: first views, clicks, level switch."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside = block_outside(context)
    for url, plot in ((f"{variant.url}/atlas", "fre_matrix"), (f"{variant.url}/concepts", "concept_graph")):
        open_page(context, url, plot)[0].close()  # a returning user: BokehJS in the browser's cache
    row = {}
    page, row["first view /concepts"] = open_page(context, f"{variant.url}/concepts", "concept_graph")
    page.close()
    page, row["first view /atlas"] = open_page(context, f"{variant.url}/atlas", "fre_matrix")
    page.wait_for_function(STRUCTURE_DRAWN, timeout=300_000)
    source, target = names[k % len(names)], names[(k + 1) % len(names)]
    row["click -> drill-down"], row["click -> 3D"] = click_cell(page, source, target)
    row["level switch"] = statistics.mean([switch_level(page, levels[1]), switch_level(page, levels[0])])
    context.close()
    return row, outside


def sessions_case(browser, variant: Variant, names: list[str], n: int) -> dict:
    """``n`` pages of /atlas opened at once while an open page clicks a cell."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside = block_outside(context)
    clicker, _ = open_page(context, f"{variant.url}/atlas", "fre_matrix")  # warm-up, and a user at work meanwhile
    clicker.wait_for_function(STRUCTURE_DRAWN, timeout=300_000)
    pages = [context.new_page() for _ in range(n)]
    load, server, chromium = os.getloadavg()[0], cpu_seconds(variant.ps), cpu_seconds(psutil.Process(browser_pid(browser)))
    rss = rss_mb(variant.ps)
    t = time.perf_counter()
    for page in pages:  # all at once: page.goto would wait for each page's HTML, i.e. for the server
        page.evaluate("(url) => { window.location.href = url; }", f"{variant.url}/atlas")
    row = {}
    row["N sessions: click -> drill-down"], row["N sessions: click -> 3D"] = click_cell(clicker, names[1], names[-1])
    for page in pages:
        page.wait_for_function(shown("fre_matrix"), polling=100, timeout=300_000)
    row["N sessions: all heatmaps"] = time.perf_counter() - t
    row["server CPU"] = cpu_seconds(variant.ps) - server
    row["Chromium CPU"] = cpu_seconds(psutil.Process(browser_pid(browser))) - chromium
    row["load before"] = load
    row["server MB before"], row["server MB with N open"] = rss, rss_mb(variant.ps)
    context.close()
    return row, outside


def rss_mb(proc: psutil.Process) -> float:
    """Resident memory of ``proc`` and its children, MB."""
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 1e6


def browser_pid(browser) -> int:
    """Process id of the Chromium that playwright launched (a child of this process' driver)."""
    for p in psutil.Process().children(recursive=True):
        try:
            if p.name().startswith("chromium") and not any(a.startswith("--type=") for a in p.cmdline()):
                return p.pid
        except psutil.Error:
            pass
    raise RuntimeError("no Chromium process found")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=10, help="pages opened at once (0: skip that case)")
    parser.add_argument("--variants", nargs="+", default=[""],
                        help="`latentatlas serve` options, one string per variant ('': the defaults)")
    parser.add_argument("--baseline", metavar="LIB",
                        help="also run the defaults with this library tree first on PYTHONPATH (e.g. main's lib/)")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from latentatlas.viz.fre.data import demo_comparison_paths, load_levels

    levels = load_levels(demo_comparison_paths())
    names = [str(s) for s in next(iter(levels.values()))["source"].values]
    variants = [(f"{o or '(defaults)'}", o, None) for o in args.variants]
    if args.baseline:
        variants.insert(0, (f"(defaults) [{args.baseline}]", "", args.baseline))
    rows = {label: [] for label, _, _ in variants}
    outside = {label: [] for label, _, _ in variants}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for k in range(args.repeats):
            for label, options, lib in variants:  # interleaved
                with Variant(label, options, lib) as variant:
                    row, out = quiet_case(browser, variant, names, list(levels), k)
                    outside[label] += out
                    if args.sessions:
                        more, out = sessions_case(browser, variant, names, args.sessions)
                        row.update(more)
                        outside[label] += out
                rows[label].append(row)
                print(f"  repeat {k}, {label}: " + ", ".join(f"{key} {v:.2f}" for key, v in row.items()), flush=True)
        browser.close()

    print(f"\nlatentatlas serve on the built-in data; {args.repeats} repeats interleaved; medians; N = {args.sessions}; "
          f"{os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}")
    labels = list(rows)
    width = max(30, *(len(label) + 2 for label in labels))
    print(f"{'':34s}{'target':>9s}" + "".join(f"{label:>{width}s}" for label in labels))
    base = labels[0]
    for key, target in [*TABLE, ("server CPU", None), ("Chromium CPU", None), ("server MB before", None),
                        ("server MB with N open", None), ("load before", None)]:
        if key not in rows[base][0]:
            continue
        cells = []
        for label in labels:
            med = statistics.median(r[key] for r in rows[label])
            ratio = med / statistics.median(r[key] for r in rows[base]) if label != base else 1.0
            mark = "" if target is None else (" ok" if med < target else " MISSED")
            unit = "" if key == "load before" else (" MB" if " MB" in key else " s")
            cells.append(f"{med:7.1f}{unit}" if target is None and unit != " s" else f"{med:7.2f} s ({ratio:4.2f}x){mark}")
        print(f"{key.replace('N ', f'{args.sessions} ').replace(' MB', ''):34s}{'' if target is None else f'< {target}':>9s}"
              + "".join(f"{c:>{width}s}" for c in cells))
    print(f"{'outside requests':34s}{'none':>9s}" + "".join(f"{len(outside[label]):>{width}d}" for label in labels))
    for label in labels:
        for url in sorted(set(outside[label]))[:10]:
            print(f"  outside request ({label}): {url}")


if __name__ == "__main__":
    main()
