"""Training set for the tiny metatomic test models: the small built-in benchmark, labelled by CHGNet.

Run in the project's environment (it needs latentatlas and chgnet):

    python tools/metatomic/dataset.py OUT.xyz

Writes the 52 structures of ``builtin_frames(small=True)`` plus two rattled copies of
each (so a few epochs see some variety), with ``info["energy"]`` the CHGNet 0.3.0 energy
(eV) of the very pass latentatlas uses for its features.
"""

import sys

import ase.io
import numpy as np

from latentatlas.features import get_featurizer
from latentatlas.structures import builtin_frames


def training_frames(seed: int = 0) -> list:
    frames = builtin_frames(small=True)
    rng = np.random.default_rng(seed)
    out = list(frames)
    for copy in range(2):
        for atoms in frames:
            moved = atoms.copy()
            moved.positions += rng.normal(scale=0.03, size=moved.positions.shape)
            out.append(moved)
    return out


def main(path: str) -> None:
    frames = training_frames()
    _, energy = get_featurizer("chgnet-0.3.0").featurize_with_energy(frames, ["last"], progress=False)
    for atoms, e in zip(frames, energy, strict=True):
        atoms.info = {"energy": float(e), "subset": atoms.info.get("subset", "all")}
        atoms.calc = None
    ase.io.write(path, frames, format="extxyz")
    print(f"wrote {len(frames)} structures ({sum(len(a) for a in frames)} atoms) to {path}")


if __name__ == "__main__":
    main(sys.argv[1])
