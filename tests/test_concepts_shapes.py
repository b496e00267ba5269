"""The coloured-shapes demo: planted ground truth, and its detection by the concept analysis."""

import numpy as np
import pytest

from latentatlas.concepts import knowledge_graph, spurious_correlations
from latentatlas.demos.shapes import QUICK, SHAPES, make_shapes, predict, shapes_demo, train_shapes_cnn

PLANTED = ("head", "background=purple", "circle")


def test_make_shapes_is_deterministic_and_labelled():
    a, b = make_shapes(50, seed=3), make_shapes(50, seed=3)
    assert np.array_equal(a["images"], b["images"])
    assert a["images"].shape == (50, 3, 32, 32) and a["images"].dtype == np.float32
    assert 0.0 <= a["images"].min() and a["images"].max() <= 1.0
    assert set(a["classes"]) <= set(SHAPES)
    assert sorted(a["concepts"]) == ["background", "colour", "patch", "size", "texture"]
    # the background colour fills the corners unless a shape reaches them
    noiseless = make_shapes(200, noise=0.0, seed=1)
    corner = noiseless["images"][:, :, 0, 0]
    from latentatlas.demos.shapes import BACKGROUNDS

    expected = np.array([BACKGROUNDS[name] for name in noiseless["concepts"]["background"]], dtype=np.float32)
    np.testing.assert_allclose(corner, expected, atol=1e-6)


def test_bias_plants_the_correlation():
    biased = make_shapes(8000, bias=0.9, seed=0)
    control = make_shapes(8000, bias=0.0, seed=0)

    def p_purple(d, cls):
        members = d["classes"] == cls
        return np.mean(d["concepts"]["background"][members] == "purple")

    assert p_purple(biased, "circle") == pytest.approx(0.9 + 0.1 / 4, abs=0.02)
    assert p_purple(biased, "square") == pytest.approx(0.1 / 4, abs=0.01)
    for cls in SHAPES:
        assert p_purple(control, cls) == pytest.approx(0.25, abs=0.03)


def test_shapes_of_one_size_have_one_area():
    from latentatlas.demos.shapes import _shape_masks

    kinds = np.arange(len(SHAPES))
    areas = _shape_masks(kinds, np.full(4, 50.0), np.full(4, 50.0), np.full(4, 20.0), 100).sum((1, 2))
    np.testing.assert_allclose(areas, np.pi * 20**2, rtol=0.05)  # pixel edges


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"bias must be in \[0, 1\]"):
        make_shapes(10, bias=1.5)
    with pytest.raises(ValueError, match="unknown biased_background 'pink'"):
        make_shapes(10, biased_background="pink")
    with pytest.raises(ValueError, match="unknown classes"):
        train_shapes_cnn(np.zeros((2, 3, 16, 16), np.float32), np.array(["circle", "hexagon"]), epochs=1)


@pytest.fixture(scope="module")
def quick_runs():
    """The --quick demo: a biased and an unbiased CNN, each analysed on decorrelated images."""
    return {bias: shapes_demo(bias, seed=0, progress=False, **QUICK) for bias in (0.9, 0.0)}


def test_quick_models_learn_the_task(quick_runs):
    assert quick_runs[0.0].attrs["model_accuracy"] > 0.9
    # the biased model takes the purple background as evidence for a circle
    assert quick_runs[0.9].attrs["model_accuracy"] < quick_runs[0.0].attrs["model_accuracy"] - 0.1


def test_planted_correlation_flagged_in_biased_run_only(quick_runs):
    biased = spurious_correlations(quick_runs[0.9])
    control = spurious_correlations(quick_runs[0.0])
    assert bool(biased.sel(layer=PLANTED[0], concept=PLANTED[1], **{"class": PLANTED[2]}))
    # every flag is the planted background link (purple for circles, other backgrounds for
    # other classes: the training images linked those too), the planted pair the strongest
    hits = biased.to_series()[lambda s: s].index
    assert {concept.split("=")[0] for _, concept, _ in hits} == {"background"}
    strength = quick_runs[0.9]["output_excess"].where(biased.any("layer"))
    assert strength.to_series().dropna().idxmax() == PLANTED[1:]
    assert not control.any(), control.to_series()[lambda s: s].index.tolist()
    # the dataset itself shows no correlation: the analysed images are decorrelated
    dataset = quick_runs[0.9]["dataset_presence"].sel(concept="background=purple")
    assert float(dataset.sel({"class": "circle"})) == pytest.approx(0.25, abs=0.06)


def test_graph_of_biased_run(quick_runs):
    G = knowledge_graph(quick_runs[0.9])
    edge = G.edges["class:circle", "concept:background=purple"]
    assert edge["spurious"] and "head" in edge["spurious_layers"]
    assert edge["weight"] > edge["dataset_presence"]
    assert not any(d["spurious"] for _, _, d in knowledge_graph(quick_runs[0.0]).edges(data=True) if d["kind"] == "presence")
    assert quick_runs[0.9]["image"].shape[1:] == (3, 24, 24)


@pytest.mark.slow
def test_full_two_minute_training_detects_the_planted_correlation():
    runs = {bias: shapes_demo(bias, seed=0, progress=False) for bias in (0.9, 0.0)}
    assert bool(spurious_correlations(runs[0.9]).sel(layer="head", concept="background=purple", **{"class": "circle"}))
    assert not spurious_correlations(runs[0.0]).any()
    assert runs[0.0].attrs["model_accuracy"] > 0.9
