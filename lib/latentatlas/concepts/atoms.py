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

Sensitivity of the energy
-------------------------
:func:`energy_gradients` gives, for CHGNet featurisers, the derivative of each structure's
energy with respect to every atom's features at each layer (the perturbation flows through
all later interaction blocks to the energy head), so :func:`analyse_atoms` with
``gradients=`` says which chemical concepts the energy is sensitive to at each layer: the
directional derivative of the energy along the concept's probe direction, its sign
fraction per subset (TCAV score) and significance against probes of permuted labels
(:mod:`latentatlas.concepts.sensitivity`). The one output, ``energy``, serves every class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["atom_concepts", "analyse_atoms", "energy_gradients"]

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


def energy_gradients(frames: Sequence, model: str = "chgnet-0.3.0", layers=None, *, batch_size: int = 16,
                     progress: bool = True) -> xr.Dataset:
    """Derivative of each structure's energy with respect to its atoms' features, per layer.

    Parameters
    ----------
    frames : sequence of ase.Atoms
    model : str
        A CHGNet featuriser name (``chgnet-0.3.0``, ``chgnet-0.2.0``, ``chgnet-r2scan``).
    layers : sequence of str, optional
        Layers of that featuriser (default all), as in its features Dataset.
    batch_size : int
        Structures per forward pass.

    Returns
    -------
    xarray.Dataset
        Variables ``"<model>:<layer>"`` with dims ``("sample", "output", "<model>:<layer>:feature")``,
        samples = atoms of all frames in order, one output ``energy`` (eV per unit of feature):
        the input :func:`~latentatlas.concepts.presence.analyse_concepts` takes as ``gradients``.
    """
    import torch
    from tqdm.auto import tqdm

    from ..features import get_featurizer
    from ..features.chgnet import CHGNetFeaturizer
    from ..hooks import capture
    from .sensitivity import gradients_dataset

    featurizer = get_featurizer(model)
    if not isinstance(featurizer, CHGNetFeaturizer):
        raise ValueError(f"energy gradients are implemented for CHGNet featurisers, not {model!r}; use chgnet-0.3.0")
    layers = list(featurizer.layers if layers is None else layers)
    unknown = [name for name in layers if name not in featurizer.layers]
    if unknown:
        raise KeyError(f"unknown layer(s) {unknown} of {model}; valid: {featurizer.layers}")
    net = featurizer.model
    targets, pre = featurizer.layer_modules(layers)
    chunks: dict[str, list] = {name: [] for name in layers}
    frames = list(frames)
    for start in tqdm(range(0, len(frames), batch_size), desc=f"{model} energy gradients", disable=not progress):
        batch = frames[start : start + batch_size]
        with capture(net, targets, pre=pre) as seen:
            out = net(featurizer.graphs(batch), task="e")
        n_atoms = torch.as_tensor([len(a) for a in batch], dtype=out["e"].dtype)
        # each atom's features feed only its own structure's energy: one backward pass serves all
        grads = torch.autograd.grad((out["e"] * n_atoms).sum(), [seen[name][0] for name in layers])
        for name, g in zip(layers, grads):
            chunks[name].append(g.detach().double().numpy())
    values = {f"{featurizer.name}:{name}": np.concatenate(chunks[name])[:, None, :] for name in layers}
    return gradients_dataset(values, ["energy"])
