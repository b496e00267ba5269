"""``latentatlas fre``: FRE matrices between the feature sets of a features file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..similarity.registry import ALIASES, MEASURES
from ._checks import check_output, open_fraction, positive_int
from ._cluster import add_cluster_arguments, cluster_client


def register(subparsers):
    p = subparsers.add_parser(
        "fre",
        help="FRE matrices (GFRE, GFRD, LFRE) and other similarity measures between the feature sets of a file",
        description=(
            "Compute feature reconstruction errors between every pair of feature sets in a "
            "features netCDF (from 'latentatlas featurize'), with the spread over random "
            "train/test splits of the structures (stratified by subset). GFRE: how well the "
            "source reconstructs the target linearly (0 perfect, 1 nothing); GFRD: how much "
            "that reconstruction distorts; LFRE: the same, locally around each test sample. "
            "Other measures on the same splits: " + "; ".join(f"{m.name}: {m.label}" for m in MEASURES.values()
                                                              if m.name not in ("gfre", "gfrd", "lfre")) + "."
        ),
    )
    p.add_argument("features", type=Path,
                   help="features file written by 'latentatlas featurize' (netCDF, or a zarr store: compared chunk by chunk)")
    p.add_argument("--metrics", nargs="+", choices=[*MEASURES, *ALIASES], default=["gfre"], metavar="METRIC",
                   help=f"measures to compute (default: gfre); any of {', '.join(MEASURES)}")
    p.add_argument("--names", nargs="+", help="feature sets to compare (default: all in the file)")
    p.add_argument("--splits", type=positive_int, default=5, help="number of random splits for the spread (default: 5)")
    p.add_argument("--n-local-points", type=positive_int, default=100, help="neighbourhood size for LFRE (default: 100)")
    p.add_argument(
        "--cumulant-order", type=positive_int, metavar="K",
        help="compare structure-level features φ^(K) (progressive cumulants κ1..κK) instead of atom-level ones",
    )
    p.add_argument(
        "--cv", choices=("grouped", "skmatter"), default="grouped",
        help="inner CV folds that choose the ridge cut-off: 'grouped' (default) keeps each structure (LFRE: each "
             "feature vector of a neighbourhood) in one fold; 'skmatter' draws them at random like scikit-matter, "
             "to compare with published numbers",
    )
    p.add_argument(
        "--learning-curve", nargs="*", type=open_fraction, metavar="FRACTION",
        help="also compute each metric from 10%%...100%% of the training structures (or the given fractions), "
             "same test half, to see whether the values have converged",
    )
    p.add_argument("--out", type=Path, help="write the comparison (matrices, spread, pointwise errors, diagnostics, "
                                            "learning curve) to this netCDF file (or .zarr store)")
    add_cluster_arguments(p, "on a dask cluster (needs the scale extra; for features in a .zarr store)")
    p.set_defaults(run=run)


def format_matrix(matrix, spread=None, digits=3, flags=None) -> str:
    """Plain-text table of a (source, target) DataArray, rows = sources, optionally ± spread.

    With ``flags`` (the matrix's ``<metric>_flags``), each cell carries the marks of
    :func:`latentatlas.diagnostics.cell_marks`, e.g. ``1.234±0.5!``.
    """
    from ..diagnostics import cell_marks

    names = [str(n) for n in matrix.source.values]
    marks = np.vectorize(cell_marks, otypes=[str])(flags.values) if flags is not None else np.full(matrix.shape, "")
    cells = [
        [f"{v:.{digits}f}" + (f"±{s:.{digits}f}" if spread is not None else "") + m for v, s, m in zip(row, srow, mrow)]
        for row, srow, mrow in zip(matrix.values, (spread.values if spread is not None else matrix.values), marks)
    ]
    width = max(len(c) for row in cells for c in row)
    label = max(len(n) for n in names)
    head = " " * (label + 2) + "  ".join(f"T{j}".rjust(width) for j in range(len(names)))
    lines = [f"{matrix.name.upper()} (row: source, column: target)", head]
    lines += [f"{n.ljust(label)}  " + "  ".join(c.rjust(width) for c in row) for n, row in zip(names, cells)]
    lines += [f"  T{j} = {n}" for j, n in enumerate(names)]
    return "\n".join(lines)


def format_learning_curve(curve, metric, digits=3) -> str:
    """Plain-text table of a learning curve: one row per off-diagonal pair, one column per fraction."""
    values, spread = curve[f"learning_{metric}"], curve[f"learning_{metric}_std"]
    n_structures = curve["learning_n_train_structures"].values
    heads = [f"{f:.0%} ({n:.0f})" for f, n in zip(curve.train_fraction.values, n_structures)]
    rows = [
        (f"{s} -> {t}", [f"{v:.{digits}f}±{e:.{digits}f}" for v, e in zip(values.sel(source=s, target=t).values,
                                                                   spread.sel(source=s, target=t).values)])
        for s in values.source.values for t in values.target.values if s != t
    ]
    width = max(len(c) for c in heads + [c for _, r in rows for c in r])
    label = max(len(r[0]) for r in rows)
    lines = [f"{metric.upper()} learning curve (columns: share of the training structures (count); same test half)",
             " " * (label + 2) + "  ".join(h.rjust(width) for h in heads)]
    lines += [f"{name.ljust(label)}  " + "  ".join(c.rjust(width) for c in cells) for name, cells in rows]
    return "\n".join(lines)


def run(args):
    from .. import io
    from ..diagnostics import caveats

    if args.out:
        check_output(args.out, [args.features])
    features = io.load(args.features)
    names = args.names if args.names else list(features.data_vars)
    if len(names) < 2:
        raise ValueError(
            f"an FRE matrix compares feature sets, and {args.features} has {len(names)} ({names}); "
            "featurize with more models or layers (latentatlas featurize -m A -m B) or give two or more --names"
        )
    with cluster_client(args):  # dask-backed (zarr) features are then compared on the cluster
        result = _compare(args, features)
    notes = caveats(result)
    if notes:
        print("Caveats:")
        print("\n".join(f"- {line}" for line in notes))
        print()
    if args.out:
        io.save(result, args.out)
        print(f"wrote {args.out}")


def _compare(args, features):
    """The comparison (and learning curves) the arguments ask for, printed as they come."""
    from ..compare import compare

    if args.cumulant_order is not None:
        from ..cumulants import structure_features

        features = structure_features(features, args.cumulant_order, names=args.names)
        args.names = None
    result = compare(
        features, metrics=args.metrics, names=args.names, n_splits=args.splits, n_local_points=args.n_local_points,
        cv=args.cv,
    )
    print(f"inner CV: {args.cv}")
    for metric in result.attrs["metrics"]:
        print(format_matrix(result[metric], result[f"{metric}_std"] if args.splits > 1 else None,
                            flags=result.get(f"{metric}_flags")))
        print()
    if args.learning_curve is not None:
        from ..compare import LEARNING_FRACTIONS, learning_curve

        for metric in [m for m in result.attrs["metrics"] if m in ("gfre", "gfrd", "lfre")]:
            curve = learning_curve(features, metric=metric, names=args.names, n_splits=args.splits, cv=args.cv,
                                   fractions=args.learning_curve or LEARNING_FRACTIONS,
                                   n_local_points=args.n_local_points)
            print(format_learning_curve(curve, metric))
            print()
            result = result.merge(curve)
    return result
