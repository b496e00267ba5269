"""What a latentatlas result is: its kind, its schema version, and the checks each kind passes.

Three kinds of Dataset leave the library, each stamped where it is created
(``attrs["latentatlas_kind"]``, ``attrs["latentatlas_schema"]``, see :func:`stamp`):

``features``
    :func:`latentatlas.dataset.empty_features` and everything built on it (featurisers,
    :func:`latentatlas.cumulants.structure_features`): feature sets over ``atom`` or
    ``structure`` plus the frames' coordinates and ``fingerprint``.
``comparison``
    :func:`latentatlas.compare.compare`: per metric ``m`` the variables ``m``, ``m_std``
    (source, target) and ``m_pointwise`` (source, target, test_<sample>), ``pca`` and the
    frames' coordinates. Each feature set's metadata is a coordinate on ``source`` and on
    ``target`` (``source_model``, ``source_layer``, ``source_cumulant_order``, ...), never
    parsed back out of its name.
``concepts``
    :func:`latentatlas.concepts.analyse_concepts`: probe accuracies and presences over
    ``(layer, concept, class)``.

A file is upgraded to the current schema when it is read (:func:`upgrade`, called by
:func:`latentatlas.io.load`) and checked once where a viewer or command takes it
(:func:`check`). Files written before the stamp existed (schema 0) open: their kind is
recognised from their variables and their packed ``feature_set:<name>`` attributes become
coordinates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import xarray as xr

__all__ = [
    "KINDS",
    "FRE_METRICS",
    "METRICS",
    "SCHEMA_VERSION",
    "check",
    "check_comparison",
    "check_concepts",
    "check_features",
    "default_pair",
    "feature_set_coords",
    "feature_sets",
    "kind_of",
    "metric_label",
    "metrics_of",
    "pointwise_metrics_of",
    "sample_dim",
    "stamp",
    "upgrade",
]

#: Version of the layouts described above; bump it, and teach :func:`upgrade` the step, on any change.
SCHEMA_VERSION = 1
KIND_ATTR = "latentatlas_kind"
VERSION_ATTR = "latentatlas_schema"
KINDS = ("features", "comparison", "concepts")

#: Short label and one-line meaning of each metric, in display order.
METRICS = {
    "gfre": (
        "GFRE",
        "Global feature reconstruction error: how much of the target features a single linear map "
        "from the source features cannot reproduce (RMS residual on held-out samples, in units of the "
        "target's standard deviation; 0 = target fully contained in source, 1 = no better than predicting "
        "the training mean, above 1 = worse than that on held-out structures).",
    ),
    "gfrd": (
        "GFRD",
        "Global feature reconstruction distortion: how far the best linear map is from a rotation, i.e. "
        "how much the source space must be stretched or squashed to match the target (0 = same geometry "
        "up to rotation; dimensionless).",
    ),
    "lfre": (
        "LFRE",
        "Local feature reconstruction error: like GFRE but with a separate linear map fitted on each test "
        "sample's nearest neighbours, so it only asks whether the target is locally a linear function of "
        "the source (units of the target's standard deviation).",
    ),
}

#: The metrics :mod:`latentatlas.fre` computes (``fre_matrix``, ``compare``, ``latentatlas fre --metrics``).
FRE_METRICS = tuple(METRICS)

_COMPARISON_COORDS = ("subset", "atom_structure", "species", "positions", "cell", "pbc", "pca")
#: what the concept app reads beyond the variables knowledge_graph itself checks
_CONCEPT_NEEDS = ("accuracy_baseline", "class_accuracy", "probability", "sample_class")
_FIX = {
    "features": "give a file written by 'latentatlas featurize ... --out features.nc' (latentatlas.features)",
    "comparison": "give a file written by latentatlas.compare (or a features file, which is then compared)",
    "concepts": "give a file written by 'latentatlas concepts ... --out result.nc' (latentatlas.concepts.analyse_concepts)",
}


def stamp(ds: xr.Dataset, kind: str) -> xr.Dataset:
    """Mark ``ds`` (in place, and return it) as a result of ``kind`` in the current schema."""
    if kind not in KINDS:
        raise ValueError(f"unknown result kind {kind!r}; one of {KINDS}")
    ds.attrs[KIND_ATTR] = kind
    ds.attrs[VERSION_ATTR] = SCHEMA_VERSION
    return ds


def _measures() -> dict:
    """The similarity measures' registry (imported late: latentatlas.similarity imports dataset, which imports this module)."""
    from .similarity.registry import MEASURES

    return MEASURES


def metric_label(metric: str) -> str:
    """Short display label of a metric: :data:`METRICS`, the similarity registry's, or its name in capitals."""
    if metric in METRICS:
        return METRICS[metric][0]
    measures = _measures()
    return measures[metric].label if metric in measures else metric.upper()


def metrics_of(ds: xr.Dataset) -> list[str]:
    """Metrics present in a comparison Dataset: FRE first (:data:`METRICS` order), then the other measures.

    A metric is a (source, target) variable that is a known measure or has a per-sample form.
    """
    known = list(dict.fromkeys([*METRICS, *_measures()]))
    found = [m for m in ds.data_vars if ds[m].dims == ("source", "target")
             and (m in known or f"{m}_pointwise" in ds.data_vars)]
    return sorted(found, key=lambda m: (known.index(m) if m in known else len(known), m))


def pointwise_metrics_of(ds: xr.Dataset) -> list[str]:
    """The metrics of ``ds`` that have per-sample values (what the drill-down can show)."""
    return [m for m in metrics_of(ds) if f"{m}_pointwise" in ds.data_vars]


def sample_dim(ds: xr.Dataset, metric: str) -> str:
    """``"atom"`` or ``"structure"``: what the pointwise errors of ``metric`` run over."""
    test_dim = ds[f"{metric}_pointwise"].dims[-1]
    return test_dim.removeprefix("test_")


def default_pair(ds: xr.Dataset, metric: str) -> tuple[str, str]:
    """The least similar off-diagonal pair (the diagonal if there is one feature set).

    Largest error or distance; smallest similarity for measures where higher is more similar.
    """
    measures = _measures()
    sign = -1.0 if metric in measures and not measures[metric].lower_is_better else 1.0
    values = sign * ds[metric].values
    if values.shape[0] > 1:
        np.fill_diagonal(values, -np.inf)
    i, j = np.unravel_index(np.nanargmax(values), values.shape)
    return str(ds["source"].values[i]), str(ds["target"].values[j])


def feature_sets(ds: xr.Dataset) -> list[str]:
    """Names of the feature sets of a features Dataset (:func:`latentatlas.dataset.is_feature_set`)."""
    from .dataset import is_feature_set  # dataset stamps its Datasets with this module

    return [str(k) for k in ds.data_vars if is_feature_set(ds, k)]


def _recognise(ds: xr.Dataset) -> str | None:
    """The kind a Dataset's content shows, for files written before the stamp (None: not a result)."""
    if "probe_accuracy" in ds.data_vars and "layer" in ds.dims:
        return "concepts"
    if pointwise_metrics_of(ds) and "pca" in ds.data_vars:  # not a bare matrix (fre_matrix)
        return "comparison"
    if feature_sets(ds):
        return "features"
    return None


def kind_of(ds) -> str | None:
    """``"features"``, ``"comparison"``, ``"concepts"``, or None when ``ds`` is no latentatlas result."""
    if not isinstance(ds, xr.Dataset):
        return None
    return ds.attrs.get(KIND_ATTR) or _recognise(ds)


def feature_set_coords(attrs: Mapping[str, Mapping], dims=("source", "target")) -> dict[str, tuple]:
    """Coordinates carrying each feature set's metadata along the comparison dims.

    Parameters
    ----------
    attrs : mapping of feature-set name -> its attrs (``model``, ``layer``, ``cumulant_order``, ...)
        In the order of the dims' values.
    dims : sequence of str

    Returns
    -------
    dict of str -> (dim, ndarray)
        ``"<dim>_<key>"`` for every key of any feature set: integers or floats where every
        set has a number, else strings ("" where a set lacks the key). ``cumulant_order``
        is always present (0 for atom-level sets).
    """
    rows = [dict(a) for a in attrs.values()]
    for row in rows:
        row.setdefault("cumulant_order", 0)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    out = {}
    for key in keys:
        values = [row.get(key) for row in rows]
        numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)
        array = np.asarray(values) if numeric else np.asarray(["" if v is None else str(v) for v in values])
        for dim in dims:
            out[f"{dim}_{key}"] = (dim, array)
    return out


# -- checks -------------------------------------------------------------------------------

def _checked(ds, kind: str, name: str, *, content, what: str, needs=()) -> str:
    """The checks every kind shares; returns the hint on how to produce a valid file."""
    fix = _FIX[kind]
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"{name} is a {type(ds).__name__}, not an xarray.Dataset; {fix}")
    version = int(ds.attrs.get(VERSION_ATTR, 0))
    if version > SCHEMA_VERSION:
        raise ValueError(f"{name} was written with result schema {version}, newer than this latentatlas "
                         f"understands ({SCHEMA_VERSION}); upgrade latentatlas")
    found = kind_of(ds)
    if found is not None and found != kind:
        raise ValueError(f"{name} is a {found} result, not a {kind} result; {fix}")
    if not content(ds):
        raise ValueError(f"{name} holds no {what}; {fix}")
    missing = [v for v in needs if v not in ds.variables]
    if missing:
        raise ValueError(f"{name} lacks {missing}; {fix}")
    return fix


# Each check returns ``ds`` unchanged, or raises a ValueError naming what is wrong or missing
# and how to produce a valid file.

def check_features(ds, name: str = "the features") -> xr.Dataset:
    """Check that ``ds`` is a features Dataset (see module docstring)."""
    _checked(ds, "features", name, content=feature_sets, what="feature set (variable over (sample, '<name>:feature'))")
    return ds


def check_comparison(ds, name: str = "the comparison") -> xr.Dataset:
    """Check that ``ds`` has the comparison layout the viewers need."""
    pointwise = [m.name for m in _measures().values() if m.pointwise]
    fix = _checked(ds, "comparison", name, content=pointwise_metrics_of, needs=_COMPARISON_COORDS,
                   what=f"metric with per-sample values (no variable with a matching '<metric>_pointwise'; "
                        f"compare with at least one of {pointwise})")
    for m in pointwise_metrics_of(ds):
        dims = ds[f"{m}_pointwise"].dims
        if dims[:2] != ("source", "target") or dims[-1] not in ("test_atom", "test_structure"):
            raise ValueError(
                f"{name}: {m}_pointwise has dims {dims}, expected ('source', 'target', 'test_atom' or "
                f"'test_structure'); {fix}"
            )
    if list(ds["source"].values) != list(ds["target"].values):
        raise ValueError(f"{name}: sources and targets differ; compare every feature set with every other")
    return ds


def check_concepts(ds, name: str = "the concept result") -> xr.Dataset:
    """Check that ``ds`` has everything the concept viewers read (and that its knowledge graph builds)."""
    from .concepts import knowledge_graph

    _checked(ds, "concepts", name, content=lambda d: "probe_accuracy" in d.data_vars and "layer" in d.dims,
             what="probe accuracies (variable 'probe_accuracy' over 'layer')", needs=_CONCEPT_NEEDS)
    try:
        knowledge_graph(ds)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err
    return ds


_CHECKS = {"features": check_features, "comparison": check_comparison, "concepts": check_concepts}


def check(ds, kind: str | None = None, name: str = "the result") -> xr.Dataset:
    """Check ``ds`` as a result of ``kind`` (default: the kind it says or shows it is); return it.

    Raises
    ------
    ValueError
        ``ds`` is no latentatlas result, another kind than ``kind``, or incomplete.
    """
    kind = kind or kind_of(ds)
    if kind is None:
        raise ValueError(f"{name} is not a latentatlas result (no features, FRE metrics or concept probes); "
                         "give a file written by latentatlas featurize, fre or concepts")
    if kind not in _CHECKS:
        raise ValueError(f"unknown result kind {kind!r}; one of {KINDS}")
    return _CHECKS[kind](ds, name)


# -- migration ----------------------------------------------------------------------------

_PACKED_KEY = re.compile(r"(?:^|, )([A-Za-z_]\w*)=")


def _unpack(text: str) -> dict:
    """``"model=a, layer=b, invariant=1"`` (schema 0's ``feature_set:<name>`` attrs) as a dict."""
    parts = _PACKED_KEY.split(str(text))[1:]
    out = {}
    for key, value in zip(parts[::2], parts[1::2]):
        out[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return out


def upgrade(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` in the current schema: stamped, and with the layout of older files brought up to date.

    Schema 0 (files written before results were stamped) gets its kind from its content;
    its feature sets get the Dataset's ``fingerprint`` where they lack their own, and a
    comparison's ``feature_set:<name>`` attributes (``"k=v, ..."`` strings) become the
    coordinates of :func:`feature_set_coords`. A Dataset that is no latentatlas result is
    returned unchanged (:func:`check` then says what it lacks).

    Raises
    ------
    ValueError
        ``ds`` was written with a newer schema than this version knows.
    """
    version = int(ds.attrs.get(VERSION_ATTR, 0))
    if version > SCHEMA_VERSION:
        raise ValueError(f"result schema {version} is newer than this latentatlas understands "
                         f"({SCHEMA_VERSION}); upgrade latentatlas")
    if version == SCHEMA_VERSION:
        return ds
    kind = _recognise(ds)
    if kind is None:
        return ds
    ds = ds.copy()
    if kind == "features":
        from .dataset import with_feature_fingerprints

        ds = with_feature_fingerprints(ds)
    if kind == "comparison":
        names = [str(s) for s in ds["source"].values]
        packed = {n: _unpack(ds.attrs.get(f"feature_set:{n}", "")) for n in names}
        ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("feature_set:")}
        ds = ds.assign_coords(feature_set_coords(packed))
    return stamp(ds, kind)
