"""Grouped against scikit-matter inner CV on real crystals, and old-vs-new reproduction numbers.

1. ``minerals``: eleven real minerals built with ASE from their published space groups and
   lattice parameters (quartz, rutile, corundum, calcite, halite, periclase, fluorite,
   perovskite, sphalerite, wurtzite, pyrite), featurised (cached) with the given models;
   prints the GFRE and LFRE matrices of ``latentatlas.compare`` with ``cv="skmatter"`` and
   ``cv="grouped"`` side by side, with diagnostic marks and caveats, and optionally the
   learning curve.
2. ``reports OLD NEW``: the headline numbers of two ``latentatlas reproduce`` output folders
   (e.g. ``--cv skmatter`` and ``--cv grouped``) as a markdown table.

    python benchmarks/fre_cv_modes.py minerals --models chgnet-0.3.0 sevennet-0 soap
    python benchmarks/fre_cv_modes.py reports repro-skmatter repro-grouped
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def minerals():
    """Eleven mineral crystals (conventional cells), ``info["subset"] = "mineral"``."""
    from ase.build import bulk
    from ase.spacegroup import crystal

    frames = {
        "quartz SiO2": crystal(["Si", "O"], [(0.4697, 0, 0), (0.4135, 0.2669, 0.1191)], spacegroup=152,
                               cellpar=[4.916, 4.916, 5.405, 90, 90, 120]),
        "rutile TiO2": crystal(["Ti", "O"], [(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                               cellpar=[4.594, 4.594, 2.959, 90, 90, 90]),
        "corundum Al2O3": crystal(["Al", "O"], [(0, 0, 0.3523), (0.3064, 0, 0.25)], spacegroup=167,
                                  cellpar=[4.759, 4.759, 12.991, 90, 90, 120]),
        "calcite CaCO3": crystal(["Ca", "C", "O"], [(0, 0, 0), (0, 0, 0.25), (0.2578, 0, 0.25)], spacegroup=167,
                                 cellpar=[4.990, 4.990, 17.061, 90, 90, 120]),
        "halite NaCl": bulk("NaCl", "rocksalt", a=5.640, cubic=True),
        "periclase MgO": bulk("MgO", "rocksalt", a=4.212, cubic=True),
        "fluorite CaF2": bulk("CaF2", "fluorite", a=5.463, cubic=True),
        "perovskite SrTiO3": crystal(["Sr", "Ti", "O"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)], spacegroup=221,
                                     cellpar=[3.905, 3.905, 3.905, 90, 90, 90]),
        "sphalerite ZnS": bulk("ZnS", "zincblende", a=5.410, cubic=True),
        "wurtzite ZnO": bulk("ZnO", "wurtzite", a=3.250, c=5.207),
        "pyrite FeS2": crystal(["Fe", "S"], [(0, 0, 0), (0.385, 0.385, 0.385)], spacegroup=205,
                               cellpar=[5.417, 5.417, 5.417, 90, 90, 90]),
    }
    for name, atoms in frames.items():
        atoms.info.update(subset="mineral", name=name)
    return list(frames.values())


def run_minerals(models, n_splits, n_local_points, learning, all_layers):
    from latentatlas.cli.fre import format_learning_curve, format_matrix
    from latentatlas.compare import compare, learning_curve
    from latentatlas.diagnostics import caveats
    from latentatlas.features import get_featurizer
    from latentatlas.reproduce.analyses import load_features

    frames = minerals()
    features = load_features(frames, [get_featurizer(m) for m in models], None if all_layers else "last", progress=False)
    print(f"{len(frames)} minerals, {sum(len(a) for a in frames)} atoms: "
          + ", ".join(f"{a.info['name']} ({len(a)})" for a in frames))
    for cv in ("skmatter", "grouped"):
        result = compare(features, metrics=("gfre", "lfre"), n_splits=n_splits, n_local_points=n_local_points,
                         cv=cv, progress=False)
        print(f"\n=== cv={cv!r} ===")
        for metric in ("gfre", "lfre"):
            print(format_matrix(result[metric], result[f"{metric}_std"], flags=result[f"{metric}_flags"]))
        print("Caveats:\n" + "\n".join(f"- {line}" for line in caveats(result)))
        if learning:
            print(format_learning_curve(learning_curve(features, n_splits=n_splits, cv=cv, progress=False), "gfre"))


def headline(folder: Path) -> dict[str, float]:
    """Named headline numbers of one reproduction folder (its netCDF files)."""
    from latentatlas import io
    from latentatlas.reproduce.analyses import architecture

    cross = io.load(folder / "cross_model.nc")
    models = [str(m) for m in cross.source_model.values]
    out = {}
    off = ~np.eye(len(models), dtype=bool)
    unrelated = np.array([[architecture(a) != architecture(b) and "descriptor" not in
                           (architecture(a), architecture(b)) for b in models] for a in models])
    for metric in ("gfre", "lfre"):
        values = cross[metric].values
        out[f"mean off-diagonal {metric.upper()}, unrelated uMLIPs"] = float(values[unrelated].mean())
        out[f"largest off-diagonal {metric.upper()}"] = float(values[off].max())
        out[f"mean {metric.upper()} diagonal"] = float(np.diagonal(values).mean())
        for i, a in enumerate(models):
            for j, b in enumerate(models):
                if i != j:
                    out[f"{metric.upper()} {a} → {b}"] = float(values[i, j])
    cum = io.load(folder / "cumulants.nc")
    out["smallest cumulant step φk→φk+1"] = float(cum["step"].min())
    out["largest cumulant step φk→φk+1"] = float(cum["step"].max())
    return out


def run_reports(old: Path, new: Path):
    a, b = headline(old), headline(new)
    mode = {}
    for folder in (old, new):
        from latentatlas import io

        mode[folder] = io.load(folder / "cross_model.nc").gfre.attrs.get("cv", "skmatter (before the cv option)")
    print(f"| number | {old.name} (cv={mode[old]}) | {new.name} (cv={mode[new]}) | change |")
    print("|---|---|---|---|")
    for key in a:
        if key in b:
            print(f"| {key} | {a[key]:.3f} | {b[key]:.3f} | {b[key] - a[key]:+.3f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("minerals", help="both CV modes on eleven real minerals")
    p.add_argument("--models", nargs="+", default=["chgnet-0.3.0", "sevennet-0", "soap"])
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--n-local-points", type=int, default=30)
    p.add_argument("--learning-curve", action="store_true")
    p.add_argument("--all-layers", action="store_true", help="every layer of each model, not only the last")
    p = sub.add_parser("reports", help="headline numbers of two reproduction folders")
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "minerals":
        run_minerals(args.models, args.splits, args.n_local_points, args.learning_curve, args.all_layers)
    else:
        run_reports(args.old, args.new)


if __name__ == "__main__":
    main()
