"""Saving and loading results as netCDF, atomically and checked against their frames.

:func:`save` writes to a temporary file next to the target, flushes it to disk and renames
it into place, so the target is always the previous file or the complete new one. A
Ctrl-C during the write is held back until the netCDF library has closed the file (an
interrupt inside the library leaves its lock taken and the process hung), then the
temporary file is removed and the interrupt goes on. Temporary files of saves that were
killed outright are removed by the next save to the same path.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import xarray as xr

from .dataset import FingerprintMismatchError, with_feature_fingerprints
from .frames import fingerprint

__all__ = ["FingerprintMismatchError", "save", "load"]

_ENGINE = "netcdf4"


def save(obj: xr.Dataset | xr.DataArray, path: str | Path) -> Path:
    """Write ``obj`` to netCDF at ``path`` atomically.

    The data are written to a temporary file in the same folder, flushed to disk and
    renamed into place, so ``path`` is either the previous file or the complete new one,
    never half-written, even after a Ctrl-C, a crash or a power cut.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C during the write, after the temporary file is removed (``path`` unchanged).
    """
    path = Path(path)
    ds = obj.to_dataset(promote_attrs=True) if isinstance(obj, xr.DataArray) else obj
    return _atomic_write(path, lambda tmp: _write_netcdf(ds, tmp))


def _write_netcdf(ds: xr.Dataset, tmp: str) -> None:
    ds.to_netcdf(tmp, engine=_ENGINE)


def _tmp_prefix(path: Path) -> str:
    """Start of the names of the temporary files of saves to ``path``; the writer's pid follows."""
    return f".{path.name}."


def _atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Run ``write(tmp)`` on a temporary file next to ``path``, then rename it into place.

    While it writes, the temporary file holds a lock that tells later saves it is not
    abandoned (:func:`_remove_abandoned`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    fd, tmp = _locked_tmp(path)
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


def _locked_tmp(path: Path) -> tuple[int, str]:
    """A new temporary file for a save to ``path``, locked by this process: (descriptor, name)."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}-", suffix=".tmp", dir=path.parent)
        if os.name != "posix":
            return fd, tmp
        import fcntl

        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_nlink:
            return fd, tmp
        os.close(fd)  # another save removed it as abandoned before the lock was taken: take a new one


def _remove_abandoned(path: Path) -> None:
    """Remove temporary files of earlier saves to ``path`` whose writer is gone.

    A writer holds a lock on its temporary file until it finishes; the lock goes with
    the process, so a file nobody holds belongs to a save that was killed. Files of this
    process are left alone (its other threads may be writing them).
    """
    if os.name != "posix":
        return
    import fcntl

    prefix = _tmp_prefix(path)
    own = f"{prefix}{os.getpid()}-"
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        if tmp.name.startswith(own) or not tmp.is_file():
            continue
        try:
            fd = os.open(tmp, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live writer holds it
        else:
            tmp.unlink(missing_ok=True)
        finally:
            os.close(fd)


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
    """Read a Dataset written by :func:`save` fully into memory.

    Feature sets of files written before each carried its own ``fingerprint`` get the
    Dataset's.

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
    ds = with_feature_fingerprints(ds)
    if frames is not None:
        expected = fingerprint(frames)
        found = ds.attrs.get("fingerprint")
        if found != expected:
            raise FingerprintMismatchError(
                f"{path} was computed for frames with fingerprint {found}, but the given frames have "
                f"{expected}; recompute the features for these frames or load the matching structures"
            )
    return ds
