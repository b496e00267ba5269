"""SevenNet latent features from forward hooks on the real (NequIP-style) model.

Layers (per atom):

``gate0`` .. ``gate3``
    Output of the i-th interaction block's equivariant gate (``{i}_equivariant_gate``).
    These carry irreps ``128x0e + 64x1e + 32x2e`` (``+ 32x3e`` for l3i5). They are made
    rotation invariant by keeping the 128 scalars and replacing every l > 0 channel by
    its Euclidean norm over the 2l+1 components: 224 (256 for l3i5) features.
``last``
    Input of the energy head (``reduce_input_to_hidden``): the 128 scalars out of the
    fifth and final interaction block. For the multi-fidelity SevenNet-MF-0 the head
    also receives a constant 2-column one-hot of the fidelity; those columns are a
    label, not a learned feature, and are left out.

The force/stress output module is removed from the copy of the model used here: features
and energies need one forward pass only (3-4x faster than the ASE calculator's pass).
Structures keep their own periodicity (molecules may have no cell).

Loading: the checkpoint is read once, with ``torch.load(weights_only=True)`` restricted to
tensors, containers and the numpy arrays SevenNet stores (:func:`_safe_torch_load`), and the
network is built from that dict by sevenn's own ``SevenNetCheckpoint.build_model``
(:func:`_preloaded_checkpoint`): sevenn's unrestricted ``torch.load`` never runs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from pathlib import Path

import numpy as np

from .base import Featurizer, file_digest, package_dir

__all__ = ["SevenNetFeaturizer", "invariants", "sevennet_checkpoint"]

_CHECKPOINTS = {
    "7net-0": "SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth",
    "7net-0_22may2024": "SevenNet_0__22May2024/checkpoint_sevennet_0.pth",
    "7net-l3i5": "SevenNet_l3i5/checkpoint_l3i5.pth",
    "7net-mf-0": "SevenNet_MF_0/checkpoint_sevennet_mf_0.pth",
}


def _safe_torch_load(path, **kwargs):
    """``torch.load`` restricted to tensors, containers and the numpy arrays SevenNet stores."""
    import numpy.core.multiarray
    import numpy.dtypes
    import torch

    allowed = [
        (numpy.core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        numpy.dtypes.Float32DType,
        numpy.dtypes.Float64DType,
        numpy.dtypes.Int64DType,
        numpy.dtypes.Int32DType,
        numpy.dtypes.BoolDType,
    ]
    kwargs["weights_only"] = True
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, **kwargs)


def _preloaded_checkpoint(path, raw: dict):
    """sevenn's ``SevenNetCheckpoint`` of ``path``, over the dict ``raw`` already read by :func:`_safe_torch_load`.

    sevenn's own reader unpickles checkpoints without restriction; this instance never reads
    the file: it is handed the configuration and weights read with ``weights_only=True`` and
    processes them as sevenn's reader would.
    """
    import sevenn.checkpoint

    class Preloaded(sevenn.checkpoint.SevenNetCheckpoint):
        def _load(self) -> None:
            self._config_original = raw.get("config", {})
            self._config = sevenn.checkpoint._config_cp_routine(self._config_original)
            self._model_state_dict = raw["model_state_dict"]
            self._optimizer_state_dict = raw.get("optimizer_state_dict", {})
            self._scheduler_state_dict = raw.get("scheduler_state_dict", {})
            self._epoch, self._time, self._hash = raw.get("epoch"), raw.get("time", "Not found"), raw.get("hash", "Not found")
            self._loaded = True

    return Preloaded(str(path))


def sevennet_checkpoint(model: str = "7net-0", checkpoint: str | Path | None = None) -> Path:
    """Path of a SevenNet checkpoint: one shipped in the ``sevenn`` wheel, or a local file."""
    if checkpoint is None:
        if model not in _CHECKPOINTS:
            raise KeyError(
                f"SevenNet model {model!r} is not shipped with sevenn; available offline: {sorted(_CHECKPOINTS)}, "
                "or give checkpoint=PATH"
            )
        checkpoint = package_dir("sevenn") / "pretrained_potentials" / _CHECKPOINTS[model]
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise FileNotFoundError(f"SevenNet checkpoint {checkpoint} does not exist")
    return checkpoint


def invariants(x, irreps):
    """Rotation invariants of e3nn features: scalars kept, l > 0 channels -> their norms.

    Parameters
    ----------
    x : torch.Tensor of shape (n_atoms, irreps.dim)
    irreps : e3nn.o3.Irreps

    Returns
    -------
    torch.Tensor of shape (n_atoms, irreps.num_irreps)
    """
    import torch

    cols, start = [], 0
    for mul, ir in irreps:
        block = x[:, start : start + mul * ir.dim].reshape(len(x), mul, ir.dim)
        cols.append(block[..., 0] if ir.l == 0 else torch.linalg.vector_norm(block, dim=-1))
        start += mul * ir.dim
    return torch.cat(cols, dim=1)


class SevenNetFeaturizer(Featurizer):
    """Per-atom features of a pretrained SevenNet (see module docstring for layers).

    Parameters
    ----------
    model : str
        Pretrained name as sevenn spells it: ``7net-0``, ``7net-0_22may2024``,
        ``7net-l3i5``, ``7net-mf-0``.
    modal : str, optional
        Fidelity head of a multi-fidelity model (``"PBE"`` or ``"R2SCAN"`` for 7net-mf-0).
    checkpoint : path, optional
        A local SevenNet checkpoint instead of a shipped one.
    name : str, optional
        Registry name; default ``"sevennet-<model>"``.
    """

    backend = "sevenn"

    def __init__(self, model: str = "7net-0", *, modal: str | None = None, checkpoint=None, name: str | None = None):
        from importlib.metadata import version

        from ase.data import atomic_numbers

        path = sevennet_checkpoint(model, checkpoint)
        # Only the checkpoint is read here; the network is built on first use, so runs
        # answered from the cache never pay for it.
        self._path = path
        self._raw = _safe_torch_load(path, map_location="cpu")
        config = self._raw["config"]
        modal_map = config.get("_modal_map") or {}
        if modal_map and modal not in modal_map:
            raise KeyError(f"{model} is multi-fidelity: give modal= one of {sorted(modal_map)}")
        if not modal_map and modal is not None:
            raise KeyError(f"{model} has a single fidelity; leave modal unset")
        self.modal = modal
        self.cutoff = float(config["cutoff"])
        self.supported_species = frozenset(atomic_numbers[s] for s in config["chemical_species"])
        self.name = name or f"sevennet-{model}"
        suffix = f", modal {modal}" if modal else ""
        self.model_version = f"{model}{suffix} (sevenn {version('sevenn')}, weights {file_digest(path)})"
        n_blocks = int(config["num_convolution_layer"])
        # The final gate's output is exactly the head input: expose it once, as "last".
        self.layers = [*(f"gate{i}" for i in range(n_blocks - 1)), "last"]
        self.layer_descriptions = {
            f"gate{i}": f"rotation invariants (scalars + per-channel norms of the l > 0 irreps) after interaction "
            f"block {i + 1} of {n_blocks}"
            for i in range(n_blocks - 1)
        }
        self.layer_descriptions["last"] = f"input of the energy head: scalars after interaction block {n_blocks} of {n_blocks}"

    @functools.cached_property
    def model(self):
        """The SevenNet network without its force/stress module (eval, batch mode), built on first use."""
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no tensor-product accelerator" etc.
            net = _preloaded_checkpoint(self._path, self._raw).build_model()
        del self._raw
        net.delete_module_by_key("force_output")
        net.set_is_batch_data(True)
        return net.eval()

    def _gate(self, layer: str):
        return self.model._modules[f"{layer[4:]}_equivariant_gate"]

    def graphs(self, frames: list):
        """One torch_geometric batch of SevenNet graphs for ``frames``."""
        import sevenn._keys as KEY
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph
        from torch_geometric.data import Batch

        graphs = []
        for atoms in frames:
            g = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, self.cutoff))
            if self.modal:
                g[KEY.DATA_MODALITY] = self.modal
            graphs.append(g)
        return Batch.from_data_list(graphs)

    def _forward(self, frames, layers):
        import sevenn._keys as KEY
        import torch

        from ..hooks import capture

        head = self.model._modules["reduce_input_to_hidden"]
        targets = {layer: head if layer == "last" else self._gate(layer) for layer in layers}
        # SevenNet passes one dict through all modules and overwrites its entries: copy on capture.
        with (
            capture(self.model, targets, pre={"last"} & set(layers),
                    transform=lambda _, data: data[KEY.NODE_FEATURE].clone()) as seen,
            torch.inference_mode(),
        ):
            out = self.model(self.graphs(frames))
        values = {}
        for layer in layers:
            x = seen[layer][0]
            values[layer] = (x if layer == "last" else invariants(x, self._gate(layer).gate.irreps_out)).numpy().copy()
        return values, out[KEY.PRED_TOTAL_ENERGY].numpy().astype(np.float64).reshape(-1)
