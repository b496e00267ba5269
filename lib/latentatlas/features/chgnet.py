"""CHGNet latent features from forward hooks on the real model.

Layers (all 64-d, per atom, rotation invariant because CHGNet sees only distances and angles):

``conv1`` .. ``conv4``
    Output of ``atom_conv_layers[i - 1]``, the i-th atom-graph interaction block.
``last``
    Input of the energy head (``model.mlp``): ``conv4`` after the read-out LayerNorm. For
    CHGNet 0.2.0, which has no read-out norm, this *is* ``conv4``, so that model exposes
    ``conv1`` .. ``conv3`` and ``last`` only.

Note that CHGNet's own ``return_atom_feas`` gives ``conv3``, not the head input.

CHGNet treats every structure as periodic. Structures with no periodic direction are put
in an orthorhombic box with ``cutoff + 2`` Å of vacuum on each side (so no atom sees an
image); partially periodic ones (slabs) must already have at least ``cutoff`` Å of vacuum
along their non-periodic axes, else a ValueError says how to add it.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path

import numpy as np

from ..frames import periodic_box
from .base import Featurizer, file_digest, package_dir

__all__ = ["CHGNetFeaturizer", "chgnet_checkpoint", "to_structure"]

_CHECKPOINTS = {
    "0.3.0": "0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    "0.2.0": "0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar",
    "r2scan": "r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
}


def chgnet_checkpoint(model: str = "0.3.0", checkpoint: str | Path | None = None) -> Path:
    """Path of a CHGNet checkpoint: one shipped in the ``chgnet`` wheel, or a local file."""
    if checkpoint is None:
        if model not in _CHECKPOINTS:
            raise KeyError(f"unknown CHGNet model {model!r}; shipped: {sorted(_CHECKPOINTS)}, or give checkpoint=PATH")
        checkpoint = package_dir("chgnet") / "pretrained" / _CHECKPOINTS[model]
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise FileNotFoundError(f"CHGNet checkpoint {checkpoint} does not exist")
    return checkpoint


def to_structure(atoms, cutoff: float):
    """The pymatgen Structure CHGNet sees for ``atoms`` (see :func:`.base.periodic_box`)."""
    from pymatgen.core import Lattice, Structure

    positions, cell = periodic_box(atoms, cutoff)
    return Structure(Lattice(cell), atoms.numbers, positions, coords_are_cartesian=True)


class CHGNetFeaturizer(Featurizer):
    """Per-atom features of a pretrained CHGNet (see module docstring for layers).

    Parameters
    ----------
    model : {"0.3.0", "0.2.0", "r2scan"}
        Checkpoint shipped in the chgnet wheel.
    checkpoint : path, optional
        A local CHGNet checkpoint instead (same layout as the shipped ones).
    name : str, optional
        Registry name; default ``"chgnet-<model>"``.
    """

    backend = "chgnet"

    def __init__(self, model: str = "0.3.0", *, checkpoint: str | Path | None = None, name: str | None = None):
        from importlib.metadata import version

        import torch

        path = chgnet_checkpoint(model, checkpoint)
        # Only the weights are read here; the network is built on first use, so runs
        # answered from the cache never pay for it.
        self._state = torch.load(path, map_location="cpu", weights_only=True)["model"]
        self._variant = model
        self.name = name or f"chgnet-{model}"
        self.model_version = f"{model} (chgnet {version('chgnet')}, weights {file_digest(path)})"
        args = self._state["model_args"]
        self.cutoff = float(args.get("atom_graph_cutoff", 6))
        self.supported_species = frozenset(range(1, len(self._state["state_dict"]["atom_embedding.embedding.weight"]) + 1))
        n_conv = int(args.get("n_conv", 4))
        has_norm = args.get("readout_norm", "layer") is not None  # CHGNet's default is "layer"
        convs = [f"conv{i + 1}" for i in range(n_conv if has_norm else n_conv - 1)]
        self.layers = [*convs, "last"]
        self.layer_descriptions = {c: f"output of CHGNet atom-graph interaction block {c[4:]} of {n_conv}" for c in convs}
        self.layer_descriptions["last"] = "input of the energy head (" + (
            "last interaction block after the read-out LayerNorm)" if has_norm else "output of the last interaction block)"
        )

    @functools.cached_property
    def model(self):
        """The CHGNet network (eval mode, CPU), built from the weights on first use.

        Its last angle update is removed: CHGNet computes it but no later layer reads its
        output, so features and energies are unchanged (bit for bit) and a forward pass
        skips a sizeable share of the work on the angle graph.
        """
        from chgnet.model import CHGNet

        with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its parameter count
            # mlp_out_bias reproduces CHGNet.load exactly (0.2.0 was trained with it).
            net = CHGNet.from_dict(self._state, mlp_out_bias=self._variant == "0.2.0", version=self._variant)
        net.angle_layers[-1] = None  # CHGNet._compute skips a None angle layer
        return net.eval()

    def graphs(self, frames: list) -> list:
        """CHGNet crystal graphs of ``frames``; a ValueError names a frame that cannot be converted."""
        graphs = []
        for atoms in frames:
            structure = to_structure(atoms, self.cutoff)
            try:
                graphs.append(self.model.graph_converter(structure))
            except (RuntimeError, ValueError) as err:
                raise ValueError(f"CHGNet cannot build a graph for {atoms.get_chemical_formula()}: {err}") from err
        return graphs

    def layer_modules(self, layers) -> tuple[dict, set]:
        """The submodule each of ``layers`` is read from, and the layers read from its input.

        For :func:`latentatlas.hooks.capture`: ``conv<i>`` is the output of
        ``atom_conv_layers[i - 1]``, ``last`` the input of the energy head ``mlp``.
        """
        blocks = {f"conv{i + 1}": m for i, m in enumerate(self.model.atom_conv_layers)}
        return {layer: self.model.mlp if layer == "last" else blocks[layer] for layer in layers}, {"last"} & set(layers)

    def _forward(self, frames, layers):
        import torch

        from ..hooks import capture

        targets, pre = self.layer_modules(layers)
        with capture(self.model, targets, pre=pre) as seen, torch.inference_mode():
            out = self.model(self.graphs(frames), task="e")
        n_atoms = np.array([len(a) for a in frames])
        energy = out["e"].numpy().astype(np.float64) * n_atoms  # CHGNet predicts eV/atom
        return {layer: seen[layer][0].numpy().copy() for layer in layers}, energy
