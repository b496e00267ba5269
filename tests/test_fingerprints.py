"""Every feature set carries the fingerprint of its frames; pairing sets of other frames is refused."""

import pytest

from latentatlas import io
from latentatlas.compare import compare
from latentatlas.cumulants import structure_features
from latentatlas.dataset import FingerprintMismatchError, feature_dim, merge_features
from latentatlas.features import get_featurizer
from latentatlas.fre import fre_matrix
from latentatlas.frames import fingerprint
from latentatlas.structures import builtin_frames

pytest.importorskip("featomic")


def _renamed(ds, new):
    (old,) = ds.data_vars
    return ds.rename({old: new, feature_dim(old): feature_dim(new)})


@pytest.fixture(scope="module")
def frames():
    return builtin_frames(small=True)[:12]


@pytest.fixture(scope="module")
def soap(frames):
    return get_featurizer("soap", max_radial=3, max_angular=2).featurize(frames, progress=False, cache=False)


@pytest.fixture(scope="module")
def soap_reordered(frames):
    """The same structures in another order: the same atoms, other rows."""
    ds = get_featurizer("soap", max_radial=4, max_angular=3).featurize(frames[::-1], progress=False, cache=False)
    return _renamed(ds, "soap:reordered")


def test_every_feature_set_carries_the_fingerprint_of_its_frames(frames, soap):
    (name,) = soap.data_vars
    assert soap[name].attrs["fingerprint"] == fingerprint(frames) == soap.attrs["fingerprint"]
    phi = structure_features(soap, 2)
    assert all(phi[n].attrs["fingerprint"] == fingerprint(frames) for n in phi.data_vars)


def test_same_frames_in_another_order_are_refused_everywhere(soap, soap_reordered):
    """The README's old ``A.assign(B.data_vars)`` took these silently; fre printed a GFRE above 1."""
    assert soap.sizes["atom"] == soap_reordered.sizes["atom"]  # nothing else tells them apart
    mixed = soap.assign(soap_reordered.data_vars)
    match = "computed for different frames.*soap:reordered.*merge_features"
    with pytest.raises(FingerprintMismatchError, match=match):
        fre_matrix(mixed, "gfre")
    with pytest.raises(FingerprintMismatchError, match=match):
        compare(mixed, metrics=("gfre",), n_splits=1, progress=False)
    with pytest.raises(FingerprintMismatchError, match=match):
        structure_features(mixed, 2)
    with pytest.raises(FingerprintMismatchError, match="another order"):
        merge_features(soap, soap_reordered)
    pytest.importorskip("sklearn")
    from latentatlas.concepts.atoms import analyse_atoms

    with pytest.raises(FingerprintMismatchError, match=match):
        analyse_atoms(mixed, n_permutations=2)


def test_a_saved_mixed_file_is_refused_by_the_cli(soap, soap_reordered, tmp_path, capsys):
    from latentatlas.cli import main

    path = io.save(soap.assign(soap_reordered.data_vars), tmp_path / "mixed.nc")
    assert main(["fre", str(path), "--splits", "1"]) == 2
    assert "computed for different frames" in capsys.readouterr().err


def test_merge_features_combines_feature_sets_of_the_same_frames(frames, soap, tmp_path):
    other = _renamed(get_featurizer("soap", max_radial=4, max_angular=3).featurize(frames, progress=False, cache=False),
                     "soap:bigger")
    merged = merge_features(soap, other)
    assert list(merged.data_vars) == [*soap.data_vars, "soap:bigger"]
    assert merged.attrs["fingerprint"] == fingerprint(frames)
    back = io.load(io.save(merged, tmp_path / "merged.nc"), frames=frames)
    assert fre_matrix(back, "gfre").shape == (2, 2)


def test_merge_features_refuses_what_it_cannot_check(soap):
    bare = soap.copy()
    bare.attrs.pop("fingerprint")
    for name in bare.data_vars:
        bare[name].attrs.pop("fingerprint")
    with pytest.raises(ValueError, match="no fingerprint"):
        merge_features(soap, bare)
    (name,) = soap.data_vars
    changed = soap.assign({name: soap[name] + 1.0})
    with pytest.raises(ValueError, match="give each feature set once"):
        merge_features(soap, changed)
    with pytest.raises(ValueError, match="at least one"):
        merge_features()


def test_files_from_before_per_set_fingerprints_get_the_datasets(soap, frames, tmp_path):
    old = soap.copy(deep=True)
    (name,) = old.data_vars
    del old[name].attrs["fingerprint"]
    for key in ("latentatlas_kind", "latentatlas_schema"):  # files of that time carry no schema stamp
        del old.attrs[key]
    back = io.load(io.save(old, tmp_path / "old.nc"))
    assert back[name].attrs["fingerprint"] == fingerprint(frames)
    assert list(merge_features(back, soap).data_vars) == [name]  # the same set twice is one set
