"""Chemical concepts per atom, for probing the layers of interatomic potentials.

The samples are atoms, the layers are the feature sets of a features Dataset (see
:mod:`latentatlas.features`), the classes are the structures' subsets (bulk, surface,
molecule, ...). Concepts per atom, computed from the geometry with ASE alone:

``block``
    s, p, d or f block of the element.
``metal``
    The element is a metal (metalloids B, Si, Ge, As, Sb, Te count as non-metals).
``coordination``
    Neighbours within 1.2 x the sum of covalent radii, binned ``0-4`` (molecules, diamond),
    ``5-8`` (rock salt, surfaces, cluster shells), ``9+`` (close-packed and bcc metals).
``surface``
    The neighbour shell is one-sided: the mean unit vector to the neighbours has a length
    above 0.25 (atoms of slab surfaces: 0.27 on fcc(111); cluster shells; terminal atoms of
    molecules). Strongly rattled bulk atoms can pass too: their shell is one-sided.
``periodicity``
    Periodic directions of the structure: ``3d``, ``2d`` or ``0d``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["atom_concepts", "analyse_atoms", "atoms_demo"]

_NON_METALS = {1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32, 33, 34, 35, 36, 51, 52, 53, 54, 85, 86}
_S_BLOCK = {1, 2, 3, 4, 11, 12, 19, 20, 37, 38, 55, 56, 87, 88}


def _block(z: np.ndarray) -> np.ndarray:
    f = ((z >= 57) & (z <= 70)) | ((z >= 89) & (z <= 102))
    d = ((z >= 21) & (z <= 30)) | ((z >= 39) & (z <= 48)) | ((z >= 71) & (z <= 80)) | ((z >= 103) & (z <= 112))
    s = np.isin(z, list(_S_BLOCK))
    return np.select([s, d, f], ["s", "d", "f"], default="p")


def _environment(atoms, mult: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Coordination number and one-sidedness (length of the mean unit bond vector) per atom."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    i, D = neighbor_list("iD", atoms, natural_cutoffs(atoms, mult=mult))
    n = len(atoms)
    cn = np.bincount(i, minlength=n)
    unit = D / np.linalg.norm(D, axis=1, keepdims=True)
    mean = np.zeros((n, 3))
    np.add.at(mean, i, unit)
    mean /= np.maximum(cn, 1)[:, None]
    return cn, np.linalg.norm(mean, axis=1)


def atom_concepts(frames: Sequence) -> dict[str, np.ndarray]:
    """The concepts of the module docstring for every atom of ``frames``.

    Returns
    -------
    dict of name -> ndarray (n_atoms_total,)
        ``block``, ``coordination``, ``periodicity`` (str) and ``metal``, ``surface`` (bool),
        atoms in frame order.
    """
    if len(frames) == 0:
        raise ValueError("no structure given; pass at least one ase.Atoms")
    z = np.concatenate([a.numbers for a in frames])
    cn, sided = map(np.concatenate, zip(*(_environment(a) for a in frames)))
    periodic = np.concatenate([np.full(len(a), f"{int(np.sum(a.pbc))}d") for a in frames])
    return {
        "block": _block(z),
        "metal": ~np.isin(z, list(_NON_METALS)),
        "coordination": np.select([cn <= 4, cn <= 8], ["0-4", "5-8"], default="9+"),
        "surface": sided > 0.25,
        "periodicity": periodic,
    }


def analyse_atoms(features: xr.Dataset, frames: Sequence | None = None, *, layers=None, **kwargs) -> xr.Dataset:
    """Concept analysis of a per-atom features Dataset, with the subsets as classes.

    Parameters
    ----------
    features : xarray.Dataset
        A features Dataset (``latentatlas.features.get_featurizer(...).featurize(frames)``,
        possibly several merged): each ``"<model>:<layer>"`` variable is a layer.
    frames : sequence of ase.Atoms, optional
        The frames the features describe (checked by fingerprint); default rebuilt from
        the Dataset.
    layers : sequence of str, optional
        Feature sets to probe, in order; default all.
    **kwargs
        Passed to :func:`~latentatlas.concepts.presence.analyse_concepts`.

    Returns
    -------
    xarray.Dataset
        The concept analysis; samples are atoms, with the coordinate ``sample_structure``
        (frame index of each held-out atom) and the features' ``fingerprint`` attribute.
    """
    from ..dataset import FingerprintMismatchError, frames_from_features
    from ..frames import fingerprint
    from .presence import analyse_concepts

    if "atom" not in features.dims:
        raise ValueError("features must be a per-atom features Dataset (dimension 'atom'); see latentatlas.features")
    if frames is None:
        frames = frames_from_features(features)
    elif fingerprint(frames) != features.attrs.get("fingerprint"):
        raise FingerprintMismatchError(
            f"the frames are not the ones the features were computed for (fingerprints differ: the features' "
            f"{features.attrs.get('fingerprint')}, the frames' {fingerprint(frames)}); recompute the features for "
            "these frames or pass the matching ones"
        )
    classes = features["subset"].values[features["atom_structure"].values]
    result = analyse_concepts(features, atom_concepts(frames), classes, layers=layers, **kwargs)
    atom_structure = features["atom_structure"].values
    return result.assign_coords(sample_structure=("sample", atom_structure[result["sample"].values])).assign_attrs(
        fingerprint=features.attrs.get("fingerprint", ""), samples="atoms", classes="subsets"
    )


def atoms_demo(
    models: Sequence[str] = ("chgnet-0.3.0", "sevennet-0"),
    *,
    small: bool = True,
    progress: bool = True,
    **kwargs,
) -> xr.Dataset:
    """Which layer of which pretrained potential first encodes which chemical concept.

    Featurises the built-in structures (:func:`latentatlas.structures.builtin_frames`) with
    every layer of each model and runs :func:`analyse_atoms`.

    Parameters
    ----------
    models : sequence of str
        Names from :func:`latentatlas.features.list_featurizers`.
    small : bool
        Use the small built-in set (434 atoms) instead of the full one (15,739 atoms).
    """
    from ..dataset import merge_features
    from ..features import get_featurizer
    from ..structures import builtin_frames

    frames = builtin_frames(small=small)
    parts = [get_featurizer(name).featurize(frames, progress=progress) for name in models]
    features = merge_features(*parts)
    return analyse_atoms(features, frames, **kwargs)
