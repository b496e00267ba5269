"""Geometry helpers shared by test modules."""

from scipy.spatial.transform import Rotation


def rotated(atoms, seed):
    """A copy of ``atoms`` rigidly rotated (positions and cell) by a random rotation."""
    out = atoms.copy()
    R = Rotation.random(random_state=seed).as_matrix()
    out.positions = atoms.positions @ R.T
    out.cell = atoms.cell.array @ R.T
    return out
