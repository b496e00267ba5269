"""Progressive cumulants: atom-level features -> structure-level features.

For every structure and every feature column the distribution of the column over the
structure's atoms is summarised by its cumulants κ1 … κk. κ1 is the mean; κn (n ≥ 2) is
computed from the *population* central moments μn = (1/N) Σ (x - x̄)^n of the structure's
N atoms (the 1/N convention of ``scipy.stats.moment``, not the unbiased k-statistics of
``scipy.stats.kstat``) through the moment-cumulant relation with μ1 = 0::

    κ2 = μ2,  κ3 = μ3,  κ4 = μ4 - 3 μ2²,  κ5 = μ5 - 10 μ2 μ3,
    κ6 = μ6 - 15 μ4 μ2 - 10 μ3² + 30 μ2³,  …  (general: κn = μn - Σ_{m=2}^{n-2} C(n-1, m-1) κm μ_{n-m})

The population convention is deliberate: a structure's atoms are the whole population being
described, not a sample from a larger one (and the unbiased k-statistics exist only up to
order 4 and are undefined for structures with fewer atoms than the order).
A structure with a single atom has all central moments 0, hence κn = 0 for n ≥ 2.

Because κn has the units of x^n, the scaled cumulants sign(κn)·|κn|^(1/n) are used as
features: they have the units of x and scale linearly with it. The progressive cumulant
features of order k are φ^(k) = [κ1, …, κk] concatenated along the feature axis
(order-major: all columns of κ1, then all columns of κ2, …), so φ^(k) is a prefix of φ^(k+1).

Precision: deviations are centred twice (so a large offset of a column costs no accuracy)
and divided by the column's largest deviation (so 8th powers cannot overflow). The
moment-cumulant relation itself cancels terms of size ~|x - x̄|^n, so κn carries an
absolute error of ~1e-13 · max|x - x̄|^n; the n-th root turns a cumulant that is zero in
exact arithmetic (odd cumulants of a symmetric distribution) into noise of relative size
~eps^(1/n) of the spread (about 1 % for n = 8), as any float64 implementation would.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from numbers import Integral
from typing import NamedTuple

import numpy as np
import xarray as xr

from .dataset import check_fingerprints, feature_dim, sample_dim, validate_features

__all__ = ["MAX_ORDER", "cumulants", "progressive_cumulants", "structure_features", "cumulant_feature_name"]

MAX_ORDER = 8


def cumulants(
    X,
    structure_index,
    order: int,
    *,
    n_structures: int | None = None,
    scaled: bool = False,
) -> np.ndarray:
    """Per-structure cumulants κ1 … κ_order of every feature column.

    Parameters
    ----------
    X : array-like of shape (n_atoms, n_features)
        Atom features of all structures, finite.
    structure_index : array-like of int, shape (n_atoms,)
        Structure of each atom, in ``0 … n_structures - 1``; need not be sorted.
    order : int
        Highest cumulant, 1 … 8.
    n_structures : int, optional
        Number of structures; default ``structure_index.max() + 1``. Every structure
        must have at least one atom.
    scaled : bool, default False
        Return sign(κn)·|κn|^(1/n) for n ≥ 2 instead of κn (κ1 is never changed).

    Returns
    -------
    ndarray of shape (n_structures, order, n_features)
        ``out[s, n - 1, j]`` is κn of column ``j`` over the atoms of structure ``s``,
        from population (1/N) central moments.

    Raises
    ------
    FeatureError
        ``X`` is not 2-D, empty, or has NaN/inf.
    ValueError
        ``order`` outside 1 … 8, ``structure_index`` of the wrong length or out of
        range, or a structure without atoms.
    """
    return _cumulants(X, structure_index, order, n_structures=n_structures, scaled=scaled, name="X")


def progressive_cumulants(
    X,
    structure_index,
    order: int,
    *,
    n_structures: int | None = None,
    scaled: bool = True,
) -> np.ndarray:
    """Progressive cumulant features φ^(order) = [κ1, …, κ_order] of every structure.

    Parameters are those of :func:`cumulants`; here ``scaled`` defaults to True.

    Returns
    -------
    ndarray of shape (n_structures, order * n_features)
        Order-major: column ``(n - 1) * n_features + j`` holds κn of feature ``j``, so
        the first ``k * n_features`` columns are φ^(k).
    """
    return _progressive(X, structure_index, order, n_structures=n_structures, scaled=scaled, name="X")


def cumulant_feature_name(name: str, order: int) -> str:
    """Name of the structure-level feature set φ^(order) of atom feature set ``name``.

    ``"<name>:phi<order>"``, e.g. ``"chgnet-0.3.0:conv3:phi4"``.
    """
    return f"{name}:phi{order}"


def structure_features(
    features: xr.Dataset,
    order: int,
    *,
    names: Sequence[str] | None = None,
    scaled: bool = True,
) -> xr.Dataset:
    """Structure-level features Dataset of progressive cumulants φ^(order).

    Parameters
    ----------
    features : xarray.Dataset
        An atom features Dataset (see :mod:`latentatlas.dataset`): coordinate
        ``atom_structure`` on dim ``atom`` and dim ``structure``.
    order : int
        Highest cumulant, 1 … 8.
    names : sequence of str, optional
        Atom-level feature sets to transform; default every data variable on dim ``atom``.
    scaled : bool, default True
        Use sign(κn)·|κn|^(1/n) (see :func:`cumulants`).

    Returns
    -------
    xarray.Dataset
        Sample dim ``structure``; one variable per input feature set, named
        :func:`cumulant_feature_name` ``(name, order)``, of shape
        (n_structures, order * n_features) with feature dim ``"<new name>:feature"``
        carrying coordinates ``"<new name>:cumulant"`` (n of κn) and
        ``"<new name>:source_feature"`` (column index in the atom feature set).
        Variable attrs are the input's plus ``cumulant_order``, ``cumulant_scaled``
        (0/1), ``moments`` and ``source_feature_set``. All coordinates (structure,
        subset, formula, n_atoms, atom coordinates, ...) and Dataset attrs (fingerprint)
        are kept, so the result is a valid features Dataset and can be saved with
        :func:`latentatlas.io.save`.

    Raises
    ------
    KeyError
        A requested feature set is missing, or ``atom_structure`` is missing.
    FingerprintMismatchError
        A feature set was computed for other frames than the Dataset's.
    ValueError
        A requested feature set is not on dim ``atom``, no atom feature set exists, or
        any error of :func:`cumulants` (naming the feature set).
    """
    _check_order(order)
    if "atom_structure" not in features.coords:
        raise KeyError(
            "features Dataset has no 'atom_structure' coordinate; build it with "
            "latentatlas.dataset.empty_features(frames)"
        )
    atom_sets = [k for k in features.data_vars if sample_dim(features[k]) == "atom"]
    if names is None:
        names = atom_sets
        if not names:
            raise ValueError(
                f"features Dataset has no feature set on dim 'atom' (data variables: {list(features.data_vars)}); "
                "add atom features with latentatlas.dataset.add_feature_set"
            )
    else:
        names = list(names)
        missing = [n for n in names if n not in features.data_vars]
        if missing:
            raise KeyError(f"feature sets {missing} not found; available: {list(features.data_vars)}")
        not_atom = [n for n in names if n not in atom_sets]
        if not_atom:
            raise ValueError(
                f"feature sets {not_atom} are not on dim 'atom' (dims {[features[n].dims for n in not_atom]}); "
                "cumulants turn atom features into structure features"
            )
    check_fingerprints(features, names)
    index = features["atom_structure"].values
    n_structures = features.sizes.get("structure", 0)
    out = features.drop_vars(list(features.data_vars))
    for name in names:
        da = features[name]
        progressive = _progressive if da.chunks is None else _lazy_progressive
        phi = progressive(da.data, index, order, n_structures=n_structures, scaled=scaled, name=name)
        new = cumulant_feature_name(name, order)
        fdim = feature_dim(new)
        n_features = da.shape[1]
        out[new] = xr.DataArray(
            phi,
            dims=("structure", fdim),
            coords={
                f"{new}:cumulant": (fdim, np.repeat(np.arange(1, order + 1), n_features)),
                f"{new}:source_feature": (fdim, np.tile(np.arange(n_features), order)),
            },
            attrs={
                **da.attrs,
                "cumulant_order": int(order),
                "cumulant_scaled": int(bool(scaled)),
                "moments": "population (1/N) central moments",
                "source_feature_set": name,
            },
        )
    return out


def _lazy_progressive(X, structure_index, order, *, n_structures, scaled, name):
    """:func:`_progressive` of a dask array, lazily, one task per chunk of whole structures.

    The atom chunks are moved back to the first atom of the structure they would cut, so
    every structure lies in one chunk and each chunk gives its structures' rows of φ.
    Atoms not grouped by structure are loaded and handled in memory.
    """
    import dask.array as dsa
    from dask import delayed

    index = _check_index(structure_index, X.shape[0], n_structures, name)
    if index.sort is not None:
        return _progressive(np.asarray(X), structure_index, order, n_structures=n_structures, scaled=scaled, name=name)
    structure_index = np.asarray(structure_index)
    edges = np.cumsum(X.chunks[0])[:-1]
    bounds = np.unique(np.concatenate([[0], index.starts[structure_index[edges]], [X.shape[0]]]))
    X = X.rechunk((tuple(np.diff(bounds)), -1))
    task = delayed(_progressive, pure=True)
    blocks = []
    for block, a, b in zip(X.to_delayed()[:, 0], bounds[:-1], bounds[1:]):
        first, last = structure_index[a], structure_index[b - 1]
        phi = task(block, structure_index[a:b] - first, order, n_structures=int(last - first + 1), scaled=scaled, name=name)
        blocks.append(dsa.from_delayed(phi, shape=(int(last - first + 1), order * X.shape[1]), dtype=np.float64))
    return dsa.concatenate(blocks)


def _progressive(X, structure_index, order, *, n_structures, scaled, name) -> np.ndarray:
    k = _cumulants(X, structure_index, order, n_structures=n_structures, scaled=scaled, name=name)
    # (s, order, f) in C order is already order-major along the flattened axis.
    return k.reshape(k.shape[0], -1)


def _cumulants(X, structure_index, order, *, n_structures, scaled, name) -> np.ndarray:
    _check_order(order)
    X = np.asarray(X, dtype=np.float64)
    validate_features({name: X})
    index = _check_index(structure_index, X.shape[0], n_structures, name)
    n_structures = len(index.counts)

    # Sum per structure with reduceat over contiguous runs; sort first if the atoms of a
    # structure are not contiguous (sorting is stable, so sums keep the given order).
    if index.sort is not None:
        X = X[index.sort]
    starts, counts = index.starts, index.counts[:, None]

    mean = np.add.reduceat(X, starts, axis=0) / counts
    # Centre before raising to powers. The rounded mean is off by ~eps*|mean|, which would
    # leak into the odd moments of columns with a large offset, so centre a second time on
    # the mean of the deviations (corrected two-pass algorithm, Chan, Golub & LeVeque 1983).
    dev = X - np.repeat(mean, index.counts, axis=0)
    residual = np.add.reduceat(dev, starts, axis=0) / counts
    dev -= np.repeat(residual, index.counts, axis=0)
    mean += residual
    # Divide by the per-column largest deviation so that 8th powers cannot overflow.
    scale = np.abs(dev).max(axis=0)
    scale[scale == 0] = 1.0
    dev /= scale

    mu = [None, None]  # mu[n]: population central moment n of dev; mu[1] = 0
    power = dev.copy()
    for _ in range(2, order + 1):
        power *= dev
        mu.append(np.add.reduceat(power, starts, axis=0) / counts)

    out = np.empty((n_structures, order, X.shape[1]))
    out[:, 0] = mean
    kappa = [None, None]
    for n in range(2, order + 1):
        # Moment-cumulant recursion; the m = 1 and m = n - 1 terms vanish since κ1 = μ1 = 0.
        k = mu[n].copy()
        for m in range(2, n - 1):
            k -= comb(n - 1, m - 1) * kappa[m] * mu[n - m]
        kappa.append(k)
        out[:, n - 1] = np.sign(k) * np.abs(k) ** (1.0 / n) * scale if scaled else k * scale**n
    return out


class _Index(NamedTuple):
    """Validated atom -> structure index with the runs needed by ``np.add.reduceat``."""

    sort: np.ndarray | None  # permutation making the index sorted, None if it already is
    starts: np.ndarray  # (n_structures,) first row of each structure after sorting
    counts: np.ndarray  # (n_structures,) atoms per structure


def _check_index(structure_index, n_atoms, n_structures, name) -> _Index:
    index = np.asarray(structure_index)
    if index.ndim != 1 or index.shape[0] != n_atoms:
        raise ValueError(
            f"structure_index has shape {index.shape} but feature set {name!r} has {n_atoms} atoms; "
            "give one structure index per atom (row)"
        )
    if not (np.issubdtype(index.dtype, np.integer) and index.dtype != np.bool_):
        raise ValueError(f"structure_index must hold integers, got dtype {index.dtype}")
    if n_structures is None:
        n_structures = int(index.max()) + 1
    elif not isinstance(n_structures, Integral) or n_structures < 1:
        raise ValueError(f"n_structures must be a positive integer, got {n_structures!r}")
    if index.min() < 0 or index.max() >= n_structures:
        raise ValueError(
            f"structure_index values must lie in 0 … {n_structures - 1}, got {index.min()} … {index.max()}"
        )
    counts = np.bincount(index, minlength=n_structures)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"{empty.size} structures have no atoms in feature set {name!r} (first: {empty[:5].tolist()}); "
            "cumulants need at least one atom per structure: drop empty structures"
        )
    sort = None if np.all(index[1:] >= index[:-1]) else np.argsort(index, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return _Index(sort, starts, counts)


def _check_order(order) -> None:
    if isinstance(order, bool) or not isinstance(order, Integral) or not 1 <= order <= MAX_ORDER:
        raise ValueError(f"cumulant order must be an integer in 1 … {MAX_ORDER}, got {order!r}")
