"""The built-in structure benchmark: deterministic, diverse, labelled, usable by every model."""

import numpy as np
import pytest

from latentatlas.frames import check_frames
from latentatlas.frames import fingerprint
from latentatlas.structures import SUBSETS, builtin_frames, builtin_summary


@pytest.fixture(scope="module")
def frames():
    return builtin_frames()


def test_size_and_subsets_match_the_documented_composition(frames):
    summary = builtin_summary(frames)
    assert tuple(summary) == SUBSETS
    n_structures = sum(n for n, _ in summary.values())
    n_atoms = sum(m for _, m in summary.values())
    assert 500 <= n_structures <= 1000 and 10_000 <= n_atoms <= 30_000
    assert summary == {
        "bulk": (118, 1968), "rattled": (236, 3936), "random": (150, 3600),
        "surface": (91, 2457), "cluster": (100, 2728), "molecule": (148, 846),
    }
    assert len(set(np.concatenate([a.numbers for a in frames]))) == 75


def test_no_atom_is_isolated_within_the_smallest_model_cutoff(frames):
    from ase.neighborlist import neighbor_list

    for atoms in frames:
        assert len(np.unique(neighbor_list("i", atoms, 4.6))) == len(atoms), atoms.info["name"]


def test_deterministic_and_seeded(frames):
    assert fingerprint(builtin_frames()) == fingerprint(frames)
    assert fingerprint(builtin_frames(seed=1)) != fingerprint(frames)


def test_every_structure_is_valid_and_periodicity_is_as_documented(frames):
    check_frames(frames)  # no empty frame, no overlapping atoms, cells where periodic
    for atoms in frames:
        subset = atoms.info["subset"]
        if subset in ("cluster", "molecule"):
            assert not atoms.pbc.any() and atoms.cell.volume > 0
        elif subset == "surface":
            assert list(atoms.pbc) == [True, True, False]
        else:
            assert atoms.pbc.all()


def test_small_version_has_every_subset():
    small = builtin_frames(small=True)
    summary = builtin_summary(small)
    assert tuple(summary) == SUBSETS
    assert len(small) == 52 and sum(len(a) for a in small) == 434
    check_frames(small)
