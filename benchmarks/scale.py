"""More data than one machine: streamed GFRE in bounded memory, and LFRE from a neighbour index.

Synthetic features are generated chunk by chunk (deterministically per chunk, so every
engine sees the same numbers): ``n_sets`` sets of ``dims`` columns, each a different linear
image of a shared 16-dimensional latent plus independent noise (well conditioned, GFRE
about 0.3-0.5). Every case runs in a fresh subprocess, so its peak resident memory
(``ru_maxrss``) is its own; CPU time is that of the process (all threads), since the
machine is shared and wall time varies.

Cases
-----
* streamed GFRE matrix (``latentatlas.fre.streamed``, Gram route, dask threaded scheduler,
  chunks of 8,192 atoms) at 2e4, 2e5 and 2e6 atoms: time, time per atom, peak memory;
* the in-memory ``fre_matrix`` at 2e5 atoms on the same data, side by side (ratio);
* LFRE (``latentatlas.fre.indexed``, exact faiss search) of 1e4 test atoms against 1e6
  training atoms, 2 sets;
* the approximate (HNSW) search against the exact one on 1e5 training atoms: recall of the
  exact neighbours and the change of the pointwise LFRE.

    nice .venv/bin/python benchmarks/scale.py [--dims 256] [--sets 4] [--sizes 2e4 2e5 2e6] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

CHUNK = 8192
LATENT = 16


def _block(start, stop, set_index, dims, seed=0):
    """Rows ``start:stop`` of synthetic feature set ``set_index``; chunk-aligned blocks are generated alone."""
    rows = []
    for c0 in range(start - start % CHUNK, stop, CHUNK):
        rng = np.random.default_rng([seed, c0])
        latent = rng.standard_normal((CHUNK, LATENT))
        mix = np.random.default_rng([seed, 10_000 + set_index]).standard_normal((LATENT, dims))
        noise = np.random.default_rng([seed, c0, set_index]).standard_normal((CHUNK, dims))
        block = latent @ mix + (0.3 + 0.2 * set_index) * noise + set_index
        rows.append(block[max(start, c0) - c0 : min(stop, c0 + CHUNK) - c0])
    return np.concatenate(rows)


def _dask_sets(n, n_sets, dims):
    import dask.array as da
    from dask import delayed

    sets = {}
    for i in range(n_sets):
        blocks = [
            da.from_delayed(delayed(_block)(a, min(a + CHUNK, n), i, dims), shape=(min(a + CHUNK, n) - a, dims), dtype=float)
            for a in range(0, n, CHUNK)
        ]
        sets[f"set{i}"] = da.concatenate(blocks)
    return sets


def _report(**values):
    values["cpu_s"] = time.process_time()
    values["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(values), flush=True)


def case_streamed(n, n_sets, dims):
    import dask

    from latentatlas.fre.streamed import streamed_fre_matrix

    with dask.config.set(scheduler="threads", num_workers=2):
        start = time.perf_counter()
        matrix = streamed_fre_matrix(_dask_sets(n, n_sets, dims), "gfre", progress=False)
        wall = time.perf_counter() - start
    _report(case="streamed", n=n, wall_s=wall, engine=matrix.attrs["engine"], values=matrix.values.tolist())


def case_in_memory(n, n_sets, dims):
    from latentatlas.fre import fre_matrix

    start = time.perf_counter()
    sets = {f"set{i}": _block(0, n, i, dims) for i in range(n_sets)}
    matrix = fre_matrix(sets, "gfre", n_jobs=2, progress=False)
    wall = time.perf_counter() - start
    _report(case="in_memory", n=n, wall_s=wall, values=matrix.values.tolist())


def case_lfre(n_train, n_test, dims, approximate=False, compare_exact=False):
    from latentatlas.fre.indexed import NeighbourIndex, indexed_pointwise_lfre_matrix

    n = n_train + n_test
    sets = {f"set{i}": _block(0, n, i, dims) for i in range(2)}
    train, test = np.arange(n_train), np.arange(n_train, n)
    start = time.perf_counter()
    kwargs = dict(train_idx=train, test_idx=test, n_local_points=100, progress=False)
    pointwise = indexed_pointwise_lfre_matrix(sets, approximate=approximate, **kwargs)
    wall = time.perf_counter() - start
    extra = {}
    if compare_exact:  # the approximate search against the exact one
        exact = indexed_pointwise_lfre_matrix(sets, approximate=False, **kwargs)
        off = ~np.eye(exact.sizes["source"], dtype=bool)  # X -> X is zero up to rounding
        change = np.abs(pointwise.values - exact.values)[off] / exact.values[off]
        found = []
        for X in sets.values():  # neighbours in each source, scaled as the LFRE scales them
            X = X - X[:n_train].mean(axis=0)
            a = NeighbourIndex(X[:n_train], approximate=True).query(X[n_train:], 100)
            e = NeighbourIndex(X[:n_train]).query(X[n_train:], 100)
            found += [len(set(x) & set(y)) for x, y in zip(a, e)]
        extra = {
            "recall": float(np.mean(found) / 100),
            "median_rel_change": float(np.median(change)),
            "changed_fraction": float(np.mean(change > 1e-8)),
            "max_rel_change": float(change.max()),
            "matrix_rel_change": float(np.max(np.abs(np.sqrt((pointwise.values**2).mean(-1)) / np.sqrt((exact.values**2).mean(-1)) - 1)[off])),
        }
    _report(case="lfre_approx" if approximate else "lfre", n_train=n_train, n_test=n_test, dims=dims, wall_s=wall,
            values=np.sqrt((pointwise.values**2).mean(-1)).tolist(), **extra)


def _run(*args):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--case", *map(str, args)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--sets", type=int, default=4)
    parser.add_argument("--sizes", type=float, nargs="+", default=[2e4, 2e5, 2e6])
    parser.add_argument("--side-by-side", type=float, default=2e5, help="atoms of the in-memory comparison")
    parser.add_argument("--lfre-train", type=float, default=1e6)
    parser.add_argument("--lfre-test", type=float, default=1e4)
    parser.add_argument("--lfre-dims", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check that the script runs")
    parser.add_argument("--parts", nargs="+", choices=["gfre", "lfre"], default=["gfre", "lfre"])
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        name, *rest = args.case
        if name == "streamed":
            case_streamed(int(rest[0]), int(rest[1]), int(rest[2]))
        elif name == "in_memory":
            case_in_memory(int(rest[0]), int(rest[1]), int(rest[2]))
        else:
            case_lfre(int(rest[0]), int(rest[1]), int(rest[2]), approximate=name == "lfre_approx", compare_exact=name == "lfre_approx")
        return
    if args.quick:
        args.sizes, args.side_by_side, args.lfre_train, args.lfre_test = [2e4, 4e4], 4e4, 2e4, 500
    if "gfre" in args.parts:
        _gfre_tables(args)
    if "lfre" in args.parts:
        _lfre_tables(args)


def _gfre_tables(args):
    sizes = [int(s) for s in args.sizes]
    print(f"GFRE matrix, {args.sets} sets x {args.dims} dims, streamed (dask threads, 2 workers, chunks of {CHUNK} atoms)")
    print(f"{'atoms':>10} {'wall s':>8} {'CPU s':>8} {'µs/atom (CPU)':>14} {'peak RSS GiB':>13}  engine")
    streamed = {}
    for n in sizes:
        r = _run("streamed", n, args.sets, args.dims)
        streamed[n] = r
        print(f"{n:>10} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {1e6 * r['cpu_s'] / n:14.2f} {r['peak_rss_gib']:13.2f}  {r['engine']}")
    n = int(args.side_by_side)
    s = streamed.get(n) or _run("streamed", n, args.sets, args.dims)
    m = _run("in_memory", n, args.sets, args.dims)
    ref, got = np.array(m["values"]), np.array(s["values"])
    off = ~np.eye(len(ref), dtype=bool)  # the diagonal is zero up to rounding
    diff = np.max(np.abs(got - ref)[off] / ref[off])
    print(f"\nside by side at {n} atoms (both include generating the data)")
    print(f"{'engine':>10} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13}")
    for label, r in (("streamed", s), ("in memory", m)):
        print(f"{label:>10} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['peak_rss_gib']:13.2f}")
    print(f"streamed / in memory: wall {s['wall_s'] / m['wall_s']:.2f}x, CPU {s['cpu_s'] / m['cpu_s']:.2f}x, "
          f"memory {s['peak_rss_gib'] / m['peak_rss_gib']:.2f}x; largest relative difference of values {diff:.1e}")


def _lfre_tables(args):
    n_train, n_test = int(args.lfre_train), int(args.lfre_test)
    r = _run("lfre", n_train, n_test, args.lfre_dims)
    print(f"\nLFRE, 2 sets x {args.lfre_dims} dims, exact faiss search: {n_test} test atoms, {n_train} training atoms")
    print(f"wall {r['wall_s']:.1f} s, CPU {r['cpu_s']:.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB")
    a_train, a_test = min(n_train, 100_000), min(n_test, 2_000)
    a = _run("lfre_approx", a_train, a_test, args.lfre_dims)
    print(f"\napproximate (HNSW) vs exact neighbours, {a_test} test atoms, {a_train} training atoms")
    print(f"recall of the exact 100 neighbours {a['recall']:.4f}; pointwise LFRE (off-diagonal pairs) changed by more than "
          f"1e-8 for {100 * a['changed_fraction']:.1f}% of (pair, test atom) values, median change {a['median_rel_change']:.1e}, "
          f"max {a['max_rel_change']:.1e} (relative); LFRE matrix change {a['matrix_rel_change']:.1e}")


if __name__ == "__main__":
    main()
