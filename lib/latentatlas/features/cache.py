"""On-disk cache of computed feature sets, one netCDF file per (frames, model, version, layer).

The cache directory is ``$LATENTATLAS_CACHE`` or ``~/.cache/latentatlas``. Entries are
written with :func:`latentatlas.io.save` (temporary file + rename), so an interrupted run
leaves either no entry or a complete one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["cache_dir", "cache_path", "read_cached", "write_cached"]


def cache_dir() -> Path:
    """The cache folder: ``$LATENTATLAS_CACHE`` if set, else ``~/.cache/latentatlas``."""
    return Path(os.environ.get("LATENTATLAS_CACHE") or Path.home() / ".cache" / "latentatlas")


def cache_path(fingerprint: str, model: str, version: str, layer: str) -> Path:
    """Path of the cache entry for one feature set.

    ``version`` must change whenever the numbers would (weights, hyper-parameters).
    """
    key = "\0".join([fingerprint, model, version, layer])
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    safe_model = "".join(c if c.isalnum() or c in "-._" else "_" for c in model)
    return cache_dir() / safe_model / f"{digest}.nc"


def read_cached(fingerprint: str, model: str, version: str, layer: str) -> np.ndarray | None:
    """The cached ``(n_atoms, n_features)`` array, or None when there is no valid entry.

    An entry that cannot be read or whose key attributes do not match is ignored (and
    will be overwritten), never trusted.
    """
    from ..io import load

    path = cache_path(fingerprint, model, version, layer)
    if not path.exists():
        return None
    try:
        ds = load(path)
    except ValueError:
        return None
    expected = {"fingerprint": fingerprint, "model": model, "model_version": version, "layer": layer}
    if any(ds.attrs.get(k) != v for k, v in expected.items()) or "features" not in ds:
        return None
    return ds["features"].values


def write_cached(values: np.ndarray, fingerprint: str, model: str, version: str, layer: str) -> Path:
    """Store one feature set atomically; returns the entry's path."""
    from ..io import save

    ds = xr.Dataset(
        {"features": (("atom", "feature"), np.asarray(values))},
        attrs={"fingerprint": fingerprint, "model": model, "model_version": version, "layer": layer},
    )
    return save(ds, cache_path(fingerprint, model, version, layer))
