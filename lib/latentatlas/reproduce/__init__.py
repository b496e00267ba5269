"""Reproduce the analyses of Chorna et al. (arXiv:2512.05717) on the built-in benchmark.

The paper compared PET-MAD, MACE, DPA and UMA on the MAD dataset; those weights cannot be
had offline, so the same questions are asked of the models shipped here (CHGNet and
SevenNet variants, plus SOAP as a hand-made reference):

1. cross-model GFRE and LFRE between last-layer features (split by structure, stratified by subset);
2. variants of one architecture (versions, two trainings, lmax, fidelity heads);
3. fine-tuning bias (CHGNet r2SCAN vs its parent 0.3.0, against unrelated pairs);
4. last layer vs inner layers of each model, both directions;
5. progressive cumulants φ^(1) → φ^(k) and φ^(k) → φ^(k+1) on structure-level features;
6. per-subset breakdown of the pointwise errors;
7. every FRE with its spread over random splits (bootstrap over structures for item 6);
8. a learning curve: cross-model GFRE from 10 % … 100 % of the training structures;
9. the ranking of model pairs by every other measure (CKA, Procrustes, CCA, SVCCA, mutual
   k-NN) beside GFRE and LFRE, with rank correlations between the measures and model maps.

The inner CV that picks each ridge cut-off is grouped by structure by default
(``Settings.cv``; ``"skmatter"`` gives scikit-matter's random folds), and every matrix
carries the diagnostics of :mod:`latentatlas.diagnostics`.

Example
-------
>>> from latentatlas.reproduce import Settings, reproduce
>>> result = reproduce("repro-out", Settings.quick())     # doctest: +SKIP
>>> result.cross["gfre"]                                  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import xarray as xr

from ..compare import LEARNING_FRACTIONS, learning_curve
from ..fre._split import check_cv
from .analyses import (
    ARCHITECTURE,
    FINE_TUNED,
    VARIANT_PAIRS,
    benchmark_frames,
    cross_model,
    cumulant_steps,
    fine_tuning,
    layers_within,
    load_features,
    measure_rankings,
    prefixed,
    subset_breakdown,
    variants,
)

__all__ = [
    "ARCHITECTURE",
    "FINE_TUNED",
    "ORGANIC_ONLY",
    "VARIANT_PAIRS",
    "Reproduction",
    "Settings",
    "reproduce",
]

QUICK_MODELS = ("chgnet-0.3.0", "chgnet-0.2.0", "chgnet-r2scan", "sevennet-0")

# Left out of the default model set: ANI-1x knows only H, C, N and O, and the analyses keep
# only the frames every model can describe, so it would shrink the benchmark to its
# organic molecules. Name them in ``Settings.models`` to include them.
ORGANIC_ONLY = tuple(f"ani-1x-{i}" for i in range(8))


@dataclasses.dataclass(frozen=True)
class Settings:
    """What to compute and how finely.

    Parameters
    ----------
    models : tuple of str, optional
        Featuriser names (:func:`latentatlas.features.list_featurizers`) or metatomic
        model files (``.pt``, compared by their ``last`` layer); default every
        installed one except those of :data:`ORGANIC_ONLY` (ANI-1x: H, C, N, O only).
    small : bool
        Use the 52-structure version of the built-in benchmark.
    fraction : float
        Use a random, subset-stratified fraction of the benchmark's structures (1: all).
    n_splits : int
        Random structure-level splits for every FRE (the spread is their standard deviation).
    lfre_per_subset : int
        Test atoms per subset (per split) at which LFRE is evaluated.
    n_local_points : int
        LFRE neighbourhood size.
    max_order : int
        Highest cumulant order (2 … 8).
    n_boot : int
        Bootstrap resamples for the per-subset spread.
    cv : {"grouped", "skmatter"}
        Inner CV folds of every ridge: by structure (LFRE: by identical feature vector in
        each neighbourhood), or random as scikit-matter (to compare with published numbers).
    learning_fractions : tuple of float
        Fractions of the training structures for the learning curve (analysis 8).
    blas_threads : int or None
        BLAS threads during the analyses. The default 1 is the fastest choice on small or
        busy machines: the matrices are small, and OpenBLAS threads that find their cores
        taken spin instead of working (measured 10-18x slower SVDs on 2 shared cores).
        None keeps the library's default.
    """

    models: tuple[str, ...] | None = None
    small: bool = False
    fraction: float = 1.0
    n_splits: int = 5
    lfre_per_subset: int = 50
    n_local_points: int = 100
    max_order: int = 8
    n_boot: int = 200
    cv: str = "grouped"
    learning_fractions: tuple[float, ...] = LEARNING_FRACTIONS
    blas_threads: int | None = 1

    @classmethod
    def quick(cls, **overrides) -> Settings:
        """Small benchmark, four models, three splits, cumulants up to order 4 (a few minutes)."""
        values = dict(models=QUICK_MODELS, small=True, n_splits=3, lfre_per_subset=10, n_local_points=20, max_order=4, n_boot=100)
        return cls(**(values | overrides))

    def __post_init__(self):
        if self.n_splits < 2:
            raise ValueError(f"n_splits must be at least 2 to give a spread, got {self.n_splits}")
        if not 2 <= self.max_order <= 8:
            raise ValueError(f"max_order must be between 2 and 8, got {self.max_order}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.lfre_per_subset < 1 or self.n_local_points < 4 or self.n_boot < 2:
            raise ValueError("lfre_per_subset must be >= 1, n_local_points >= 4 and n_boot >= 2")
        check_cv(self.cv)
        if not self.learning_fractions or not all(0 < f <= 1 for f in self.learning_fractions):
            raise ValueError(f"learning_fractions must lie in (0, 1], got {self.learning_fractions}")
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ValueError(f"blas_threads must be a positive integer or None, got {self.blas_threads}")

    def resolved_models(self) -> tuple[str, ...]:
        """The models to use: the given ones (checked) or every installed featuriser but :data:`ORGANIC_ONLY`."""
        from ..features import list_featurizers

        known = list_featurizers()
        if self.models is None:
            return tuple(m for m in list_featurizers(available_only=True) if m not in ORGANIC_ONLY)
        from ..features.metatomic import is_model_file

        files = [m for m in self.models if m not in known and is_model_file(m)]
        missing = [m for m in files if not Path(m).is_file()]
        if missing:
            raise FileNotFoundError(f"model files {missing} do not exist")
        unknown = [m for m in self.models if m not in known and m not in files]
        if unknown:
            raise KeyError(f"unknown models {unknown}; available: {', '.join(known)}, or metatomic model files (.pt)")
        if len(set(self.models)) < 2:
            raise ValueError("give at least two different models to compare")
        return tuple(dict.fromkeys(self.models))


@dataclasses.dataclass
class Reproduction:
    """Results of :func:`reproduce`, one xarray object per analysis.

    Attributes
    ----------
    cross : Dataset — analysis 1 (``gfre``, ``lfre``, spreads, pointwise errors).
    variants : Dataset — analysis 2 (pair tables, both directions).
    fine_tuning : Dataset or None — analysis 3 (None when the pair is not among the models).
    layers : dict of model -> Dataset — analysis 4.
    cumulants : Dataset — analysis 5, over dim ``feature_set`` (coordinate ``feature_set_model``: its featuriser).
    subsets : Dataset — analysis 6 (``gfre_rms``, ``lfre_rms`` and spreads per subset).
    settings : Settings
    benchmark : dict — frames used and dropped.
    timings : dict of str -> float — seconds per step.
    learning : Dataset or None — analysis 8 (:func:`latentatlas.compare.learning_curve` of GFRE).
    measures : Dataset or None — analysis 9 (:func:`~latentatlas.reproduce.analyses.measure_rankings`).
    """

    cross: xr.Dataset
    variants: xr.Dataset
    fine_tuning: xr.Dataset | None
    layers: dict[str, xr.Dataset]
    cumulants: xr.Dataset
    subsets: xr.Dataset
    settings: Settings
    benchmark: dict
    timings: dict[str, float]
    learning: xr.Dataset | None = None
    measures: xr.Dataset | None = None

    def save(self, out: str | Path) -> list[Path]:
        """Write every analysis as netCDF into folder ``out``; returns the paths."""
        from ..io import save

        out = Path(out)
        items = {"cross_model": self.cross, "variants": self.variants, "cumulants": self.cumulants, "subsets": self.subsets}
        if self.learning is not None:
            items["learning_curve"] = self.learning
        if self.fine_tuning is not None:
            items["fine_tuning"] = self.fine_tuning
        if self.measures is not None:
            items["measures"] = self.measures
        items |= {f"layers_{model}": ds for model, ds in self.layers.items()}
        return [save(ds, out / f"{name}.nc") for name, ds in items.items()]


def reproduce(out: str | Path | None = None, settings: Settings | None = None, *, progress: bool = True) -> Reproduction:
    """Run every analysis; with ``out``, write netCDF files, PNG figures and ``report.md`` there.

    Parameters
    ----------
    out : path, optional
        Output folder (created). Nothing is written without it.
    settings : Settings, optional
        Default :class:`Settings` () — the full benchmark with every installed model.
    progress : bool
        Progress bars.

    Returns
    -------
    Reproduction
    """
    from threadpoolctl import threadpool_limits

    settings = settings or Settings()
    with threadpool_limits(settings.blas_threads, user_api="blas"):
        return _run(out, settings, progress)


def _run(out, settings: Settings, progress: bool) -> Reproduction:
    from ..features import get_featurizers

    timings = {}
    clock = time.perf_counter()

    def tick(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    featurizers = get_featurizers(settings.resolved_models())
    frames, dropped = benchmark_frames(featurizers, small=settings.small, fraction=settings.fraction)
    last = load_features(frames, featurizers, "last", progress=progress)
    tick("features (last layers)")
    cross = cross_model(last, n_splits=settings.n_splits, lfre_per_subset=settings.lfre_per_subset,
                        n_local_points=settings.n_local_points, progress=progress, cv=settings.cv)
    tick("1 cross-model GFRE + LFRE")
    variant_table = variants(cross)
    models = [f.name for f in featurizers]
    layerwise = None
    if all(m in models for m in FINE_TUNED):
        pair = [f for f in featurizers if f.name in FINE_TUNED]
        layerwise = layers_within(load_features(frames, pair, progress=progress), FINE_TUNED,
                                  n_splits=settings.n_splits, progress=progress, cv=settings.cv)
    tuned = fine_tuning(cross, layerwise) if layerwise is not None else None
    tick("2-3 variants and fine-tuning")
    layers = {}
    for f in featurizers:
        if len(f.layers) > 1:
            layers[f.name] = layers_within(load_features(frames, [f], progress=progress), f.name,
                                           n_splits=settings.n_splits, progress=progress, cv=settings.cv)
    tick("4 layers within each model")
    cumulants = xr.concat(
        [cumulant_steps(last, name, max_order=settings.max_order, n_splits=settings.n_splits, progress=progress,
                        cv=settings.cv)
         for name in last.data_vars],
        dim=xr.DataArray(list(last.data_vars), dims="feature_set", name="feature_set"),
        combine_attrs="drop_conflicts",
    ).assign_coords(feature_set_model=("feature_set", [last[n].attrs.get("model", "") for n in last.data_vars]))
    tick("5 cumulant orders")
    subsets = xr.merge([
        prefixed(subset_breakdown(cross[f"{m}_pointwise"], last, n_boot=settings.n_boot), m, keep=("subset", "source", "target"))
        for m in ("gfre", "lfre")
    ])
    tick("6 per-subset breakdown")
    learning = learning_curve(last, metric="gfre", fractions=settings.learning_fractions, n_splits=settings.n_splits,
                              cv=settings.cv, progress=progress)
    tick("8 learning curve")
    measures = measure_rankings(last, cross, n_splits=settings.n_splits, progress=progress)
    tick("9 other measures, rankings of model pairs")
    summary = {
        "n_structures": len(frames),
        "n_atoms": int(sum(len(a) for a in frames)),
        "subsets": {s: int((last["subset"].values == s).sum()) for s in dict.fromkeys(last["subset"].values.tolist())},
        "dropped": dropped,
        "models": models,
    }
    result = Reproduction(cross, variant_table, tuned, layers, cumulants, subsets, settings, summary, timings, learning,
                          measures)
    if out is not None:
        from .report import write_report

        result.save(out)
        write_report(result, out)
        tick("saving, figures, report")
    return result
