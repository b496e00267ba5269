"""``latentatlas export``: a comparison or a concept analysis as one self-contained, offline HTML file, or as a chemiscope dataset."""

from __future__ import annotations

import argparse

from ._checks import check_output, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write an offline HTML report of comparison or concept results, or a chemiscope dataset",
        description=(
            "Write one self-contained HTML file (no network needed to open it). For comparisons: the FRE "
            "matrices, the per-pair drill-down (click a cell) and a 3D structure viewer; several RESULT files "
            "become tabs (e.g. atom level and structure level). For one concept result "
            "('latentatlas concepts --out'): the knowledge graph with per-layer profiles, the layer x concept "
            "heatmap and examples. With --chemiscope: one RESULT as a chemiscope dataset (structures, the selected "
            "pair's per-sample errors and PCA map, or per-atom concept probabilities) for chemiscope.show_input or "
            "https://chemiscope.org."
        ),
    )
    parser.add_argument("results", nargs="*", metavar="RESULT.nc",
                        help="comparison netCDF file(s), or one concept result; default: built-in demo comparison")
    parser.add_argument("--html", metavar="REPORT.html", help="offline HTML report (written atomically)")
    parser.add_argument("--chemiscope", metavar="OUT.json.gz", help="chemiscope dataset (.json or .json.gz, written atomically)")
    parser.add_argument("--metric", help="chemiscope, comparison: metric colouring the map (default: the first)")
    parser.add_argument("--pair", nargs=2, metavar=("SOURCE", "TARGET"),
                        help="chemiscope, comparison: feature sets of the exported errors (default: the worst pair)")
    parser.add_argument("--layer", help="chemiscope, concepts: layer of the exported probabilities (default: the last)")
    parser.add_argument("--max-structures", type=positive_int, default=40,
                        help="structures offered in the 3D viewer (default 40)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .serve import levels_from_results, split_results

    if not args.html and not args.chemiscope:
        raise ValueError("say what to write: --html REPORT.html and/or --chemiscope OUT.json.gz")
    for option, out in (("--html", args.html), ("--chemiscope", args.chemiscope)):
        if out:
            check_output(out, args.results, option=option)
    comparisons, concepts = split_results(args.results)
    if args.chemiscope:
        _chemiscope(args, comparisons, concepts)
    if not args.html:
        return 0
    if concepts is not None and comparisons:
        raise ValueError("export a concept result on its own: one report per kind of result")
    from ..viz.export import export_html

    result = concepts if concepts is not None else levels_from_results(comparisons)
    path = export_html(result, args.html, max_structures=args.max_structures)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it in any browser, no network needed")
    return 0


def _chemiscope(args: argparse.Namespace, comparisons: list, concepts) -> None:
    from ..interchange import write_chemiscope

    if len(comparisons) + (concepts is not None) > 1:
        raise ValueError("--chemiscope writes one RESULT file; give exactly one")
    if concepts is not None:
        from ..viz.concepts.data import frames_for

        frames = frames_for(concepts)
        if frames is None:
            raise ValueError("the concept result's structures are not a built-in set; call "
                             "latentatlas.interchange.write_chemiscope(result, path, frames=...) with them")
        path = write_chemiscope(concepts, args.chemiscope, layer=args.layer, frames=frames)
    else:
        from .serve import levels_from_results

        result = next(iter(levels_from_results(comparisons).values()))
        path = write_chemiscope(result, args.chemiscope, metric=args.metric, pair=args.pair)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it with chemiscope.show_input or at chemiscope.org")
