"""A tiny TorchScript metatomic model, exported for real, whose feature outputs a test chooses.

metatrain 2026.4.1 exports only the current ``feature`` name, so the legacy ``features``
output and ``feature/<variant>`` outputs are tested on this model.
"""

from typing import Dict, List, Optional

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)

CUTOFF = 4.0


class PairFeatures(torch.nn.Module):
    """Per-atom features: smooth neighbour densities at two widths; energy: a fixed linear head."""

    def __init__(self):
        super().__init__()
        self.cutoff = CUTOFF
        self.options = NeighborListOptions(cutoff=CUTOFF, full_list=True, strict=True)
        self.head = torch.nn.Linear(2, 1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-1.3, 0.4]], dtype=torch.float64))

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.options]

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels] = None,
    ) -> Dict[str, TensorMap]:
        features: List[torch.Tensor] = []
        samples: List[torch.Tensor] = []
        for s, system in enumerate(systems):
            pairs = system.get_neighbor_list(self.options)
            first = pairs.samples.column("first_atom").to(torch.int64)
            r = torch.linalg.norm(pairs.values.reshape(-1, 3), dim=1)
            smooth = 0.5 * (torch.cos(3.141592653589793 * r / self.cutoff) + 1.0)
            density = torch.stack([torch.exp(-r) * smooth, torch.exp(-0.25 * r * r) * smooth], dim=1)
            per_atom = torch.zeros(len(system), 2, dtype=system.positions.dtype)
            per_atom.index_add_(0, first, density)
            features.append(per_atom)
            atoms = torch.arange(len(system), dtype=torch.int32)
            samples.append(torch.stack([torch.full_like(atoms, s), atoms], dim=1))
        values = torch.cat(features)
        sample_values = torch.cat(samples)
        result: Dict[str, TensorMap] = {}
        for name in outputs.keys():
            if name.startswith("feature"):
                # a variant holds the same densities, doubled, so the two can be told apart
                scale = 2.0 if "/" in name else 1.0
                block = TensorBlock(
                    values=scale * values,
                    samples=Labels(["system", "atom"], sample_values),
                    components=[],
                    properties=Labels(["feature"], torch.arange(2, dtype=torch.int32).reshape(-1, 1)),
                )
                result[name] = TensorMap(Labels(["_"], torch.zeros(1, 1, dtype=torch.int32)), [block])
        if "energy" in outputs:
            per_atom_energy = self.head(values)
            energy = torch.zeros(len(systems), 1, dtype=values.dtype)
            energy.index_add_(0, sample_values[:, 0].to(torch.int64), per_atom_energy)
            block = TensorBlock(
                values=energy,
                samples=Labels(["system"], torch.arange(len(systems), dtype=torch.int32).reshape(-1, 1)),
                components=[],
                properties=Labels(["energy"], torch.zeros(1, 1, dtype=torch.int32)),
            )
            result["energy"] = TensorMap(Labels(["_"], torch.zeros(1, 1, dtype=torch.int32)), [block])
        return result


def export_pair_model(path, feature_outputs=("features",), atomic_types=(1, 6, 7, 8), name="pair features") -> None:
    """Write an AtomisticModel file declaring ``feature_outputs`` (``features`` is the legacy name)."""
    capabilities = ModelCapabilities(
        outputs={
            **{o: ModelOutput(sample_kind="atom", description="smooth neighbour densities") for o in feature_outputs},
            "energy": ModelOutput(unit="eV", sample_kind="system"),
        },
        atomic_types=list(atomic_types),
        interaction_range=CUTOFF,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    model = AtomisticModel(PairFeatures().eval(), ModelMetadata(name=name), capabilities)
    model.save(str(path))
