"""Saving and loading results as netCDF, atomically and checked against their frames."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from .frames import fingerprint
from .schema import upgrade

__all__ = ["FingerprintMismatchError", "save", "load"]

_ENGINE = "netcdf4"


class FingerprintMismatchError(ValueError):
    """A result file was computed for other frames than the ones it is paired with."""


def save(obj: xr.Dataset | xr.DataArray, path: str | Path) -> Path:
    """Write ``obj`` to netCDF at ``path`` atomically.

    The data are written to a temporary file in the same folder and renamed into place,
    so ``path`` is either the previous file or the complete new one, never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = obj.to_dataset(promote_attrs=True) if isinstance(obj, xr.DataArray) else obj
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
    """Read a Dataset written by :func:`save` fully into memory, upgraded to the current schema.

    Results written by older versions are brought to today's layout by
    :func:`latentatlas.schema.upgrade`.

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
    try:
        with xr.open_dataset(path, engine=_ENGINE) as ds:
            ds = ds.load()
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable netCDF file ({err}); give a file written by latentatlas") from err
    ds = upgrade(ds)  # files of older versions open in today's layout
    if frames is not None:
        expected = fingerprint(frames)
        found = ds.attrs.get("fingerprint")
        if found != expected:
            raise FingerprintMismatchError(
                f"{path} was computed for frames with fingerprint {found}, but the given frames have "
                f"{expected}; recompute the features for these frames or load the matching structures"
            )
    return ds
