"""Any torch potential with hooks: a small per-atom network of our own, run for real on real frames."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from latentatlas.dataset import FeatureError
from latentatlas.features.module import ModuleFeaturizer, module_features
from latentatlas.frames import fingerprint
from latentatlas.schema import kind_of
from latentatlas.structures import builtin_frames


class Environment(nn.Module):
    """Gaussian radial densities of each atom's neighbours (same structure, within the cutoff)."""

    def __init__(self, cutoff=4.0, n=12):
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("centres", torch.linspace(0.5, cutoff, n))

    def forward(self, positions, owner):
        d = torch.cdist(positions, positions)
        near = (owner[:, None] == owner[None]) & (d < self.cutoff) & ~torch.eye(len(d), dtype=torch.bool)
        return (torch.exp(-((d[..., None] - self.centres) ** 2) / 0.2) * near[..., None]).sum(1)


class TinyPotential(nn.Module):
    """Element embedding + neighbour densities -> hidden layer -> atomic energies summed per structure."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(100, 6)
        self.environment = Environment()
        self.mix = nn.Sequential(nn.Linear(18, 16), nn.SiLU())
        self.readout = nn.Linear(16, 1)

    def forward(self, numbers, positions, owner, n_frames):
        h = self.mix(torch.cat([self.embed(numbers), self.environment(positions, owner)], dim=1))
        return torch.zeros(n_frames).index_add(0, owner, self.readout(h)[:, 0])


def inputs(frames):
    numbers = torch.as_tensor(np.concatenate([a.numbers for a in frames]))
    positions = torch.as_tensor(np.concatenate([a.positions for a in frames]), dtype=torch.float32)
    owner = torch.repeat_interleave(torch.arange(len(frames)), torch.as_tensor([len(a) for a in frames]))
    return numbers, positions, owner, len(frames)


LAYERS = {"embedding": "embed", "environment": "environment", "hidden": "mix", "last": "readout"}


@pytest.fixture(scope="module")
def frames():
    return [a for a in builtin_frames(small=True) if not a.pbc.any()]  # molecules and clusters


def test_hooked_layers_are_the_submodules_outputs(frames):
    model = TinyPotential()
    featurizer = ModuleFeaturizer(model, LAYERS, inputs=inputs, energy=lambda e: e.double(), pre={"last"},
                                  name="tiny", batch_size=5)
    ds, energy = featurizer.featurize_with_energy(frames, progress=False)
    numbers, positions, owner, n = inputs(frames)
    with torch.no_grad():  # the layers by hand, one pass over all frames
        emb = model.embed(numbers)
        env = model.environment(positions, owner)
        hidden = model.mix(torch.cat([emb, env], 1))
        expected = {"embedding": emb, "environment": env, "hidden": hidden, "last": hidden}
        own = np.array([float(model(*inputs([a]))[0]) for a in frames])
    for layer, x in expected.items():
        assert ds[f"tiny:{layer}"].dims == ("atom", f"tiny:{layer}:feature")
        np.testing.assert_allclose(ds[f"tiny:{layer}"].values, x.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(energy, own, rtol=1e-5, atol=1e-5)  # the model's own prediction, frame by frame
    assert ds.attrs["fingerprint"] == fingerprint(frames) and kind_of(ds) == "features"
    assert ds["tiny:last"].attrs["description"] == "input of submodule readout of TinyPotential"
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_function_form_and_cache_key_follow_the_weights(frames):
    model = TinyPotential()
    a = module_features(model, frames[:3], ["mix"], inputs=inputs, name="tiny", progress=False)
    assert list(a.data_vars) == ["tiny:mix"]
    before = ModuleFeaturizer(model, ["mix"], inputs=inputs).model_version
    with torch.no_grad():
        model.mix[0].weight[0, 0] += 1.0
    assert ModuleFeaturizer(model, ["mix"], inputs=inputs).model_version != before
    b = module_features(model, frames[:3], ["mix"], inputs=inputs, name="tiny", progress=False)
    assert not np.allclose(a["tiny:mix"].values, b["tiny:mix"].values)  # not served from the cache


def test_bad_layers_are_named_and_hooks_are_removed(frames):
    model = TinyPotential()
    with pytest.raises(KeyError, match="no submodule 'mixer'.*valid dotted names are"):
        ModuleFeaturizer(model, ["mixer"], inputs=inputs)
    with pytest.raises(KeyError, match=r"pre layers \['head'\]"):
        ModuleFeaturizer(model, ["mix"], inputs=inputs, pre={"head"})
    whole = ModuleFeaturizer(model, {"energy": model}, inputs=inputs)  # one value per structure, not per atom
    with pytest.raises(FeatureError, match=r"layer 'energy' gave \(3,\), not one row per atom"):
        whole.featurize(frames[:3], progress=False, cache=False)
    assert not model._forward_hooks
    with pytest.raises(ValueError, match="energy"):
        ModuleFeaturizer(model, ["mix"], inputs=inputs, energy=lambda e: e[:1]).featurize_with_energy(frames[:3], progress=False)
