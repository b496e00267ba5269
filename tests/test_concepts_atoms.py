"""Chemical concepts per atom, and the concept analysis of real uMLIP features."""

import numpy as np
import pytest
from ase.build import bulk, fcc111, molecule

from latentatlas.concepts.atoms import analyse_atoms, atom_concepts, atoms_demo


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
