"""Progressive cumulants against scipy's moments, the explicit moment-cumulant formulas,
the set-partition formula, a distribution with known cumulants, and xarray/netCDF."""

from fractions import Fraction
from math import comb, factorial

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from ase.build import bulk, molecule
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from latentatlas import io
from latentatlas.cumulants import cumulant_feature_name, cumulants, progressive_cumulants, structure_features
from latentatlas.dataset import FeatureError, add_feature_set, empty_features, feature_arrays, frames_from_features
from latentatlas.frames import fingerprint

SIZES = [1, 2, 3, 5, 8, 1, 13, 2, 4]


def _random_atoms(seed, sizes=SIZES, n_features=4):
    """Skewed, offset, differently scaled columns, so odd cumulants and centring matter."""
    rng = np.random.default_rng(seed)
    index = np.repeat(np.arange(len(sizes)), sizes)
    X = rng.exponential(size=(index.size, n_features)) * [1.0, 3.0, 0.1, 20.0] + [0.0, -5.0, 100.0, 7.0]
    return X, index


# Explicit central-moment formulas (mu1 = 0), written out from the textbook table.
EXPLICIT = {
    2: lambda m: m[2],
    3: lambda m: m[3],
    4: lambda m: m[4] - 3 * m[2] ** 2,
    5: lambda m: m[5] - 10 * m[3] * m[2],
    6: lambda m: m[6] - 15 * m[4] * m[2] - 10 * m[3] ** 2 + 30 * m[2] ** 3,
    7: lambda m: m[7] - 21 * m[5] * m[2] - 35 * m[4] * m[3] + 210 * m[3] * m[2] ** 2,
    8: lambda m: (
        m[8] - 28 * m[6] * m[2] - 56 * m[5] * m[3] - 35 * m[4] ** 2
        + 420 * m[4] * m[2] ** 2 + 560 * m[3] ** 2 * m[2] - 630 * m[2] ** 4
    ),
}


def _set_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        yield [[first], *part]
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1 :]]


def _partition_cumulant(n, m):
    """kappa_n = sum over set partitions pi of (-1)^(|pi|-1) (|pi|-1)! prod_B mu_|B| (central: mu_1 = 0)."""
    total = 0.0
    for part in _set_partitions(list(range(n))):
        k = len(part)
        term = (-1) ** (k - 1) * factorial(k - 1)
        for block in part:
            term = term * m[len(block)]
        total = total + term
    return total


def _scipy_moments(x, order):
    m = {1: 0.0}
    for n in range(2, order + 1):
        m[n] = scipy.stats.moment(x, order=n, axis=0)
    return m


def _assert_cumulants_close(actual, expected, X, index, rel=1e-11):
    """Compare cumulants (n_structures, order, n_features) of atoms ``X`` grouped by ``index``.

    kappa_n is compared in units of spread^n (spread = largest deviation from the structure
    mean), the size of the terms that cancel in the formulas. Deviations carry a relative
    rounding error of about eps * |mean| / spread, so the tolerance grows with that ratio.
    """
    n_structures, order, n_features = actual.shape
    spread, cond = np.ones((n_structures, n_features)), np.ones((n_structures, n_features))
    for s in range(n_structures):
        x = X[index == s]
        dev = np.abs(x - x.mean(axis=0)).max(axis=0)
        spread[s] = np.where(dev > 0, dev, 1.0)
        cond[s] = 1 + np.abs(x).max(axis=0) / spread[s]
    norm = spread[:, None, :] ** np.arange(1, order + 1)[:, None]
    norm[:, 0, :] = np.maximum(norm[:, 0, :], np.abs(expected[:, 0, :]))
    norm = norm * cond[:, None, :]
    np.testing.assert_allclose(actual / norm, expected / norm, rtol=0, atol=rel)


@pytest.mark.parametrize("reference", ["explicit", "partitions"])
def test_cumulants_match_scipy_moments_and_formulas(reference):
    X, index = _random_atoms(0)
    got = cumulants(X, index, 8)
    assert got.shape == (len(SIZES), 8, X.shape[1])
    expected = np.empty_like(got)
    for s in range(len(SIZES)):
        x = X[index == s]
        m = _scipy_moments(x, 8)
        expected[s, 0] = x.mean(axis=0)
        for n in range(2, 9):
            expected[s, n - 1] = EXPLICIT[n](m) if reference == "explicit" else _partition_cumulant(n, m)
    _assert_cumulants_close(got, expected, X, index)


def test_explicit_formulas_agree_with_partition_formula():
    # The two references are independent derivations; they must agree symbolically, checked on random moments.
    m = {1: 0.0, **{n: v for n, v in zip(range(2, 9), np.random.default_rng(1).normal(size=7))}}
    for n in range(2, 9):
        assert EXPLICIT[n](m) == pytest.approx(_partition_cumulant(n, m), rel=1e-12, abs=1e-12)


def test_k2_to_k4_match_scipy_kstat_after_bias_correction():
    # kstat gives unbiased k-statistics; ours are population cumulants of the 1/N moments.
    # For a structure of N atoms: k2 = N/(N-1) m2, k3 = N^2/((N-1)(N-2)) m3,
    # k4 = N^2 ((N+1) m4 - 3 (N-1) m2^2) / ((N-1)(N-2)(N-3)), with m4 = kappa4 + 3 kappa2^2.
    sizes = [5, 8, 13, 30]
    X, index = _random_atoms(2, sizes)
    k = cumulants(X, index, 4)
    for s, N in enumerate(sizes):
        # kstat sums raw (uncentred) powers, which loses digits on the offset columns; k-statistics
        # of order >= 2 are shift invariant, so give it centred data.
        x = X[index == s] - X[index == s].mean(axis=0)
        k2, k3, k4 = k[s, 1], k[s, 2], k[s, 3]
        m2, m4 = k2, k4 + 3 * k2**2
        for col in range(X.shape[1]):
            assert scipy.stats.kstat(x[:, col], 2) == pytest.approx(N / (N - 1) * k2[col], rel=1e-10)
            assert scipy.stats.kstat(x[:, col], 3) == pytest.approx(
                N**2 / ((N - 1) * (N - 2)) * k3[col], rel=1e-8, abs=1e-10 * m2[col] ** 1.5
            )
            expected4 = N**2 * ((N + 1) * m4[col] - 3 * (N - 1) * m2[col] ** 2) / ((N - 1) * (N - 2) * (N - 3))
            assert scipy.stats.kstat(x[:, col], 4) == pytest.approx(expected4, rel=1e-8, abs=1e-10 * m2[col] ** 2)


def test_symmetric_two_point_distribution_has_known_cumulants():
    # +-h with equal weight: kappa_2n = 2^2n (2^2n - 1) B_2n / (2n) h^2n = 1, -2, 16, -272 (h = 1); odd ones 0.
    h, centre = 1.5, -4.0
    X = np.array([[centre - h], [centre + h]])
    k = cumulants(X, [0, 0], 8)[0, :, 0]
    np.testing.assert_allclose(k, [centre, h**2, 0, -2 * h**4, 0, 16 * h**6, 0, -272 * h**8], atol=1e-12)
    scaled = cumulants(X, [0, 0], 8, scaled=True)[0, :, 0]
    np.testing.assert_allclose(
        scaled, [centre, h, 0, -(2 ** (1 / 4)) * h, 0, 16 ** (1 / 6) * h, 0, -(272 ** (1 / 8)) * h], atol=1e-12
    )


def test_single_atom_structures_have_zero_cumulants():
    X = np.array([[1.0, -2.0], [3.0, 4.0], [5.0, 6.0]])
    k = cumulants(X, [0, 1, 1], 8, scaled=True)
    np.testing.assert_array_equal(k[0, 0], X[0])
    np.testing.assert_array_equal(k[0, 1:], 0.0)


def test_scaling_is_signed_nth_root():
    X, index = _random_atoms(3)
    raw = cumulants(X, index, 8)
    scaled = cumulants(X, index, 8, scaled=True)
    np.testing.assert_array_equal(scaled[:, 0], raw[:, 0])
    assert (raw[:, 2:] < 0).any() and (raw[:, 2:] > 0).any()  # both signs exercised
    for n in range(2, 9):
        np.testing.assert_array_equal(np.sign(scaled[:, n - 1]), np.sign(raw[:, n - 1]))
        np.testing.assert_allclose(np.abs(scaled[:, n - 1]) ** n, np.abs(raw[:, n - 1]), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(scaled[:, 2], np.cbrt(raw[:, 2]), rtol=1e-12)


def test_progressive_layout_is_order_major_and_prefix():
    X, index = _random_atoms(4)
    n_features = X.shape[1]
    k = cumulants(X, index, 8, scaled=True)
    phi8 = progressive_cumulants(X, index, 8)
    assert phi8.shape == (len(SIZES), 8 * n_features)
    for n in range(1, 9):
        for j in range(n_features):
            np.testing.assert_array_equal(phi8[:, (n - 1) * n_features + j], k[:, n - 1, j])
    for order in range(1, 8):
        np.testing.assert_array_equal(
            progressive_cumulants(X, index, order), progressive_cumulants(X, index, order + 1)[:, : order * n_features]
        )
    np.testing.assert_array_equal(
        progressive_cumulants(X, index, 3, scaled=False), cumulants(X, index, 3).reshape(len(SIZES), -1)
    )


def test_unsorted_structure_index_gives_the_same_result():
    X, index = _random_atoms(5)
    perm = np.random.default_rng(5).permutation(index.size)
    np.testing.assert_allclose(cumulants(X[perm], index[perm], 8), cumulants(X, index, 8), rtol=1e-9, atol=1e-9)


def test_large_values_do_not_overflow():
    # (2^166 ~ 1e50)^8 overflows float64; the scaled cumulants (units of x) must not. Scaling by a
    # power of two is exact, so the result must be exactly 2^166 times the unscaled one.
    X, index = _random_atoms(6)
    big = progressive_cumulants(X * 2.0**166, index, 8)
    assert np.isfinite(big).all()
    np.testing.assert_array_equal(big, 2.0**166 * progressive_cumulants(X, index, 8))


def _exact_cumulants(x, order):
    """Cumulants of float values in exact rational arithmetic (same recursion, no rounding)."""
    xs = [Fraction(float(v)) for v in x]
    mean = sum(xs) / len(xs)
    mu = {n: sum((v - mean) ** n for v in xs) / len(xs) for n in range(2, order + 1)}
    kappa = {}
    for n in range(2, order + 1):
        kappa[n] = mu[n] - sum(comb(n - 1, m - 1) * kappa[m] * mu[n - m] for m in range(2, n - 1))
    return [float(mean)] + [float(kappa[n]) for n in range(2, order + 1)]


def test_large_offset_is_exact_to_rounding():
    # Columns with an offset a million times their spread: a single centring pass loses
    # ~eps * 1e6 relative accuracy in the odd moments; the corrected two-pass centring must not.
    sizes = [2, 3, 7, 20]
    rng = np.random.default_rng(11)
    index = np.repeat(np.arange(len(sizes)), sizes)
    X = 1e6 + rng.exponential(size=(index.size, 2)) * [1.0, 1e-3]
    got = cumulants(X, index, 8)
    for s in range(len(sizes)):
        for col in range(2):
            x = X[index == s, col]
            spread = np.abs(x - x.mean()).max()
            ref = _exact_cumulants(x, 8)
            assert got[s, 0, col] == pytest.approx(ref[0], rel=1e-15)
            norm = spread ** np.arange(2, 9)
            np.testing.assert_allclose(got[s, 1:, col] / norm, np.array(ref[1:]) / norm, rtol=0, atol=1e-12)


# --- property tests -----------------------------------------------------------------------------------

@st.composite
def _structures(draw):
    """Values on a grid of 1/8: sums are exact, and a non-zero spread is at least 1/16, so the
    rounding of the mean cannot dominate the comparison (cumulants are ill-conditioned when the
    spread of a structure is at the rounding level of its values)."""
    sizes = draw(st.lists(st.integers(1, 7), min_size=1, max_size=5))
    n_features = draw(st.integers(1, 3))
    X = draw(arrays(np.int64, (sum(sizes), n_features), elements=st.integers(-80, 80))) / 8
    return X, np.repeat(np.arange(len(sizes)), sizes)


def _within_structure_permutation(index, rng):
    perm = np.arange(index.size)
    for s in np.unique(index):
        rows = np.flatnonzero(index == s)
        perm[rows] = rng.permutation(rows)
    return perm


@settings(max_examples=60, deadline=None)
@given(_structures(), st.integers(0, 2**32 - 1))
def test_permuting_atoms_within_structures_leaves_cumulants_unchanged(data, seed):
    X, index = data
    perm = _within_structure_permutation(index, np.random.default_rng(seed))
    _assert_cumulants_close(cumulants(X[perm], index, 8), cumulants(X, index, 8), X, index)


@settings(max_examples=60, deadline=None)
@given(_structures(), st.integers(-800, 800))
def test_shift_changes_only_the_mean(data, shift):
    X, index = data
    shift = shift / 8  # X + shift stays exact
    base, shifted = cumulants(X, index, 8), cumulants(X + shift, index, 8)
    shifted[:, 0] -= shift
    _assert_cumulants_close(shifted, base, X + shift, index)


@settings(max_examples=60, deadline=None)
@given(_structures(), st.floats(0.01, 100))
def test_cumulants_are_homogeneous(data, c):
    X, index = data
    raw, raw_c = cumulants(X, index, 8), cumulants(c * X, index, 8)
    powers = c ** np.arange(1, 9)[:, None]
    _assert_cumulants_close(raw_c / powers, raw, X, index)
    # Scaling by a power of two is exact, so the signed roots must scale exactly linearly.
    two = 2.0 ** np.round(np.log2(c))
    np.testing.assert_array_equal(progressive_cumulants(two * X, index, 8), two * progressive_cumulants(X, index, 8))


@settings(max_examples=30, deadline=None)
@given(_structures())
def test_each_structure_is_independent_of_the_others(data):
    X, index = data
    together = cumulants(X, index, 8)
    for s in range(index.max() + 1):
        alone = cumulants(X[index == s], np.zeros((index == s).sum(), dtype=int), 8)
        _assert_cumulants_close(alone, together[s : s + 1], X[index == s], np.zeros((index == s).sum()))


# --- validation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", [0, 9, -1, 2.0, True, "3"])
def test_order_out_of_range_is_rejected(order):
    X, index = _random_atoms(7)
    with pytest.raises(ValueError, match="order must be an integer in 1 … 8"):
        cumulants(X, index, order)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_rejected(bad):
    X, index = _random_atoms(8)
    X[3, 1] = bad
    with pytest.raises(FeatureError, match="NaN/inf"):
        progressive_cumulants(X, index, 2)


def test_index_length_mismatch_is_rejected():
    X, index = _random_atoms(9)
    with pytest.raises(ValueError, match="give one structure index per atom"):
        cumulants(X, index[:-1], 2)


def test_empty_structure_is_rejected():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"structures have no atoms .*first: \[1\]"):
        cumulants(X, [0, 0, 2], 2)
    with pytest.raises(ValueError, match=r"first: \[3\]"):
        cumulants(X, [0, 1, 2], 2, n_structures=4)


@pytest.mark.parametrize(
    "index, match",
    [([0, -1, 1], "must lie in 0"), ([0.0, 1.0, 1.0], "must hold integers"), ([0, 1, 5], "must lie in 0")],
)
def test_bad_index_values_are_rejected(index, match):
    with pytest.raises(ValueError, match=match):
        cumulants(np.ones((3, 2)), index, 2, n_structures=3)


def test_bad_feature_shapes_are_rejected():
    with pytest.raises(FeatureError, match="must be 2-D"):
        cumulants(np.ones(3), [0, 0, 0], 2)
    with pytest.raises(FeatureError, match="empty"):
        cumulants(np.ones((3, 0)), [0, 0, 0], 2)


# --- xarray Dataset --------------------------------------------------------------------------------

@pytest.fixture
def atom_features():
    frames = [molecule("H2O"), molecule("CH4"), bulk("Cu", "fcc", a=3.6), molecule("C6H6")]
    ds = empty_features(frames, subset=["mol", "mol", "bulk", "mol"])
    rng = np.random.default_rng(10)
    n = ds.sizes["atom"]
    ds = add_feature_set(ds, rng.normal(size=(n, 5)), model="toy", layer="a", model_version="1")
    ds = add_feature_set(ds, rng.gamma(2.0, size=(n, 3)), model="toy", layer="b")
    ds = add_feature_set(ds, rng.normal(size=(4, 2)), model="toy", layer="energy", sample="structure")
    return frames, ds


def test_structure_features_dataset(atom_features):
    frames, ds = atom_features
    out = structure_features(ds, 3)
    assert list(out.data_vars) == ["toy:a:phi3", "toy:b:phi3"]  # structure-level input sets are skipped
    for src in ["toy:a", "toy:b"]:
        name = cumulant_feature_name(src, 3)
        da = out[name]
        d = ds[src].shape[1]
        assert da.dims == ("structure", f"{name}:feature")
        np.testing.assert_array_equal(
            da.values, progressive_cumulants(ds[src].values, ds["atom_structure"].values, 3)
        )
        np.testing.assert_array_equal(da[f"{name}:cumulant"].values, np.repeat([1, 2, 3], d))
        np.testing.assert_array_equal(da[f"{name}:source_feature"].values, np.tile(np.arange(d), 3))
        assert da.attrs["cumulant_order"] == 3 and da.attrs["cumulant_scaled"] == 1
        assert da.attrs["source_feature_set"] == src and da.attrs["model"] == "toy"
    assert out["toy:a:phi3"].attrs["model_version"] == "1"
    assert out.attrs["fingerprint"] == fingerprint(frames)
    np.testing.assert_array_equal(out["formula"].values, ds["formula"].values)
    np.testing.assert_array_equal(out["subset"].values, ["mol", "mol", "bulk", "mol"])
    assert fingerprint(frames_from_features(out)) == fingerprint(frames)
    arrays_ = feature_arrays(out)  # valid 2-D features on one sample dim
    assert {k: v.shape for k, v in arrays_.items()} == {"toy:a:phi3": (4, 15), "toy:b:phi3": (4, 9)}


def test_structure_features_netcdf_round_trip(atom_features, tmp_path):
    frames, ds = atom_features
    out = structure_features(ds, 8, names=["toy:b"], scaled=False)
    path = io.save(out, tmp_path / "phi.nc")
    back = io.load(path, frames=frames)
    xr.testing.assert_identical(back, out)


def test_structure_features_bad_names(atom_features):
    _, ds = atom_features
    with pytest.raises(KeyError, match="not found"):
        structure_features(ds, 2, names=["toy:c"])
    with pytest.raises(ValueError, match="not on dim 'atom'"):
        structure_features(ds, 2, names=["toy:energy"])
    with pytest.raises(ValueError, match="no feature set on dim 'atom'"):
        structure_features(ds.drop_vars(["toy:a", "toy:b"]), 2)
    with pytest.raises(KeyError, match="no 'atom_structure' coordinate"):
        structure_features(ds.drop_vars("atom_structure"), 2)
    with pytest.raises(ValueError, match="order must be"):
        structure_features(ds, 9)


def test_structure_features_error_names_the_feature_set(atom_features):
    _, ds = atom_features
    ds["toy:b"][2, 1] = np.nan
    with pytest.raises(FeatureError, match="'toy:b'"):
        structure_features(ds, 2)
