"""Featurising on a ``dask.distributed`` cluster straight into a chunked zarr store, resumably.

The atoms of all frames are cut into chunks of ``chunk_atoms`` rows, the zarr chunks of
the output. One task computes one chunk: it featurises every frame with an atom in the
chunk (a frame that straddles a chunk boundary is computed by both neighbours, which keep
their own rows) and writes the chunk's rows of every feature set into the store itself
(region writes to distinct zarr chunks, so workers never touch the same file), then marks
the chunk done. Each worker builds a model once and keeps it for all its tasks (a worker
plugin holds them).

The store is built at ``.<name>.partial`` beside the output and renamed into place when
every chunk is done. An interrupted run (Ctrl-C, a killed process, a lost worker) leaves
the partial store; the same command finds it and computes only the chunks not yet marked
done. Workers need the package (and the model weights its featurisers load, which ship in
the model packages' wheels) and a file system shared with the client for the store.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from distributed import WorkerPlugin

__all__ = ["chunk_frames", "featurize_to_zarr", "partial_path"]

_PLUGIN = "latentatlas-featurizers"
_DONE = "chunk_done"


def partial_path(path: str | Path) -> Path:
    """Where the store for ``path`` is built until it is complete: ``.<name>.partial`` beside it."""
    path = Path(path)
    return path.parent / f".{path.name}.partial"


def chunk_frames(n_atoms: Sequence[int], chunk_atoms: int) -> list[tuple[slice, slice]]:
    """For each chunk of ``chunk_atoms`` atoms: the frames it touches and its rows among their atoms.

    Parameters
    ----------
    n_atoms : sequence of int
        Atoms per frame.
    chunk_atoms : int

    Returns
    -------
    list of (frames, rows)
        ``frames`` slices the frame list; ``rows`` slices the concatenated atoms of those frames.
    """
    if chunk_atoms < 1:
        raise ValueError(f"chunk_atoms must be a positive integer, got {chunk_atoms}")
    ends = np.cumsum(n_atoms)
    starts = ends - np.asarray(n_atoms)
    out = []
    for a in range(0, int(ends[-1]), chunk_atoms):
        b = min(a + chunk_atoms, int(ends[-1]))
        first = int(np.searchsorted(ends, a, side="right"))
        last = int(np.searchsorted(ends, b - 1, side="right"))
        out.append((slice(first, last + 1), slice(a - int(starts[first]), b - int(starts[first]))))
    return out


class FeaturizerCache(WorkerPlugin):
    """Worker plugin: the featurisers are built once per worker, on first use, and kept.

    Parameters
    ----------
    models : sequence of str
        Registry names or model files, as given to :func:`latentatlas.features.get_featurizers`
        (a model file must be readable at the same path on every worker).
    extensions_dir : path, optional
        TorchScript extensions of the model files.
    threads : int, optional
        torch CPU threads per worker.
    """

    name = _PLUGIN

    def __init__(self, models, extensions_dir=None, threads: int | None = None):
        self.models, self.extensions_dir, self.threads = list(models), extensions_dir, threads
        self.featurizers = None

    def setup(self, worker):
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)

    def get(self, name):
        """The featuriser called ``name`` (its ``.name``, as on the client)."""
        from . import get_featurizers

        if self.featurizers is None:
            self.featurizers = {f.name: f for f in get_featurizers(self.models, extensions_dir=self.extensions_dir)}
        return self.featurizers[name]


def _compute_chunk(frames, rows, layers, batch_size):
    """``{variable: (values of the chunk's rows, attrs)}`` for every (model, layer), on a worker."""
    from distributed import get_worker

    from ..dataset import feature_name

    cache = get_worker().plugins[_PLUGIN]
    out = {}
    for model, model_layers in layers.items():
        f = cache.get(model)
        values, _ = f._run(list(frames), model_layers, batch_size=batch_size, progress=False)
        for layer in model_layers:
            attrs = {"model": model, "layer": layer, "model_version": f.model_version, "backend": f.backend,
                     "description": f.layer_descriptions[layer], **({"invariant": 1} if f.rotation_invariant else {})}
            out[feature_name(model, layer)] = (values[layer][rows], attrs)
    return out


def _write_chunk(store, index, chunk_atoms, values):
    """Write one chunk's rows of every feature set, then mark the chunk done (in that order)."""
    import zarr

    group = zarr.open_group(str(store), mode="r+")
    start = index * chunk_atoms
    for name, (rows, _) in values.items():
        group[name][start : start + len(rows)] = rows
    group[_DONE][index] = 1


def _featurize_and_write(store, index, chunk_atoms, frames, rows, layers, batch_size):
    _write_chunk(store, index, chunk_atoms, _compute_chunk(frames, rows, layers, batch_size))
    return index


def _template(features, first, chunk_atoms, n_chunks, layers):
    """The store's layout: coordinates, one lazily-zero variable per feature set, the done marks."""
    import dask.array as da

    from ..dataset import feature_dim

    ds = features.copy()
    n = ds.sizes["atom"]
    for name, (rows, attrs) in first.items():
        attrs = {**attrs, "fingerprint": features.attrs["fingerprint"]}  # every feature set carries its frames'
        ds[name] = (("atom", feature_dim(name)), da.zeros((n, rows.shape[1]), chunks=(chunk_atoms, -1), dtype=rows.dtype), attrs)
    ds[_DONE] = (("chunk",), da.zeros(n_chunks, chunks=1, dtype=np.int8))
    ds.attrs.update(chunk_atoms=int(chunk_atoms), feature_sets=list(first))
    return ds


def _resume(store, features, chunk_atoms, names):
    """Indices of the chunks a previous run left done, after checking that its store matches.

    None when the store's layout is unreadable (the run was stopped while creating it).
    """
    import xarray as xr

    try:
        ds = xr.open_zarr(store)
    except Exception:  # killed while the layout itself was being written: nothing to keep
        return None
    found = (ds.attrs.get("fingerprint"), ds.attrs.get("chunk_atoms"), list(ds.attrs.get("feature_sets", [])))
    wanted = (features.attrs["fingerprint"], chunk_atoms, names)
    if found != wanted:
        raise ValueError(
            f"{store} is an interrupted run for other frames, chunk size or feature sets "
            f"(fingerprint, chunk_atoms, sets: {found} vs {wanted}); delete it to start afresh"
        )
    return np.flatnonzero(ds[_DONE].values == 1)


def featurize_to_zarr(
    frames,
    layers: dict[str, list[str]],
    path: str | Path,
    client,
    *,
    models: Sequence[str] | None = None,
    extensions_dir: str | Path | None = None,
    chunk_atoms: int = 4096,
    batch_size: int | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> Path:
    """Per-atom features of ``frames`` computed on a dask cluster, written as a zarr store.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Checked here (see :func:`latentatlas.frames.check_frames`); every model must
        support their elements.
    layers : dict of featuriser name -> list of layer names
    path : str or Path
        Output store (``.zarr``); replaced atomically when complete.
    client : distributed.Client
    models : sequence of str, optional
        What builds the featurisers on the workers: registry names or model files, as given
        to :func:`latentatlas.features.get_featurizers`; default the keys of ``layers``.
    extensions_dir : path, optional
        TorchScript extensions of model files.
    chunk_atoms : int
        Atoms per zarr chunk and per task. A rerun resumes only with the same value.
    batch_size : int, optional
        Structures per forward pass within a task (default: each model's).
    threads : int, optional
        torch threads on each worker.
    progress : bool
        Progress bar over chunks.

    Returns
    -------
    Path
        ``path``. Load it with :func:`latentatlas.io.load` (lazily, chunked along atom).
    """
    import zarr
    from distributed import as_completed
    from tqdm.auto import tqdm

    from ..dataset import empty_features, feature_name
    from ..io import replace_store
    from ..frames import check_frames

    path = Path(path)
    frames = check_frames(frames)
    features = empty_features(frames)
    plan = chunk_frames([len(a) for a in frames], chunk_atoms)
    names = [feature_name(m, layer) for m, ls in layers.items() for layer in ls]
    store = partial_path(path)
    client.register_plugin(FeaturizerCache(list(layers) if models is None else models, extensions_dir, threads), name=_PLUGIN)
    done = _resume(store, features, chunk_atoms, names) if store.exists() else None
    resuming = done is not None
    if not resuming:
        shutil.rmtree(store, ignore_errors=True)
        done = np.array([], dtype=int)
    with tqdm(total=len(plan), initial=len(done), desc="featurize", unit="chunk", disable=not progress) as bar:
        if not resuming:
            # the first chunk fixes the widths and dtypes of the store's variables
            first = client.submit(_compute_chunk, frames[plan[0][0]], plan[0][1], layers, batch_size, pure=False).result()
            if list(first) != names:
                raise RuntimeError(f"chunk 0 gave feature sets {list(first)}, expected {names}")
            _template(features, first, chunk_atoms, len(plan), layers).to_zarr(
                store, mode="w", compute=False, consolidated=True, zarr_format=2
            )
            _write_chunk(store, 0, chunk_atoms, first)
            done = np.array([0])
            bar.update()
        todo = [k for k in range(len(plan)) if k not in set(done.tolist())]
        futures = [
            client.submit(_featurize_and_write, str(store), k, chunk_atoms, frames[plan[k][0]], plan[k][1], layers,
                          batch_size, pure=False)
            for k in todo
        ]
        try:
            for future in as_completed(futures):
                future.result()  # raises a worker's error here
                bar.update()
        except BaseException:
            client.cancel(futures)
            raise
    group = zarr.open_group(str(store), mode="r+")
    del group[_DONE]
    group.attrs.pop("chunk_atoms", None)
    zarr.consolidate_metadata(str(store))
    replace_store(store, path)
    return path
