"""Featuriser plumbing with the real SOAP backend: registry, cache, Dataset contract, bad input."""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from scipy.spatial.transform import Rotation

pytest.importorskip("featomic")

from latentatlas.features import get_featurizer, list_featurizers  # noqa: E402
from latentatlas.frames import overlapping_frames, periodic_box  # noqa: E402
from latentatlas.features.cache import cache_dir  # noqa: E402
from latentatlas.frames import fingerprint  # noqa: E402
from latentatlas.io import load, save  # noqa: E402


def small_frames():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    cu.rattle(0.05, seed=1)
    return [cu, molecule("H2O"), fcc111("Al", size=(1, 1, 3), vacuum=7.5)]


@pytest.fixture(scope="module")
def soap():
    return get_featurizer("soap", max_radial=3, max_angular=2)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class CountingForward:
    """Wraps a featuriser's real forward pass to count calls (and optionally stop a run)."""

    def __init__(self, featurizer, monkeypatch, interrupt_at=None):
        self.calls = 0
        self.forward = featurizer._forward
        self.interrupt_at = interrupt_at
        monkeypatch.setattr(featurizer, "_forward", self)

    def __call__(self, frames, layers):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return self.forward(frames, layers)


def test_registry_names_and_errors():
    names = list_featurizers()
    for expected in ["chgnet-0.3.0", "chgnet-0.2.0", "chgnet-r2scan", "sevennet-0", "sevennet-0-22may2024",
                     "sevennet-l3i5", "sevennet-mf-0-pbe", "sevennet-mf-0-r2scan", "soap"]:
        assert expected in names
    assert set(list_featurizers(available_only=True)) <= set(names)
    with pytest.raises(KeyError, match="available: chgnet-0.3.0"):
        get_featurizer("mace-mp-0")


def test_dataset_contract_and_netcdf_roundtrip(soap, cache, tmp_path):
    frames = small_frames()
    ds = soap.featurize(frames, progress=False)
    var = ds["soap:power_spectrum"]
    assert var.dims == ("atom", "soap:power_spectrum:feature")
    assert var.shape == (sum(len(a) for a in frames), 4 * 4 * 3)
    assert {"model", "model_version", "layer", "backend", "invariant", "description"} <= set(var.attrs)
    assert var.attrs["model"] == "soap" and var.attrs["backend"] == "featomic"
    assert ds.attrs["fingerprint"] == fingerprint(frames)
    back = load(save(ds, tmp_path / "f.nc"), frames=frames)
    np.testing.assert_array_equal(back["soap:power_spectrum"].values, var.values)


def test_second_run_is_served_from_cache(soap, cache, monkeypatch):
    frames = small_frames()
    first = soap.featurize(frames, progress=False)
    assert cache_dir() == cache and len(list(cache.rglob("*.nc"))) == 1
    counter = CountingForward(soap, monkeypatch)
    second = soap.featurize(frames, progress=False)
    assert counter.calls == 0
    np.testing.assert_array_equal(first["soap:power_spectrum"].values, second["soap:power_spectrum"].values)
    # other frames are another key: computed, not served
    soap.featurize(frames[:1], progress=False)
    assert counter.calls == 1


def test_interrupted_run_leaves_no_cache_entry(soap, cache, monkeypatch):
    CountingForward(soap, monkeypatch, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        soap.featurize(small_frames(), batch_size=1, progress=False)
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()]


def test_corrupt_cache_entry_is_recomputed(soap, cache):
    frames = small_frames()
    good = soap.featurize(frames, progress=False)["soap:power_spectrum"].values
    (entry,) = cache.rglob("*.nc")
    entry.write_bytes(b"not netcdf")
    again = soap.featurize(frames, progress=False)["soap:power_spectrum"].values
    np.testing.assert_array_equal(good, again)


def test_soap_is_rotation_invariant_and_species_agnostic(soap):
    frames = small_frames()
    turned = []
    for seed, atoms in enumerate(frames):
        R = Rotation.random(random_state=seed).as_matrix()
        new = atoms.copy()
        new.positions = atoms.positions @ R.T
        new.cell = atoms.cell.array @ R.T
        turned.append(new)
    a = soap.featurize(frames, progress=False, cache=False)["soap:power_spectrum"].values
    b = soap.featurize(turned, progress=False, cache=False)["soap:power_spectrum"].values
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()
    swapped = frames[1].copy()
    swapped.symbols = "SH2"
    c = soap.featurize([swapped], progress=False, cache=False)["soap:power_spectrum"].values
    np.testing.assert_allclose(c, a[4:7], atol=1e-10)  # geometry only (water follows 4 Cu atoms)


def test_boxed_molecule_equals_featomic_on_the_isolated_molecule(soap):
    # featomic handles pbc=False itself: an independent check of the boxing
    import featomic

    water = molecule("H2O")
    ours = soap.featurize([water], progress=False, cache=False)["soap:power_spectrum"].values
    blind = water.copy()
    blind.numbers[:] = 1
    ref = featomic.SoapPowerSpectrum(**soap.hypers).compute(blind).keys_to_properties(["neighbor_1_type", "neighbor_2_type"])
    np.testing.assert_allclose(ours, ref.block().values, atol=1e-10)


def test_soap_equals_plain_featomic_on_the_same_systems(soap):
    # bit for bit, in input order, across batches: our read-out of featomic's output is exact
    import featomic

    frames = [*small_frames(), bulk("NaCl", "rocksalt", a=5.64), molecule("CH4")]
    ours = soap.featurize(frames, batch_size=2, progress=False, cache=False)["soap:power_spectrum"].values
    blind = []
    for atoms in frames:
        positions, cell = periodic_box(atoms, soap.cutoff)
        blind.append(Atoms(numbers=np.ones(len(atoms)), positions=positions, cell=cell, pbc=True))
    tensor = featomic.SoapPowerSpectrum(**soap.hypers).compute(blind)
    ref = tensor.keys_to_samples("center_type").keys_to_properties(["neighbor_1_type", "neighbor_2_type"]).block()
    assert ref.samples.names[:2] == ["system", "atom"]
    order = np.lexsort((ref.samples.values[:, 1], ref.samples.values[:, 0]))
    np.testing.assert_array_equal(ours, ref.values[order])


def test_overlapping_frames_agrees_with_ase_neighbor_list():
    # random cells (skewed, partly periodic, some without vectors along open axes) where
    # atoms often meet only through periodic images; both sides of the 0.5 and 1.5 Å cutoffs
    from ase.neighborlist import neighbor_list

    rng = np.random.default_rng(0)
    frames = []
    while len(frames) < 300:
        cell = rng.normal(size=(3, 3)) * rng.uniform(0.4, 3)
        if abs(np.linalg.det(cell)) < 0.2 * np.prod(np.linalg.norm(cell, axis=1)):
            continue
        pbc = rng.random(3) < 0.7
        if rng.random() < 0.2:
            cell[~pbc] = 0
        n = rng.integers(1, 5)
        frames.append(Atoms(f"H{n}", positions=rng.uniform(-1, 2, (n, 3)) @ cell + rng.normal(size=(n, 3)), cell=cell, pbc=pbc))
    for cutoff in (0.5, 1.5):
        expected = [i for i, atoms in enumerate(frames) if len(neighbor_list("i", atoms, cutoff))]
        assert 10 < len(expected) < len(frames) - 10
        assert overlapping_frames(frames, cutoff).tolist() == expected


@pytest.mark.parametrize(
    "frames, message",
    [
        ([], "no structure"),
        ([Atoms()], "has no atoms"),
        ([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.1]])], "overlapping"),
        ([Atoms("H2", positions=[[0, 0, 0], [0, 0, 4.8]], cell=[5, 5, 5], pbc=True)], "0.200 Å apart"),
        ([Atoms("H", cell=[0.3, 5, 5], pbc=True)], "0.300 Å apart"),
        ([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]], pbc=True)], "no cell vector"),
        ([fcc111("Al", size=(1, 1, 3), vacuum=1.0)], "vacuum"),
    ],
)
def test_bad_structures_are_refused_and_nothing_is_cached(soap, cache, frames, message):
    with pytest.raises(ValueError, match=message):
        soap.featurize(frames, progress=False)
    assert not cache.exists() or not list(cache.rglob("*.nc"))


def test_bad_arguments(soap):
    with pytest.raises(KeyError, match="available layers"):
        soap.featurize(small_frames(), ["conv1"], progress=False, cache=False)
    with pytest.raises(ValueError, match="batch_size"):
        soap.featurize(small_frames(), batch_size=0, progress=False, cache=False)
    with pytest.raises(TypeError, match="ase.Atoms"):
        soap.featurize([Path("x.xyz")], progress=False, cache=False)
    with pytest.raises(TypeError, match="no energy"):
        soap.featurize_with_energy(small_frames(), progress=False)
