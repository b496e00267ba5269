"""Feature reconstruction measures (GFRE, GFRD, LFRE) and matrices of them.

See :mod:`latentatlas.fre.metrics` for the definitions; :mod:`latentatlas.fre.skmatter`
offers the same measures under scikit-matter's names and signatures (a drop-in), and
:mod:`latentatlas.similarity` the other measures (CKA, Procrustes, CCA, mutual k-NN). For
more samples than memory holds (dask-backed features, e.g. a zarr store):
:mod:`latentatlas.fre.streamed` (GFRE, GFRD from chunk-wise sufficient statistics) and
:mod:`latentatlas.fre.indexed` (LFRE with a faiss neighbour index), both on a
``dask.distributed`` cluster when a client is active.

:class:`GlobalFRE` and :class:`LocalFRE` (:mod:`latentatlas.fre.estimators`) are the same
measures as scikit-learn regressors (``fit``/``predict``/``score``, usable in a ``Pipeline``
and ``GridSearchCV``); they need scikit-learn, imported only when they are first used.
"""

from ._ridge import DEFAULT_ALPHAS
from ._split import DEFAULT_SEED, default_split
from .matrix import fre_matrix, pointwise_fre_matrix
from .metrics import gfrd, gfre, lfre, pointwise_gfrd, pointwise_gfre, pointwise_lfre, rms

__all__ = [
    "DEFAULT_ALPHAS",
    "GlobalFRE",
    "LocalFRE",
    "DEFAULT_SEED",
    "default_split",
    "fre_matrix",
    "gfrd",
    "gfre",
    "lfre",
    "pointwise_fre_matrix",
    "pointwise_gfrd",
    "pointwise_gfre",
    "pointwise_lfre",
    "rms",
]


def __getattr__(name):
    # the estimators need scikit-learn, an optional dependency: imported on first use only
    if name in ("GlobalFRE", "LocalFRE"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
