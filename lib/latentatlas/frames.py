"""Sets of structures (``ase.Atoms``): reading, validation, geometry checks, fingerprints and metadata."""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["check_frames", "fingerprint", "overlapping_frames", "periodic_box", "read_frames", "structure_metadata"]


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


#: Atoms closer than this (Å) are treated as overlapping: no model was trained on that.
MIN_DISTANCE = 0.5


def check_frames(frames) -> list:
    """Validate structures for featurising; returns them as a list.

    Raises
    ------
    TypeError
        Not ase.Atoms.
    ValueError
        No structure, an empty structure, a periodic direction without a cell vector, or
        overlapping atoms (closer than ``MIN_DISTANCE`` Å).
    """
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    if isinstance(frames, Atoms):
        frames = [frames]
    frames = list(frames)
    if not frames:
        raise ValueError("no structure given; pass at least one ase.Atoms")
    problems = {}
    for i, atoms in enumerate(frames):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"structure #{i} is a {type(atoms).__name__}, not ase.Atoms; read files with latentatlas.frames.read_frames")
        if len(atoms) == 0:
            problems[i] = f"#{i} has no atoms"
            continue
        flat = np.flatnonzero(atoms.pbc & (np.linalg.norm(atoms.cell.array, axis=1) < 1e-6)).tolist()
        if flat:
            problems[i] = f"#{i} {atoms.get_chemical_formula()} is periodic along axes {flat} but has no cell vector there (set atoms.cell or atoms.pbc=False)"
    usable = [i for i in range(len(frames)) if i not in problems]
    for i in overlapping_frames([frames[i] for i in usable], MIN_DISTANCE):
        i = usable[i]
        d = neighbor_list("d", frames[i], MIN_DISTANCE)
        problems[i] = f"#{i} {frames[i].get_chemical_formula()} has atoms {d.min():.3f} Å apart (overlapping; minimum {MIN_DISTANCE} Å)"
    if problems:
        messages = [problems[i] for i in sorted(problems)]
        shown = "; ".join(messages[:10]) + (f"; and {len(messages) - 10} more" if len(messages) > 10 else "")
        raise ValueError(f"{len(messages)} unusable structure(s): {shown}; fix or remove them")
    return frames


def _half_shifts() -> tuple[np.ndarray, np.ndarray]:
    """Periodic images worth looking at, for :func:`overlapping_frames`.

    Returns
    -------
    shifts : ndarray of int, shape (13, 3)
        The lattice translations n in {-1, 0, 1}^3 whose first non-zero entry is positive:
        one of each pair +-n is enough, as atom j seen from atom i through n is atom i
        seen from atom j through -n.
    needed : ndarray of bool, shape (64, 13)
        Row ``sum_k sides_k * 4**k``, where ``sides_k`` has bit 0 set if an atom is near the
        low face of axis k and bit 1 if near the high one: which of its images can come
        near the cell (moving +1 along k takes an atom near the low face just past the high one).
    """
    grid = np.array(list(np.ndindex(3, 3, 3))) - 1
    shifts = grid[grid[np.arange(len(grid)), (grid != 0).argmax(1)] > 0]
    sides = (np.arange(64)[:, None] >> (2 * np.arange(3))) & 3  # (64, 3)
    allowed = (shifts[None] == 0) | ((shifts[None] > 0) & (sides[:, None] & 1 > 0)) | ((shifts[None] < 0) & (sides[:, None] & 2 > 0))
    return shifts, allowed.all(2)


_HALF_SHIFTS, _IMAGE_NEEDED = _half_shifts()


def overlapping_frames(frames, cutoff: float) -> np.ndarray:
    """Indices of the frames where two atoms, or an atom and a periodic image, are closer than ``cutoff`` Å.

    Same answer as asking ``ase.neighborlist.neighbor_list("d", atoms, cutoff)`` of every
    frame whether it is empty, but all frames go through one k-d tree: ase's pure-Python
    cell list costs milliseconds per frame, more than featurising a small one with SOAP.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Non-empty, with a non-zero cell vector along every periodic axis.
    cutoff : float

    Returns
    -------
    ndarray of int, shape (n_overlapping,)
        Sorted frame indices.
    """
    from scipy.spatial import cKDTree

    if not len(frames):
        return np.zeros(0, dtype=np.int64)
    n_atoms = np.array([len(a) for a in frames])
    owner = np.repeat(np.arange(len(frames)), n_atoms)
    pbc = np.array([a.pbc for a in frames], dtype=bool)
    cells = np.array([a.cell.array if a.pbc.any() else np.eye(3) for a in frames])
    singular = np.flatnonzero(np.abs(np.linalg.det(cells)) < 1e-9)
    for f in singular:  # slabs and wires may leave the cell empty along non-periodic axes
        cells[f] = frames[f].cell.complete()
    inverse = np.linalg.inv(cells)
    frac = np.einsum("ai,aij->aj", np.concatenate([a.positions for a in frames]), inverse[owner])
    frac = np.where(pbc[owner], frac % 1.0, frac)
    # each frame gets its own value of a fourth coordinate, more than cutoff apart, so one
    # tree holds every frame and pairs never cross frames (exact: equal values cancel)
    points = np.column_stack([np.einsum("ai,aij->aj", frac, cells[owner]), owner * (cutoff + 1.0)])
    tree = cKDTree(points)
    close = np.zeros(len(frames), dtype=bool)
    close[owner[tree.query_pairs(cutoff, output_type="ndarray")[:, 0]]] = True
    # wrapped fractional coordinates differ by less than 1, so a close image lies at most
    # floor(cutoff / plane spacing) + 1 cells away; beyond one cell (cells thinner than
    # the cutoff) leave the frame to ase
    spacing = 1.0 / np.linalg.norm(inverse, axis=1)
    reach = np.where(pbc, np.floor(cutoff / spacing) + 1, 0)
    thin = (reach > 1).any(1)
    # an image can come within cutoff of the cell only if the atom lies within cutoff of
    # every face it crosses: keep the (atom, shift) pairs where it does
    margin = cutoff / spacing[owner]
    sides = ((frac < margin) | 2 * (frac > 1.0 - margin)) * pbc[owner]
    keep = _IMAGE_NEEDED[sides @ (4 ** np.arange(3))] & ~thin[owner][:, None]
    atom, shift = np.nonzero(keep)
    if len(atom):
        images = points[atom].copy()
        images[:, :3] += np.einsum("si,sij->sj", _HALF_SHIFTS[shift].astype(float), cells[owner[atom]])
        distance, _ = tree.query(images, distance_upper_bound=cutoff)
        close[owner[atom[np.isfinite(distance)]]] = True
    if thin.any():
        from ase.neighborlist import neighbor_list

        for f in np.flatnonzero(thin & ~close):
            close[f] = len(neighbor_list("i", frames[f], cutoff)) > 0
    return np.flatnonzero(close)


def periodic_box(atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions and cell under which ``atoms`` can be treated as periodic along all three axes.

    For backends that need that. A frame with no periodic direction is put in an
    orthorhombic box with ``cutoff + 2`` Å of vacuum on each side, so no atom sees an
    image: results are those of the isolated frame. A partially periodic frame (a slab)
    keeps its cell, which must already leave at least ``cutoff`` Å of vacuum along each
    non-periodic axis.

    Returns
    -------
    positions : ndarray of shape (n_atoms, 3)
    cell : ndarray of shape (3, 3)
        New arrays; rows are the cell vectors.

    Raises
    ------
    ValueError
        Too little vacuum along a non-periodic axis (the message says how to add it).
    """
    positions = atoms.get_positions()
    if not atoms.pbc.any():
        pad = cutoff + 2.0
        return positions - positions.min(axis=0) + pad, np.diag(np.ptp(positions, axis=0) + 2 * pad)
    cell = atoms.cell.array.copy()
    for ax in np.flatnonzero(~atoms.pbc):
        normal = np.cross(cell[(ax + 1) % 3], cell[(ax + 2) % 3])
        normal /= np.linalg.norm(normal)
        gap = abs(cell[ax] @ normal) - np.ptp(positions @ normal)
        if gap < cutoff:
            raise ValueError(
                f"{atoms.get_chemical_formula()} is not periodic along axis {ax} but has only {gap:.2f} Å of "
                f"vacuum there; this model treats cells as periodic and needs >= {cutoff} Å: "
                f"use atoms.center(vacuum={cutoff / 2 + 1}, axis={ax})"
            )
    return positions, cell
