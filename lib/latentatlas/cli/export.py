"""``latentatlas export``: a comparison or a concept analysis as one self-contained, offline HTML file."""

from __future__ import annotations

import argparse

from ._checks import check_output, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write an offline HTML report of comparison or concept results",
        description=(
            "Write one self-contained HTML file (no network needed to open it). For comparisons: the FRE "
            "matrices, the per-pair drill-down (click a cell) and a 3D structure viewer; several RESULT files "
            "become tabs (e.g. atom level and structure level). For one concept result "
            "('latentatlas concepts --out'): the knowledge graph with per-layer profiles, the layer x concept "
            "heatmap and examples."
        ),
    )
    parser.add_argument("results", nargs="*", metavar="RESULT.nc",
                        help="comparison netCDF file(s), or one concept result; default: built-in demo comparison")
    parser.add_argument("--html", required=True, metavar="REPORT.html", help="output file (written atomically)")
    parser.add_argument("--max-structures", type=positive_int, default=40,
                        help="structures offered in the 3D viewer (default 40)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..viz.export import export_html
    from .serve import levels_from_results, split_results

    check_output(args.html, args.results, option="--html")
    comparisons, concepts = split_results(args.results)
    if concepts is not None and comparisons:
        raise ValueError("export a concept result on its own: one report per kind of result")
    result = concepts if concepts is not None else levels_from_results(comparisons)
    path = export_html(result, args.html, max_structures=args.max_structures)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it in any browser, no network needed")
    return 0
