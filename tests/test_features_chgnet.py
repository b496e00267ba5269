"""CHGNet features: the hooked pass is the model's own pass, layers are what they claim, invariance."""

import contextlib
import io

import numpy as np
import pytest
from _geometry import assert_rotation_invariant
from ase.build import bulk, fcc111, molecule

pytest.importorskip("chgnet")
import torch  # noqa: E402

from latentatlas.features import get_featurizer  # noqa: E402
from latentatlas.features.chgnet import to_structure  # noqa: E402


def small_frames():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    cu.rattle(0.05, seed=1)
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    slab = fcc111("Al", size=(1, 1, 3), vacuum=7.5)
    return [cu, nacl, molecule("CH4"), slab]


NAMES = ("chgnet-0.3.0", "chgnet-0.2.0", "chgnet-r2scan")


@pytest.fixture(scope="module")
def featurizers():
    return {name: get_featurizer(name) for name in NAMES}


@pytest.fixture(scope="module")
def own_models():
    """CHGNet as its own API loads it: the reference our (trimmed) network must match."""
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()):
        return {name: CHGNet.load(model_name=name.removeprefix("chgnet-"), use_device="cpu", verbose=False) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_energy_of_hooked_pass_equals_predict_structure(featurizers, own_models, name):
    f = featurizers[name]
    frames = small_frames()
    ds, energy = f.featurize_with_energy(frames, progress=False)
    ref = np.array([own_models[name].predict_structure(to_structure(a, f.cutoff), task="e")["e"] for a in frames])
    n_atoms = np.array([len(a) for a in frames])
    np.testing.assert_allclose(energy / n_atoms, ref, rtol=0, atol=1e-5)
    assert set(ds.data_vars) == {f"{name}:{layer}" for layer in f.layers}


@pytest.mark.parametrize("name", NAMES)
def test_network_is_chgnet_without_its_unused_last_angle_update(featurizers, own_models, name):
    ours = featurizers[name].model.state_dict()
    theirs = own_models[name].state_dict()
    last = f"angle_layers.{len(own_models[name].angle_layers) - 1}."
    assert {k for k in theirs if not k.startswith(last)} == set(ours) and any(k.startswith(last) for k in theirs)
    for k, v in ours.items():
        assert torch.equal(v, theirs[k]), k


def test_layers_match_chgnet_own_outputs(featurizers, own_models):
    # independent references: CHGNet's return_atom_feas is conv3, its crystal_fea the sum of the head input
    f = featurizers["chgnet-0.3.0"]
    frames = small_frames()
    ds = f.featurize(frames, ["conv3", "last"], progress=False, cache=False)
    bounds = np.cumsum([0] + [len(a) for a in frames])
    for i, atoms in enumerate(frames):
        own = own_models["chgnet-0.3.0"].predict_structure(to_structure(atoms, f.cutoff), task="e", return_atom_feas=True, return_crystal_feas=True)
        sl = slice(bounds[i], bounds[i + 1])
        np.testing.assert_allclose(ds["chgnet-0.3.0:conv3"].values[sl], own["atom_fea"], atol=1e-5)
        np.testing.assert_allclose(ds["chgnet-0.3.0:last"].values[sl].sum(0), own["crystal_fea"], atol=1e-4)


def test_chgnet_020_last_is_conv4_output(featurizers):
    f = featurizers["chgnet-0.2.0"]
    assert f.model.readout_norm is None and f.layers == ["conv1", "conv2", "conv3", "last"]
    seen = []
    handle = f.model.atom_conv_layers[-1].register_forward_hook(lambda m, a, out: seen.append(out.detach().numpy()))
    try:
        ds = f.featurize(small_frames()[:1], ["last"], progress=False, cache=False)
    finally:
        handle.remove()
    np.testing.assert_array_equal(ds["chgnet-0.2.0:last"].values, seen[0])


def test_rotation_leaves_every_layer_unchanged(featurizers):
    assert_rotation_invariant(featurizers["chgnet-0.3.0"], small_frames())


def test_batching_does_not_change_features(featurizers):
    f = featurizers["chgnet-0.3.0"]
    frames = small_frames()
    one = f.featurize(frames, ["last"], batch_size=1, progress=False, cache=False)
    many = f.featurize(frames, ["last"], batch_size=4, progress=False, cache=False)
    np.testing.assert_allclose(one["chgnet-0.3.0:last"].values, many["chgnet-0.3.0:last"].values, atol=1e-5)


def test_slab_without_enough_vacuum_is_refused(featurizers):
    slab = fcc111("Al", size=(1, 1, 3), vacuum=1.0)
    with pytest.raises(ValueError, match="vacuum"):
        featurizers["chgnet-0.3.0"].featurize([slab], progress=False, cache=False)
