"""The built-in concept result the concept app opens on: the biased shapes demo, compacted.

``python -m latentatlas.demos.concepts [--from shapes.nc] [--out FILE]``
runs :func:`latentatlas.demos.shapes.shapes_demo` with ``bias=0.9`` (about two minutes on
a CPU; the same as ``latentatlas concepts --demo shapes --out shapes.nc``), or reads such a
file, and writes it without the held-out images: they are redrawn on demand from the
recorded :func:`~latentatlas.demos.shapes.make_shapes` parameters (checked here to
reproduce the stored images exactly), which keeps the shipped data under 1 MB. The default
output is the package's data folder (:mod:`latentatlas.data`).
"""

from __future__ import annotations

import argparse
import numpy as np
import xarray as xr

from .. import data as shipped


def compact(result: xr.Dataset) -> xr.Dataset:
    """``result`` of :func:`~latentatlas.demos.shapes.shapes_demo` without ``image``, probabilities as float32.

    Raises
    ------
    ValueError
        The stored images are not the ones :func:`make_shapes` redraws from the result's settings.
    """
    from ..viz.concepts.data import example_images

    if result.attrs.get("demo") != "shapes" or "image" not in result.data_vars:
        raise ValueError("compact() takes a shapes demo result with its images (latentatlas concepts --demo shapes)")
    # shapes_demo draws the analysed images unbiased with seed + 1, and analyses all of them
    recipe = {
        "images_n": int(result.attrs["n_train"] + result.attrs["n_test"]),
        "images_size": int(result.sizes["x"]),
        "images_bias": 0.0,
        "images_seed": int(result.attrs["seed"]) + 1,
    }
    small = result.drop_vars("image").assign_attrs(recipe)
    small = small.assign(probability=small["probability"].astype(np.float32))
    if not np.array_equal(example_images(small, result["sample"].values), result["image"].values.transpose(0, 2, 3, 1)):
        raise ValueError("make_shapes does not redraw the stored images from the recorded settings; keep 'image'")
    return small


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", help="a shapes demo result to compact instead of running the demo")
    out = shipped.folder() / "demo_concepts_shapes.nc"
    parser.add_argument("--out", default=str(out), help=f"output file (default {out})")
    args = parser.parse_args(argv)
    from ..io import load, save

    if args.source:
        result = load(args.source)
    else:
        from .shapes import shapes_demo

        result = shapes_demo(0.9)
    small = compact(result)
    small["probability"].encoding = {"zlib": True, "complevel": 9}  # the only large variable
    path = save(small, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
