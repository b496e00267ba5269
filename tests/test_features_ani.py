"""ANI-1x features: the hooked pass is torchani's own member, layers are what they claim, invariance."""

import contextlib
import io
import os
import warnings

import numpy as np
import pytest
from _geometry import assert_rotation_invariant
from ase.build import bulk, graphene, molecule
from ase.units import Hartree

pytest.importorskip("torchani")
import torch  # noqa: E402

from latentatlas.features import UnsupportedElementError, get_featurizer  # noqa: E402
from latentatlas.features.ani import ani1x_resources  # noqa: E402

MEMBERS = range(8)


def molecules():
    return [molecule(m) for m in ("CH4", "H2O", "C6H6", "CH3CH2OH", "CH3CONH2", "NH3")]


def crystals():
    """Periodic H/C/N/O frames: diamond with atoms moved out of the cell, CH4 in a small box, a graphene sheet."""
    diamond = bulk("C", "diamond", a=3.567).repeat((2, 1, 1))
    diamond.rattle(0.05, seed=2)
    diamond.positions[:2] += diamond.cell[0] * 4.3 - diamond.cell[2] * 2  # far outside the cell: must be wrapped
    methane = molecule("CH4", cell=[4.5, 4.5, 4.5], pbc=True)  # images within the 5.2 Å cutoff
    sheet = graphene(vacuum=None)  # periodic in-plane, no cell vector along z
    return [diamond, methane, sheet]


@pytest.fixture(scope="module")
def featurizers():
    return {i: get_featurizer(f"ani-1x-{i}") for i in MEMBERS}


@pytest.fixture(scope="module")
def own_models(tmp_path_factory):
    """``torchani.models.ANI1x(periodic_table_index=True, model_index=i)``, torchani's public members.

    The wheel's ``ani-1x_8x.info`` is empty, so torchani would download; its documented
    fallback is an info file in ``~/.local/torchani``, given here (pointing at the
    wheel's files) under a temporary HOME.
    """
    import torchani

    home = tmp_path_factory.mktemp("home")
    local = home / ".local" / "torchani"
    local.mkdir(parents=True)
    (local / "ani-1x_8x").symlink_to(ani1x_resources())
    (local / "ani-1x_8x.info").write_text("ani-1x_8x/rHCNO-5.2R_16-3.5A_a4-8.params\nani-1x_8x/sae_linfit.dat\nani-1x_8x/train\n8\n")
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):  # torchani prints a path
        mp.setenv("HOME", str(home))
        assert os.path.isfile(os.path.expanduser("~/.local/torchani/ani-1x_8x.info"))  # never the download branch
        return {i: torchani.models.ANI1x(periodic_table_index=True, model_index=i) for i in MEMBERS}


def own_energies(model, frames):
    """Energies (eV) from torchani's ASE calculator of the member (it wraps periodic frames itself)."""
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = model.ase()
        out.append(atoms.get_potential_energy())
    return np.array(out)


@pytest.mark.parametrize("member", MEMBERS)
def test_energy_of_hooked_pass_equals_torchani_member(featurizers, own_models, member):
    f = featurizers[member]
    frames = molecules() + crystals()
    ds, energy = f.featurize_with_energy(frames, progress=False)
    n_atoms = np.array([len(a) for a in frames])
    np.testing.assert_allclose(energy / n_atoms, own_energies(own_models[member], frames) / n_atoms, rtol=0, atol=1e-5)
    assert set(ds.data_vars) == {f"ani-1x-{member}:aev", f"ani-1x-{member}:last"}
    assert ds[f"ani-1x-{member}:aev"].shape == (n_atoms.sum(), 384) and ds[f"ani-1x-{member}:last"].shape == (n_atoms.sum(), 96)


def test_weights_are_the_members_own(featurizers, own_models):
    ours = featurizers[3].model[2].state_dict()
    theirs = own_models[3].neural_networks.state_dict()
    assert set(ours) == set(theirs)
    for k, v in ours.items():
        assert torch.equal(v, theirs[k]), k


def test_layers_are_the_aev_and_the_energy_head_input(featurizers, own_models):
    # independent of our hooks: torchani's AEV, and its element heads applied to "last"
    f, own = featurizers[0], own_models[0]
    frames = molecules()
    ds, energy = f.featurize_with_energy(frames, progress=False)
    bounds = np.cumsum([0] + [len(a) for a in frames])
    heads = {z: own.neural_networks[s][-1] for z, s in zip((1, 6, 7, 8), own.species)}
    sae = dict(zip((1, 6, 7, 8), own.energy_shifter.self_energies.tolist()))
    for i, atoms in enumerate(frames):
        species = torch.tensor(atoms.numbers).unsqueeze(0)
        coordinates = torch.tensor(atoms.positions, dtype=torch.float32).unsqueeze(0)
        _, aev = own.aev_computer(own.species_converter((species, coordinates)))
        sl = slice(bounds[i], bounds[i + 1])
        np.testing.assert_allclose(ds["ani-1x-0:aev"].values[sl], aev[0].numpy(), atol=1e-6)
        last = torch.from_numpy(ds["ani-1x-0:last"].values[sl])
        atomic = [heads[z](last[k]).item() + sae[z] for k, z in enumerate(atoms.numbers)]
        assert sum(atomic) * Hartree == pytest.approx(energy[i], abs=1e-5 * len(atoms))


def test_rotation_leaves_every_layer_unchanged(featurizers):
    assert_rotation_invariant(featurizers[0], molecules() + crystals())


def test_periodic_frame_equals_its_supercell(featurizers):
    # torchani's PBC path against itself: every atom of a 2x2x2 supercell sees what it saw in the cell
    f = featurizers[0]
    diamond = bulk("C", "diamond", a=3.567)
    diamond.rattle(0.05, seed=3)
    ds, energy = f.featurize_with_energy([diamond, diamond.repeat(2)], progress=False)
    for layer in f.layers:
        X = ds[f"ani-1x-0:{layer}"].values
        np.testing.assert_allclose(np.tile(X[:2], (8, 1)), X[2:], atol=1e-5 * np.abs(X).max())
    assert energy[1] == pytest.approx(8 * energy[0], abs=1e-5 * 16)


def test_padding_and_batching_do_not_change_features(featurizers):
    f = featurizers[0]
    frames = molecules() + crystals()
    one = f.featurize(frames, batch_size=1, progress=False, cache=False)
    many = f.featurize(frames, batch_size=len(frames), progress=False, cache=False)
    for name in one.data_vars:
        np.testing.assert_allclose(one[name].values, many[name].values, atol=1e-5)


def test_members_differ_but_share_the_aev(featurizers):
    frames = molecules()[:3]
    ds = {i: f.featurize_with_energy(frames, progress=False) for i, f in featurizers.items()}
    energies = np.array([e for _, e in ds.values()])
    assert len({f.model_version for f in featurizers.values()}) == 8
    for i in MEMBERS:
        for j in range(i + 1, 8):
            np.testing.assert_array_equal(ds[i][0][f"ani-1x-{i}:aev"].values, ds[j][0][f"ani-1x-{j}:aev"].values)
            assert np.abs(ds[i][0][f"ani-1x-{i}:last"].values - ds[j][0][f"ani-1x-{j}:last"].values).max() > 1e-2
            assert np.abs(energies[i] - energies[j]).max() > 1e-4


def test_unsupported_elements_are_named_or_skipped(featurizers):
    f = featurizers[0]
    frames = [molecule("CH4"), molecule("SiH4"), molecule("CH3Cl")]
    with pytest.raises(UnsupportedElementError, match=r"2 of 3 structures.*#1 H4Si: Si; #2 CH3Cl: Cl"):
        f.featurize(frames, progress=False, cache=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = f.featurize(frames, progress=False, cache=False, skip_unsupported=True)
    assert "skipped 2 of 3" in str(caught[0].message)
    assert ds.sizes["structure"] == 1 and ds.attrs["skipped_frames"].tolist() == [1, 2]


def test_unknown_member_and_resources_are_refused(tmp_path):
    from latentatlas.features.ani import ANIFeaturizer

    with pytest.raises(ValueError, match=r"member 8 does not exist.*members: \[0, 1, 2, 3, 4, 5, 6, 7\]"):
        ANIFeaturizer(8)
    with pytest.raises(FileNotFoundError, match="not an ANI NeuroChem folder"):
        ANIFeaturizer(0, resources=tmp_path)


def test_reproduction_leaves_ani_out_unless_named():
    # ANI-1x covers H/C/N/O only: by default it would cut the benchmark down to organic molecules
    from latentatlas.reproduce import Settings

    assert not any(m.startswith("ani-") for m in Settings().resolved_models())
    assert Settings(models=("ani-1x-0", "ani-1x-1")).resolved_models() == ("ani-1x-0", "ani-1x-1")
