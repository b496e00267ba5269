"""Per-atom features of any ``torch.nn.Module`` potential, from forward hooks on named submodules.

The built-in backends (CHGNet, SevenNet, ANI) know where their models keep per-atom
features. For a model of your own, say which submodules to read and how frames become the
model's inputs; :class:`ModuleFeaturizer` does the rest as every backend does (frame checks,
batching, progress, cache, a features Dataset with the frames' fingerprint).

Example
-------
>>> from latentatlas.features.module import module_features
>>> def inputs(frames):  # a batch of ase.Atoms -> the model's positional arguments
...     numbers = torch.as_tensor(np.concatenate([a.numbers for a in frames]))
...     positions = torch.as_tensor(np.concatenate([a.positions for a in frames]), dtype=torch.float32)
...     owner = torch.repeat_interleave(torch.arange(len(frames)), torch.as_tensor([len(a) for a in frames]))
...     return numbers, positions, owner, len(frames)
>>> ds = module_features(model, frames, {"embedding": "embed", "last": "readout"}, inputs=inputs,
...                      pre={"last"}, name="my-potential")  # doctest: +SKIP

Each hooked submodule must produce (or, for ``pre`` layers, receive) one row per atom of the
batch, in the order of the frames and of their atoms, exactly once per forward pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np

from ..dataset import FeatureError
from .base import Featurizer

__all__ = ["ModuleFeaturizer", "module_features", "weights_digest"]


def weights_digest(model) -> str:
    """Short hash of a module's architecture (its repr) and every parameter and buffer.

    It changes whenever the features could, so it keys the feature cache.
    """
    h = hashlib.sha256(repr(model).encode())
    for key, tensor in model.state_dict().items():
        h.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


class ModuleFeaturizer(Featurizer):
    """Featuriser over a ``torch.nn.Module`` potential: hooked submodules become feature sets.

    Parameters
    ----------
    model : torch.nn.Module
        Run in eval mode under ``torch.inference_mode`` (so a model that needs autograd for
        forces must return its energy without them).
    layers : mapping of layer name -> submodule or dotted name, or sequence of dotted names
        What each feature set is read from; a sequence names each layer by its dotted name.
    inputs : callable (list of ase.Atoms) -> tuple
        The model's positional arguments for a batch of frames (a single value is passed as is).
    energy : callable (model output) -> array-like (n_frames,), optional
        Total energies in eV from the model's output, for :meth:`featurize_with_energy`;
        None for a model that predicts no energy.
    pre : collection of layer names
        Layers read from the *input* of their submodule (e.g. the input of the energy head).
    name : str
        The ``model`` attr and prefix of the Dataset variables (``"<name>:<layer>"``).
    model_version : str, optional
        Default: the class name, torch version and :func:`weights_digest`.
    supported_species : collection of int, optional
        Atomic numbers the model knows; default any.
    batch_size : int
        Structures per forward pass.
    """

    backend = "torch"

    def __init__(
        self,
        model,
        layers: Mapping[str, object] | Sequence[str],
        *,
        inputs: Callable[[list], object],
        energy: Callable[[object], object] | None = None,
        pre: Collection[str] = (),
        name: str = "torch-model",
        model_version: str | None = None,
        supported_species: Collection[int] | None = None,
        batch_size: int = 16,
    ):
        import torch

        from ..hooks import resolve

        targets = dict(layers) if isinstance(layers, Mapping) else {str(n): str(n) for n in layers}
        if not targets:
            raise ValueError("no layer given; map layer names to submodules, e.g. {'last': 'readout'}")
        unknown = sorted(set(pre) - set(targets))
        if unknown:
            raise KeyError(f"pre layers {unknown} are not among the layers {list(targets)}")
        if not callable(inputs):
            raise TypeError(f"inputs must be a function of a list of frames, got {type(inputs).__name__}")
        self.model = model
        self._targets = {layer: resolve(model, t) for layer, t in targets.items()}
        self._pre = frozenset(pre)
        self._inputs, self._energy = inputs, energy
        self.name = name
        self.layers = list(targets)
        self.batch_size = batch_size
        self.supported_species = None if supported_species is None else frozenset(int(z) for z in supported_species)
        self.model_version = model_version or (
            f"{type(model).__name__} (torch {torch.__version__}, weights {weights_digest(model)})"
        )
        self.layer_descriptions = {
            layer: f"{'input' if layer in self._pre else 'output'} of submodule "
            f"{t if isinstance(t, str) else type(t).__name__} of {type(model).__name__}"
            for layer, t in targets.items()
        }

    def _forward(self, frames, layers):
        import torch

        from ..hooks import capture, evaluating

        args = self._inputs(frames)
        args = args if isinstance(args, tuple) else (args,)
        targets = {layer: self._targets[layer] for layer in layers}
        with (
            evaluating(self.model),
            capture(self.model, targets, pre=self._pre & set(layers)) as seen,
            torch.inference_mode(),
        ):
            out = self.model(*args)
        n_atoms = sum(len(a) for a in frames)
        values = {layer: _per_atom(layer, seen[layer], n_atoms) for layer in layers}
        if self._energy is None:
            return values, None
        energy = np.asarray(self._energy(out), dtype=np.float64).reshape(-1)
        if energy.shape != (len(frames),):
            raise ValueError(f"energy(output) gave {energy.size} values for a batch of {len(frames)} frames; "
                             "return one total energy per frame")
        return values, energy


def _per_atom(layer: str, calls: list, n_atoms: int) -> np.ndarray:
    """The one (n_atoms, n_features) tensor a layer saw in a forward pass, as numpy."""
    import torch

    if len(calls) != 1:
        raise FeatureError(f"layer {layer!r} ran {len(calls)} times in one forward pass; hook a submodule that "
                           "runs exactly once per pass (or read its parent)")
    x = calls[0]
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] != n_atoms:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise FeatureError(f"layer {layer!r} gave {shape}, not one row per atom ({n_atoms}, n_features); hook a "
                           "submodule whose output (or, with pre, input) is a per-atom tensor")
    return x.detach().cpu().numpy().copy()


def module_features(model, frames, layers, *, inputs, energy=None, pre=(), name="torch-model", **featurize_kwargs):
    """Per-atom features of a ``torch.nn.Module`` potential as a features Dataset.

    A shortcut for ``ModuleFeaturizer(model, layers, inputs=inputs, ...).featurize(frames, ...)``;
    see :class:`ModuleFeaturizer` for the parameters and the module docstring for an example.

    Returns
    -------
    xarray.Dataset
        One variable ``"<name>:<layer>"`` (n_atoms, n_features) per layer, the frames'
        coordinates and ``fingerprint``.
    """
    featurizer = ModuleFeaturizer(model, layers, inputs=inputs, energy=energy, pre=pre, name=name)
    return featurizer.featurize(frames, **featurize_kwargs)
