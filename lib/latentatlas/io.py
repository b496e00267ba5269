"""Saving and loading results, atomically and checked against their frames.

The format follows the suffix: ``.zarr`` is a zarr store (a folder), chunked along ``atom``
and read back lazily as dask arrays, for features larger than memory; anything else is
netCDF, read fully into memory, the default for small results.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .frames import fingerprint

__all__ = ["FingerprintMismatchError", "ZARR_CHUNK_ATOMS", "is_zarr", "save", "load"]

_ENGINE = "netcdf4"
#: Rows per zarr chunk along ``atom`` when the data are not already chunked (about 8 MB at 64 columns).
ZARR_CHUNK_ATOMS = 16384


class FingerprintMismatchError(ValueError):
    """A result file was computed for other frames than the ones it is paired with."""


def save(obj: xr.Dataset | xr.DataArray, path: str | Path) -> Path:
    """Write ``obj`` to ``path`` atomically: netCDF, or a zarr store if ``path`` ends in ``.zarr``.

    The data are written to a temporary file (or folder) beside ``path`` and renamed into
    place, so ``path`` is either the previous result or the complete new one, never
    half-written. Dask-backed data are written chunk by chunk without being loaded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = obj.to_dataset(promote_attrs=True) if isinstance(obj, xr.DataArray) else obj
    if is_zarr(path):
        return _save_zarr(ds, path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are ordinary files
    try:
        ds.to_netcdf(tmp, engine=_ENGINE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path, frames: Sequence | None = None) -> xr.Dataset:
    """Read a Dataset written by :func:`save`: netCDF fully into memory, zarr lazily.

    A zarr store comes back with dask arrays chunked as stored (along ``atom``); nothing is
    read until the values are used.

    Parameters
    ----------
    path : str or Path
    frames : sequence of ase.Atoms, optional
        If given, the file's ``fingerprint`` attribute must match these frames.

    Raises
    ------
    FingerprintMismatchError
        The file was computed for other frames.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if is_zarr(path):
        ds = _load_zarr(path)
    else:
        try:
            with xr.open_dataset(path, engine=_ENGINE) as ds:
                ds = ds.load()
        except (OSError, ValueError) as err:
            raise ValueError(f"{path} is not a readable netCDF file ({err}); give a file written by latentatlas") from err
    if frames is not None:
        expected = fingerprint(frames)
        found = ds.attrs.get("fingerprint")
        if found != expected:
            raise FingerprintMismatchError(
                f"{path} was computed for frames with fingerprint {found}, but the given frames have "
                f"{expected}; recompute the features for these frames or load the matching structures"
            )
    return ds


# -- zarr -----------------------------------------------------------------------------------


def is_zarr(path: str | Path) -> bool:
    """Whether ``path`` names a zarr store (suffix ``.zarr``)."""
    return Path(path).suffix == ".zarr"


def zarr_encoding(ds: xr.Dataset, chunk_atoms: int | None = None) -> dict:
    """Chunking for every variable on ``atom`` of ``ds`` not already chunked by dask.

    ``chunk_atoms`` rows per chunk, default :data:`ZARR_CHUNK_ATOMS`.

    Variables chunked by dask keep their chunks (zarr needs them regular, which dask's
    ``rechunk`` or :func:`xarray.Dataset.chunk` give).
    """
    chunk_atoms = ZARR_CHUNK_ATOMS if chunk_atoms is None else chunk_atoms
    encoding = {}
    for name, var in ds.variables.items():
        if "atom" in var.dims and var.chunks is None:
            encoding[name] = {"chunks": tuple(chunk_atoms if d == "atom" else n for d, n in zip(var.dims, var.shape))}
    return encoding


def replace_store(tmp: Path, path: Path) -> None:
    """Move the finished store ``tmp`` to ``path``, replacing any previous store there.

    A folder cannot be renamed over a non-empty one, so the old store is first renamed
    aside and removed only after the new one is in place: at every moment ``path`` is
    either the old complete store or the new complete one (or, for the instant between
    the two renames, absent).
    """
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / path.name)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old)


def _save_zarr(ds: xr.Dataset, path: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)) / path.name
    try:
        # zarr format 2 with consolidated metadata: readable by every zarr implementation.
        ds.to_zarr(tmp, mode="w", encoding=zarr_encoding(ds), consolidated=True, zarr_format=2)
        replace_store(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    return path


def _load_zarr(path: Path) -> xr.Dataset:
    try:
        ds = xr.open_zarr(path, consolidated=None, zarr_format=None)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path} is not a readable zarr store ({err}); give a store written by latentatlas") from err
    # zarr keeps attributes as JSON: give arrays back as arrays, and labels the object dtype netCDF gives.
    ds.attrs = {k: np.asarray(v) if isinstance(v, list) else v for k, v in ds.attrs.items()}
    strings = {k: v.astype(object) for k, v in ds.coords.items() if v.dtype.kind == "T"}
    return ds.assign_coords({k: v.compute() for k, v in strings.items()}) if strings else ds
