"""SevenNet features: hooked pass = ASE calculator energy, invariant gates, unsupported elements."""

import warnings

import numpy as np
import pytest
from _geometry import assert_rotation_invariant
from ase import Atoms
from ase.build import bulk, molecule
from scipy.spatial.transform import Rotation

pytest.importorskip("sevenn")

from latentatlas.features import UnsupportedElementError, get_featurizer  # noqa: E402
from latentatlas.features.sevennet import invariants  # noqa: E402
from latentatlas.frames import fingerprint  # noqa: E402


def small_frames():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    cu.rattle(0.05, seed=1)
    return [cu, bulk("NaCl", "rocksalt", a=5.64), molecule("CH4")]


def calculator_energies(model, modal, frames):
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = SevenNetCalculator(model, modal=modal, device="cpu")
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        out.append(atoms.get_potential_energy())
    return np.array(out)


@pytest.fixture(scope="module")
def sevennet0():
    return get_featurizer("sevennet-0")


@pytest.mark.parametrize(
    "name, model, modal",
    [
        ("sevennet-0", "7net-0", None),
        ("sevennet-mf-0-pbe", "7net-mf-0", "PBE"),
        pytest.param("sevennet-mf-0-r2scan", "7net-mf-0", "R2SCAN", marks=pytest.mark.slow),
        pytest.param("sevennet-0-22may2024", "7net-0_22may2024", None, marks=pytest.mark.slow),
        pytest.param("sevennet-l3i5", "7net-l3i5", None, marks=pytest.mark.slow),
    ],
)
def test_energy_of_hooked_pass_equals_ase_calculator(sevennet0, name, model, modal):
    f = sevennet0 if name == "sevennet-0" else get_featurizer(name)
    frames = small_frames()
    _, energy = f.featurize_with_energy(frames, progress=False)
    n_atoms = np.array([len(a) for a in frames])
    np.testing.assert_allclose(energy / n_atoms, calculator_energies(model, modal, frames) / n_atoms, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["sevennet-0", pytest.param("sevennet-l3i5", marks=pytest.mark.slow)])
def test_rotation_leaves_every_layer_unchanged(sevennet0, name):
    assert_rotation_invariant(sevennet0 if name == "sevennet-0" else get_featurizer(name), small_frames())


def test_gate_layers_are_scalars_plus_channel_norms(sevennet0):
    f = sevennet0
    assert f.layers == ["gate0", "gate1", "gate2", "gate3", "last"]
    ds = f.featurize(small_frames()[:1], ["gate0", "last"], progress=False, cache=False)
    assert ds["sevennet-0:gate0"].shape[1] == 128 + 64 + 32
    assert ds["sevennet-0:last"].shape[1] == 128
    assert (ds["sevennet-0:gate0"].values[:, 128:] >= 0).all()  # norms


def test_invariants_under_wigner_rotation():
    # independent of any model: rotate random irreps features with e3nn's Wigner matrices
    import torch
    from e3nn import o3

    irreps = o3.Irreps("4x0e+3x1e+2x2e+2x3e")
    x = torch.randn(5, irreps.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    D = irreps.D_from_matrix(torch.as_tensor(Rotation.random(random_state=3).as_matrix()))
    inv, inv_rot = invariants(x, irreps), invariants(x @ D.T, irreps)
    assert inv.shape == (5, irreps.num_irreps)
    torch.testing.assert_close(inv, inv_rot, atol=1e-10, rtol=0)
    torch.testing.assert_close(inv[:, :4], x[:, :4])
    torch.testing.assert_close(inv[:, 4], torch.linalg.vector_norm(x[:, 4:7], dim=1))


def test_unsupported_elements_error_and_skip(sevennet0):
    polonium = Atoms("Po2", positions=[[0, 0, 0], [0, 0, 2.8]])
    frames = [*small_frames(), polonium]
    with pytest.raises(UnsupportedElementError, match=r"#3 Po2: Po"):
        sevennet0.featurize(frames, ["last"], progress=False, cache=False)
    with pytest.warns(UserWarning, match="skipped 1 of 4"):
        ds = sevennet0.featurize(frames, ["last"], progress=False, cache=False, skip_unsupported=True)
    assert ds.attrs["n_skipped"] == 1 and list(ds.attrs["skipped_frames"]) == [3]
    assert ds.attrs["fingerprint"] == fingerprint(frames[:3])
    assert ds.sizes["atom"] == sum(len(a) for a in frames[:3])


def test_builtin_benchmark_elements_are_supported(sevennet0):
    from latentatlas.structures import builtin_frames

    assert sevennet0.unsupported(builtin_frames()) == {}
    assert get_featurizer("chgnet-0.3.0").unsupported(builtin_frames()) == {}
