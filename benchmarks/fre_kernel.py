"""The FRE measures under two versions of the library, side by side: CPU time and equality.

For a change to the numerical core (e.g. the cross-validated ridge kernel): the same
GFRE, GFRD and LFRE calls, on the data of ``fre_vs_scikit_matter.py``, run in fresh
processes under the library of a git revision (``--before``, extracted with ``git
archive``) and under this checkout's ``lib/``, alternately, ``--rounds`` times. Prints the
smallest CPU time of each call (one BLAS thread, ``n_jobs=1``: CPU time is what a shared
machine measures reliably), the after/before ratio, and whether the results are
bit-identical (a hash of every returned array).

    python benchmarks/fre_kernel.py                   # against main
    python benchmarks/fre_kernel.py --before HEAD~3 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cases():
    """Name -> call returning the arrays to compare; data as in fre_vs_scikit_matter.py (smaller)."""
    import numpy as np

    from fre_vs_scikit_matter import feature_sets
    from latentatlas import fre

    sets = feature_sets(20000, [64, 96, 128, 192])
    groups = np.arange(20000) // 8
    local_sets = feature_sets(1200, [16, 32, 48], seed=1)
    X, Y = feature_sets(600, [32, 32], seed=2).values()
    matrix = dict(progress=False, n_jobs=1)
    return {
        "GFRE matrix 4 sets, 20000 samples": lambda: fre.pointwise_fre_matrix(sets, "gfre", **matrix),
        "GFRE matrix, cv=grouped": lambda: fre.pointwise_fre_matrix(sets, "gfre", cv="grouped", groups=groups, **matrix),
        "GFRD matrix": lambda: fre.pointwise_fre_matrix(sets, "gfrd", **matrix),
        "LFRE matrix 3 sets, 1200 samples, k=50": lambda: fre.pointwise_fre_matrix(local_sets, "lfre", n_local_points=50,
                                                                                     **matrix),
        "LFRE matrix, cv=grouped": lambda: fre.pointwise_fre_matrix(local_sets, "lfre", n_local_points=50, cv="grouped",
                                                                    **matrix),
        "pointwise_lfre 300 test, k=50": lambda: fre.pointwise_lfre(X, Y, n_local_points=50, n_jobs=1),
    }


def worker(repeats):
    """Time every case in this process (the library on sys.path); JSON on stdout."""
    import numpy as np

    out = {}
    for name, call in cases().items():
        call()  # warm-up: imports and caches are not timed
        times = []
        for _ in range(repeats):
            start = time.process_time()
            result = call()
            times.append(time.process_time() - start)
        arrays = [result.values, *(c.values for c in result.coords.values())] if hasattr(result, "coords") else [result]
        digest = hashlib.sha256(b"".join(np.asarray(a).astype(str).tobytes() if np.asarray(a).dtype == object
                                         else np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()
        out[name] = {"cpu": min(times), "hash": digest}
    print(json.dumps(out))


def run_tree(lib, repeats):
    env = {**os.environ, "PYTHONPATH": f"{lib}{os.pathsep}{HERE}", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, __file__, "--worker", "--repeats", str(repeats)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="main", help="git revision of the library to compare against")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each version")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of each case per run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.repeats)
    root = HERE.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(root), "archive", args.before, "lib"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        trees = {"before": Path(tmp) / "lib", "after": root / "lib"}
        runs = {label: [] for label in trees}
        for _ in range(args.rounds):
            for label, lib in trees.items():
                runs[label].append(run_tree(lib, args.repeats))
    print(f"before = {args.before}, after = this checkout; best CPU time of {args.rounds} x {args.repeats} calls; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'call':<42} {'before':>9} {'after':>9} {'ratio':>7}  results")
    for name in runs["before"][0]:
        before, after = (min(r[name]["cpu"] for r in runs[label]) for label in trees)
        same = {r[name]["hash"] for label in trees for r in runs[label]}
        print(f"{name:<42} {before:8.2f}s {after:8.2f}s {after / before:6.2f}x  "
              f"{'bit-identical' if len(same) == 1 else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
