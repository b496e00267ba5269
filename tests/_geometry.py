"""Geometry helpers shared by test modules."""

from scipy.spatial.transform import Rotation


def rotated(atoms, seed):
    """A copy of ``atoms`` rigidly rotated (positions and cell) by a random rotation."""
    out = atoms.copy()
    R = Rotation.random(random_state=seed).as_matrix()
    out.positions = atoms.positions @ R.T
    out.cell = atoms.cell.array @ R.T
    return out


def assert_rotation_invariant(featurizer, frames):
    """Rotating every frame leaves every layer unchanged, to 1e-5 of the layer's largest magnitude.

    The models run in float32, so changes are rounding, not zero.
    """
    import numpy as np

    a = featurizer.featurize(frames, progress=False, cache=False)
    b = featurizer.featurize([rotated(x, seed) for seed, x in enumerate(frames)], progress=False, cache=False)
    for name in a.data_vars:
        X, Y = a[name].values, b[name].values
        assert np.abs(X - Y).max() <= 1e-5 * np.abs(X).max(), name
