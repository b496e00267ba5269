"""Matrices of every registered measure: cells equal the pairwise functions; model maps."""

import numpy as np
import pytest

from latentatlas import fre
from latentatlas import similarity as sim
from latentatlas.similarity.registry import MEASURES


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((120, 6))
    return {
        "a": base,
        "b": np.tanh(base @ rng.standard_normal((6, 9))),
        "c": rng.standard_normal((120, 4)),
        "d": np.hstack([base[:, :3], np.full((120, 1), 2.0)]),  # a constant column
    }


TRAIN, TEST = fre.default_split(120)
PAIRWISE = {
    "cka": lambda X, Y: sim.linear_cka(X[TEST], Y[TEST]),
    "debiased_cka": lambda X, Y: sim.debiased_cka(X[TEST], Y[TEST]),
    "rbf_cka": lambda X, Y: sim.rbf_cka(X[TEST], Y[TEST]),
    "procrustes": lambda X, Y: sim.procrustes_distance(X, Y),
    "procrustes_cca": lambda X, Y: sim.procrustes_distance(X, Y, alpha=0.0),
    "cca": lambda X, Y: sim.cca_similarity(X[TEST], Y[TEST]),
    "svcca": lambda X, Y: sim.svcca(X[TEST], Y[TEST]),
    "mknn": lambda X, Y: sim.mutual_knn(X[TEST], Y[TEST]),
    "gfre": fre.gfre,
    "gfrd": fre.gfrd,
    "lfre": lambda X, Y: fre.lfre(X, Y, n_local_points=30),
}


def test_every_registered_measure_is_checked():
    assert set(PAIRWISE) == set(MEASURES)


@pytest.mark.parametrize("metric", list(PAIRWISE))
def test_matrix_cells_equal_pairwise_functions(sets, metric):
    matrix = sim.similarity_matrix(sets, metric, n_local_points=30, progress=False)
    assert matrix.dims == ("source", "target") and matrix.name == metric
    assert matrix.attrs["lower_is_better"] == int(MEASURES[metric].lower_is_better)
    for s in sets:
        for t in sets:
            if s == t and metric in ("procrustes", "procrustes_cca"):
                assert matrix.sel(source=s, target=t).item() == 0.0
                continue
            expected = PAIRWISE[metric](sets[s], sets[t])
            assert matrix.sel(source=s, target=t).item() == pytest.approx(expected, rel=1e-10, abs=1e-12), (s, t)
    if MEASURES[metric].symmetric:
        np.testing.assert_array_equal(matrix.values, matrix.values.T)


@pytest.mark.parametrize("metric", ["cka", "procrustes", "mknn", "svcca"])
def test_results_do_not_depend_on_threads(sets, metric):
    one = sim.similarity_matrix(sets, metric, n_jobs=1, progress=False)
    two = sim.similarity_matrix(sets, metric, n_jobs=2, progress=False)
    np.testing.assert_array_equal(one.values, two.values)


def test_pointwise_forms_link_cells_to_test_samples(sets):
    point = sim.pointwise_similarity_matrix(sets, "mknn", progress=False)
    assert point.dims == ("source", "target", "test_sample")
    np.testing.assert_array_equal(point["test_sample"].values, TEST)
    np.testing.assert_array_equal(point.sel(source="a", target="b").values,
                                  sim.pointwise_mutual_knn(sets["a"][TEST], sets["b"][TEST]))
    angle, chord = sim.pointwise_procrustes_distance(sets["a"], sets["c"])
    np.testing.assert_allclose(sim.pointwise_similarity_matrix(sets, "procrustes", progress=False)
                               .sel(source="a", target="c").values, chord, rtol=1e-10)
    with pytest.raises(ValueError, match="'cka' has no per-sample form"):
        sim.pointwise_similarity_matrix(sets, "cka")


def test_aliases_and_unknown_names(sets):
    assert sim.similarity_matrix(sets, "linear_cka", progress=False).name == "cka"
    with pytest.raises(ValueError, match="unknown metric 'nope'; choose from"):
        sim.similarity_matrix(sets, "nope")


def test_constant_set_is_named_in_the_error():
    X = np.random.default_rng(1).standard_normal((40, 3))
    with pytest.raises(ValueError, match="constant over the samples"):
        sim.cca_similarity(X, np.ones((40, 2)))
    with pytest.raises(ValueError, match="constant over the samples"):
        sim.procrustes_distance(X, np.ones((40, 2)))


def test_classical_mds_recovers_a_euclidean_configuration():
    rng = np.random.default_rng(2)
    points = rng.standard_normal((7, 2)) * [3.0, 1.0]
    D = np.linalg.norm(points[:, None] - points[None], axis=2)
    coords, lam = sim.classical_mds(D)
    np.testing.assert_allclose(np.linalg.norm(coords[:, None] - coords[None], axis=2), D, atol=1e-10)
    assert np.all(np.abs(lam[2:]) < 1e-10)


def test_model_map_of_similarities_and_distances(sets):
    cka = sim.similarity_matrix(sets, "cka", progress=False)
    m = sim.model_map(cka)
    assert m.dims == ("feature_set", "axis") and list(m.feature_set.values) == list(sets)
    assert 0 < m.attrs["explained"] <= 1
    shown = np.linalg.norm(m.values[:, None] - m.values[None], axis=2)
    # "d" shares half of "a"'s columns, "c" is unrelated noise: the map keeps them apart
    assert shown[0, 3] < shown[0, 2] and shown[3, 0] < shown[3, 2]
    gfre = sim.similarity_matrix(sets, "gfre", progress=False)
    assert sim.model_map(gfre).attrs["metric"] == "gfre"
