"""``latentatlas serve``: the dashboard in the browser, bound to the local machine by default."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="open the interactive dashboard (FRE matrix, drill-down, 3D structures)",
        description=(
            "Serve the dashboard on RESULT files (comparison netCDF files from 'latentatlas fre --out', or "
            "features files, compared on loading), or on the built-in demo comparison when none is given. "
            "Each file becomes one level of the dashboard (e.g. atom level and structure level)."
        ),
    )
    parser.add_argument("results", nargs="*", metavar="RESULT.nc", help="comparison netCDF file(s); default: built-in demo")
    parser.add_argument("--port", type=int, default=5006, help="port (default 5006; 0 picks a free one)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: only this machine can connect)")
    parser.add_argument("--show", action="store_true", help="open a browser tab")
    parser.set_defaults(run=run)


def levels_from_paths(paths) -> dict:
    """Load RESULT files into dashboard levels, labelled by file name when there are several."""
    from ..viz.atlas import comparison_from_file
    from ..viz.data import demo_comparison_paths, load_levels

    if not paths:
        return load_levels(demo_comparison_paths())
    levels = {}
    for path in paths:
        for label, ds in comparison_from_file(path).items():
            levels[f"{path}: {label}" if len(paths) > 1 else label] = ds
    return levels


def run(args: argparse.Namespace) -> int:
    import panel as pn

    from ..viz import Atlas

    levels = levels_from_paths(args.results)
    pn.extension("plotly")
    origin = [f"{args.address}:{args.port}", f"localhost:{args.port}"] if args.port else None
    pn.serve(
        {"atlas": lambda: Atlas(levels).__panel__()},
        port=args.port, address=args.address, websocket_origin=origin, show=args.show,
        title="latentatlas", print_url=True,
    )
    return 0
