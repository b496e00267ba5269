"""``latentatlas import``: per-atom features computed by another program, as a features file."""

from __future__ import annotations

import argparse

from ._checks import check_output


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import",
        help="turn per-atom features written by another program into a features file",
        description=(
            "Read structures (any format ase.io.read understands) and per-atom features computed "
            "elsewhere -- arrays stored in the structure file (extxyz atoms.arrays) or a .npz file "
            "with one (n_atoms, n_features) array per feature set, rows in atom order over all "
            "structures -- check them, and write one netCDF features file that compares with any "
            "model's (same fingerprint for the same structures)."
        ),
        epilog=(
            "Examples: latentatlas import soap.xyz --arrays soap --model dscribe --out f.nc; "
            "latentatlas import md.xyz --npz md-features.npz --model my-code --out f.nc"
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="structure files, in the order the feature rows follow")
    p.add_argument("--npz", metavar="FILE", help=".npz file of per-atom feature arrays (default: read atoms.arrays)")
    p.add_argument("--arrays", nargs="+", metavar="NAME",
                   help="per-atom arrays to take (default: every numeric non-ase array, or every array of --npz)")
    p.add_argument("--model", "-m", required=True, help="name of the program or model that computed the features")
    p.add_argument("--out", "-o", required=True, help="output netCDF file (written atomically)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..features.external import arrays_from_frames, arrays_from_npz, import_features
    from ..frames import read_frames
    from ..io import save

    check_output(args.out, [*args.files, *([args.npz] if args.npz else [])])
    frames = read_frames(args.files)
    if args.npz:
        arrays = arrays_from_npz(args.npz)
        if args.arrays:
            missing = [n for n in args.arrays if n not in arrays]
            if missing:
                raise KeyError(f"{args.npz} has no arrays {missing}; it has {sorted(arrays)}")
            arrays = {n: arrays[n] for n in args.arrays}
    else:
        arrays = arrays_from_frames(frames, args.arrays)
    ds = import_features(frames, arrays, model=args.model)
    path = save(ds, args.out)
    print(f"wrote {len(ds.data_vars)} feature sets for {ds.sizes['structure']} structures ({ds.sizes['atom']} atoms) to {path}")
    return 0
