"""``latentatlas reproduce``: the analyses of arXiv:2512.05717 on the built-in benchmark."""

from __future__ import annotations

from pathlib import Path

from ._checks import check_output, non_negative_int, open_fraction, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="reproduce the analyses of Chorna et al. (arXiv:2512.05717) on the built-in benchmark",
        description=(
            "Run the paper's analyses with the shipped models on the built-in structure benchmark: "
            "cross-model GFRE/LFRE of last layers, variants of one architecture, fine-tuning bias, "
            "last vs inner layers, cumulant orders, per-subset errors, all with the spread over random "
            "splits. Writes netCDF files, PNG figures and report.md (our numbers next to the paper's) "
            "to --out. Features are cached on disk; the first run featurises every model."
        ),
        epilog="Example: latentatlas reproduce --quick --out repro-quick",
    )
    p.add_argument("--out", "-o", type=Path, default=Path("reproduction"), help="output folder (default: ./reproduction)")
    p.add_argument("--quick", action="store_true",
                   help="small benchmark (52 structures), 4 models, 3 splits, cumulants to order 4: a few minutes")
    p.add_argument("--models", nargs="+", metavar="NAME", help="featurisers or metatomic model files (.pt) to compare (default: every installed one but ANI-1x, which knows H/C/N/O only; with --quick: 4)")
    p.add_argument("--fraction", type=open_fraction,
                   help="use a random, subset-stratified fraction of the benchmark's structures (default 1: all)")
    p.add_argument("--splits", type=positive_int, help="random splits for the spread (default 5; --quick 3)")
    p.add_argument("--max-order", type=positive_int, help="highest cumulant order, 2-8 (default 8; --quick 4)")
    p.add_argument("--lfre-per-subset", type=positive_int, help="test atoms per subset at which LFRE is evaluated (default 50; --quick 10)")
    p.add_argument("--n-local-points", type=positive_int, help="LFRE neighbourhood size (default 100; --quick 20)")
    p.add_argument("--cv", choices=("grouped", "skmatter"),
                   help="inner CV folds of the ridge: 'grouped' by structure (default) or 'skmatter' (random, "
                        "scikit-matter's numbers); the report says which")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads for featurising (default: torch's choice)")
    p.add_argument("--blas-threads", type=non_negative_int, default=1,
                   help="BLAS threads for the analyses (default 1, fastest on small or busy machines; 0: library default)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..reproduce import Settings, reproduce

    check_output(args.out, folder=True)
    overrides = {
        key: value
        for key, value in {
            "models": tuple(args.models) if args.models else None,
            "fraction": args.fraction,
            "n_splits": args.splits,
            "max_order": args.max_order,
            "lfre_per_subset": args.lfre_per_subset,
            "n_local_points": args.n_local_points,
            "cv": args.cv,
            "blas_threads": args.blas_threads or None,
        }.items()
        if value is not None or key == "blas_threads"
    }
    settings = Settings.quick(**overrides) if args.quick else Settings(**overrides)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    result = reproduce(args.out, settings, progress=not args.quiet)
    print(f"wrote {args.out / 'report.md'} and {len(list(args.out.glob('*.nc')))} netCDF files; "
          f"total {sum(result.timings.values()):.0f} s")
    return 0
