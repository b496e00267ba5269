"""``latentatlas export``: a comparison as one self-contained, offline HTML file."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write an offline HTML report of comparison results",
        description=(
            "Write one self-contained HTML file (no network needed to open it) with the FRE matrices, "
            "the per-pair drill-down (click a cell) and a 3D structure viewer. Several RESULT files "
            "become tabs (e.g. atom level and structure level)."
        ),
    )
    parser.add_argument("results", nargs="*", metavar="RESULT.nc", help="comparison netCDF file(s); default: built-in demo")
    parser.add_argument("--html", required=True, metavar="REPORT.html", help="output file (written atomically)")
    parser.add_argument("--max-structures", type=int, default=40,
                        help="structures offered in the 3D viewer (default 40)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..viz.export import export_html
    from .serve import levels_from_paths

    if args.max_structures < 1:
        raise ValueError(f"--max-structures must be at least 1, got {args.max_structures}")
    path = export_html(levels_from_paths(args.results), args.html, max_structures=args.max_structures)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it in any browser, no network needed")
    return 0
