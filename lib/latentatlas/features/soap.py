"""SOAP power spectrum (featomic): a hand-made, species-agnostic geometric descriptor.

Every atom is given the same species before the neighbour density is built, so the
descriptor sees geometry only: its size does not grow with the number of elements (a
species-resolved SOAP of a 60-element dataset would have ~10^5 columns). It is the
"what pure geometry explains" baseline in feature-reconstruction comparisons. Layer
``power_spectrum`` has ``(max_radial + 1)**2 * (max_angular + 1)`` columns (245 by
default), rotation invariant by construction.
"""

from __future__ import annotations

import numpy as np
from featomic.systems import SystemBase

from ..frames import periodic_box
from .base import Featurizer

__all__ = ["SoapFeaturizer"]


class _GeometryOnly(SystemBase):
    """One structure as featomic sees it here: every atom of the same species, always periodic.

    One density channel for all elements makes the descriptor see geometry only, and
    featomic rejects mixed periodicity, hence the box (:func:`.base.periodic_box`).
    featomic copies size, types, positions and cell into its own system and builds the
    neighbour list there (``use_native_system=True``), so no neighbour methods are needed;
    ase's wrapper would copy the whole ase.Atoms first.
    """

    def __init__(self, atoms, cutoff):
        super().__init__()
        self._positions, self._cell = periodic_box(atoms, cutoff)
        self._types = np.ones(len(atoms), dtype=np.int32)

    def size(self):
        return len(self._types)

    def types(self):
        return self._types

    def positions(self):
        return self._positions

    def cell(self):
        return self._cell


class SoapFeaturizer(Featurizer):
    """Species-agnostic SOAP power spectrum per atom.

    Parameters
    ----------
    cutoff : float
        Radius (Å) of the neighbour sphere.
    max_radial, max_angular : int
        Largest radial / angular index of the GTO x spherical-harmonic basis.
    atomic_width : float
        Width (Å) of the Gaussian put on each neighbour.
    name : str
    """

    backend = "featomic"
    # featomic's per-call set-up is a large part of a small batch, and a batch's memory is small
    batch_size = 256

    def __init__(
        self,
        cutoff: float = 5.0,
        max_radial: int = 6,
        max_angular: int = 4,
        atomic_width: float = 0.3,
        *,
        name: str = "soap",
    ):
        import featomic

        if cutoff <= 0 or atomic_width <= 0 or max_radial < 0 or max_angular < 0:
            raise ValueError("SOAP needs cutoff > 0, atomic_width > 0, max_radial >= 0 and max_angular >= 0")
        self.name = name
        self.cutoff = float(cutoff)
        self.hypers = {
            "cutoff": {"radius": float(cutoff), "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
            "density": {"type": "Gaussian", "width": float(atomic_width)},
            "basis": {
                "type": "TensorProduct",
                "max_angular": int(max_angular),
                "radial": {"type": "Gto", "max_radial": int(max_radial)},
            },
        }
        self.calculator = featomic.SoapPowerSpectrum(**self.hypers)
        self.model_version = (
            f"species-agnostic, cutoff {cutoff} Å, max_radial {max_radial}, max_angular {max_angular}, "
            f"width {atomic_width} Å (featomic {featomic.__version__})"
        )
        self.layers = ["power_spectrum"]
        self.layer_descriptions = {"power_spectrum": f"species-agnostic SOAP power spectrum ({self.model_version})"}

    def _forward(self, frames, layers):
        systems = [_GeometryOnly(atoms, self.cutoff) for atoms in frames]
        # every atom has the same species, so there is one block, key (1, 1, 1)
        block = self.calculator.compute(systems).block()
        samples = block.samples.values
        order = np.lexsort((samples[:, 1], samples[:, 0]))
        return {"power_spectrum": np.asarray(block.values)[order]}, None
