"""`latentatlas.fre.skmatter`: scikit-matter's own reconstruction-measure test cases, run on the shim.

The 12 cases of scikit-matter's tests/test_metrics.py (iris, 20 samples, n_local_points=15),
re-written here, plus equality with skmatter.metrics itself and its custom scaler/estimator paths.
"""

import inspect

import numpy as np
import pytest
import skmatter.metrics as reference
from sklearn.datasets import load_iris
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state, extmath

from latentatlas.fre import skmatter as shim

EPS = 1e-5
K = 15
pytestmark = pytest.mark.filterwarnings("ignore:n_local_points=15 exceeds")


@pytest.fixture(scope="module")
def small():
    return load_iris().data[:20, [0, 1]]


@pytest.fixture(scope="module")
def large():
    return load_iris().data[:20, [0, 1, 0, 1]]


@pytest.fixture(scope="module")
def rotated_small(small):
    Q = extmath.randomized_range_finder(np.eye(small.shape[1]), size=small.shape[1], n_iter=10,
                                        random_state=check_random_state(0))
    return small @ Q


def test_signatures_are_scikit_matter_s():
    for name in shim.__all__:
        assert inspect.signature(getattr(shim, name)) == inspect.signature(getattr(reference, name)), name


# --- the 12 reconstruction-measure cases of scikit-matter's test suite ---------------------------------

def test_gfre_identity(large):
    assert abs(shim.global_reconstruction_error(large, large)) < EPS


def test_gfre_small_to_large(small, large):
    assert abs(shim.global_reconstruction_error(small, large)) < EPS


def test_gfre_large_to_small(small, large):
    assert abs(shim.global_reconstruction_error(large, small)) < EPS


def test_gfrd_identity(large):
    assert abs(shim.global_reconstruction_distortion(large, large)) < EPS


def test_gfrd_small_to_large_runs(small, large):
    shim.global_reconstruction_error(small, large)


def test_gfrd_large_to_small_runs(small, large):
    shim.global_reconstruction_error(large, small)


def test_gfrd_small_to_rotated_small(small, rotated_small):
    assert abs(shim.global_reconstruction_distortion(small, rotated_small)) < EPS


def test_lfre_identity(large):
    assert abs(shim.local_reconstruction_error(large, large, K)) < EPS


def test_lfre_small_to_large(small, large):
    assert abs(shim.local_reconstruction_error(small, large, K)) < EPS


def test_lfre_large_to_small(small, large):
    assert abs(shim.local_reconstruction_error(large, small, K)) < EPS


def test_lfre_train_idx(large):
    values = shim.pointwise_local_reconstruction_error(large, large, K, train_idx=np.arange(len(large) // 4))
    assert len(values) == len(large) - len(large) // 4


def test_lfre_test_idx(large):
    values = shim.pointwise_local_reconstruction_error(large, large, K, test_idx=np.arange(len(large) // 4))
    assert len(values) == len(large) // 4


# --- beyond scikit-matter's cases ------------------------------------------------------------------------

def test_more_local_points_than_training_samples_warns_and_uses_them_all(large):
    with pytest.warns(UserWarning, match="n_local_points=15 exceeds the 10 training samples"):
        shim.local_reconstruction_error(large, large, K)


def test_checks_raise_scikit_matter_s_messages():
    X, Y = np.array([[1, 2, 3], [4, 5, 6]]), np.array([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"^First dimension of X \(2\) and Y \(1\) must match$"):
        shim.check_global_reconstruction_measures_input(X, Y, [0], [1], None, None)
    with pytest.raises(ValueError, match=r"X has 2 samples but n_local_points=10\. Must have at least"):
        shim.check_local_reconstruction_measures_input(X, X, 10, [0], [1], None, None)


def _data(n=60):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((n, 4))
    # Y wider than X: scikit-matter's GFRD fails for dim X > dim Y (a known upstream defect)
    return X, np.tanh(X @ rng.standard_normal((4, 5))) + 0.05 * rng.standard_normal((n, 5))


@pytest.mark.parametrize("kwargs", [{}, {"scaler": StandardScaler()}, {"estimator": Ridge(alpha=1e-3, fit_intercept=False)},
                                    {"scaler": StandardScaler(), "estimator": Ridge(alpha=1e-2, fit_intercept=False)}])
@pytest.mark.parametrize("name", ["global_reconstruction_error", "global_reconstruction_distortion",
                                  "pointwise_global_reconstruction_error", "pointwise_global_reconstruction_distortion"])
def test_global_measures_equal_scikit_matter(name, kwargs):
    X, Y = _data()
    ours = getattr(shim, name)(X, Y, test_idx=np.arange(0, 60, 3), **kwargs)
    theirs = getattr(reference, name)(X, Y, test_idx=np.arange(0, 60, 3), **kwargs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kwargs", [{}, {"scaler": StandardScaler()}, {"estimator": Ridge(alpha=1e-3, fit_intercept=False)}])
def test_local_measure_equals_scikit_matter(kwargs):
    X, Y = _data()
    ours = shim.pointwise_local_reconstruction_error(X, Y, 12, **kwargs)
    theirs = reference.pointwise_local_reconstruction_error(X, Y, 12, **kwargs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)
    # all training samples when n_local_points exceeds them, as scikit-matter does
    with pytest.warns(UserWarning, match="exceeds"):
        ours = shim.local_reconstruction_error(X, Y, 40, train_idx=np.arange(25), **kwargs)
    assert ours == pytest.approx(reference.local_reconstruction_error(X, Y, 40, train_idx=np.arange(25), **kwargs),
                                 rel=1e-8)
