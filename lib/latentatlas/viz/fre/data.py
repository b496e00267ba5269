"""Reading a comparison Dataset for display: checks, per-pair tables, per-atom errors.

No UI imports here: these helpers are plain numpy/xarray so they are testable alone.

A *comparison* Dataset is what :func:`latentatlas.compare.compare` returns. Its layout and
what every reader needs (:func:`metrics_of`, :func:`pointwise_metrics_of`, :func:`sample_dim`,
:func:`default_pair`, :func:`check_comparison`) live in :mod:`latentatlas.schema` and are
re-exported here; :data:`METRICS` adds the similarity measures' labels to the FRE ones.
Optional: the diagnostics ``m_flags`` and friends (:mod:`latentatlas.diagnostics`), shown
as marks on the cells, and a learning curve
``learning_m`` (:func:`latentatlas.compare.learning_curve`), plotted for the selected cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from ... import schema
from ...schema import check_comparison, default_pair, metrics_of, pointwise_metrics_of, sample_dim
from ...similarity.registry import MEASURES

__all__ = [
    "METRICS",
    "as_levels",
    "check_comparison",
    "default_pair",
    "demo_comparison_paths",
    "learning_curve_of",
    "load_levels",
    "metric_unit",
    "metrics_of",
    "pair_key",
    "pair_table",
    "per_atom_errors",
    "per_structure_errors",
    "pointwise_metrics_of",
    "sample_dim",
]

#: Short label and one-line meaning of each metric shown in the dashboard: the FRE measures
#: (:data:`latentatlas.schema.METRICS`), then the other measures of latentatlas.similarity.
METRICS = {
    **schema.METRICS,
    **{m.name: (m.label, m.description[0].upper() + m.description[1:] + ".") for m in MEASURES.values()
       if m.name not in schema.METRICS},
}


def metric_unit(metric: str) -> str:
    """Unit of ``metric``'s values, in the words every plot and the help use for it.

    Reconstruction errors are in units of the target's standard deviation (its features are scaled
    to unit total variance); everything else is dimensionless.
    """
    return "target σ" if metric in ("gfre", "lfre") else "dimensionless"


def as_levels(comparison) -> dict[str, xr.Dataset]:
    """One comparison Dataset, or a mapping level label -> Dataset, as a checked dict."""
    if isinstance(comparison, xr.Dataset):  # a Dataset is itself a Mapping of its variables
        comparison = {_level_label(comparison): comparison}
    levels = dict(comparison) if isinstance(comparison, Mapping) else {_level_label(comparison): comparison}
    if not levels:
        raise ValueError("no comparison given; pass a comparison Dataset or a dict label -> Dataset")
    return {label: check_comparison(ds, f"comparison {label!r}") for label, ds in levels.items()}


def _level_label(ds: xr.Dataset) -> str:
    """``"atom level"``, or ``"structure level"`` with the cumulant order of ``:phi<k>`` feature sets."""
    metric = pointwise_metrics_of(check_comparison(ds))[0]
    if sample_dim(ds, metric) == "atom":
        return "atom level"
    orders = set(ds["source_cumulant_order"].values.tolist()) if "source_cumulant_order" in ds.coords else set()
    return f"structure level (cumulants κ1…κ{orders.pop()})" if len(orders) == 1 and 0 not in orders else "structure level"


def pair_key(i: int, j: int) -> str:
    """Column key of source ``i`` -> target ``j`` in the precomputed stores (also used in JS)."""
    return f"{i}_{j}"


def pair_table(ds: xr.Dataset, metric: str) -> dict[str, np.ndarray]:
    """Per test sample of ``metric``: identity columns shared by every pair.

    Returns
    -------
    dict of str -> ndarray (n_test,)
        ``sample`` (index in the features Dataset), ``structure``, ``subset``, ``formula``,
        ``element`` (symbol, or ``"-"`` for structure-level samples).
    """
    from ase.data import chemical_symbols

    dim = sample_dim(ds, metric)
    sample = ds[f"test_{dim}"].values.astype(int)
    if dim == "atom":
        structure = ds["atom_structure"].values[sample].astype(int)
        element = np.asarray(chemical_symbols)[ds["species"].values[sample].astype(int)]
    else:
        structure = ds["structure"].values[sample].astype(int)
        element = np.full(sample.size, "-")
    return {
        "sample": sample,
        "structure": structure,
        "subset": ds["subset"].values[structure].astype(str),
        "formula": ds["formula"].values[structure].astype(str) if "formula" in ds.variables else structure.astype(str),
        "element": element.astype(str),
    }


def learning_curve_of(ds: xr.Dataset, metric: str, source: str, target: str):
    """``(n_train_structures, value, spread)`` of one pair's learning curve, or None if ``ds`` has none."""
    name = f"learning_{metric}"
    if name not in ds or source not in ds[name].source or target not in ds[name].target:
        return None
    cell = dict(source=source, target=target)
    return (ds["learning_n_train_structures"].values, ds[name].sel(**cell).values,
            np.nan_to_num(ds[f"{name}_std"].sel(**cell).values))


def _per_sample_errors(ds: xr.Dataset, metric: str, source: str, target: str, dim: str) -> np.ndarray | None:
    """Pointwise error of one pair on every sample along ``dim`` (NaN outside the test set), None if per other samples."""
    if sample_dim(ds, metric) != dim:
        return None
    out = np.full(ds.sizes[dim], np.nan)
    out[ds[f"test_{dim}"].values.astype(int)] = ds[f"{metric}_pointwise"].sel(source=source, target=target).values
    return out


def per_atom_errors(ds: xr.Dataset, metric: str, source: str, target: str) -> np.ndarray | None:
    """Pointwise error of one pair on every atom (NaN for atoms outside the test set).

    Returns
    -------
    ndarray (n_atoms_total,) or None
        None when the errors are per structure, not per atom.
    """
    return _per_sample_errors(ds, metric, source, target, "atom")


def per_structure_errors(ds: xr.Dataset, metric: str, source: str, target: str) -> np.ndarray | None:
    """Pointwise error of one pair on every structure (NaN outside the test set) of a structure-level comparison.

    Returns
    -------
    ndarray (n_structures,) or None
        None when the errors are per atom.
    """
    return _per_sample_errors(ds, metric, source, target, "structure")


def demo_comparison_paths() -> list[Path]:
    """The precomputed comparison files shipped in the package (:mod:`latentatlas.data`).

    Raises
    ------
    FileNotFoundError
        When no ``demo_comparison*.nc`` exists, saying how to create it.
    """
    from ... import data as shipped

    data = shipped.folder()
    paths = sorted(data.glob("demo_comparison*.nc"))
    if not paths:
        raise FileNotFoundError(
            f"no built-in comparison found in {data}; run 'python -m latentatlas.demos.comparison' to create it, "
            "or pass a comparison file"
        )
    return paths


def load_levels(paths) -> dict[str, xr.Dataset]:
    """Load comparison files (netCDF, or zarr stores) into checked levels.

    Parameters
    ----------
    paths : str, Path, sequence of them, or mapping label -> path
        Without labels, each file is labelled by its content (atom or structure level).
    """
    from ...io import load

    if isinstance(paths, Mapping):
        return as_levels({label: load(p).load() for label, p in paths.items()})
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    levels = {}
    for path in paths:
        ds = load(path).load()  # a zarr comparison opens lazily; results are small, so read them once
        label = _level_label(ds)
        levels[f"{label} ({Path(path).name})" if label in levels else label] = ds
    return as_levels(levels)
