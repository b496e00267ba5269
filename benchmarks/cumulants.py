"""Vectorised progressive cumulants against the straightforward loop over structures.

The loop computes, per structure, ``scipy.stats.moment`` for n = 2 … order and the explicit
moment-cumulant formulas, then the signed n-th roots. Both run in this process on the same
data; the script prints times, their ratio, the largest deviation and the peak memory of
the vectorised version relative to the input.

    .venv/bin/python benchmarks/cumulants.py [--structures 2000] [--features 128] [--order 8]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import scipy.stats

from latentatlas.cumulants import progressive_cumulants


def _explicit(m):
    return {
        2: m[2],
        3: m[3],
        4: m[4] - 3 * m[2] ** 2,
        5: m[5] - 10 * m[3] * m[2],
        6: m[6] - 15 * m[4] * m[2] - 10 * m[3] ** 2 + 30 * m[2] ** 3,
        7: m[7] - 21 * m[5] * m[2] - 35 * m[4] * m[3] + 210 * m[3] * m[2] ** 2,
        8: m[8] - 28 * m[6] * m[2] - 56 * m[5] * m[3] - 35 * m[4] ** 2
        + 420 * m[4] * m[2] ** 2 + 560 * m[3] ** 2 * m[2] - 630 * m[2] ** 4,
    }


def loop_reference(X, sizes, order):
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    rows = []
    for s in range(len(sizes)):
        x = X[bounds[s] : bounds[s + 1]]
        m = {n: scipy.stats.moment(x, order=n, axis=0) for n in range(2, order + 1)}
        k = _explicit(m)
        roots = [np.sign(k[n]) * np.abs(k[n]) ** (1 / n) for n in range(2, order + 1)]
        rows.append(np.concatenate([x.mean(axis=0), *roots]))
    return np.array(rows)


def _timed(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--structures", type=int, default=2000)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--order", type=int, default=8)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 40, size=args.structures)
    index = np.repeat(np.arange(args.structures), sizes)
    X = rng.gamma(2.0, size=(index.size, args.features)) + rng.normal(scale=10, size=args.features)

    t_vec, fast = _timed(lambda: progressive_cumulants(X, index, args.order))
    t_loop, slow = _timed(lambda: loop_reference(X, sizes, args.order), repeat=1)
    tracemalloc.start()
    progressive_cumulants(X, index, args.order)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    # Compare kappa_n (not the roots, which amplify rounding of near-zero cumulants) in units of spread^n;
    # the loop centres once, so most of the deviation is its rounding (see test_large_offset_is_exact_to_rounding).
    d = args.features
    print(f"{args.structures} structures, {index.size} atoms, {d} features, order {args.order}")
    print(f"vectorised {t_vec * 1e3:9.1f} ms   loop over structures (scipy.stats.moment) {t_loop * 1e3:9.1f} ms")
    print(f"speed-up {t_loop / t_vec:.1f}x")
    spread = np.maximum.reduceat(np.abs(X - np.repeat(fast[:, :d], sizes, axis=0)), np.cumsum(sizes) - sizes)
    spread[spread == 0] = 1
    worst = 0.0
    for n in range(1, args.order + 1):
        a, b = fast[:, (n - 1) * d : n * d], slow[:, (n - 1) * d : n * d]
        if n == 1:
            worst = max(worst, np.max(np.abs(a - b) / np.maximum(np.abs(b), 1)))
        else:
            ka, kb = np.sign(a) * np.abs(a) ** n, np.sign(b) * np.abs(b) ** n
            worst = max(worst, np.max(np.abs(ka - kb) / spread**n))
    print(f"max deviation of kappa_n / spread^n: {worst:.2e}")
    print(f"peak memory {peak / 2**20:.1f} MiB = {peak / X.nbytes:.1f}x the input ({X.nbytes / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
