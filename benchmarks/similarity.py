"""Every comparison measure's matrix against reference loops, side by side in one run.

1. Full matrices over 8 feature sets x 20,000 samples (default 50/50 split: in-sample measures
   on the 10,000 test rows, Procrustes fit on the training and scored on the test rows):
   latentatlas.similarity.similarity_matrix versus one reference call per pair, with
   - CKA, debiased CKA: Kornblith et al.'s feature-space formula, per pair;
   - RBF CKA: Kornblith et al.'s Gram-matrix formula on the same 2,000-row subsample;
   - Procrustes (alpha=1) and CCA shape angle (alpha=0): netrep's LinearMetric fit/score
     algorithm (netrep is not on PyPI; its steps are written out here);
   - CCA: repsim (PyPI), the installed third-party library;
   - SVCCA: Raghu et al.'s recipe (truncated SVD, then CCA by scipy's principal angles), per
     pair (repsim's SVCCA keeps a different, undocumented number of directions on large sets);
   - mutual k-NN: scikit-learn NearestNeighbors for both sets of each pair;
   - GFRE, GFRD: scikit-matter (GFRD only for pairs with dim X <= dim Y, where it works).
   Symmetric measures loop over the 28 unordered pairs (a loop over all 64 cells takes
   64/28 as long), FRE over the 56 ordered off-diagonal pairs.
2. Small problems (4 sets x 4,000 samples), cold: each side runs in a fresh Python process
   that imports its library and makes its first call; imports and first call are timed.
3. The LFRE matrix over S sets against the scikit-matter loop of S x S calls, S = 2, 4, 8:
   the neighbourhood factorisation of a source serves all S targets.

Wall-clock and process CPU time (all threads) are printed for both sides; on a shared
machine the CPU-time ratio is the steadier one. The references run with one BLAS thread
(--reference-blas-threads): on this 2-core machine, shared with other jobs, multi-threaded
OpenBLAS spins instead of working and made the reference loops several times slower.

    python benchmarks/similarity.py            # full size (about 10 minutes on 2 cores)
    python benchmarks/similarity.py --quick    # smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from _similarity_references import reference, split
from fre_vs_scikit_matter import feature_sets

from latentatlas import fre
from latentatlas.similarity import similarity_matrix
from threadpoolctl import threadpool_limits

SYMMETRIC = ("cka", "debiased_cka", "rbf_cka", "procrustes", "procrustes_cca", "cca", "svcca", "mknn")


def _pairs(metric, dims):
    """The cells a reference loop computes: unordered pairs for symmetric measures, else ordered ones."""
    n = len(dims)
    if metric in SYMMETRIC:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    return [(i, j) for i in range(n) for j in range(n) if i != j and (metric != "gfrd" or dims[i] <= dims[j])]


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


# --- 1. full matrices ----------------------------------------------------------------------------------------


def bench_matrices(n_samples, dims, metrics, blas_threads):
    sets = feature_sets(n_samples, dims)
    names, arrays = list(sets), list(sets.values())
    train, test = split(n_samples)
    tiny = feature_sets(60, [4, 6], seed=3)  # warm-up: one-time imports are not timed here (see part 2)
    print(f"\n1. Full matrices, {len(names)} sets x {n_samples} samples, dims {dims}")
    print(f"  {'measure':<15}{'ours s':>9}{'ref s':>9}{'wall x':>8}{'ours cpu':>10}{'ref cpu':>9}{'cpu x':>7}"
          f"{'pairs':>7}  max |deviation|")
    rows = []
    for metric in metrics:
        similarity_matrix(tiny, metric, progress=False)
        reference(metric, *tiny.values(), *split(60))
        ours, t_ours, c_ours = timed(lambda: similarity_matrix(sets, metric, progress=False).values)
        pairs = _pairs(metric, [a.shape[1] for a in arrays])
        ref = {}

        def loop():
            for i, j in pairs:
                ref[i, j] = reference(metric, arrays[i], arrays[j], train, test)

        with threadpool_limits(blas_threads, user_api="blas"):
            _, t_ref, c_ref = timed(loop)
        deviation = max(abs(ours[i, j] - v) for (i, j), v in ref.items())
        print(f"  {metric:<15}{t_ours:9.2f}{t_ref:9.2f}{t_ref / t_ours:8.1f}{c_ours:10.2f}{c_ref:9.2f}"
              f"{c_ref / c_ours:7.1f}{len(pairs):7d}  {deviation:.1e}", flush=True)
        rows.append((metric, t_ref / t_ours, c_ref / c_ours))
    return rows


# --- 2. small problems, cold ---------------------------------------------------------------------------------

_OURS = """
from latentatlas.similarity import similarity_matrix
from threadpoolctl import threadpool_limits
similarity_matrix(sets, {metric!r}, progress=False)
"""

_REF = """
import sys
sys.path.insert(0, {here!r})
from _similarity_references import reference, split
train, test = split(len(arrays[0]))
for i, j in {pairs!r}:
    reference({metric!r}, arrays[i], arrays[j], train, test)
"""

_RUN = """
import json, time
import numpy as np
data = np.load({path!r})
sets = {{k: data[k] for k in data.files}}
arrays = list(sets.values())
wall, cpu = time.perf_counter(), time.process_time()
{body}
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""


def _cold(body, path, blas_threads=None):
    """(wall, cpu) of ``body`` in a fresh interpreter; lines it prints itself are passed on."""
    code = _RUN.format(path=str(path), body=textwrap.dedent(body))
    env = dict(os.environ, **({"OPENBLAS_NUM_THREADS": str(blas_threads)} if blas_threads else {}))
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=env).stdout.splitlines()
    for line in lines[:-1]:
        print(line)
    return json.loads(lines[-1])


def bench_small_cold(n_samples, dims, metrics, blas_threads):
    sets = feature_sets(n_samples, dims, seed=4)
    n = len(sets)
    print(f"\n2. Small problems, cold (fresh process: imports + first call), {n} sets x {n_samples} samples, dims {dims}")
    print(f"  {'measure':<15}{'ours s':>9}{'ref s':>9}{'wall x':>8}{'ours cpu':>10}{'ref cpu':>9}{'cpu x':>7}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sets.npz"
        np.savez(path, **sets)
        for metric in metrics:
            pairs = _pairs(metric, dims)
            ours = _cold(_OURS.format(metric=metric), path)
            ref = _cold(_REF.format(here=str(Path(__file__).parent), metric=metric, pairs=pairs), path, blas_threads)
            print(f"  {metric:<15}{ours[0]:9.2f}{ref[0]:9.2f}{ref[0] / ours[0]:8.1f}{ours[1]:10.2f}{ref[1]:9.2f}"
                  f"{ref[1] / ours[1]:7.1f}", flush=True)
            rows.append((metric, ref[0] / ours[0], ref[1] / ours[1]))
        # where a cold GFRE goes: imports, first call, second call
        _cold("""
            t = time.perf_counter()
            from latentatlas import fre
            t_import = time.perf_counter() - t
            t = time.perf_counter(); fre.fre_matrix(sets, "gfre", progress=False); t_first = time.perf_counter() - t
            t = time.perf_counter(); fre.fre_matrix(sets, "gfre", progress=False); t_second = time.perf_counter() - t
            print(f"  GFRE cold breakdown: import latentatlas.fre {t_import:.2f} s, first call {t_first:.2f} s, "
                  f"second call {t_second:.2f} s")
            """, path)
    return rows


# --- 3. LFRE matrix vs the scikit-matter loop ----------------------------------------------------------------


def bench_lfre(n_samples, dims, k, sizes, blas_threads):
    from skmatter.metrics import local_reconstruction_error

    sets = feature_sets(n_samples, dims, seed=5)
    names = list(sets)
    print(f"\n3. LFRE matrix vs scikit-matter, {n_samples} samples ({n_samples // 2} test), n_local_points={k}, "
          f"dims {dims}")
    local_reconstruction_error(*list(sets.values())[:2], k)  # warm-up
    ref_wall, ref_cpu, ref_values = {}, {}, {}
    with threadpool_limits(blas_threads, user_api="blas"):
        for i, a in enumerate(names[: max(sizes)]):
            for j, b in enumerate(names[: max(sizes)]):
                ref_values[i, j], ref_wall[i, j], ref_cpu[i, j] = timed(
                    lambda: local_reconstruction_error(sets[a], sets[b], k))
    print(f"  {'sets':>5}{'calls':>7}{'ours s':>9}{'ref s':>9}{'wall x':>8}{'ours cpu':>10}{'ref cpu':>9}{'cpu x':>7}"
          "  max |deviation|")
    rows = []
    for size in sizes:
        subset = {n: sets[n] for n in names[:size]}
        ours, t_ours, c_ours = timed(lambda: fre.fre_matrix(subset, "lfre", n_local_points=k, progress=False).values)
        cells = [(i, j) for i in range(size) for j in range(size)]
        t_ref, c_ref = sum(ref_wall[c] for c in cells), sum(ref_cpu[c] for c in cells)
        deviation = max(abs(ours[c] - ref_values[c]) for c in cells)
        print(f"  {size:5d}{len(cells):7d}{t_ours:9.2f}{t_ref:9.2f}{t_ref / t_ours:8.1f}{c_ours:10.2f}{c_ref:9.2f}"
              f"{c_ref / c_ours:7.1f}  {deviation:.1e}", flush=True)
        rows.append((size, t_ref / t_ours))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller problem sizes")
    parser.add_argument("--parts", nargs="+", type=int, default=[1, 2, 3], choices=[1, 2, 3])
    parser.add_argument("--metrics", nargs="+", default=[*SYMMETRIC, "gfre", "gfrd"], help="measures to time")
    parser.add_argument("--reference-blas-threads", type=int, default=1,
                        help="BLAS threads of the reference side (default 1; 0: the library default)")
    args = parser.parse_args(argv)
    blas = args.reference_blas_threads or None
    metrics = args.metrics
    if 1 in args.parts:
        if args.quick:
            bench_matrices(4000, [16, 24, 32, 32, 48, 64, 64, 80], metrics, blas)
        else:
            bench_matrices(20000, [32, 48, 64, 64, 96, 128, 128, 160], metrics, blas)
    if 2 in args.parts:
        bench_small_cold(4000, [32, 48, 64, 96], metrics, blas)
    if 3 in args.parts:
        if args.quick:
            bench_lfre(400, [8, 12, 16, 16], 30, [2, 4], blas)
        else:
            bench_lfre(1200, [16, 24, 32, 32, 48, 48, 64, 64], 50, [2, 4, 8], blas)


if __name__ == "__main__":
    main()
