"""chemiscope datasets of results, read back and validated by the chemiscope package itself."""

import gzip
import json

import numpy as np
import pytest

chemiscope = pytest.importorskip("chemiscope")

from latentatlas.cli import main  # noqa: E402
from latentatlas.interchange import chemiscope_input, write_chemiscope  # noqa: E402
from latentatlas.io import load  # noqa: E402
from latentatlas.viz.concepts.data import builtin_concepts_path  # noqa: E402
from latentatlas.viz.fre.data import demo_comparison_paths  # noqa: E402


def read(path):
    """The file as chemiscope reads it, re-validated by chemiscope's own input builder."""
    widget = chemiscope.show_input(path)  # chemiscope's loader: gzip + JSON + metadata checks
    assert widget is not None
    with gzip.open(path, "rt") as f:
        data = json.load(f)
    env = [(e["structure"], e["center"], e["cutoff"]) for e in data.get("environments", [])] or None
    chemiscope.create_input(  # raises on any property whose length does not fit structures or environments
        structures=data["structures"], metadata=data["meta"], properties=data["properties"], environments=env,
        settings=data["settings"],
    )
    return data


def values(data, name):
    return np.asarray(data["properties"][name]["values"])


def test_atom_level_comparison_from_the_command_line(tmp_path, capsys):
    path = demo_comparison_paths()[0]
    ds = load(path)
    out = tmp_path / "pair.json.gz"
    assert main(["export", str(path), "--chemiscope", str(out), "--metric", "lfre",
                 "--pair", "soap:power_spectrum", "chgnet-0.3.0:last"]) == 0
    assert "wrote" in capsys.readouterr().out
    data = read(out)
    test = ds["test_atom"].values
    assert len(data["structures"]) == ds.sizes["structure"] and len(data["environments"]) == len(test)
    pair = dict(source="soap:power_spectrum", target="chgnet-0.3.0:last")
    for m, label in [("gfre", "GFRE"), ("gfrd", "GFRD"), ("lfre", "LFRE")]:
        np.testing.assert_allclose(values(data, f"{label} soap:power_spectrum → chgnet-0.3.0:last"),
                                   ds[f"{m}_pointwise"].sel(pair).values)
    np.testing.assert_allclose(values(data, "PCA 2 of soap:power_spectrum"), ds["pca"].sel(source=pair["source"], pc=1).values[test])
    # each environment is the test atom it claims to be: same position, same element
    for (e, a) in list(zip(data["environments"], test))[::25]:
        s = data["structures"][e["structure"]]
        xyz = [s["x"][e["center"]], s["y"][e["center"]], s["z"][e["center"]]]
        np.testing.assert_allclose(xyz, ds["positions"].values[a], atol=1e-9)
        assert s["names"][e["center"]] == values(data, "element")[list(test).index(a)]
    assert data["settings"]["map"]["color"]["property"] == "LFRE soap:power_spectrum → chgnet-0.3.0:last"


def test_structure_level_comparison_has_one_entry_per_test_structure(tmp_path):
    ds = load(demo_comparison_paths()[1])
    data = read(write_chemiscope(ds, tmp_path / "s.json.gz"))
    assert len(data["structures"]) == ds.sizes["test_structure"] and "environments" not in data
    assert values(data, "subset").tolist() == ds["subset"].values[ds["test_structure"].values].tolist()


def test_per_atom_concepts(tmp_path):
    from latentatlas.concepts.atoms import analyse_atoms
    from latentatlas.dataset import add_feature_set, empty_features
    from latentatlas.structures import builtin_frames

    frames = builtin_frames(small=True)
    features = empty_features(frames)
    rng = np.random.default_rng(0)
    onehot = (features["species"].values[:, None] == np.arange(1, 84)).astype(float)
    features = add_feature_set(features, onehot + 0.1 * rng.standard_normal(onehot.shape), model="toy", layer="a")
    features = add_feature_set(features, rng.standard_normal((features.sizes["atom"], 4)), model="toy", layer="b")
    result = analyse_atoms(features, frames, n_permutations=2)
    data = read(write_chemiscope(result, tmp_path / "c.json.gz", layer="toy:a", frames=frames))
    assert len(data["environments"]) == result.sizes["sample"]
    np.testing.assert_allclose(values(data, "P(metal) at toy:a"), result["probability"].sel(layer="toy:a", concept="metal").values)
    assert values(data, "class").tolist() == result["sample_class"].values.tolist()
    with pytest.raises(ValueError, match="fingerprints differ"):
        chemiscope_input(result, frames=frames[:-1])
    with pytest.raises(ValueError, match="no layer 'nope'"):
        chemiscope_input(result, layer="nope", frames=frames)


def test_bad_requests_name_the_problem(tmp_path):
    ds = load(demo_comparison_paths()[0])
    with pytest.raises(ValueError, match="not in the comparison"):
        chemiscope_input(ds, pair=("soap:power_spectrum", "nope"))
    with pytest.raises(ValueError, match="ends with .json or .json.gz"):
        write_chemiscope(ds, tmp_path / "x.nc")
    with pytest.raises(ValueError, match="not over atoms"):
        chemiscope_input(load(builtin_concepts_path()))
    assert main(["export", str(demo_comparison_paths()[0])]) != 0
    assert not list(tmp_path.iterdir())
