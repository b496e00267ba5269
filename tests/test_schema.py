"""Result kinds and schema: stamped where created, checked where loaded, older files upgraded."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_compare import features  # noqa: F401  (fixture: two feature sets over molecules and crystals)

from latentatlas import io, schema
from latentatlas.compare import compare
from latentatlas.cumulants import structure_features

LEGACY = Path(__file__).parent / "data" / "legacy"


def shipped_demo_files():
    """The demo results as the previous version shipped them (data/*.nc at e19a881), written
    before results were stamped (schema 0)."""
    return sorted(LEGACY.glob("*.nc"))


def test_results_are_stamped_where_created(features):
    # a model name with ':' in it, and an attr only one set has
    features = features.copy(deep=True).rename({"b:y": "b:v2:y", "b:y:feature": "b:v2:y:feature"})
    features["b:v2:y"].attrs["model"] = "b:v2"
    features["a:x"].attrs["invariant"] = 1
    assert schema.kind_of(features) == "features" and features.attrs["latentatlas_schema"] == schema.SCHEMA_VERSION
    result = compare(features, metrics=("gfre",), n_splits=1, progress=False)
    assert schema.kind_of(result) == "comparison"
    assert result["source_model"].values.tolist() == ["a", "b:v2"] == result["target_model"].values.tolist()
    assert result["source_layer"].values.tolist() == ["x", "y"]
    assert result["source_invariant"].values.tolist() == ["1", ""]  # not every set has it: text
    assert result["source_cumulant_order"].values.tolist() == [0, 0]
    assert not [k for k in result.attrs if k.startswith("feature_set:")]
    phi = compare(structure_features(features, 3), metrics=("gfre",), n_splits=1, progress=False)
    assert phi["source_cumulant_order"].values.tolist() == [3, 3]
    assert phi["source_source_feature_set"].values.tolist() == ["a:x", "b:v2:y"]


def test_checks_name_the_kind_and_what_is_missing(features, tmp_path):
    result = compare(features, metrics=("gfre",), n_splits=1, progress=False)
    assert schema.check(result) is result and schema.check_features(features) is features
    with pytest.raises(ValueError, match="is a features result, not a comparison result"):
        schema.check_comparison(features)
    with pytest.raises(ValueError, match=r"lacks \['pca'\]"):
        schema.check(result.drop_vars("pca"), "comparison")
    with pytest.raises(ValueError, match="not a latentatlas result"):
        schema.check(xr.Dataset({"x": ("a", [1.0])}))
    newer = result.assign_attrs(latentatlas_schema=schema.SCHEMA_VERSION + 1)
    with pytest.raises(ValueError, match="newer than this latentatlas"):
        schema.check(newer)
    io.save(newer, tmp_path / "newer.nc")
    with pytest.raises(ValueError, match="upgrade latentatlas"):
        io.load(tmp_path / "newer.nc")


@pytest.mark.parametrize("path", shipped_demo_files(), ids=lambda p: p.name)
def test_files_of_the_previous_version_open_upgraded(path, tmp_path):
    with xr.open_dataset(path) as raw:
        raw = raw.load()
    assert "latentatlas_kind" not in raw.attrs  # written before the stamp
    ds = io.load(path)
    kind = "concepts" if "concepts" in path.name else "comparison"
    assert schema.kind_of(ds) == kind and ds.attrs["latentatlas_schema"] == schema.SCHEMA_VERSION
    assert schema.check(ds, kind) is ds
    if kind == "comparison":
        names = [str(n) for n in ds["source"].values]
        assert not [k for k in ds.attrs if k.startswith("feature_set:")]
        for n, model, layer, version, order in zip(names, ds["source_model"].values, ds["source_layer"].values,
                                                   ds["source_model_version"].values, ds["source_cumulant_order"].values):
            packed = raw.attrs[f"feature_set:{n}"]
            assert n.split(":")[:2] == [model, layer] and f"model_version={version}, backend=" in packed
            assert order == (2 if n.endswith(":phi2") else 0)
        assert ds["target_layer"].values.tolist() == ds["source_layer"].values.tolist()
        for m in schema.metrics_of(ds):  # the numbers are untouched
            np.testing.assert_array_equal(ds[m].values, raw[m].values)
    assert schema.upgrade(ds) is ds  # idempotent
    io.save(ds, tmp_path / "again.nc")
    again = io.load(tmp_path / "again.nc")
    xr.testing.assert_identical(again, ds)
