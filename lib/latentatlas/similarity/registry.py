"""Every way of comparing feature spaces, by name: one registry for compare, CLI and dashboard.

:data:`MEASURES` maps each ``--metrics`` name to a :class:`Measure`: its label, meaning,
direction ("lower is more similar?"), whether it has a per-sample form, and the function
that computes the whole matrix over many feature sets with shared work. FRE measures
(``gfre``, ``gfrd``, ``lfre``) are entries like the others.

In-sample measures (CKA, CCA, SVCCA, mutual k-NN) are evaluated on the *test* rows of a
split, so that every measure sees the same samples and the spread over splits means the
same thing; FRE and Procrustes fit on the training rows and score on the test rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import _core

__all__ = ["MEASURES", "Measure", "resolve_metric"]


@dataclass(frozen=True)
class Measure:
    """One comparison measure.

    Attributes
    ----------
    name : str
        The ``--metrics`` value.
    label : str
        Short label for tables and plots.
    description : str
        One-line meaning, shown in the dashboard.
    lower_is_better : bool
        True for errors and distances, False for similarities.
    symmetric : bool
        ``f(X, Y) == f(Y, X)``.
    pointwise : bool
        Has a per-sample form (stored as ``<name>_pointwise``, shown in the drill-down).
    compute : callable
        ``compute(arrays, names, train_idx, test_idx, *, seed, n_jobs, progress, pointwise,
        **options) -> (values (S, S), pointwise (S, S, n_test) or None, attrs)``; attrs
        record how it was computed (estimator, neighbourhood size, subsample, ...).
    """

    name: str
    label: str
    description: str
    lower_is_better: bool
    symmetric: bool
    pointwise: bool
    compute: Callable


def _fre(metric):
    def compute(arrays, names, train_idx, test_idx, *, seed, n_jobs, progress, pointwise, n_local_points=100,
                alphas=None, **_):
        from ..fre import pointwise_fre_matrix, rms

        point = pointwise_fre_matrix(dict(zip(names, arrays)), metric, train_idx=train_idx, test_idx=test_idx,
                                     n_local_points=n_local_points, alphas=alphas, seed=seed, n_jobs=n_jobs,
                                     progress=progress)
        attrs = {k: v for k, v in point.attrs.items() if k not in ("seed", "n_train", "n_test")}
        return rms(point.values), point.values, attrs

    return compute


def _in_sample(values_fn, **fixed):
    """A measure computed on the test rows; ``values_fn`` returns (values, pointwise or None, attrs)."""

    def compute(arrays, names, train_idx, test_idx, *, seed, n_jobs, progress, pointwise, **options):
        rows = [a[test_idx] for a in arrays]
        values, point, attrs = values_fn(rows, n_jobs=n_jobs, progress=progress, seed=seed, **{**fixed, **options})
        return values, point, {"samples": "the test samples of the split (in-sample measure)", **attrs}

    return compute


def _cka(rows, *, n_jobs, progress, debiased, **_):
    return _core.cka_values(rows, debiased=debiased, n_jobs=n_jobs, progress=progress), None, {}


def _rbf_cka(rows, *, n_jobs, progress, seed, sigma=1.0, max_samples=2000, **_):
    keep = _core.subsample(rows[0].shape[0], max_samples, seed)
    values = _core.rbf_cka_values([r[keep] for r in rows], sigma=sigma, n_jobs=n_jobs, progress=progress)
    return values, None, {"sigma": float(sigma), "n_subsample": int(len(keep))}


def _cca(rows, *, n_jobs, progress, **_):
    return _core.cca_values(rows, n_jobs=n_jobs, progress=progress), None, {}


def _svcca(rows, *, n_jobs, progress, svcca_variance=0.99, svcca_criterion="variance", **_):
    values = _core.cca_values(rows, variance=svcca_variance, criterion=svcca_criterion, n_jobs=n_jobs,
                              progress=progress)
    return values, None, {"variance_kept": float(svcca_variance), "cut_off_on": svcca_criterion}


def _mknn(rows, *, n_jobs, progress, k=10, **_):
    values, point = _core.mutual_knn_values(rows, k=k, n_jobs=n_jobs, progress=progress)
    return values, point, {"k": int(k)}


def _procrustes(alpha):
    def compute(arrays, names, train_idx, test_idx, *, seed, n_jobs, progress, pointwise, **_):
        values, point = _core.procrustes_values(arrays, train_idx, test_idx, alpha=alpha, pointwise=pointwise,
                                                n_jobs=n_jobs, progress=progress)
        return values, point, {"alpha": float(alpha), "samples": "aligned on the training, scored on the test samples"}

    return compute


_ERROR_UNIT = "in units of the target's standard deviation"

MEASURES: dict[str, Measure] = {
    m.name: m
    for m in [
        Measure("gfre", "GFRE", f"global feature reconstruction error, linear map source → target ({_ERROR_UNIT})",
                True, False, True, _fre("gfre")),
        Measure("gfrd", "GFRD", "global feature reconstruction distortion: departure of that map from a rotation",
                True, False, True, _fre("gfrd")),
        Measure("lfre", "LFRE", f"local feature reconstruction error, a linear map per neighbourhood ({_ERROR_UNIT})",
                True, False, True, _fre("lfre")),
        Measure("cka", "linear CKA",
                "linear centred kernel alignment: 1 = same geometry up to rotation and scale, 0 = unrelated",
                False, True, False, _in_sample(_cka, debiased=False)),
        Measure("debiased_cka", "debiased CKA",
                "CKA from the unbiased HSIC estimator: no bias towards 1 when features outnumber samples",
                False, True, False, _in_sample(_cka, debiased=True)),
        Measure("rbf_cka", "RBF CKA",
                "CKA with Gaussian kernels (bandwidth: median distance) on a random subsample of ≤ 2,000 test samples",
                False, True, False, _in_sample(_rbf_cka)),
        Measure("procrustes", "Procrustes angle",
                "angular shape distance after the best rotation, fit on training and judged on test samples "
                "(radians; 0 = same shape up to rotation and scale)",
                True, True, True, _procrustes(1.0)),
        Measure("procrustes_cca", "CCA shape angle",
                "angular shape distance after whitening (netrep alpha = 0): like Procrustes, but blind to every "
                "invertible linear map (radians)",
                True, True, True, _procrustes(0.0)),
        Measure("cca", "mean CCA", "mean canonical correlation: 1 = same linear span, 0 = orthogonal spans",
                False, True, False, _in_sample(_cca)),
        Measure("svcca", "SVCCA", "mean canonical correlation of the directions holding 99 % of each set's variance",
                False, True, False, _in_sample(_svcca)),
        Measure("mknn", "mutual k-NN",
                "fraction of each sample's 10 nearest neighbours shared by both spaces (per sample: the drill-down)",
                False, True, True, _in_sample(_mknn)),
    ]
}

#: Long names accepted for the short ``--metrics`` values.
ALIASES = {
    "linear_cka": "cka",
    "procrustes_distance": "procrustes",
    "cca_similarity": "cca",
    "mutual_knn": "mknn",
}


def resolve_metric(name: str) -> Measure:
    """The :class:`Measure` called ``name`` (or one of its long function names).

    Raises
    ------
    ValueError
        Naming the known measures.
    """
    measure = MEASURES.get(ALIASES.get(name, name))
    if measure is None:
        raise ValueError(f"unknown metric {name!r}; choose from {sorted(MEASURES)} (or {sorted(ALIASES)})")
    return measure


def direction(name: str) -> float:
    """+1 for measures where lower is more similar, −1 otherwise (to rank pairs alike)."""
    return 1.0 if resolve_metric(name).lower_is_better else -1.0
