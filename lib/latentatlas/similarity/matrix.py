"""Matrices of any registered measure between every pair of feature sets, as xarray objects."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._xarray import labelled_array
from ..dataset import common_sample_dim, feature_arrays
from ..fre._split import DEFAULT_SEED, resolve_split
from .registry import resolve_metric

__all__ = ["measure_matrices", "pointwise_similarity_matrix", "similarity_matrix"]


def measure_matrices(
    features,
    metric: str = "cka",
    *,
    names=None,
    train_idx=None,
    test_idx=None,
    seed: int = DEFAULT_SEED,
    n_jobs: int = -1,
    progress: bool = True,
    pointwise: bool = True,
    **options,
) -> tuple[xr.DataArray, xr.DataArray | None]:
    """A measure between every ordered pair of feature sets, and its per-sample form.

    Parameters
    ----------
    features : xarray.Dataset or dict of name -> array-like (n_samples, n_features)
    metric : str
        A name of :data:`latentatlas.similarity.MEASURES` (``"cka"``, ``"procrustes"``,
        ``"gfre"``, ...) or a long alias (``"linear_cka"``, ``"mutual_knn"``, ...).
    names : sequence of str, optional
        Feature sets to compare, in order; default all.
    train_idx, test_idx : array-like of int, optional
        Default: scikit-matter's 50/50 split. In-sample measures use the test rows.
    seed : int
    n_jobs : int, default -1
        Worker threads; results do not depend on it.
    progress : bool
    pointwise : bool
        Also return the per-sample values (for measures that have them).
    **options
        Passed to the measure: ``n_local_points``, ``alphas`` (FRE), ``k`` (mutual k-NN),
        ``sigma``, ``max_samples`` (RBF CKA), ``svcca_variance``, ``svcca_criterion`` (SVCCA).

    Returns
    -------
    matrix : xarray.DataArray (source, target)
        Named after the measure; attrs ``metric``, ``label``, ``lower_is_better``, split sizes.
    pointwise : xarray.DataArray (source, target, test_<sample>) or None
        None when the measure has no per-sample form or ``pointwise`` is False.
    """
    measure = resolve_metric(metric)
    arrays = feature_arrays(features, names)
    names = list(arrays)
    n = next(iter(arrays.values())).shape[0]
    train_idx, test_idx = resolve_split(n, train_idx, test_idx, seed)
    values, point, details = measure.compute(list(arrays.values()), names, train_idx, test_idx, seed=seed, n_jobs=n_jobs,
                                    progress=progress, pointwise=pointwise, **options)
    attrs = {
        **details,
        "metric": measure.name,
        "label": measure.label,
        "lower_is_better": int(measure.lower_is_better),
        "seed": int(seed),
        "n_train": int(len(train_idx)),
        "n_test": int(len(test_idx)),
    }
    coords = {"source": names, "target": names}
    matrix = labelled_array(values, ("source", "target"), coords, name=measure.name, attrs=attrs)
    if point is None or not pointwise:
        return matrix, None
    sample = common_sample_dim(features, names) if isinstance(features, xr.Dataset) else "sample"
    test_dim = f"test_{sample}"
    return matrix, labelled_array(point, ("source", "target", test_dim), {**coords, test_dim: np.asarray(test_idx)},
                                  name=f"{measure.name}_pointwise", attrs=attrs)


def similarity_matrix(features, metric: str = "cka", **kwargs) -> xr.DataArray:
    """The (source, target) matrix of a measure; parameters as :func:`measure_matrices`."""
    return measure_matrices(features, metric, pointwise=False, **kwargs)[0]


def pointwise_similarity_matrix(features, metric: str = "mknn", **kwargs) -> xr.DataArray:
    """The (source, target, test_<sample>) per-sample values of a measure that has them.

    Raises
    ------
    ValueError
        For a measure without a per-sample form (CKA, CCA, SVCCA).
    """
    measure = resolve_metric(metric)
    if not measure.pointwise:
        raise ValueError(f"{measure.name!r} has no per-sample form; use similarity_matrix, or one of "
                         "gfre, gfrd, lfre, procrustes, procrustes_cca, mknn")
    return measure_matrices(features, metric, **kwargs)[1]
