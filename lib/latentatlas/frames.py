"""Sets of structures (``ase.Atoms``): reading, fingerprints and per-structure metadata."""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["fingerprint", "read_frames", "structure_metadata"]


def fingerprint(frames: Sequence) -> str:
    """Stable hash of a list of structures.

    The hash covers atomic numbers, positions, cell and periodic boundary conditions of
    every frame, in order, so results computed for one set of frames can never be paired
    silently with another.

    Parameters
    ----------
    frames : sequence of ase.Atoms

    Returns
    -------
    str
        ``"sha256:<hex>"``.
    """
    h = hashlib.sha256()
    for atoms in frames:
        h.update(np.int64(len(atoms)).tobytes())
        h.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(atoms.positions, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(atoms.cell.array, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(atoms.pbc, dtype=np.bool_).tobytes())
    return "sha256:" + h.hexdigest()


def structure_metadata(frames: Sequence, subset: Sequence[str] | None = None) -> dict:
    """Per-structure and per-atom index arrays for a list of frames.

    Returns
    -------
    dict
        ``n_atoms`` (n_structures,), ``formula`` (n_structures,), ``subset``
        (n_structures,), ``atom_structure`` (n_atoms_total,) frame index of each atom,
        ``species`` (n_atoms_total,) atomic number of each atom.
    """
    n_atoms = np.array([len(a) for a in frames], dtype=np.int64)
    if subset is None:
        subset = [a.info.get("subset", "all") for a in frames]
    subset = np.asarray([str(s) for s in subset], dtype=object)
    if len(subset) != len(frames):
        raise ValueError(
            f"got {len(subset)} subset labels for {len(frames)} structures; give one label per structure"
        )
    return {
        "n_atoms": n_atoms,
        "formula": np.asarray([a.get_chemical_formula() for a in frames], dtype=object),
        "subset": subset,
        "atom_structure": np.repeat(np.arange(len(frames), dtype=np.int64), n_atoms),
        "species": np.concatenate([a.numbers for a in frames]).astype(np.int64)
        if len(frames)
        else np.zeros(0, dtype=np.int64),
    }


def read_frames(paths: Sequence[str | Path], index: str = ":") -> list:
    """Read every structure from one or more files that ``ase.io.read`` understands.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        A file cannot be parsed, holds no structure, or lists atoms at the same position
        (ase keeps one of them, so the structure read has fewer atoms than the file).
    """
    import ase.io

    frames = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"structure file {path} does not exist")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                read = ase.io.read(path, index=index)
        except Exception as err:  # ase raises many types for unreadable input
            raise ValueError(
                f"ase could not read {path} ({type(err).__name__}: {err}); "
                "give a format ase.io.read understands (extxyz, CIF, POSCAR, ...)"
            ) from err
        _refuse_merged_sites(path, caught)
        read = read if isinstance(read, list) else [read]
        if not read or any(len(a) == 0 for a in read):
            raise ValueError(f"{path} holds no atoms; give a file with at least one non-empty structure")
        for atoms in read:
            atoms.info.setdefault("source_file", str(path))
        frames.extend(read)
    return frames


# ase.spacegroup.crystal, used by the CIF reader, keeps one of two listed sites that land
# on the same position and only warns with this message
_MERGED_SITES = re.compile(r"scaled_positions (\d+) and (\d+) are equivalent")


def _refuse_merged_sites(path: Path, caught: list) -> None:
    """Raise if ase merged sites of ``path`` while reading it; pass other warnings on."""
    merged = []
    for w in caught:
        match = _MERGED_SITES.search(str(w.message))
        if match:
            merged.append(f"{match[1]} and {match[2]}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if merged:
        raise ValueError(
            f"{path} lists atoms at the same position (sites {'; '.join(merged[:5])}"
            f"{'; ...' if len(merged) > 5 else ''}, counted from 0), and ase keeps only one of each, so the structure "
            "read has fewer atoms than the file lists; remove the duplicate sites (if they are "
            "symmetry copies of one atom listed on purpose, check the structure ase.io.read gives and write it out "
            "with ase.io.write)"
        )
