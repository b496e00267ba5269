"""``--scheduler`` / ``--workers``: run a command's dask work on a cluster (the scale extra)."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

from ._checks import positive_int


def add_cluster_arguments(parser, title: str):
    """Add the mutually exclusive ``--scheduler ADDRESS`` and ``--workers N`` to ``parser``; returns the group."""
    group = parser.add_argument_group(title)
    where = group.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="dask.distributed scheduler to run on, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--workers", type=positive_int, metavar="N", help="start a local dask cluster of N worker processes")
    return group


def wants_cluster(args) -> bool:
    """Whether ``--scheduler`` or ``--workers`` was given."""
    return bool(args.scheduler) or args.workers is not None


@contextmanager
def _client(scheduler, workers):
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def cluster_client(args):
    """Context manager: a client of ``--scheduler``, or of a local cluster of ``--workers`` processes
    (closed on exit), or None when neither is given (dask then runs in this process)."""
    return _client(args.scheduler, args.workers) if wants_cluster(args) else nullcontext(None)
