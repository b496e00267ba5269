"""Per-atom features computed by another program, turned into a features Dataset.

Two sources:

* per-atom arrays stored in the structure file itself (extxyz ``atoms.arrays``, as many
  codes write descriptors): :func:`arrays_from_frames`;
* a ``.npz`` file next to the structure file with one ``(n_atoms, n_features)`` array per
  feature set, rows in the order of the atoms of all structures, frame after frame:
  :func:`arrays_from_npz`.

:func:`import_features` checks them (atom counts, NaN/inf) and returns the same Dataset a
built-in featuriser would, with the fingerprint of the structures, so imported features
can be compared with any model's.

Example
-------
>>> frames = read_frames(["md.xyz"])                                     # doctest: +SKIP
>>> ds = import_features(frames, arrays_from_npz("md.npz"), model="my-code")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["arrays_from_frames", "arrays_from_npz", "import_features"]

# Arrays ase itself keeps per atom: structure, not features.
_ASE_ARRAYS = frozenset({"numbers", "positions", "momenta", "masses", "initial_magmoms", "initial_charges", "tags", "forces"})


def arrays_from_frames(frames: Sequence, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Per-atom arrays stored on the frames (``atoms.arrays``), stacked over all frames.

    Parameters
    ----------
    frames : sequence of ase.Atoms
    names : sequence of str, optional
        Arrays to take; default every numeric array of the first frame that is not one of
        ase's own (positions, numbers, masses, momenta, charges, magnetic moments, tags, forces).

    Returns
    -------
    dict of str -> ndarray of shape (n_atoms_total, n_features)

    Raises
    ------
    KeyError
        A frame lacks a requested array (the message lists what it has).
    ValueError
        No feature array found, or an array is not numeric.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("no structure given")
    if names is None:
        names = [k for k, v in frames[0].arrays.items() if k not in _ASE_ARRAYS and np.issubdtype(v.dtype, np.number)]
        if not names:
            raise ValueError(
                "the structures carry no per-atom feature arrays (atoms.arrays holds only "
                f"{sorted(frames[0].arrays)}); give a .npz file of features instead"
            )
    out = {}
    for name in names:
        parts = []
        for i, atoms in enumerate(frames):
            if name not in atoms.arrays:
                raise KeyError(f"structure #{i} has no per-atom array {name!r}; its arrays: {sorted(atoms.arrays)}")
            parts.append(_as_matrix(atoms.arrays[name], name))
        widths = {p.shape[1] for p in parts}
        if len(widths) > 1:
            raise ValueError(f"per-atom array {name!r} has different widths {sorted(widths)} in different structures")
        out[name] = np.concatenate(parts)
    return out


def arrays_from_npz(path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file, one feature set per key (no pickled objects are read).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a readable npz file, or an array that is not numeric.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"features file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError) as err:
        raise ValueError(f"cannot read {path} as a .npz file of numeric arrays ({err}); write it with numpy.savez") from err
    if not arrays:
        raise ValueError(f"{path} holds no array")
    return {name: _as_matrix(X, name) for name, X in arrays.items()}


def _as_matrix(X, name: str) -> np.ndarray:
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"feature array {name!r} has dtype {X.dtype}; features must be real numbers")
    if X.ndim == 1:
        return X.reshape(-1, 1)
    return X.reshape(len(X), -1)


def import_features(
    frames: Sequence,
    arrays: Mapping[str, np.ndarray],
    *,
    model: str,
    model_version: str | None = None,
    description: str = "imported per-atom features",
):
    """A features Dataset of ``frames`` holding externally computed per-atom arrays.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        The structures, in the order the feature rows follow.
    arrays : mapping of str -> array-like of shape (n_atoms_total, n_features)
        One feature set per entry, named ``"<model>:<key>"`` in the Dataset; 1-D arrays
        are one feature.
    model : str
        Name of the program or model that computed them.
    model_version : str, optional
        Default: a digest of the values, so different numbers never share a version.
    description : str
        Stored in every variable's ``description`` attr.

    Returns
    -------
    xarray.Dataset
        As :meth:`latentatlas.features.Featurizer.featurize` returns, with the frames' fingerprint.

    Raises
    ------
    ValueError
        A name containing ``:`` or ``/``, a row count that is not the number of atoms, or
        NaN/inf values (the message names the structure and atom).
    """
    from ..dataset import FeatureError, add_feature_set, empty_features

    frames = list(frames)
    if not frames:
        raise ValueError("no structure given; pass the structures the features were computed for")
    if not arrays:
        raise ValueError("no feature array given")
    if not model or any(c in model for c in ":/"):
        raise ValueError(f"model name {model!r} must be non-empty and contain no ':' or '/'")
    n_atoms = np.array([len(a) for a in frames])
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    matrices = {}
    for name, X in arrays.items():
        if not name or any(c in name for c in ":/"):
            raise ValueError(f"feature set name {name!r} must be non-empty and contain no ':' or '/'")
        X = _as_matrix(X, name)
        if len(X) != offsets[-1]:
            raise FeatureError(
                f"feature set {name!r} has {len(X)} rows but the {len(frames)} structures have {offsets[-1]} atoms; "
                "give one row per atom, structures in file order"
            )
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        if len(bad):
            frame = int(np.searchsorted(offsets, bad[0], side="right") - 1)
            raise FeatureError(
                f"feature set {name!r} has NaN/inf values in {len(bad)} atoms (first: atom {bad[0] - offsets[frame]} "
                f"of structure #{frame}, {frames[frame].get_chemical_formula()}); recompute them or drop those structures"
            )
        matrices[name] = X
    ds = empty_features(frames)
    for name, X in matrices.items():
        version = model_version or "values sha256:" + hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest()[:12]
        ds = add_feature_set(ds, X, model=model, layer=name, model_version=version, backend="import", description=description)
    return ds
