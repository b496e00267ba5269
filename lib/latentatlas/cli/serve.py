"""``latentatlas serve``: the dashboard (/atlas) and the concept app (/concepts), bound to the local machine by default."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._checks import non_negative_int, port_number, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="open the interactive dashboard (/atlas: FRE matrix, drill-down, 3D structures; /concepts: concept graph)",
        description=(
            "Serve the dashboard at /atlas on RESULT files (comparison netCDF files or zarr stores from 'latentatlas fre "
            "--out', or features files, compared on loading; a features zarr store is compared chunk by chunk), or on the built-in demo comparison when none is given; each "
            "file becomes one level of the dashboard (e.g. atom level and structure level). A concept result "
            "('latentatlas concepts --out') goes to the concept app at /concepts, which otherwise opens on the "
            "built-in shapes analysis."
        ),
    )
    parser.add_argument("results", nargs="*", metavar="RESULT.nc",
                        help="comparison or features file(s) (.nc, or .zarr stores), and at most one concept result; default: built-in demos")
    parser.add_argument("--port", type=port_number, default=5006, help="port (default 5006; 0 picks a free one)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: only this machine can connect)")
    parser.add_argument("--show", action="store_true", help="open a browser tab")
    parser.add_argument("--num-procs", type=positive_int, default=1, metavar="N",
                        help="server processes sharing the port (Panel's --num-procs; each reads the results once and "
                             "builds the sessions it is handed; default 1)")
    parser.add_argument("--num-threads", type=non_negative_int, default=None, metavar="N",
                        help="threads that handle the sessions' events (Panel's --num-threads; 0: as many as Python "
                             "picks; default: none)")
    parser.set_defaults(run=run)


def levels_from_results(comparisons) -> dict:
    """Dashboard levels from the (path, Dataset) pairs of :func:`split_results`.

    Levels are labelled by file name when there are several files.
    """
    from ..viz.fre.app import comparison_levels
    from ..viz.fre.data import demo_comparison_paths, load_levels

    if not comparisons:
        return load_levels(demo_comparison_paths())
    levels = {}
    for path, ds in comparisons:
        for label, level in comparison_levels(ds, Path(path).name).items():
            levels[f"{path}: {label}" if len(comparisons) > 1 else label] = level
    return levels


def split_results(paths) -> tuple[list, object]:
    """RESULT files, each read once: comparison or features (path, Dataset) pairs, and the concept result or None.

    Raises
    ------
    ValueError
        More than one concept result is given.
    """
    from ..io import load
    from ..schema import check_concepts, kind_of

    comparisons, concepts = [], []
    for path in paths:
        ds = load(path)
        if kind_of(ds) == "concepts":
            concepts.append((path, check_concepts(ds, str(path))))
        else:
            comparisons.append((path, ds))
    if len(concepts) > 1:
        raise ValueError(f"give at most one concept result, got {[str(p) for p, _ in concepts]}")
    return comparisons, concepts[0][1] if concepts else None


def shared(path, loader):
    """``loader(path)``, read once per server process and shared read-only by every session.

    Keyed by the file's path, size and modification time, so a rewritten file is read again.
    """
    import panel as pn

    path = Path(path).resolve()
    stat = path.stat()
    return pn.state.as_cached(f"latentatlas:{path}:{stat.st_size}:{stat.st_mtime_ns}", lambda: loader(path))


def check_port(address: str, port: int) -> None:
    """Fail before loading anything if ``address:port`` cannot be bound (in use, or not this machine's).

    Raises
    ------
    OSError
        With the fix in the message.
    """
    import errno
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise OSError(f"cannot resolve --address {address} ({err.strerror}); give an IP address or host name of this machine") from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(sockaddr)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise OSError(f"port {port} on {address} is already in use; pick another with --port (0 picks a free one)") from None
            raise OSError(f"cannot listen on {address}:{port} ({err.strerror}); give another --address or --port") from None


def apps(levels: dict, concepts=None) -> dict:
    """The served apps, ``{"atlas": f, "concepts": g}``: each call builds one browser session's view.

    ``levels`` (:func:`levels_from_results`) and ``concepts`` (a concept result, or None for the
    built-in demo, read when /concepts is first opened so /atlas never depends on it) are shared
    read-only by every session. Each view returned is an ``Atlas`` or ``ConceptAtlas``, freed
    with its session when the page closes (``tests/test_ui_serving.py``).
    """
    from ..viz import Atlas, ConceptAtlas
    from ..viz.concepts.data import builtin_concepts_path, load_concepts
    from ..viz.serving import local_resources

    def atlas_app():
        local_resources()
        return Atlas(levels)

    def concept_app():
        local_resources()
        result = concepts if concepts is not None else shared(builtin_concepts_path(), lambda p: load_concepts(p).load())
        return ConceptAtlas(result)

    return {"atlas": atlas_app, "concepts": concept_app}


def configure(num_procs: int = 1, num_threads: int | None = None) -> None:
    """Panel's settings for serving many sessions (see README, "Shared by a group").

    The page's HTML is sent at once from a template session and each session is built when
    its websocket connects (``reuse_sessions``); with one process the build starts as the HTML
    is sent (``"warm"``), overlapping the browser's loading of BokehJS. With several processes
    the websocket may reach another process than the page request, so the build waits for it.
    """
    import panel as pn

    pn.config.reuse_sessions = "warm" if num_procs == 1 else True
    pn.config.nthreads = num_threads  # what `panel serve --num-threads` sets; 0: as many as the executor picks


def run(args: argparse.Namespace) -> int:
    import panel as pn

    check_port(args.address, args.port)
    comparisons, concepts = split_results(args.results)
    levels = levels_from_results(comparisons)
    pn.extension()
    configure(args.num_procs, args.num_threads)
    origin = [f"{args.address}:{args.port}", f"localhost:{args.port}"] if args.port else None
    pn.serve(
        apps(levels, concepts),
        port=args.port, address=args.address, websocket_origin=origin, show=args.show,
        title="latentatlas", print_url=True, num_procs=args.num_procs,
    )
    return 0
