"""metatomic model files as featurisers: real PET and MACE exports trained here, and a tiny exported model.

The shipped files tests/data/metatomic/{pet,mace}.pt were trained with metatrain 2026.4.1
by ``make models`` (tools/train_metatomic_models.sh). Their reference is metatomic's own
ASE calculator, which evaluates the same file one structure at a time.
"""

from pathlib import Path

import numpy as np
import pytest
from _geometry import assert_rotation_invariant
from ase.build import bulk, molecule

pytest.importorskip("metatomic.torch")
pytest.importorskip("vesin")

from latentatlas.cli import main  # noqa: E402
from latentatlas.features import UnsupportedElementError, get_featurizer, get_featurizers  # noqa: E402
from latentatlas.io import load  # noqa: E402
from latentatlas.structures import builtin_frames  # noqa: E402

DATA = Path(__file__).parent / "data" / "metatomic"
MODELS = {"pet": DATA / "pet.pt", "mace": DATA / "mace.pt"}
LAYERS = {"pet": ["feature", "last"], "mace": ["mace_features", "last"]}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:the 'features' output name is deprecated")


def frames():
    """Bulk, rattled, surface, cluster and molecule frames of the benchmark (elements every model knows)."""
    small = builtin_frames(small=True)
    picked = {}
    for atoms in small:
        picked.setdefault(atoms.info["subset"], atoms)
    return list(picked.values())


@pytest.fixture(scope="module")
def featurizers():
    return {name: get_featurizer(str(path)) for name, path in MODELS.items()}


def calculator_energies(path, frames):
    from metatomic_ase import MetatomicCalculator

    calc = MetatomicCalculator(str(path), do_gradients_with_energy=False)
    energies = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
    return np.array(energies)


@pytest.mark.parametrize("name", MODELS)
def test_energy_of_feature_pass_equals_metatomic_ase_calculator(featurizers, name):
    f = featurizers[name]
    fr = frames()
    ds, energy = f.featurize_with_energy(fr, batch_size=3, progress=False)
    n_atoms = np.array([len(a) for a in fr])
    np.testing.assert_allclose(energy / n_atoms, calculator_energies(MODELS[name], fr) / n_atoms, rtol=0, atol=1e-6)
    assert f.layers == LAYERS[name] and f.name == f"tiny-{name}"
    assert list(ds.data_vars) == [f"{f.name}:{layer}" for layer in LAYERS[name]]
    for var in ds.data_vars.values():
        assert var.shape[0] == n_atoms.sum() and np.isfinite(var.values).all()


@pytest.mark.parametrize("name", MODELS)
def test_features_equal_the_calculator_per_atom_outputs(featurizers, name):
    # independent reference: the calculator's run_model, one structure per call
    from metatomic.torch import ModelOutput
    from metatomic_ase import MetatomicCalculator

    f = featurizers[name]
    fr = frames()
    ds = f.featurize(fr, progress=False, cache=False)
    calc = MetatomicCalculator(str(MODELS[name]))
    outputs = {"feature": "feature", "mace_features": "mtt::aux::mace_features", "last": "mtt::aux::energy_last_layer_features"}
    bounds = np.cumsum([0] + [len(a) for a in fr])
    for i, atoms in enumerate(fr):
        out = calc.run_model(atoms, {outputs[layer]: ModelOutput(sample_kind="atom") for layer in LAYERS[name]})
        for layer in LAYERS[name]:
            tensor = out[outputs[layer]]
            # MACE's node features are spherical: scalars kept, l > 0 channels -> norms over m
            expected = np.concatenate([
                np.linalg.norm(b.values.detach().numpy(), axis=1) if "o3_lambda" in key.names and int(key["o3_lambda"]) > 0
                else b.values.detach().numpy().reshape(len(atoms), -1)
                for key, b in tensor.items()
            ], axis=1)
            np.testing.assert_allclose(ds[f"{f.name}:{layer}"].values[bounds[i] : bounds[i + 1]], expected, atol=1e-10)


def test_mace_features_are_rotation_invariant(featurizers):
    # PET is not rotation invariant by construction (see the backend's docstring): not tested
    assert_rotation_invariant(featurizers["mace"], frames())


def test_model_file_features_claim_no_invariance(featurizers):
    ds = featurizers["pet"].featurize(frames()[:2], ["last"], progress=False, cache=False)
    assert "invariant" not in ds[f"{featurizers['pet'].name}:last"].attrs


@pytest.mark.parametrize("name", MODELS)
def test_permutation_invariance(featurizers, name):
    f = featurizers[name]
    fr = frames()
    rng = np.random.default_rng(0)
    orders = [rng.permutation(len(a)) for a in fr]
    a = f.featurize(fr, progress=False, cache=False)
    b = f.featurize([atoms[order] for atoms, order in zip(fr, orders, strict=True)], progress=False, cache=False)
    bounds = np.cumsum([0] + [len(x) for x in fr])
    rows = np.concatenate([start + order for start, order in zip(bounds, orders, strict=False)])
    for var in a.data_vars:
        np.testing.assert_allclose(b[var].values, a[var].values[rows], atol=1e-9 * np.abs(a[var].values).max())


@pytest.mark.parametrize("name", MODELS)
def test_unknown_element_is_a_clear_error_and_can_be_skipped(featurizers, name):
    f = featurizers[name]
    assert 8 not in f.supported_species  # the training set has no oxygen
    fr = [bulk("Cu", "fcc", a=3.6), molecule("H2O"), bulk("Si", "diamond", a=5.43)]
    with pytest.raises(UnsupportedElementError, match=r"#1 H2O: O.*--skip-unsupported"):
        f.featurize(fr, progress=False)
    with pytest.warns(UserWarning, match="skipped 1 of 3"):
        ds = f.featurize(fr, progress=False, skip_unsupported=True)
    assert ds.sizes["structure"] == 2 and list(ds.attrs["skipped_frames"]) == [1]


def test_name_version_and_cache_come_from_the_file(featurizers):
    f = featurizers["pet"]
    assert f.backend == "metatomic" and f.name
    assert "pet.pt (weights " in f.model_version
    fr = frames()[:2]
    first = f.featurize(fr, progress=False)
    again = get_featurizer(str(MODELS["pet"]))
    again._forward = None  # a cache hit never calls the model
    second = again.featurize(fr, progress=False)
    for var in first.data_vars:
        np.testing.assert_array_equal(first[var].values, second[var].values)


def test_legacy_features_output_and_variants(tmp_path):
    from ase.neighborlist import neighbor_list

    from _metatomic_models import CUTOFF, export_pair_model

    export_pair_model(tmp_path / "legacy.pt", feature_outputs=("features", "features/wide"))
    f = get_featurizer(str(tmp_path / "legacy.pt"))
    assert f.name == "pair-features" and f.layers == ["feature", "feature-wide"]
    fr = [molecule("CH4"), molecule("C6H6"), bulk("C", "diamond", a=3.57)]
    ds, energy = f.featurize_with_energy(fr, progress=False)
    # independent reference: the densities from ase's neighbour list
    expected = []
    for atoms in fr:
        i, d = neighbor_list("id", atoms, CUTOFF)
        smooth = 0.5 * (np.cos(np.pi * d / CUTOFF) + 1)
        X = np.zeros((len(atoms), 2))
        np.add.at(X, i, np.column_stack([np.exp(-d) * smooth, np.exp(-0.25 * d**2) * smooth]))
        expected.append(X)
    expected = np.concatenate(expected)
    np.testing.assert_allclose(ds["pair-features:feature"].values, expected, rtol=1e-12)
    np.testing.assert_allclose(ds["pair-features:feature-wide"].values, 2 * expected, rtol=1e-12)
    np.testing.assert_allclose(energy, calculator_energies(tmp_path / "legacy.pt", fr), rtol=0, atol=1e-10)
    assert_rotation_invariant(f, fr)


def test_current_feature_name_and_bad_files(tmp_path):
    from _metatomic_models import export_pair_model

    export_pair_model(tmp_path / "current.pt", feature_outputs=("feature",), name="")
    f = get_featurizer(str(tmp_path / "current.pt"))
    assert f.name == "current" and f.layers == ["feature"]  # no metadata name: the file stem
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load .*junk.pt as a metatomic model"):
        get_featurizer(str(tmp_path / "junk.pt"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_featurizer(str(tmp_path / "missing.pt"))


def test_same_metadata_name_is_told_apart_by_file_name(tmp_path):
    from _metatomic_models import export_pair_model

    export_pair_model(tmp_path / "a.pt")
    export_pair_model(tmp_path / "b.pt")
    assert [f.name for f in get_featurizers([str(tmp_path / "a.pt"), str(tmp_path / "b.pt")])] == ["a", "b"]


def test_cli_featurize_model_file_with_a_shipped_model(tmp_path, capsys):
    out = tmp_path / "f.nc"
    code = main(["featurize", "--builtin", "--small", "-m", str(MODELS["pet"]), "-m", "chgnet-0.3.0",
                 "--layers", "last", "--extensions-dir", str(tmp_path), "-o", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    ds = load(out)
    pet = get_featurizer(str(MODELS["pet"]))
    assert set(ds.data_vars) == {f"{pet.name}:last", "chgnet-0.3.0:last"}
    assert ds.sizes["structure"] == 52
    assert main(["featurize", "--builtin", "-m", str(tmp_path / "none.pt"), "-o", str(tmp_path / "g.nc")]) == 2
    assert "none.pt does not exist" in capsys.readouterr().err


def test_reproduce_settings_accept_model_files(tmp_path):
    from latentatlas.reproduce import Settings
    from latentatlas.reproduce.analyses import unrelated_pairs

    # a model file is its own architecture: compared with every other uMLIP, never with SOAP
    assert [p[:2] for p in unrelated_pairs(["tiny-pet", "tiny-mace", "chgnet-0.3.0", "chgnet-r2scan", "soap"])] == [
        ("tiny-pet", "tiny-mace"), ("tiny-pet", "chgnet-0.3.0"), ("tiny-pet", "chgnet-r2scan"),
        ("tiny-mace", "chgnet-0.3.0"), ("tiny-mace", "chgnet-r2scan"),
    ]
    assert Settings(models=(str(MODELS["pet"]), "chgnet-0.3.0")).resolved_models() == (str(MODELS["pet"]), "chgnet-0.3.0")
    with pytest.raises(FileNotFoundError, match="do not exist"):
        Settings(models=(str(tmp_path / "x.pt"), "chgnet-0.3.0")).resolved_models()
