"""Saving and loading results, atomically and checked against their frames.

The format follows the suffix: ``.zarr`` is a zarr store (a folder), chunked along ``atom``
and read back lazily as dask arrays, for features larger than memory; anything else is
netCDF, read fully into memory, the default for small results.

:func:`save` writes to a temporary file next to the target, flushes it to disk and renames
it into place, so the target is always the previous file or the complete new one. A
Ctrl-C during the write is held back until the netCDF library has closed the file (an
interrupt inside the library leaves its lock taken and the process hung), then the
temporary file is removed and the interrupt goes on. Temporary files of saves that were
killed outright are removed by the next save to the same path; each is named after its
writer's process and machine, so files of saves still running are left alone.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .dataset import FingerprintMismatchError
from .frames import fingerprint
from .schema import upgrade

__all__ = ["FingerprintMismatchError", "ZARR_CHUNK_ATOMS", "is_zarr", "save", "load"]

_ENGINE = "netcdf4"
#: Rows per zarr chunk along ``atom`` when the data are not already chunked (about 8 MB at 64 columns).
ZARR_CHUNK_ATOMS = 16384


def save(obj: xr.Dataset | xr.DataArray, path: str | Path) -> Path:
    """Write ``obj`` to ``path`` atomically: netCDF, or a zarr store if ``path`` ends in ``.zarr``.

    The data are written to a temporary file in the same folder, flushed to disk and
    renamed into place, so ``path`` is either the previous file or the complete new one,
    never half-written, even after a Ctrl-C, a crash or a power cut. A zarr store is
    written to a temporary folder and renamed in the same way (without the flushes);
    dask-backed data are written chunk by chunk without being loaded.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C during the write, after the temporary file is removed (``path`` unchanged).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = obj.to_dataset(promote_attrs=True) if isinstance(obj, xr.DataArray) else obj
    if is_zarr(path):
        return _save_zarr(ds, path)
    return _atomic_write(path, lambda tmp: _write_netcdf(ds, tmp))


def _write_netcdf(ds: xr.Dataset, tmp: str) -> None:
    ds.to_netcdf(tmp, engine=_ENGINE)


#: a day without a write: a temporary file of another machine (shared folder) counts as abandoned
_FOREIGN_STALE_S = 86_400


def _tmp_prefix(path: Path) -> str:
    """Start of the names of the temporary files of saves to ``path``."""
    return f".{path.name}."


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Run ``write(tmp)`` on a temporary file next to ``path``, then rename it into place.

    The temporary file is named ``.<name>.<pid>@<host>.<random>.tmp``, so a later save can
    tell whether its writer is still running (:func:`_remove_abandoned`).
    """
    _remove_abandoned(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}@{_host()}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are ordinary files
        with _interrupt_deferred() as interrupted:
            write(tmp)
            if not interrupted:
                os.fsync(fd)  # the data reach the disk before the name does
                os.replace(tmp, path)
                _fsync_dir(path.parent)
    finally:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)  # nothing left after a failure; no-op after the rename
    return path


@contextlib.contextmanager
def _interrupt_deferred():
    """Hold back SIGINT (Ctrl-C) for the duration; it is raised again on leaving.

    Yields a list that is non-empty once an interrupt arrived, so the caller can skip
    work that is no longer wanted. Only the main thread receives signals, so elsewhere
    (and where SIGINT is ignored) this does nothing.
    """
    caught: list = []
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) in (
        signal.SIG_IGN,
        None,
    ):
        yield caught
        return

    def hold(signum, frame):
        if not caught:
            print("interrupted: finishing the file being written, then stopping", file=sys.stderr, flush=True)
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)


def _remove_abandoned(path: Path) -> None:
    """Remove temporary files of earlier saves to ``path`` whose writer is gone.

    A file of this machine is abandoned when the process named in it no longer runs; one
    of another machine (a shared folder) when it has not been written to for a day. Files
    of this process are left alone (another of its threads may be writing them), and so
    is anything not named like our temporary files.
    """
    prefix = _tmp_prefix(path)
    named = re.compile(re.escape(prefix) + r"(\d+)@([A-Za-z0-9-]+)\.[A-Za-z0-9_]+\.tmp")
    host = _host()
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        match = named.fullmatch(tmp.name)
        if match is None or not tmp.is_file():
            continue
        pid, writer_host = int(match[1]), match[2]
        try:
            if writer_host == host:
                abandoned = pid != os.getpid() and not _running(pid)
            else:
                abandoned = time.time() - tmp.stat().st_mtime > _FOREIGN_STALE_S
            if abandoned:
                tmp.unlink()
        except OSError:
            continue  # gone already, or not ours to remove


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _fsync_dir(folder: Path) -> None:
    """Flush a rename to disk where the system allows opening folders."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | Path, frames: Sequence | None = None) -> xr.Dataset:
    """Read a Dataset written by :func:`save`, upgraded to the current schema: netCDF fully into
    memory, zarr lazily.

    A zarr store comes back with dask arrays chunked as stored (along ``atom``); nothing is
    read until the values are used.

    Results written by older versions are brought to today's layout by
    :func:`latentatlas.schema.upgrade` (e.g. feature sets of files written before each
    carried its own ``fingerprint`` get the Dataset's).

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
