"""The interface every featuriser shares: validation, batching, progress, cache, Dataset.

A backend subclasses :class:`Featurizer` and implements :meth:`Featurizer._forward`, one
batched pass of the real model that returns the requested layers (and the energy that
the same pass computed). Everything else -- checking the frames, skipping unsupported
elements, the on-disk cache, assembling the xarray Dataset -- lives here once.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..frames import check_frames
from .cache import read_cached, write_cached

__all__ = [
    "Featurizer",
    "UnsupportedElementError",
    "file_digest",
    "package_dir",
]

class UnsupportedElementError(ValueError):
    """Some structures contain elements the model was not trained on."""


class Featurizer:
    """Per-atom features of one model (or descriptor), every layer by name.

    Attributes
    ----------
    name : str
        Registry name, also the ``model`` attr and prefix of the Dataset variables.
    model_version : str
        Changes whenever the numbers would (weights, hyper-parameters); part of the cache key.
    layers : list of str
        Layer names in forward order; ``"last"`` is the input of the energy head.
    backend : str
        Python package that computes the features.
    supported_species : frozenset of int or None
        Atomic numbers the model knows; None means any element.
    layer_descriptions : dict of str -> str
        What each layer is, stored in the variable's ``description`` attr.
    batch_size : int
        Structures per forward pass unless the caller says otherwise.
    rotation_invariant : bool
        Whether every layer is rotation invariant by construction; stored as the
        ``invariant`` attr (1) only then. A model file may have learnt invariance only
        approximately (PET), so the metatomic backend does not claim it.
    """

    name: str
    model_version: str
    layers: list[str]
    backend: str
    supported_species: frozenset[int] | None = None
    layer_descriptions: dict[str, str]
    batch_size: int = 16
    rotation_invariant: bool = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model_version={self.model_version!r}, layers={self.layers})"

    # -- public API -----------------------------------------------------------------
    def featurize(
        self,
        frames,
        layers: Sequence[str] | str | None = None,
        *,
        batch_size: int | None = None,
        progress: bool = True,
        cache: bool = True,
        skip_unsupported: bool = False,
    ) -> xr.Dataset:
        """Per-atom features of ``frames`` for the given layers.

        Parameters
        ----------
        frames : ase.Atoms or sequence of ase.Atoms
        layers : str or sequence of str, optional
            Names from :attr:`layers`; default all.
        batch_size : int, optional
            Structures per forward pass; default the backend's :attr:`batch_size`.
        progress : bool
            Show a tqdm progress bar (atoms done / total).
        cache : bool
            Read and write the on-disk cache (see :mod:`latentatlas.features.cache`).
        skip_unsupported : bool
            Drop structures with elements the model does not know (with a warning that
            gives their count) instead of raising :class:`UnsupportedElementError`.
            The returned Dataset then describes only the kept frames; its attrs
            ``n_skipped`` and ``skipped_frames`` say which input frames were dropped.

        Returns
        -------
        xarray.Dataset
            :func:`latentatlas.dataset.empty_features` of the kept frames plus one
            variable ``"<name>:<layer>"`` of shape ``(n_atoms, n_features)`` per layer.
        """
        frames, skipped = self._prepare(frames, skip_unsupported)
        layers = self._check_layers(layers)
        from ..frames import fingerprint

        fp = fingerprint(frames)
        values = {}
        if cache:
            for layer in layers:
                hit = read_cached(fp, self.name, self.model_version, layer)
                if hit is not None:
                    values[layer] = hit
        missing = [layer for layer in layers if layer not in values]
        if missing:
            computed, _ = self._run(frames, missing, batch_size=batch_size, progress=progress)
            if cache:
                for layer in missing:
                    write_cached(computed[layer], fp, self.name, self.model_version, layer)
            values.update(computed)
        return self._dataset(frames, {layer: values[layer] for layer in layers}, skipped)

    def featurize_with_energy(
        self,
        frames,
        layers: Sequence[str] | str | None = None,
        *,
        batch_size: int | None = None,
        progress: bool = True,
        skip_unsupported: bool = False,
    ) -> tuple[xr.Dataset, np.ndarray]:
        """Like :meth:`featurize` (never cached) and also the energy of the same pass.

        Returns
        -------
        features : xarray.Dataset
        energy : ndarray of shape (n_kept_structures,)
            Total energy of each structure in eV, computed by the very forward pass whose
            activations are the features.
        """
        frames, skipped = self._prepare(frames, skip_unsupported)
        layers = self._check_layers(layers)
        values, energy = self._run(frames, layers, batch_size=batch_size, progress=progress)
        if energy is None:
            raise TypeError(f"{self.name} is a descriptor, not a potential: it predicts no energy")
        return self._dataset(frames, values, skipped), energy

    # -- backend hook ---------------------------------------------------------------
    def _forward(self, frames: list, layers: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """One batched pass: ``{layer: (n_batch_atoms, n_features)}`` and energies (eV) or None."""
        raise NotImplementedError

    # -- internals ------------------------------------------------------------------
    def _prepare(self, frames, skip_unsupported: bool) -> tuple[list, np.ndarray]:
        frames = check_frames(frames)
        bad = self.unsupported(frames)
        if bad and not skip_unsupported:
            shown = "; ".join(f"#{i} {frames[i].get_chemical_formula()}: {', '.join(els)}" for i, els in list(bad.items())[:10])
            more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise UnsupportedElementError(
                f"{self.name} does not support the elements of {len(bad)} of {len(frames)} structures "
                f"({shown}{more}); pass skip_unsupported=True (CLI: --skip-unsupported) to drop them, "
                f"or choose a model that covers these elements"
            )
        skipped = np.array(sorted(bad), dtype=np.int64)
        if len(skipped):
            if len(skipped) == len(frames):
                raise UnsupportedElementError(
                    f"{self.name} supports the elements of none of the {len(frames)} structures; "
                    "choose a model that covers these elements"
                )
            warnings.warn(
                f"{self.name}: skipped {len(skipped)} of {len(frames)} structures with unsupported elements",
                stacklevel=3,
            )
            frames = [a for i, a in enumerate(frames) if i not in bad]
        return frames, skipped

    def unsupported(self, frames) -> dict[int, list[str]]:
        """``{frame index: [element symbols the model does not know]}`` for the frames that have any."""
        if self.supported_species is None:
            return {}
        from ase.data import chemical_symbols

        bad = {}
        for i, atoms in enumerate(frames):
            unknown = sorted(set(atoms.numbers.tolist()) - self.supported_species)
            if unknown:
                bad[i] = [chemical_symbols[z] for z in unknown]
        return bad

    def _check_layers(self, layers) -> list[str]:
        if layers is None:
            return list(self.layers)
        layers = [layers] if isinstance(layers, str) else list(layers)
        unknown = [layer for layer in layers if layer not in self.layers]
        if unknown:
            raise KeyError(f"{self.name} has no layer {unknown}; available layers: {self.layers}")
        if not layers:
            raise ValueError(f"no layer requested; choose from {self.layers}")
        return list(dict.fromkeys(layers))

    def _run(self, frames: list, layers: list[str], *, batch_size: int | None, progress: bool):
        from tqdm.auto import tqdm

        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        parts = {layer: [] for layer in layers}
        energies = []
        with tqdm(total=sum(len(a) for a in frames), desc=self.name, unit="atom", disable=not progress) as bar:
            for start in range(0, len(frames), batch_size):
                batch = frames[start : start + batch_size]
                values, energy = self._forward(batch, layers)
                for layer in layers:
                    parts[layer].append(values[layer])
                energies.append(energy)
                bar.update(sum(len(a) for a in batch))
        values = {layer: np.concatenate(parts[layer]) for layer in layers}
        energy = None if energies[0] is None else np.concatenate(energies)
        return values, energy

    def _dataset(self, frames: list, values: dict[str, np.ndarray], skipped: np.ndarray) -> xr.Dataset:
        from ..dataset import add_feature_set, empty_features

        ds = empty_features(frames)
        for layer, X in values.items():
            ds = add_feature_set(
                ds,
                X,
                model=self.name,
                layer=layer,
                model_version=self.model_version,
                backend=self.backend,
                description=self.layer_descriptions[layer],
                **({"invariant": 1} if self.rotation_invariant else {}),
            )
        if len(skipped):
            ds.attrs["n_skipped"] = int(len(skipped))
            ds.attrs["skipped_frames"] = skipped
        return ds


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (imports are slow)."""
    from importlib.util import find_spec

    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the {package!r} package is not installed; install it with: pip install 'latentatlas[models]'")
    return Path(spec.submodule_search_locations[0])


def file_digest(path: Path) -> str:
    """First 12 hex digits of the sha256 of a file: ties cache entries to exact weights."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
