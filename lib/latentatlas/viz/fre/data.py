"""Reading a comparison Dataset for display: checks, per-pair tables, per-atom errors, downloads.

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
    "lower_is_better",
    "matrix_csv",
    "matrix_netcdf",
    "metric_unit",
    "metrics_of",
    "pair_key",
    "pair_table",
    "per_atom_errors",
    "per_structure_errors",
    "pointwise_metrics_of",
    "sample_dim",
    "sample_properties",
    "selection_csv",
    "split_note",
    "worst_sample",
]

#: Short label and one-line meaning of each metric shown in the dashboard: the FRE measures
#: (:data:`latentatlas.schema.METRICS`), then the other measures of latentatlas.similarity.
METRICS = {
    **schema.METRICS,
    **{m.name: (m.label, m.description[0].upper() + m.description[1:] + ".") for m in MEASURES.values()
       if m.name not in schema.METRICS},
}


#: Units of the measures whose values are not plain numbers; reconstruction errors are in units of
#: the target's standard deviation (its features are scaled to unit total variance).
_UNITS = {"gfre": "target σ", "lfre": "target σ", "procrustes": "radians", "procrustes_cca": "radians",
          "mknn": "fraction of shared neighbours"}

#: Why GFRD(A, A) is not 0 (the matrix's diagonal), for the help and the hover.
GFRD_DIAGONAL = ("GFRD(A, A) is not 0: the map is a regularised ridge fit on the training samples (the "
                 "cut-off drops the weakest directions), so even a feature set mapped onto itself is not "
                 "exactly a rotation on the held-out samples; a diagonal near 0.05 is this floor, not a difference.")


def metric_unit(metric: str) -> str:
    """Unit of ``metric``'s values, in the words every plot and the help use for it."""
    return _UNITS.get(metric, "dimensionless")


def lower_is_better(metric: str) -> bool:
    """True for errors and distances (low = more alike), False for similarities."""
    measure = MEASURES.get(metric)
    return True if measure is None else measure.lower_is_better


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


def sample_properties(ds: xr.Dataset, metric: str) -> dict[str, np.ndarray]:
    """Numeric per-sample properties of the test samples of ``metric``, by display name.

    Every 1-D numeric coordinate or variable over the sample dimension counts, and, for atoms,
    every one over structures (taken from the atom's structure): a comparison of your own
    frames with extra per-structure columns (energies, ...) offers them too.

    Returns
    -------
    dict of str -> ndarray (n_test,)
    """
    dim = sample_dim(ds, metric)
    table = pair_table(ds, metric)
    index = {dim: table["sample"], "structure": table["structure"]}
    skip = {"atom_structure", "test_atom", "test_structure", "test_unseen_element"}
    props = {}
    for over in dict.fromkeys([dim, "structure"]):
        for name, var in ds.variables.items():
            if (var.dims == (over,) and name not in skip and name != over and np.issubdtype(var.dtype, np.number)
                    and not np.issubdtype(var.dtype, np.bool_)):
                props.setdefault(str(name), var.values[index[over]].astype(float))
    return props


def split_note(ds: xr.Dataset, metric: str) -> str:
    """Which train/test split the per-sample values of ``metric`` come from, against the matrix's mean.

    :func:`latentatlas.compare.compare` keeps the pointwise values of its first split only.
    """
    n = ds[metric].attrs.get("n_splits", ds.attrs.get("n_splits"))
    seed = ds[f"{metric}_pointwise"].attrs.get("seed", ds[metric].attrs.get("first_seed"))
    dim = sample_dim(ds, metric)
    shown = f"split 1 of {n}" if n is not None else "the first split"
    seed = f", seed {int(seed):#x}" if seed is not None else ""
    mean = f"the matrix shows the mean over all {n}" if n is not None and int(n) > 1 else "the matrix shows this split"
    return f"{ds.sizes[f'test_{dim}']} test {dim}s of {shown}{seed} ({mean})"


def worst_sample(ds: xr.Dataset, metric: str, pair, selection=()) -> tuple[int, int]:
    """``(sample, structure)``: the selected test sample (all if none) with the worst value of ``pair``
    (its index along the atom or structure dimension) and the structure holding it.

    Worst is the largest error, or the smallest similarity for measures where higher is better.
    """
    values = ds[f"{metric}_pointwise"].sel(source=pair[0], target=pair[1]).values.astype(float)
    picked = np.asarray(selection, int) if len(selection) else np.arange(values.size)
    ranked = values[picked] if lower_is_better(metric) else -values[picked]
    best = picked[int(np.nanargmax(ranked))] if np.isfinite(ranked).any() else picked[0]
    table = pair_table(ds, metric)
    return int(table["sample"][best]), int(table["structure"][best])


def matrix_csv(ds: xr.Dataset, metric: str, sources=None) -> str:
    """The matrix of ``metric`` as CSV: one row per (source, target) with mean and spread over splits."""
    names = list(sources) if sources is not None else [str(s) for s in ds["source"].values]
    cells = ds[[v for v in (metric, f"{metric}_std") if v in ds]].sel(source=names, target=names)
    frame = cells.reset_coords(drop=True).to_dataframe().rename(columns={f"{metric}_std": f"{metric}_std_over_splits"})
    return frame.to_csv(float_format="%.9g")


def matrix_netcdf(ds: xr.Dataset, metric: str, sources=None) -> bytes:
    """The matrix of ``metric`` (mean, spread, diagnostics) with its attrs as a netCDF file's bytes."""
    names = list(sources) if sources is not None else [str(s) for s in ds["source"].values]
    keep = [v for v in ds.data_vars if v == metric or (v.startswith(f"{metric}_") and ds[v].dims == ("source", "target"))]
    out = ds[keep].sel(source=names, target=names)
    # not a whole comparison (no per-sample values): no kind stamp, so nothing takes it for one
    out.attrs = {k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float)) and k != schema.KIND_ATTR}
    for v in out.data_vars.values():  # netCDF attrs hold numbers, strings and arrays only
        v.attrs = {k: a for k, a in v.attrs.items() if not isinstance(a, (bool, dict, list))}
    return bytes(out.to_netcdf())


def selection_csv(ds: xr.Dataset, metric: str, pair, selection) -> str:
    """The selected test samples of the drill-down as CSV, with their value for ``pair`` and properties."""
    import pandas as pd

    picked = np.asarray(selection, int)
    table = {k: v[picked] for k, v in pair_table(ds, metric).items()}
    value = ds[f"{metric}_pointwise"].sel(source=pair[0], target=pair[1]).values[picked]
    column = f"{metric} {pair[0]} -> {pair[1]}"
    props = {k: v[picked] for k, v in sample_properties(ds, metric).items() if k not in table}
    return pd.DataFrame({**table, column: value, **props}).to_csv(index=False, float_format="%.9g")


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
