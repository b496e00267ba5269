"""ANI-1x latent features from forward hooks on one member of the real ensemble.

ANI-1x (Smith et al., J. Chem. Phys. 148, 241733, 2018) is an ensemble of 8 networks
trained on the same data (wB97X/6-31G(d), H, C, N, O only); each member is its own
model here (``ani-1x-0`` .. ``ani-1x-7``), so the ensemble's spread of representations
can be measured. The weights are the NeuroChem files shipped in the torchani 2.2.4 wheel
(``torchani/resources/ani-1x_8x``), loaded with :mod:`torchani.neurochem` as torchani's
own "load from NeuroChem files" example does: ``torchani.models.ANI1x()`` would instead
look for an info file that the wheel ships empty and try to download.

Layers (per atom, rotation invariant because the AEV sees only distances and angles):

``aev`` (384)
    Atomic environment vector, the input of every atomic network: radial and angular
    symmetry functions of the neighbours, split by the neighbours' elements. It is the
    same for all 8 members (shared constants), and it does not encode the centre atom's
    own element: two atoms of different elements in the same surroundings get one AEV.
``last`` (96)
    Input of the energy head: the third hidden layer (after its CELU), which the final
    Linear of the atom's element network maps to the atomic energy.

ANI has one network per element. Their first two hidden layers are 160/128 wide for H,
144/112 for C and 128/112 for N and O, so they do not form one (atom, feature) array and
are not exposed; zero-padding them to a common width would add columns that are zero for
some elements by construction, not because of anything the model learned. ``last`` is
96 wide for every element, but its column j is a different neuron for each element (each
element has its own network and its own energy head): comparisons that mix elements
compare unrelated units. Select one element (``ds.where(ds.species == 6, drop=True)``)
when the meaning of a unit matters.

Molecules (no periodic direction) go through one padded pass per batch. Periodic and
partially periodic frames go one per pass with their cell (torchani's PBC path takes one
cell per pass), positions wrapped into the cell along the periodic axes as torchani's ASE
calculator does. Energies are converted from Hartree to eV with :data:`ase.units.Hartree`.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from pathlib import Path

import numpy as np

from .base import Featurizer, file_digest, package_dir

__all__ = ["ANIFeaturizer", "ani1x_resources"]

#: Width of ``last`` (the energy-head input) in every element network of ANI-1x.
_LAST_WIDTH = 96


def _import_torchani():
    """torchani, imported without the warnings it emits on every import."""
    with warnings.catch_warnings():
        # "cuaev not installed", "pkg_resources is deprecated", "torchani.data will not be available"
        warnings.simplefilter("ignore")
        import torchani
    return torchani


def ani1x_resources(resources: str | Path | None = None) -> Path:
    """Folder of the ANI-1x NeuroChem files: the one in the torchani wheel, or a local copy.

    A copy must be laid out as torchani's ``resources/ani-1x_8x``: one ``*.params`` file
    (AEV constants), ``sae_linfit.dat`` (self atomic energies, Hartree) and
    ``train<i>/networks/ANN-<element>.nnf*`` for each member ``i``.
    """
    if resources is None:
        resources = package_dir("torchani") / "resources" / "ani-1x_8x"
    resources = Path(resources)
    if not (resources / "sae_linfit.dat").is_file() or not list(resources.glob("*.params")):
        raise FileNotFoundError(
            f"{resources} is not an ANI NeuroChem folder (needs a *.params file and sae_linfit.dat); "
            "torchani 2.2.4 ships ANI-1x in its wheel: pip install 'torchani==2.2.4' 'setuptools<81'"
        )
    return resources


class ANIFeaturizer(Featurizer):
    """Per-atom features of one ANI-1x ensemble member (see module docstring for layers).

    Parameters
    ----------
    member : int
        Ensemble member, 0 .. 7 (the ``train<member>`` folder).
    resources : path, optional
        A local folder of ANI NeuroChem files instead of the one in the torchani wheel
        (see :func:`ani1x_resources`).
    name : str, optional
        Registry name; default ``"ani-1x-<member>"``.
    """

    backend = "torchani"
    layers = ["aev", "last"]
    batch_size = 64  # small molecules: one padded pass costs about as much as one molecule

    def __init__(self, member: int = 0, *, resources: str | Path | None = None, name: str | None = None):
        from importlib.metadata import version

        from ase.data import atomic_numbers

        self._resources = ani1x_resources(resources)
        self._networks = self._resources / f"train{member}" / "networks"
        if not self._networks.is_dir():
            members = sorted(int(p.name[5:]) for p in self._resources.glob("train*") if p.name[5:].isdigit())
            raise ValueError(f"ANI member {member!r} does not exist in {self._resources}; members: {members}")
        self.member = member
        (self._const_file,) = self._resources.glob("*.params")
        torchani = _import_torchani()
        self._consts = torchani.neurochem.Constants(str(self._const_file))
        self.supported_species = frozenset(atomic_numbers[s] for s in self._consts.species)
        self.name = name or f"ani-1x-{member}"
        files = [self._const_file, self._resources / "sae_linfit.dat", *sorted(self._networks.iterdir())]
        digest = hashlib.sha256("".join(f"{p.name}:{file_digest(p)};" for p in files).encode()).hexdigest()[:12]
        self.model_version = f"ANI-1x member {member} (torchani {version('torchani')}, weights {digest})"
        aev = torchani.AEVComputer(**self._consts)
        self.cutoff = max(aev.Rcr, aev.Rca)
        self.layer_descriptions = {
            "aev": f"atomic environment vector ({aev.aev_length} wide): input of every element network, the same "
            "for all ANI-1x members; it encodes the neighbours' elements, not the centre atom's",
            "last": f"input of the energy head: third hidden layer of the atom's element network ({_LAST_WIDTH} "
            "wide for every element, but column j is a different neuron in each element's network)",
        }

    @functools.cached_property
    def model(self):
        """The member as a torchani pipeline, built on first use (CPU, eval, no gradients).

        ``SpeciesConverter -> AEVComputer -> ANIModel -> EnergyShifter``: what
        ``torchani.models.ANI1x(periodic_table_index=True, model_index=member)`` builds,
        from the same files. Takes atomic numbers; returns energies in Hartree.
        """
        torchani = _import_torchani()
        networks = torchani.neurochem.load_model(self._consts.species, str(self._networks))
        widths = {s: net[-1].in_features for s, net in networks.items()}
        if set(widths.values()) != {_LAST_WIDTH}:
            raise ValueError(f"{self._networks}: energy-head inputs of widths {widths}, expected {_LAST_WIDTH} for every element")
        net = torchani.nn.Sequential(
            torchani.SpeciesConverter(self._consts.species),
            torchani.AEVComputer(**self._consts),
            networks,
            torchani.neurochem.load_sae(str(self._resources / "sae_linfit.dat")),
        )
        for p in net.parameters():
            p.requires_grad_(False)
        return net.eval()

    def _forward(self, frames, layers):
        molecules = [i for i, a in enumerate(frames) if not a.pbc.any()]
        groups = [molecules] if molecules else []
        groups += [[i] for i, a in enumerate(frames) if a.pbc.any()]
        per_frame = [None] * len(frames)
        energy = np.zeros(len(frames))
        for group in groups:
            values, e = self._pass([frames[i] for i in group], layers)
            for k, i in enumerate(group):
                per_frame[i] = {layer: values[layer][k] for layer in layers}
                energy[i] = e[k]
        return {layer: np.concatenate([v[layer] for v in per_frame]) for layer in layers}, energy

    def _pass(self, frames, layers):
        """One forward pass over ``frames`` (all molecules, or one periodic frame).

        Returns
        -------
        values : dict of str -> list of ndarray
            Per layer, one ``(n_atoms_i, n_features)`` array per frame.
        energy : ndarray of shape (n_frames,)
            Total energies in eV.
        """
        import torch
        from ase.units import Hartree

        from ..hooks import capture

        n_atoms = [len(a) for a in frames]
        species = torch.full((len(frames), max(n_atoms)), -1, dtype=torch.long)  # -1: padding
        coordinates = torch.zeros((len(frames), max(n_atoms), 3), dtype=torch.float32)
        for k, atoms in enumerate(frames):
            species[k, : len(atoms)] = torch.from_numpy(atoms.numbers)
            coordinates[k, : len(atoms)] = torch.from_numpy(atoms.positions)
        kwargs = {}
        if frames[0].pbc.any():
            from torchani.utils import map2central

            cell = torch.tensor(frames[0].cell.complete().array, dtype=torch.float32)
            pbc = torch.tensor(frames[0].pbc, dtype=torch.bool)
            coordinates = map2central(cell, coordinates, pbc)
            kwargs = {"cell": cell, "pbc": pbc}

        _, aev_computer, networks, _ = self.model
        targets = {"aev": aev_computer}
        if "last" in layers:
            targets.update({("last", s): net[-1] for s, net in enumerate(networks.values())})
        with capture(self.model, targets, pre=set(targets) - {"aev"}) as seen, torch.inference_mode():
            out = self.model((species, coordinates), **kwargs)

        element, aev = seen["aev"][0]  # element: torchani's 0..3 index per (frame, atom), -1 for padding
        element = element.flatten()
        real = element >= 0
        flat = {}
        if "aev" in layers:
            flat["aev"] = aev.flatten(0, 1)[real]
        if "last" in layers:
            last = aev.new_zeros((len(element), _LAST_WIDTH))
            for s in range(len(networks)):
                # ANIModel feeds each element network its atoms in flattened (frame, atom) order
                if seen["last", s]:  # networks of absent elements are not called
                    last[element == s] = seen["last", s][0]
            flat["last"] = last[real]
        bounds = np.cumsum([0, *n_atoms])
        values = {layer: [flat[layer][bounds[k] : bounds[k + 1]].numpy().copy() for k in range(len(frames))] for layer in layers}
        return values, out.energies.numpy().astype(np.float64) * Hartree
