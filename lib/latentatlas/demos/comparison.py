"""The built-in demo comparison the dashboard opens on: real features of the built-in structures.

``python -m latentatlas.demos.comparison [--small] [--out FOLDER]`` (re)writes
``demo_comparison.nc`` (atom level) and ``demo_comparison_structure_level.nc``
(progressive cumulants κ1..κ2 of the same feature sets) from the shipped models, by default
into the package's data folder (:mod:`latentatlas.data`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

#: Feature sets of the demo: (featuriser, layers). Last layers of the CHGNet family and of two
#: SevenNet-0 trainings, one early layer of each architecture, and SOAP.
DEMO_FEATURE_SETS = [
    ("chgnet-0.3.0", ["conv1", "last"]),
    ("chgnet-r2scan", ["last"]),
    ("sevennet-0", ["gate0", "last"]),
    ("sevennet-0-22may2024", ["last"]),
    ("soap", None),
]


def demo_features(frames, feature_sets=DEMO_FEATURE_SETS) -> xr.Dataset:
    """One features Dataset holding every demo feature set of ``frames``."""
    from ..dataset import merge_features
    from ..features import get_featurizer

    return merge_features(*(get_featurizer(name).featurize(frames, layers) for name, layers in feature_sets))


def _compact(ds: xr.Dataset) -> xr.Dataset:
    """float32 for the large arrays (errors and maps are shown to 3 digits) to keep the shipped data small."""
    big = [v for v in ds.data_vars if v.endswith("_pointwise") or v == "pca"]
    return ds.assign({v: ds[v].astype(np.float32) for v in big})


#: Measures in the demo files: the three FRE, and one of each other family (see latentatlas.similarity).
DEMO_METRICS = ("gfre", "gfrd", "lfre", "cka", "procrustes", "mknn")


def write_demo_data(out_dir: str | Path, *, small: bool = False, max_order: int = 2, n_splits: int = 3) -> list[Path]:
    """Compute and save the demo comparisons (atom level and structure level) into ``out_dir``.

    Each level is saved as soon as it is computed.

    Parameters
    ----------
    small : bool
        Use the 52-structure version of the built-in benchmark (minutes instead of hours).
    max_order : int
        Highest cumulant of the structure-level features.
    n_splits : int
        Random train/test splits behind each matrix and its spread.
    """
    from ..compare import compare
    from ..cumulants import structure_features
    from ..io import save
    from ..structures import builtin_frames

    out_dir = Path(out_dir)
    features = demo_features(builtin_frames(small=small))
    paths = [save(_compact(compare(features, metrics=DEMO_METRICS, n_splits=n_splits)), out_dir / "demo_comparison.nc")]
    structures = structure_features(features, max_order)
    # LFRE neighbourhoods must fit in the training half of the (few) structures
    n_local = int(min(100, max(4, structures.sizes["structure"] // 4)))
    structure = compare(structures, metrics=DEMO_METRICS, n_splits=n_splits, n_local_points=n_local)
    paths.append(save(_compact(structure), out_dir / "demo_comparison_structure_level.nc"))
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from .. import data as shipped

    parser.add_argument("--out", default=str(shipped.folder()), help="output folder (default: the package's data folder)")
    parser.add_argument("--small", action="store_true", help="52 structures instead of the full benchmark")
    parser.add_argument("--splits", type=int, default=3, help="random train/test splits (default 3)")
    args = parser.parse_args(argv)
    for path in write_demo_data(args.out, small=args.small, n_splits=args.splits):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
