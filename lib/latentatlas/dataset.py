"""The features data model: many feature sets over the same atoms in one ``xarray.Dataset``.

Layout (see DESIGN.md)::

    dims    atom (all atoms of all frames), structure (frames)
    coords  structure (frame index), subset, formula, n_atoms, cell (Å), pbc (on ``structure``)
            atom_structure (frame index of each atom), species (Z), positions (Å) (on ``atom``)
    vars    one per feature set, named ``"<model>:<layer>"``, dims ``("atom", "<name>:feature")``
            attrs: model, model_version, layer, backend, invariant, description,
                   fingerprint (of the frames this feature set was computed on)
    attrs   fingerprint (of the frames the coordinates describe), latentatlas_version,
            latentatlas_kind = "features", latentatlas_schema (see :mod:`latentatlas.schema`)

Every operation that pairs feature sets checks that their fingerprints agree
(:func:`check_fingerprints`); :func:`merge_features` combines Datasets the checked way.

Structure-level features (progressive cumulants) live in the same kind of Dataset with
``structure`` as the sample dimension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from . import __version__
from .frames import fingerprint, structure_metadata
from .schema import stamp

__all__ = [
    "FeatureError",
    "FingerprintMismatchError",
    "check_fingerprints",
    "merge_features",
    "empty_features",
    "frames_from_features",
    "add_feature_set",
    "feature_dim",
    "feature_name",
    "feature_arrays",
    "common_sample_dim",
    "sample_dim",
    "select_feature_sets",
    "validate_features",
]


class FeatureError(ValueError):
    """A feature set is unusable (NaN/inf, wrong length, empty, ...)."""


class FingerprintMismatchError(ValueError):
    """Results computed for other frames than the ones they are paired with."""


def feature_name(model: str, layer: str) -> str:
    """Name of the data variable holding ``layer`` of ``model``: ``"<model>:<layer>"``."""
    return f"{model}:{layer}"


def feature_dim(name: str) -> str:
    """Name of the feature dimension of feature set ``name``."""
    return f"{name}:feature"


def empty_features(frames: Sequence, subset: Sequence[str] | None = None) -> xr.Dataset:
    """A features Dataset for ``frames`` with coordinates but no feature set yet.

    Parameters
    ----------
    frames : sequence of ase.Atoms
    subset : sequence of str, optional
        One label per frame; defaults to ``atoms.info["subset"]`` or ``"all"``.
    """
    meta = structure_metadata(frames, subset)
    return stamp(xr.Dataset(
        coords={
            "structure": np.arange(len(frames)),
            "subset": ("structure", meta["subset"].astype(str)),
            "formula": ("structure", meta["formula"].astype(str)),
            "n_atoms": ("structure", meta["n_atoms"]),
            "atom_structure": ("atom", meta["atom_structure"]),
            "species": ("atom", meta["species"]),
            "positions": (("atom", "xyz"), _stack([a.positions for a in frames], (0, 3))),
            "cell": (("structure", "cell_vector", "xyz"), _stack([[a.cell.array] for a in frames], (0, 3, 3))),
            "pbc": (("structure", "xyz"), _stack([[a.pbc] for a in frames], (0, 3)).astype(bool)),
        },
        attrs={"fingerprint": fingerprint(frames), "latentatlas_version": __version__},
    ), "features")


def _stack(arrays, empty_shape):
    return np.concatenate(arrays).astype(float) if len(arrays) else np.zeros(empty_shape)


def frames_from_features(ds: xr.Dataset) -> list:
    """Rebuild the ``ase.Atoms`` a features Dataset was computed for.

    The rebuilt frames have the Dataset's fingerprint, so results stay checkable.
    """
    from ase import Atoms

    bounds = np.concatenate([[0], np.cumsum(ds["n_atoms"].values)])
    frames = []
    for i in range(ds.sizes["structure"]):
        sl = slice(bounds[i], bounds[i + 1])
        atoms = Atoms(
            numbers=ds["species"].values[sl],
            positions=ds["positions"].values[sl],
            cell=ds["cell"].values[i],
            pbc=ds["pbc"].values[i].astype(bool),
        )
        atoms.info["subset"] = str(ds["subset"].values[i])
        frames.append(atoms)
    return frames


def add_feature_set(
    ds: xr.Dataset,
    values: np.ndarray,
    *,
    model: str,
    layer: str,
    sample: str = "atom",
    **attrs,
) -> xr.Dataset:
    """Return ``ds`` with one more feature set ``"<model>:<layer>"``.

    Parameters
    ----------
    ds : xarray.Dataset
        A features Dataset (see :func:`empty_features`).
    values : ndarray of shape (n_samples, n_features)
        One row per atom (``sample="atom"``) or per structure (``sample="structure"``).
    model, layer : str
        Recorded in the variable's attrs and its name.
    **attrs
        Further metadata (``model_version``, ``backend``, ``invariant``, ...);
        values must be str, int or float so they survive netCDF. ``fingerprint``
        defaults to the Dataset's: the frames the rows were computed on.
    """
    name = feature_name(model, layer)
    values = np.asarray(values)
    if values.ndim != 2:
        raise FeatureError(f"feature set {name!r} must be 2-D (samples, features), got shape {values.shape}")
    n = ds.sizes.get(sample, 0)
    if values.shape[0] != n:
        raise FeatureError(
            f"feature set {name!r} has {values.shape[0]} rows but the dataset has {n} {sample}s; "
            "features must be computed for exactly these frames"
        )
    var = xr.DataArray(
        values,
        dims=(sample, feature_dim(name)),
        attrs={"model": model, "layer": layer, **_fingerprint_attr(ds), **attrs},
    )
    out = ds.copy()
    out[name] = var
    return out


def _fingerprint_attr(ds: xr.Dataset) -> dict:
    return {"fingerprint": ds.attrs["fingerprint"]} if "fingerprint" in ds.attrs else {}


def is_feature_set(ds: xr.Dataset, name: str) -> bool:
    """Whether data variable ``name`` of ``ds`` is a feature set: dims ``(sample, "<name>:feature")``."""
    da = ds[name]
    return da.ndim == 2 and da.dims[0] in ("atom", "structure") and da.dims[1] == feature_dim(name)


def feature_fingerprints(ds: xr.Dataset, names: Sequence[str] | None = None) -> dict[str, str | None]:
    """The fingerprint of the frames each feature set was computed on.

    A feature set without its own ``fingerprint`` attribute (files written before
    feature sets carried one) has the Dataset's.

    Returns
    -------
    dict of name -> str or None
        None where neither the feature set nor the Dataset has a fingerprint.
    """
    names = [n for n in ds.data_vars if is_feature_set(ds, n)] if names is None else list(names)
    return {n: ds[n].attrs.get("fingerprint", ds.attrs.get("fingerprint")) for n in names}


def check_fingerprints(ds: xr.Dataset, names: Sequence[str] | None = None) -> str | None:
    """Check that the feature sets ``names`` (default all) were computed on the frames of ``ds``.

    Every feature set's fingerprint must equal the Dataset's (whose coordinates describe
    the frames) and each other's: the same structures in another order are other frames.

    Returns
    -------
    str or None
        The common fingerprint; None if nothing carries one (nothing to check).

    Raises
    ------
    FingerprintMismatchError
        Naming which feature sets were computed for which frames, and the fix.
    """
    groups: dict[str, list[str]] = {}
    if "fingerprint" in ds.attrs:
        groups[ds.attrs["fingerprint"]] = ["the Dataset's coordinates"]
    for name, fp in feature_fingerprints(ds, names).items():
        if fp is not None:
            groups.setdefault(fp, []).append(repr(name))
    if len(groups) > 1:
        described = "; ".join(f"{', '.join(who)} for frames with fingerprint {fp}" for fp, who in groups.items())
        raise FingerprintMismatchError(
            f"these results were computed for different frames: {described} (the same structures in another "
            "order are other frames); recompute the features for one list of frames and combine them with "
            "latentatlas.dataset.merge_features, which checks this"
        )
    return next(iter(groups), None)


def with_feature_fingerprints(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the Dataset's fingerprint copied to every feature set lacking one (older files)."""
    if "fingerprint" not in ds.attrs:
        return ds
    for name, fp in feature_fingerprints(ds).items():
        if "fingerprint" not in ds[name].attrs:
            ds[name].attrs["fingerprint"] = fp
    return ds


def merge_features(*datasets: xr.Dataset) -> xr.Dataset:
    """Combine features Datasets computed on the same frames into one, checked.

    Use it instead of ``A.assign(B.data_vars)`` or ``xr.merge``, which accept feature
    sets of other frames (e.g. the same structures in another order) without a word.

    Parameters
    ----------
    *datasets : xarray.Dataset
        Features Datasets (:func:`empty_features` plus feature sets), each carrying the
        ``fingerprint`` of its frames.

    Returns
    -------
    xarray.Dataset
        Coordinates and attributes of the first Dataset, the feature sets of all of them.

    Raises
    ------
    FingerprintMismatchError
        Some feature sets were computed for other frames.
    ValueError
        No Dataset, one without a fingerprint, or the same feature-set name with other values.
    """
    if not datasets:
        raise ValueError("give at least one features Dataset to merge")
    found = {}
    for i, ds in enumerate(datasets):
        if not isinstance(ds, xr.Dataset):
            raise TypeError(f"argument #{i} is a {type(ds).__name__}, not a features xarray.Dataset")
        fp = check_fingerprints(ds)
        if fp is None:
            raise ValueError(
                f"features Dataset #{i} has no fingerprint, so its frames cannot be checked; "
                "build it with latentatlas.dataset.empty_features(frames) and add_feature_set"
            )
        found.setdefault(fp, []).append(f"#{i} ({', '.join(map(repr, feature_fingerprints(ds)))})")
    if len(found) > 1:
        described = "; ".join(f"{', '.join(who)} for frames with fingerprint {fp}" for fp, who in found.items())
        raise FingerprintMismatchError(
            f"these features Datasets were computed for different frames: {described} (the same structures in "
            "another order are other frames); recompute the features for one list of frames"
        )
    try:
        return xr.merge(datasets, compat="no_conflicts", join="exact", combine_attrs="override")
    except ValueError as err:
        raise ValueError(f"cannot merge these features Datasets: {err}; give each feature set once") from err


def sample_dim(da: xr.DataArray) -> str:
    """The sample dimension (``atom`` or ``structure``) of a feature set."""
    return da.dims[0]


def common_sample_dim(ds: xr.Dataset, names: Sequence[str] | None = None) -> str:
    """The sample dimension shared by the feature sets ``names`` (default all) of ``ds``.

    Raises
    ------
    FeatureError
        The feature sets mix atom- and structure-level samples.
    """
    names = list(ds.data_vars) if names is None else list(names)
    dims = {sample_dim(ds[name]) for name in names}
    if len(dims) != 1:
        raise FeatureError(
            f"feature sets mix sample dimensions {sorted(dims)}; compare atom- and structure-level features separately"
        )
    return dims.pop()


def feature_arrays(features, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Feature sets as plain 2-D float64 arrays, validated.

    Parameters
    ----------
    features : xarray.Dataset or mapping of name -> array-like (n_samples, n_features)
    names : sequence of str, optional
        Subset and order of feature sets; default all.

    Returns
    -------
    dict of name -> ndarray (n_samples, n_features)
    """
    names, getter = select_feature_sets(features, names)
    arrays = {n: np.asarray(getter(n), dtype=np.float64) for n in names}
    validate_features(arrays)
    return arrays


def select_feature_sets(features, names: Sequence[str] | None = None):
    """Names of the requested feature sets, checked, and a getter of their raw data.

    Parameters
    ----------
    features : xarray.Dataset or mapping of name -> array-like
    names : sequence of str, optional
        Subset and order; default all.

    Returns
    -------
    names : list of str
    getter : callable name -> array
        The data as stored: numpy, or dask for a lazily loaded Dataset (nothing is read).
    """
    if isinstance(features, xr.Dataset):
        available = list(features.data_vars)
        getter = lambda k: features[k].data  # noqa: E731
        check_fingerprints(features, [n for n in (available if names is None else names) if n in available])
    elif isinstance(features, Mapping):
        available = list(features)
        getter = lambda k: features[k]  # noqa: E731
    else:
        raise TypeError(
            f"features must be an xarray.Dataset or a dict of name -> array, got {type(features).__name__}"
        )
    names = available if names is None else list(names)
    missing = [n for n in names if n not in available]
    if missing:
        raise KeyError(f"feature sets {missing} not found; available: {available}")
    if not names:
        raise FeatureError("no feature set given; add at least one feature set")
    return names, getter


def validate_features(arrays: Mapping[str, np.ndarray]) -> int:
    """Check that every feature set is a finite, non-empty 2-D array with the same row count.

    Returns
    -------
    int
        The common number of samples.

    Raises
    ------
    FeatureError
        Naming the offending feature set and what to do.
    """
    n_samples = None
    for name, X in arrays.items():
        if X.ndim != 2:
            raise FeatureError(f"feature set {name!r} must be 2-D (samples, features), got shape {X.shape}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise FeatureError(f"feature set {name!r} is empty (shape {X.shape}); remove it or recompute it")
        bad = ~np.isfinite(X)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise FeatureError(
                f"feature set {name!r} has {int(bad.sum())} NaN/inf values in {rows.size} samples "
                f"(first: {rows[:5].tolist()}); recompute or drop those samples"
            )
        if n_samples is None:
            n_samples = X.shape[0]
        elif X.shape[0] != n_samples:
            first = next(iter(arrays))
            raise FeatureError(
                f"feature set {name!r} has {X.shape[0]} samples but {first!r} has {n_samples}; "
                "all feature sets must describe the same samples"
            )
    return n_samples
