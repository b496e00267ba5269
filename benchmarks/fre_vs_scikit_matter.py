"""latentatlas.fre against scikit-matter, side by side in one process on the same data.

1. A full GFRE matrix over 8 feature sets (dims 64–512) on 20,000 samples: latentatlas's
   fre_matrix versus looping skmatter.metrics.global_reconstruction_error over the pairs.
2. LFRE with n_local_points=100 on 1,000 test samples: latentatlas versus skmatter.
3. The cost of grouped inner CV (``cv="grouped"``; GFRE: samples in "structures" of 8,
   LFRE: neighbourhoods searched for repeated vectors) against the scikit-matter mode.

Both sides are warmed up on a tiny problem first (one-time imports are not timed); the
comparison of the two CV modes takes the best of 3 calls of each. Prints
wall and CPU times, speed-up ratios (CPU-time ratios are the ones to trust on a shared
machine), the largest deviation between the two, peak memory of the
LFRE computation, the time of the SVDs any exact LFRE needs (the floor of both), and the
achieved fraction of this machine's measured matrix-multiply rate.

    python benchmarks/fre_vs_scikit_matter.py            # full size (a few minutes)
    python benchmarks/fre_vs_scikit_matter.py --quick    # smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from skmatter.metrics import global_reconstruction_error, local_reconstruction_error

from latentatlas import fre


def feature_sets(n_samples, dims, seed=0):
    """Related but different feature sets: non-linear views of one latent space plus noise."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_samples, 48))
    sets = {}
    for i, d in enumerate(dims):
        proj = rng.standard_normal((48, d)) / np.sqrt(48)
        mix = np.tanh(latent @ proj * (0.5 + i / len(dims))) + 0.3 * (latent @ proj) ** 2
        sets[f"set{i}_{d}d"] = mix + 0.05 * rng.standard_normal((n_samples, d))
    return sets


def gemm_rate(size=3000, repeats=3):
    a = np.random.default_rng(1).standard_normal((size, size))
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def gfre_matrix_flops(dims, n_train, n_test):
    """Floating-point operations of the dominant steps of latentatlas's GFRE matrix."""
    flops = 0.0
    for d in dims:
        m = n_train / 2
        flops += 2 * (4 * m * d * d + 8 * d**3)  # two fold SVDs
        for t in dims:
            flops += 2 * n_train * d * t + 2 * n_test * d * t  # fold projections, test predictions
    return flops


def timed(fn):
    """``fn()``, its wall time and its CPU time (all threads of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def best_of(fn, repeats=3):
    """``fn()`` and the smallest wall and CPU times of ``repeats`` calls (less noise on a busy machine)."""
    runs = [timed(fn) for _ in range(repeats)]
    return runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)


def report_times(ref_label, ours_label, t_ref, t_ours):
    """Print wall and CPU times of scikit-matter (``t_ref``) and latentatlas, and their ratios."""
    print(f"  scikit-matter {ref_label:<16}: {t_ref[0]:8.2f} s wall, {t_ref[1]:8.2f} s CPU")
    print(f"  latentatlas {ours_label:<18}: {t_ours[0]:8.2f} s wall, {t_ours[1]:8.2f} s CPU")
    print(f"  speed-up                      : {t_ref[0] / t_ours[0]:8.1f}x wall, {t_ref[1] / t_ours[1]:8.1f}x CPU")


def report_grouped(t_exact, t_grouped):
    print(f"  latentatlas cv='grouped'      : {t_grouped[0]:8.2f} s wall, {t_grouped[1]:8.2f} s CPU "
          f"({t_grouped[1] / t_exact[1]:.2f}x the CPU time of cv='skmatter'; both best of 3)")


def bench_gfre(n_samples, dims):
    sets = feature_sets(n_samples, dims)
    names = list(sets)
    # warm-up on a tiny problem: one-time imports (xarray probes for dask and friends) are not timed
    tiny = feature_sets(100, [4, 6], seed=3)
    fre.fre_matrix(tiny, "gfre", progress=False)
    global_reconstruction_error(*tiny.values())
    ours, *t_ours = best_of(lambda: fre.fre_matrix(sets, "gfre", progress=False).values)
    groups = np.arange(n_samples) // 8
    _, *t_grouped = best_of(lambda: fre.fre_matrix(sets, "gfre", cv="grouped", groups=groups, progress=False))
    reference = np.empty_like(ours)

    def loop():
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                reference[i, j] = global_reconstruction_error(sets[a], sets[b])

    _, *t_ref = timed(loop)
    dev = np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), 1e-12))
    off_diagonal = ~np.eye(len(names), dtype=bool)
    print(f"GFRE matrix {len(names)}x{len(names)}, {n_samples} samples, dims {dims}")
    report_times("loop over pairs", "fre_matrix", t_ref, t_ours)
    report_grouped(t_ours, t_grouped)
    print(f"  max relative deviation        : {np.max((np.abs(ours - reference) / reference)[off_diagonal]):.2e}"
          f" (off-diagonal), {dev:.1e} overall incl. the ~0 diagonal")
    return t_ours[0], gfre_matrix_flops(dims, n_samples // 2, n_samples - n_samples // 2)


def bench_lfre(n_test, dim, k):
    sets = feature_sets(2 * n_test, [dim, dim], seed=1)
    X, Y = sets.values()
    tracemalloc.start()
    ours, *t_ours = timed(lambda: fre.pointwise_lfre(X, Y, n_local_points=k))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _, *t_exact = best_of(lambda: fre.pointwise_lfre(X, Y, n_local_points=k))  # without tracemalloc's overhead
    _, *t_grouped = best_of(lambda: fre.pointwise_lfre(X, Y, n_local_points=k, cv="grouped"))
    from skmatter.metrics import pointwise_local_reconstruction_error

    reference, *t_ref = timed(lambda: pointwise_local_reconstruction_error(X, Y, k))
    print(f"LFRE, n_local_points={k}, {n_test} test samples, {dim} -> {dim} features")
    report_times("", "pointwise_lfre", t_ref, t_ours)
    report_grouped(t_exact, t_grouped)
    print(f"  max relative deviation        : {np.max(np.abs(ours - reference) / reference):.2e}")
    print(f"  global values                 : {np.sqrt(np.mean(reference**2)):.12f} vs {np.sqrt(np.mean(ours**2)):.12f}")
    print(f"  peak memory (latentatlas)     : {peak / 2**20:8.1f} MiB "
          f"(a dense test x train distance matrix alone is {n_test * n_test * 8 / 2**20:.1f} MiB)")
    floor = svd_floor(n_test, dim, k)
    print(f"  LAPACK SVD floor              : {floor:8.2f} s (the 3 SVDs per test point both do, on all cores): "
          f"at most {t_ref[0] / floor:.1f}x with the same arithmetic")


def svd_floor(n_test, dim, k):
    """Time of the SVDs every exact LFRE needs: two CV folds and the whole neighbourhood per test point."""
    from latentatlas.fre._parallel import parallel_map

    neighbourhoods = np.random.default_rng(2).standard_normal((n_test, k, dim))

    def svds(chunk):
        for part in (chunk[:, : k // 2], chunk[:, k // 2 :], chunk):
            np.linalg.svd(part, full_matrices=False)

    chunks = np.array_split(neighbourhoods, max(1, n_test // 128))
    return timed(lambda: parallel_map(svds, chunks, progress=False))[1]  # wall time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller problem sizes")
    args = parser.parse_args(argv)
    rate = gemm_rate()
    print(f"measured matrix-multiply rate: {rate / 1e9:.1f} GFLOP/s (float64)")
    if args.quick:
        t, flops = bench_gfre(4000, [32, 48, 64, 96])
        bench_lfre(300, 32, 50)
    else:
        t, flops = bench_gfre(20000, [64, 96, 128, 192, 256, 320, 448, 512])
        bench_lfre(1000, 128, 100)
    print(f"GFRE matrix achieved {flops / t / 1e9:.1f} GFLOP/s = {flops / t / rate:.0%} of the measured rate")


if __name__ == "__main__":
    main()
