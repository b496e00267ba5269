"""Cost of one /atlas session, for checkouts and layouts side by side in one run.

For each variant (a checkout, whose ``lib`` goes first on the path, and a layout) a fresh Python
process builds FRE-app sessions the way the server does (``Atlas`` on the shipped demo levels,
laid out into a Bokeh document and serialised as the server sends it) and reports the CPU time
(``time.process_time``: the machine is shared, so wall time says little) of the first session
(cold, reading the demo files included) and the median of the later ones (warm). Layouts:
``plain`` (``Atlas.__panel__``, notebooks) and ``template`` (``Atlas.template()``, what
``latentatlas serve`` serves, where the checkout has it). Variants run interleaved,
``--repeats`` times; ratios are to the first variant.

Usage: ``python benchmarks/fre_app.py /work/main:plain .:plain .:template [--sessions 5] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SESSIONS = """
import json, sys, time
import panel as pn
from bokeh.document import Document
from latentatlas.viz import Atlas
from latentatlas.viz.fre.data import demo_comparison_paths, load_levels
pn.extension()
levels, times = None, []
for k in range(int(sys.argv[1])):
    t = time.process_time()
    levels = levels or load_levels(demo_comparison_paths())
    atlas = Atlas(levels)
    view = atlas.template() if sys.argv[2] == "template" else atlas.__panel__()
    doc = Document()
    view.server_doc(doc) if sys.argv[2] == "template" else view.get_root(doc)
    json.dumps(doc.to_json(), default=str)  # what the server sends to the browser
    times.append(time.process_time() - t)
print(json.dumps({"times": times}))
"""


def run(checkout: str, layout: str, sessions: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(Path(checkout).resolve() / "lib"), "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", SESSIONS, str(sessions), layout], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["times"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="CHECKOUT:LAYOUT (layout: plain or template)")
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cold, warm = {v: [] for v in args.variants}, {v: [] for v in args.variants}
    for _ in range(args.repeats):
        for variant in args.variants:
            checkout, layout = variant.rsplit(":", 1)
            times = run(checkout, layout, args.sessions)
            cold[variant].append(times[0])
            warm[variant].extend(times[1:])
    print(f"load average {os.getloadavg()[0]:.1f}; CPU s per session, median of {args.repeats} processes "
          f"x {args.sessions} sessions")
    base = statistics.median(warm[args.variants[0]])
    for variant in args.variants:
        w = statistics.median(warm[variant])
        print(f"{variant:40s} cold {statistics.median(cold[variant]):.2f} s  warm {w:.3f} s  ({w / base:.2f}x)")


if __name__ == "__main__":
    main()
