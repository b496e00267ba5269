"""Chemical concepts per atom, and the concept analysis of real uMLIP features."""

import numpy as np
import pytest
from ase.build import bulk, fcc111, molecule

from latentatlas.concepts.atoms import analyse_atoms, atom_concepts
from latentatlas.demos.atoms import atoms_demo


def test_atom_concepts_of_known_structures():
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=7.5)
    ch4 = molecule("CH4")
    ch4.center(vacuum=5.0)
    c = atom_concepts([cu, nacl, slab, ch4])
    n = [len(cu), len(nacl), len(slab), len(ch4)]
    parts = {k: np.split(v, np.cumsum(n)[:-1]) for k, v in c.items()}
    assert (parts["coordination"][0] == "9+").all() and not parts["surface"][0].any()
    assert parts["block"][1].tolist() == ["s", "p"] and parts["metal"][1].tolist() == [True, False]
    assert (parts["coordination"][1] == "5-8").all()
    z = slab.positions[:, 2]
    outer = np.isclose(z, z.max()) | np.isclose(z, z.min())
    assert (parts["surface"][2] == outer).all()
    assert (parts["periodicity"][2] == "2d").all() and (parts["periodicity"][3] == "0d").all()
    carbon = ch4.numbers == 6
    assert parts["coordination"][3][carbon].tolist() == ["0-4"] and not parts["surface"][3][carbon].any()
    assert parts["surface"][3][~carbon].all() and (parts["block"][3][~carbon] == "s").all()
    with pytest.raises(ValueError, match="no structure given"):
        atom_concepts([])


@pytest.fixture(scope="module")
def chgnet_result():
    return atoms_demo(["chgnet-0.3.0"], n_permutations=5, progress=False)


def test_chgnet_layers_encode_chemistry(chgnet_result):
    r = chgnet_result
    assert [str(v) for v in r["layer"].values][0] == "chgnet-0.3.0:conv1"
    assert str(r["layer"].values[-1]) == "chgnet-0.3.0:last"
    assert {"metal", "surface", "block=d", "coordination=9+", "periodicity=0d"} <= set(r["concept"].values)
    assert sorted(r["class"].values) == ["bulk", "cluster", "molecule", "random", "rattled", "surface"]
    # the element is CHGNet's input embedding: whether an atom is a metal is read off every layer
    assert (r["probe_accuracy"].sel(concept="metal") > 0.9).all()
    # samples are atoms: the held-out atoms keep the structure they belong to
    assert r["sample_structure"].shape == r["sample"].shape
    assert r.attrs["samples"] == "atoms" and r.attrs["fingerprint"].startswith("sha256:")


def test_analyse_atoms_checks_frames(chgnet_result):
    from latentatlas.features import get_featurizer
    from latentatlas.structures import builtin_frames

    frames = builtin_frames(small=True)
    features = get_featurizer("chgnet-0.3.0").featurize(frames, ["conv1"], progress=False)
    with pytest.raises(ValueError, match="fingerprints differ"):
        analyse_atoms(features, frames[:-1])
    with pytest.raises(KeyError, match=r"unknown layer name\(s\) \['conv1'\].*chgnet-0.3.0:conv1"):
        analyse_atoms(features, layers=["conv1"])


def test_energy_gradients_match_a_finite_difference():
    """d E / d(features of one atom) along a direction, against shifting that atom's features in the model."""
    import torch

    from latentatlas.concepts.atoms import energy_gradients
    from latentatlas.features import get_featurizer

    frames = [bulk("NaCl", "rocksalt", a=5.64), fcc111("Cu", size=(2, 2, 3), vacuum=7.5)]
    grads = energy_gradients(frames, "chgnet-0.3.0", ["conv2", "last"], progress=False)
    assert list(grads.data_vars) == ["chgnet-0.3.0:conv2", "chgnet-0.3.0:last"]
    assert grads["chgnet-0.3.0:conv2"].shape == (2 + 12, 1, 64) and grads["output"].values.tolist() == ["energy"]
    featurizer = get_featurizer("chgnet-0.3.0")
    net = featurizer.model
    v = torch.as_tensor(np.random.default_rng(0).normal(size=64))
    atom, eps = 5, 0.02  # an atom of the slab (frame 1); float32 energies need a wide step

    def energy(layer_module, shift, pre):
        def add(rows):
            rows = rows.clone()
            rows[atom - 2] += shift * v.to(rows.dtype)
            return rows

        hook = (layer_module.register_forward_pre_hook(lambda m, a: (add(a[0]),)) if pre
                else layer_module.register_forward_hook(lambda m, a, out: add(out)))
        try:
            with torch.no_grad():
                return float(net(featurizer.graphs(frames[1:]), task="e")["e"][0]) * len(frames[1])
        finally:
            hook.remove()

    for name, module, pre in (("conv2", net.atom_conv_layers[1], False), ("last", net.mlp, True)):
        fd = (energy(module, eps, pre) - energy(module, -eps, pre)) / (2 * eps)
        ours = float(grads[f"chgnet-0.3.0:{name}"].values[atom, 0] @ v.numpy())
        assert ours == pytest.approx(fd, rel=2e-3)


def test_energy_sensitivity_per_layer(chgnet_result):
    r = chgnet_result
    assert r["derivative"].dims == ("layer", "concept", "class")
    assert np.isfinite(r["derivative"]).all() and np.isfinite(r["derivative_pvalue"]).all()
    assert ((r["sensitivity"] >= 0) & (r["sensitivity"] <= 1)).all()
    assert ((r["derivative_pvalue"] >= 0) & (r["derivative_pvalue"] <= 1)).all()
    # the energy is a function of the energy head's input alone: along the element-block
    # directions it moves, in some subset, measurably away from zero
    assert float(np.abs(r["derivative"].sel(concept="block=d")).max()) > 1e-4
