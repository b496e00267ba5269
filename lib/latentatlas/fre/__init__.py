"""Feature reconstruction measures (GFRE, GFRD, LFRE) and matrices of them.

See :mod:`latentatlas.fre.metrics` for the definitions; :mod:`latentatlas.fre.skmatter`
offers the same measures under scikit-matter's names and signatures (a drop-in), and
:mod:`latentatlas.similarity` the other measures (CKA, Procrustes, CCA, mutual k-NN). For
more samples than memory holds (dask-backed features, e.g. a zarr store):
:mod:`latentatlas.fre.streamed` (GFRE, GFRD from chunk-wise sufficient statistics) and
:mod:`latentatlas.fre.indexed` (LFRE with a faiss neighbour index), both on a
``dask.distributed`` cluster when a client is active.
"""

from ._ridge import DEFAULT_ALPHAS
from ._split import DEFAULT_SEED, default_split
from .matrix import fre_matrix, pointwise_fre_matrix
from .metrics import gfrd, gfre, lfre, pointwise_gfrd, pointwise_gfre, pointwise_lfre, rms

__all__ = [
    "DEFAULT_ALPHAS",
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
