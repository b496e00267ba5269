"""Toy structures and feature sets shared by the comparison tests."""

import numpy as np
from ase.build import bulk, molecule

from latentatlas.dataset import add_feature_set, empty_features


def toy_frames(extra=()):
    """Ethanol molecules and small Si crystals, 24 of each, rattled; ``extra`` frames appended."""
    frames = []
    for i in range(24):
        mol = molecule("CH3CH2OH")
        mol.info["subset"] = "molecule"
        mol.rattle(0.05, seed=i)
        crystal = bulk("Si", "diamond", a=5.43) * (2, 1, 1)
        crystal.info["subset"] = "bulk"
        crystal.rattle(0.05, seed=i)
        frames += [mol, crystal]
    return frames + list(extra)


def toy_features(frames, seed=0):
    """Two related random feature sets over ``frames``: ``a:x`` and ``b:y = tanh(a:x @ M)``."""
    ds = empty_features(frames)
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((ds.sizes["atom"], 6))
    ds = add_feature_set(ds, base, model="a", layer="x")
    return add_feature_set(ds, np.tanh(base @ rng.standard_normal((6, 9))), model="b", layer="y")
