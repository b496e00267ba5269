"""Concept presence, excess, significance and the knowledge graph on planted synthetic data."""

import networkx as nx
import numpy as np
import pytest
import xarray as xr

from latentatlas.concepts import (
    analyse_concepts,
    concept_matrix,
    examples,
    knowledge_graph,
    spurious_correlations,
)
from latentatlas.io import load, save


def planted(n=1200, seed=0):
    """Layer "clean" encodes concept and class apart; layer "mixed" writes both on one axis.

    In "mixed", class "a" adds to the same direction as the concept ``glow``, so a probe
    for ``glow`` sees it in class-a samples that lack it: a planted spurious correlation.
    """
    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "c"])[rng.integers(3, size=n)]
    glow = rng.random(n) < 0.3
    tint = np.array(["red", "green"])[(rng.random(n) < 0.5).astype(int)]
    onehot = (classes[:, None] == np.array(["a", "b", "c"])).astype(float)
    noise = lambda d: rng.normal(size=(n, d))  # noqa: E731
    g, r = glow[:, None], (tint == "red")[:, None]
    clean = np.c_[2.5 * g + noise(1), 3 * onehot + noise(3), 2.5 * r + noise(1), noise(3)]
    mixed = np.c_[2.5 * g + 3.0 * onehot[:, :1] + noise(1), 3 * onehot[:, 1:] + noise(2), 2.5 * r + noise(1)]
    acts = xr.Dataset({"clean": (("sample", "f1"), clean), "mixed": (("sample", "f2"), mixed)})
    return acts, {"glow": glow, "tint": tint}, classes


@pytest.fixture(scope="module")
def result():
    acts, concepts, classes = planted()
    return analyse_concepts(acts, concepts, classes, n_permutations=20, seed=0)


def test_layout(result):
    assert result["probe_accuracy"].dims == ("layer", "concept")
    assert result["model_presence"].dims == ("layer", "concept", "class")
    assert result["dataset_presence"].dims == ("concept", "class")
    assert result["layer"].values.tolist() == ["clean", "mixed"]
    assert result["concept"].values.tolist() == ["glow", "tint=green", "tint=red"]
    assert result["concept_attribute"].values.tolist() == ["glow", "tint", "tint"]
    assert result["class"].values.tolist() == ["a", "b", "c"]
    assert result.attrs["n_train"] + result.attrs["n_test"] == 1200


def test_statistics_recomputed_independently(result):
    acts, concepts, classes = planted()
    test = result["sample"].values
    assert (result["sample_class"].values == classes[test]).all()
    labels = result["concept_label"].values
    assert (labels[:, 0] == concepts["glow"][test]).all()
    proba = result["probability"].values  # (layer, sample, concept)
    for li in range(2):
        for ki in range(3):
            y = labels[:, ki]
            m1, m0 = proba[li, y, ki].mean(), proba[li, ~y, ki].mean()
            for ci, c in enumerate("abc"):
                members = result["sample_class"].values == c
                data = y[members].mean()
                model = proba[li, members, ki].mean()
                resid = np.mean([p - (m1 if yi else m0) for p, yi in zip(proba[li, members, ki], y[members])])
                assert result["dataset_presence"].values[ki, ci] == pytest.approx(data)
                assert result["model_presence"].values[li, ki, ci] == pytest.approx(model)
                assert result["difference"].values[li, ki, ci] == pytest.approx(model - data)
                assert result["excess"].values[li, ki, ci] == pytest.approx(resid)


def test_planted_correlation_is_flagged_and_nothing_else(result):
    accuracy = result["probe_accuracy"]
    assert (accuracy > 0.75).all()
    assert (result["accuracy_pvalue"] < 0.05).all()
    assert float(result["class_excess"].sel(layer="mixed", concept="glow", **{"class": "a"})) > 0.12
    assert (accuracy > result["accuracy_baseline"] + 0.25).all()
    excess = result["excess"].sel(concept="glow", layer="mixed")
    assert float(excess.sel({"class": "a"})) > 0.12
    assert abs(result["excess"].sel(layer="clean")).max() < 0.05
    flagged = spurious_correlations(result)
    hits = flagged.to_dataframe().query("spurious").index.tolist()
    assert hits == [("mixed", "glow", "a")]


def test_graph_is_derived_from_the_dataset(result, tmp_path):
    G = knowledge_graph(result, layer="mixed")
    kinds = nx.get_node_attributes(G, "kind")
    assert sorted(kinds.values()).count("class") == 3
    assert sorted(kinds.values()).count("concept") == 3
    assert sorted(kinds.values()).count("layer") == 2
    assert G.number_of_edges() == 3 * 3 + 2 * 3
    edge = G.edges["class:a", "concept:glow"]
    assert edge["spurious"] and edge["spurious_layers"] == ["mixed"]
    assert edge["weight"] == pytest.approx(float(result["model_presence"].sel(layer="mixed", concept="glow", **{"class": "a"})))
    assert edge["agreement"] == "over" and "color" not in edge and "x" not in G.nodes["class:a"]  # drawing is viz's
    assert not G.edges["class:b", "concept:glow"]["spurious"]
    assert G.nodes["concept:glow"]["accuracy"] == pytest.approx(result["probe_accuracy"].sel(concept="glow").values.tolist())
    assert G.nodes["concept:glow"]["first_layer"] == "clean"
    assert G.edges["layer:clean", "concept:tint=red"]["encoded"]
    # the netCDF round trip of the Dataset gives the same graph
    again = knowledge_graph(load(save(result, tmp_path / "r.nc")), layer="mixed")
    assert nx.utils.graphs_equal(G, again)
    for u, v, data in G.edges(data=True):
        assert set(again.edges[u, v]) == set(data)
        for key, value in data.items():
            assert again.edges[u, v][key] == (pytest.approx(value) if isinstance(value, float) else value)


def test_examples_ranked_by_probe(result):
    idx = examples(result, "glow", "b", layer="clean", n=5)
    members = result["sample_class"].values == "b"
    proba = result["probability"].sel(layer="clean", concept="glow").values
    expected = result["sample"].values[members][np.argsort(-proba[members], kind="stable")[:5]]
    assert idx.tolist() == expected.tolist()
    acts, concepts, classes = planted()
    assert (classes[idx] == "b").all()
    with pytest.raises(KeyError, match="unknown class 'z'"):
        examples(result, "glow", "z")


def test_concept_matrix_binary_and_one_hot():
    Y, names, attrs, values = concept_matrix({"on": [0, 1, 1, 0], "col": ["r", "g", "b", "r"]})
    assert names == ["on", "col=b", "col=g", "col=r"]
    assert values == ["true", "b", "g", "r"]
    assert Y.tolist() == [[0, 0, 0, 1], [1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]]


def test_bad_input_errors():
    acts, concepts, classes = planted(n=300)
    with pytest.raises(ValueError, match="299 class labels for 300 samples"):
        analyse_concepts(acts, concepts, classes[:-1])
    with pytest.raises(ValueError, match="concept 'glow' has 299 labels but there are 300 samples"):
        analyse_concepts(acts, {**concepts, "glow": concepts["glow"][1:]}, classes)
    with pytest.raises(ValueError, match=r"concept 'flat' has a single label value \['x'\]"):
        analyse_concepts(acts, {**concepts, "flat": np.full(300, "x")}, classes)
    with pytest.raises(ValueError, match=r"class\(es\) \['ghost'\] have no examples"):
        analyse_concepts(acts, concepts, classes, class_names=["a", "b", "c", "ghost"])
    with pytest.raises(KeyError, match=r"unknown layer name\(s\) \['nope'\].*\['clean', 'mixed'\]"):
        analyse_concepts(acts, concepts, classes, layers=["nope"])
    lonely = classes.astype("<U8")
    lonely[0] = "solo"
    with pytest.raises(ValueError, match=r"\['solo'\] have a single example"):
        analyse_concepts(acts, concepts, lonely)
    rare = np.zeros(300, bool)
    rare[0] = True
    with pytest.raises(ValueError, match=r"single value in the (training|held-out) split"):
        analyse_concepts(acts, {"rare": rare}, classes)
    with pytest.raises(ValueError, match="concept-analysis Dataset"):
        knowledge_graph(acts)
