"""``latentatlas featurize``: per-atom features of structure files (or the built-in benchmark)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._checks import check_output, positive_int
from ._cluster import add_cluster_arguments, cluster_client, wants_cluster


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "featurize",
        help="compute per-atom latent features of pretrained models for structure files",
        description=(
            "Compute per-atom features, every layer, of pretrained interatomic potentials (weights shipped "
            "with the packages, no network) for structures in any format ase.io.read understands, and "
            "write them as one netCDF features file (or a zarr store for --out *.zarr). Results are cached on disk "
            "($LATENTATLAS_CACHE, default ~/.cache/latentatlas): a second run is instant. With --scheduler or "
            "--workers the chunks run on a dask cluster and go straight into the zarr store, whose unfinished "
            "form is the resume point instead of the cache."
        ),
        epilog=(
            "Models: " + ", ".join(_names()) + ", or the path of any exported metatomic model file (.pt). "
            "Example: latentatlas featurize --builtin --model chgnet-0.3.0 --model my-pet.pt --out f.nc"
        ),
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="structure files (extxyz, CIF, POSCAR, ...)")
    p.add_argument("--builtin", action="store_true", help="featurise the built-in structure benchmark instead of files")
    p.add_argument("--small", action="store_true", help="with --builtin: the 52-structure version")
    p.add_argument("--model", "-m", action="append", required=True, metavar="NAME",
                   help="featuriser name or metatomic model file (.pt); repeat for several")
    p.add_argument("--extensions-dir", metavar="DIR",
                   help="TorchScript extensions the metatomic model files need (mtt export writes them to extensions/)")
    p.add_argument("--layers", nargs="+", metavar="LAYER", help="layers to keep (default: all of each model)")
    p.add_argument("--out", "-o", required=True,
                   help="output file, written atomically: netCDF, or a zarr store (chunked along atoms) if it ends in .zarr")
    p.add_argument("--batch-size", type=positive_int, help="structures per forward pass (default: the model's, 16 for the potentials, 256 for SOAP)")
    p.add_argument("--skip-unsupported", action="store_true", help="drop structures with elements a model does not know")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the on-disk cache")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    dist = add_cluster_arguments(
        p, "on a dask cluster (needs the scale extra; --out must end in .zarr; an interrupted run resumes when rerun)")
    dist.add_argument("--chunk-atoms", type=positive_int, default=4096,
                      help="atoms per zarr chunk and per task (default 4096); keep it to resume a run")
    p.set_defaults(run=run)


def _names() -> list[str]:
    from ..features import list_featurizers

    return list_featurizers()


def run(args: argparse.Namespace) -> int:
    from ..dataset import merge_features
    from ..features import get_featurizers
    from ..features.metatomic import is_model_file
    from ..frames import read_frames
    from ..io import save
    from ..structures import builtin_frames

    if args.builtin == bool(args.files):
        raise ValueError("give structure FILES or --builtin (one of the two)")
    if args.small and not args.builtin:
        raise ValueError("--small only applies to --builtin")
    check_output(args.out, [*args.files, *(m for m in args.model if Path(m).is_file() and is_model_file(m))])
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    frames = builtin_frames(small=args.small) if args.builtin else read_frames(args.files)
    if args.extensions_dir is not None and not Path(args.extensions_dir).is_dir():
        raise FileNotFoundError(f"--extensions-dir {args.extensions_dir} is not a folder")
    featurizers = get_featurizers(args.model, extensions_dir=args.extensions_dir)  # fail on a bad name before any work
    if len(featurizers) > 1 and args.skip_unsupported:
        # every model must describe the same frames in one file: keep what all of them support
        keep = [a for a in frames if not any(f.unsupported([a]) for f in featurizers)]
        if len(keep) < len(frames):
            print(f"skipping {len(frames) - len(keep)} of {len(frames)} structures not supported by every model")
        frames = keep
    if args.layers:
        unknown = [layer for layer in args.layers if not any(layer in f.layers for f in featurizers)]
        if unknown:
            raise KeyError(f"no model has layers {unknown}; layers: " + "; ".join(f"{f.name}: {f.layers}" for f in featurizers))
    if wants_cluster(args):
        return _run_distributed(args, frames, featurizers)
    ds = None
    for f in featurizers:
        layers = [layer for layer in args.layers if layer in f.layers] if args.layers else None
        if layers == []:
            raise KeyError(f"none of the layers {args.layers} exists in {f.name}; its layers: {f.layers}")
        part = f.featurize(
            frames,
            layers,
            batch_size=args.batch_size,
            progress=not args.quiet,
            cache=not args.no_cache,
            skip_unsupported=args.skip_unsupported,
        )
        if part.attrs.get("n_skipped"):
            print(f"{f.name}: skipped {part.attrs['n_skipped']} structures with unsupported elements")
        ds = part if ds is None else merge_features(ds, part)
    path = save(ds, args.out)
    n_atoms = ds.sizes["atom"]
    print(f"wrote {len(ds.data_vars)} feature sets for {ds.sizes['structure']} structures ({n_atoms} atoms) to {path}")
    return 0


def _run_distributed(args, frames, featurizers) -> int:
    """Featurise on a dask cluster into a zarr store (see :mod:`latentatlas.features.distributed`)."""
    from pathlib import Path

    from ..features import UnsupportedElementError
    from ..features.distributed import featurize_to_zarr, partial_path
    from ..io import is_zarr

    if not is_zarr(args.out):
        raise ValueError(f"--scheduler/--workers write a zarr store: give --out ending in .zarr, not {args.out!r}")
    if len(featurizers) == 1 and args.skip_unsupported:
        keep = [a for a in frames if not featurizers[0].unsupported([a])]
        if len(keep) < len(frames):
            print(f"skipping {len(frames) - len(keep)} of {len(frames)} structures not supported by {featurizers[0].name}")
        frames = keep
    for f in featurizers:
        bad = f.unsupported(frames)
        if bad:
            raise UnsupportedElementError(
                f"{f.name} does not support the elements of {len(bad)} of {len(frames)} structures; "
                "pass --skip-unsupported to drop them, or choose a model that covers these elements"
            )
    layers = {f.name: [la for la in args.layers if la in f.layers] if args.layers else list(f.layers) for f in featurizers}
    try:
        with cluster_client(args) as client:
            path = featurize_to_zarr(frames, layers, args.out, client, models=args.model,
                                     extensions_dir=args.extensions_dir, chunk_atoms=args.chunk_atoms,
                                     batch_size=args.batch_size, threads=args.threads, progress=not args.quiet)
    except KeyboardInterrupt:
        if partial_path(args.out).exists():
            print(f"the chunks done so far are kept in {partial_path(args.out)}; rerun the same command to resume")
        raise
    n_atoms = sum(len(a) for a in frames)
    print(f"wrote {sum(map(len, layers.values()))} feature sets for {len(frames)} structures ({n_atoms} atoms) to {Path(path)}")
    return 0
