"""``latentatlas fre``: FRE matrices between the feature sets of a features file."""

from __future__ import annotations

from pathlib import Path

from ..similarity.registry import ALIASES, MEASURES
from ._checks import check_output, positive_int


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
    p.add_argument("features", type=Path, help="features netCDF written by 'latentatlas featurize'")
    p.add_argument("--metrics", nargs="+", choices=[*MEASURES, *ALIASES], default=["gfre"], metavar="METRIC",
                   help=f"measures to compute (default: gfre); any of {', '.join(MEASURES)}")
    p.add_argument("--names", nargs="+", help="feature sets to compare (default: all in the file)")
    p.add_argument("--splits", type=positive_int, default=5, help="number of random splits for the spread (default: 5)")
    p.add_argument("--n-local-points", type=positive_int, default=100, help="neighbourhood size for LFRE (default: 100)")
    p.add_argument(
        "--cumulant-order", type=positive_int, metavar="K",
        help="compare structure-level features φ^(K) (progressive cumulants κ1..κK) instead of atom-level ones",
    )
    p.add_argument("--out", type=Path, help="write the comparison (matrices, spread, pointwise errors) to this netCDF")
    p.set_defaults(run=run)


def format_matrix(matrix, spread=None, digits=3) -> str:
    """Plain-text table of a (source, target) DataArray, rows = sources, optionally ± spread."""
    names = [str(n) for n in matrix.source.values]
    cells = [
        [f"{v:.{digits}f}" + (f"±{s:.{digits}f}" if spread is not None else "") for v, s in zip(row, srow)]
        for row, srow in zip(matrix.values, (spread.values if spread is not None else matrix.values))
    ]
    width = max(len(c) for row in cells for c in row)
    label = max(len(n) for n in names)
    head = " " * (label + 2) + "  ".join(f"T{j}".rjust(width) for j in range(len(names)))
    lines = [f"{matrix.name.upper()} (row: source, column: target)", head]
    lines += [f"{n.ljust(label)}  " + "  ".join(c.rjust(width) for c in row) for n, row in zip(names, cells)]
    lines += [f"  T{j} = {n}" for j, n in enumerate(names)]
    return "\n".join(lines)


def run(args):
    from .. import io
    from ..compare import compare

    if args.out:
        check_output(args.out, [args.features])
    features = io.load(args.features)
    names = args.names if args.names else list(features.data_vars)
    if len(names) < 2:
        raise ValueError(
            f"an FRE matrix compares feature sets, and {args.features} has {len(names)} ({names}); "
            "featurize with more models or layers (latentatlas featurize -m A -m B) or give two or more --names"
        )
    if args.cumulant_order is not None:
        from ..cumulants import structure_features

        features = structure_features(features, args.cumulant_order, names=args.names)
        args.names = None
    result = compare(
        features, metrics=args.metrics, names=args.names, n_splits=args.splits, n_local_points=args.n_local_points
    )
    for metric in result.attrs["metrics"]:
        print(format_matrix(result[metric], result[f"{metric}_std"] if args.splits > 1 else None))
        print()
    if args.out:
        io.save(result, args.out)
        print(f"wrote {args.out}")
