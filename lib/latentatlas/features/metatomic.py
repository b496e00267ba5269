"""Per-atom features of any exported metatomic model file (PET, MACE, SOAP-BPNN, ... ``.pt``).

A metatomic model declares what it can compute in its capabilities; every per-atom
feature output becomes a layer:

``feature``
    The standard backbone feature output (older exports call it ``features``; both
    names give this layer).
``feature-<variant>``
    Each variant ``feature/<variant>`` of it (netCDF names cannot hold a ``/``).
``<name>``
    Other metatrain feature outputs ``mtt::aux::<name>``, e.g. ``mace_features`` (MACE's
    node features). Spherical outputs become invariants as SevenNet's do: ``o3_lambda = 0``
    channels kept, the others replaced by their norms.
``last``
    ``mtt::aux::energy_last_layer_features``, the input of the energy head, which
    metatrain models expose.

Model name and version come from the file: the name from the model's metadata (or the
file name when the metadata has none), the version from the file's digest, so a changed
file never reuses cached features. The atomic types in the capabilities are the
supported elements. Structures are evaluated in batches (one model call per batch),
with the neighbour lists the model requests computed by vesin, exactly as metatomic's
ASE calculator does; the energy of the same call is returned by
:meth:`~latentatlas.features.Featurizer.featurize_with_energy`.

Invariance is the model's: MACE's features are rotation invariant by construction, PET's
only approximately (PET is unconstrained and learns invariance from rotated training data;
the tiny test PET's features move by ~10% under rotation, a converged PET's far less).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from .base import Featurizer, file_digest

__all__ = ["LAST_LAYER_OUTPUT", "MetatomicFeaturizer", "feature_outputs", "is_model_file"]

#: The metatrain output holding the energy head's input.
LAST_LAYER_OUTPUT = "mtt::aux::energy_last_layer_features"


def is_model_file(name: str) -> bool:
    """Whether a featuriser name (not a registry name) means a model file: an existing file,
    or a name that looks like a path (ends in ``.pt``/``.pth`` or has a directory part)."""
    name = str(name)
    return name.endswith((".pt", ".pth")) or "/" in name or "\\" in name or Path(name).is_file()


def feature_outputs(output_names) -> dict[str, str]:
    """Layer name -> output to request, for the per-atom feature outputs a model declares.

    Parameters
    ----------
    output_names : iterable of str
        Names in the model's capabilities (metatomic lists deprecated spellings too).

    Returns
    -------
    dict of str -> str
        In this order: ``feature``, ``feature-<variant>``, ``<name>`` for metatrain's other
        ``mtt::aux::<name>`` feature outputs (e.g. ``mace_features``), and ``last``. The
        requested output uses the current spelling (metatomic maps it back for old files).
    """
    output_names = list(output_names)
    standard, auxiliary = {}, {}
    for name in output_names:
        base, _, variant = name.partition("/")
        if base in ("feature", "features"):
            standard["feature" + (f"-{variant}" if variant else "")] = "feature" + (f"/{variant}" if variant else "")
        elif name.startswith("mtt::aux::") and name.endswith("_features") and name != LAST_LAYER_OUTPUT:
            auxiliary[name.removeprefix("mtt::aux::").replace("/", "-")] = name
    layers = dict(sorted(standard.items(), key=lambda kv: (kv[0] != "feature", kv[0])))
    layers |= dict(sorted(auxiliary.items()))
    if LAST_LAYER_OUTPUT in output_names:
        layers["last"] = LAST_LAYER_OUTPUT
    return layers


def _model_name(metadata_name: str, path: Path) -> str:
    """A Dataset-safe model name: the metadata name, else the file stem."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", metadata_name.strip()).strip("-")
    return name or path.stem


class MetatomicFeaturizer(Featurizer):
    """Per-atom features of an exported metatomic model (see module docstring for layers).

    Its feature sets carry no ``invariant`` attr: a model file may be only approximately
    rotation invariant (PET).

    Parameters
    ----------
    path : path
        The exported model file (``.pt``).
    extensions_dir : path, optional
        Folder of the TorchScript extensions the model needs (``mtt export`` writes it
        next to the model as ``extensions/``).
    name : str, optional
        Model name in the Dataset; default the model's metadata name, else the file stem.
    batch_size : int
        Structures per model call.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not a metatomic model, or it declares no per-atom feature output.
    """

    backend = "metatomic"
    rotation_invariant = False

    def __init__(self, path, *, extensions_dir=None, name: str | None = None, batch_size: int = 16):
        from importlib.metadata import version

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} does not exist; give the path of an exported metatomic model (.pt)")
        self.path = path
        self.extensions_dir = None if extensions_dir is None else Path(extensions_dir)
        model = self.model
        capabilities = model.capabilities()
        outputs = list(capabilities.outputs.keys())
        self._outputs = feature_outputs(outputs)
        if not self._outputs:
            raise ValueError(
                f"{path} declares no per-atom feature output (outputs: {outputs}); "
                "export the model with a 'feature' (or metatrain 'mtt::aux::energy_last_layer_features') output"
            )
        self._energy = "energy" if "energy" in outputs else None
        self.name = name or _model_name(model.metadata().name, path)
        self.layers = list(self._outputs)
        self.layer_descriptions = {
            layer: f"{capabilities.outputs[output].description or 'per-atom features'} (output {output!r} of {path.name})"
            for layer, output in self._outputs.items()
        }
        if "last" in self._outputs:
            self.layer_descriptions["last"] = f"input of the energy head ({LAST_LAYER_OUTPUT})"
        self.supported_species = frozenset(int(z) for z in capabilities.atomic_types)
        self.batch_size = batch_size
        self.model_version = f"{path.name} (weights {file_digest(path)}, metatomic-torch {version('metatomic-torch')})"
        self._dtype = capabilities.dtype

    @functools.cached_property
    def model(self):
        """The loaded ``AtomisticModel`` (CPU, eval mode)."""
        from metatomic.torch import load_atomistic_model

        try:
            return load_atomistic_model(str(self.path), extensions_directory=None if self.extensions_dir is None else str(self.extensions_dir))
        except (RuntimeError, ValueError) as err:
            hint = "" if self.extensions_dir else "; if it needs TorchScript extensions, pass extensions_dir (CLI: --extensions-dir)"
            raise ValueError(f"cannot load {self.path} as a metatomic model: {err}{hint}") from err

    @functools.cached_property
    def _neighbor_lists(self) -> list:
        from vesin.metatomic import neighbor_lists_for_model

        # no Verlet skin: every call sees new structures, a skin would only enlarge the lists
        return neighbor_lists_for_model("angstrom", self.model, skin=0.0)

    def systems(self, frames: list) -> list:
        """metatomic ``System`` objects of ``frames`` with the neighbour lists the model requests."""
        import torch
        from metatomic.torch import System

        dtype = getattr(torch, self._dtype)
        systems = []
        for atoms in frames:
            cell = np.zeros((3, 3))
            cell[atoms.pbc] = atoms.cell.array[atoms.pbc]  # metatomic wants zero vectors along open axes
            systems.append(
                System(
                    types=torch.from_numpy(atoms.numbers.astype(np.int32)),
                    positions=torch.from_numpy(atoms.positions).to(dtype),
                    cell=torch.from_numpy(cell).to(dtype),
                    pbc=torch.from_numpy(atoms.pbc.copy()),
                )
            )
        for calculator in self._neighbor_lists:
            calculator.add_neighbor_list(systems, copy=True)
        return systems

    def _forward(self, frames, layers):
        import torch
        from metatomic.torch import ModelEvaluationOptions, ModelOutput

        requested = {self._outputs[layer]: ModelOutput(sample_kind="atom") for layer in layers}
        if self._energy:
            requested[self._energy] = ModelOutput(unit="eV", sample_kind="system")
        options = ModelEvaluationOptions(length_unit="angstrom", outputs=requested)
        with torch.inference_mode():
            out = self.model(self.systems(frames), options, check_consistency=False)
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
        values = {layer: _per_atom(out[self._outputs[layer]], offsets) for layer in layers}
        energy = None
        if self._energy:
            block = out[self._energy].block()
            energy = np.zeros(len(frames))
            energy[block.samples.column("system").numpy()] = block.values.reshape(-1).double().numpy()
        return values, energy


def _per_atom(tensor_map, offsets: np.ndarray) -> np.ndarray:
    """The rows of a per-atom output in frame order, one row per atom.

    A spherical output (one block per angular channel, as MACE's node features) becomes
    rotation invariants, as for SevenNet: blocks with ``o3_lambda = 0`` kept, the others
    replaced by the norm of each channel over its ``2 lambda + 1`` components; blocks side
    by side in key order.

    Parameters
    ----------
    tensor_map : metatensor.torch.TensorMap
        Samples ``(system, atom)``; values ``(n_atoms, [n_components,] n_features)`` per block.
    offsets : ndarray of shape (n_frames + 1,)
        First row of each frame.
    """
    keys = tensor_map.keys
    spherical = "o3_lambda" in keys.names
    if len(keys) > 1 and not spherical:
        raise ValueError(f"per-atom output has {len(keys)} blocks ({keys.names}); only one block or spherical blocks are supported")
    parts = []
    for i in range(len(keys)):
        block = tensor_map.block(i)
        values = block.values
        if spherical and int(keys.column("o3_lambda")[i]) > 0:
            values = values.norm(dim=1)
        values = values.reshape(values.shape[0], -1).numpy()
        rows = offsets[block.samples.column("system").numpy()] + block.samples.column("atom").numpy()
        if len(rows) != offsets[-1] or len(np.unique(rows)) != len(rows):
            raise ValueError(f"the model returned {len(rows)} per-atom rows for {offsets[-1]} atoms")
        ordered = np.empty_like(values)
        ordered[rows] = values
        parts.append(ordered)
    return np.concatenate(parts, axis=1)
