"""Every way of comparing feature spaces beside FRE: CKA, Procrustes, CCA, SVCCA, mutual k-NN.

* :mod:`~latentatlas.similarity.measures`: pairwise functions ``f(X, Y, ...)`` on
  (n_samples, n_features) arrays, like the FRE functions (``linear_cka``, ``debiased_cka``,
  ``rbf_cka``, ``procrustes_distance``, ``cca_similarity``, ``svcca``, ``mutual_knn`` and
  the ``pointwise_*`` forms where a measure has one).
* :func:`similarity_matrix` / :func:`measure_matrices`: the matrix over many feature sets,
  each set centred and factorised once (the same sharing of work as ``fre_matrix``).
* :data:`MEASURES`: the registry of every measure by its ``--metrics`` name, FRE included.
* :func:`model_map`: classical MDS of a matrix, a map of models and layers.
"""

from .maps import classical_mds, model_map
from .matrix import measure_matrices, pointwise_similarity_matrix, similarity_matrix
from .measures import (
    cca_similarity,
    debiased_cka,
    linear_cka,
    mutual_knn,
    pointwise_mutual_knn,
    pointwise_procrustes_distance,
    procrustes_distance,
    rbf_cka,
    svcca,
)
from .registry import MEASURES, Measure, resolve_metric

__all__ = [
    "MEASURES",
    "Measure",
    "cca_similarity",
    "classical_mds",
    "debiased_cka",
    "linear_cka",
    "measure_matrices",
    "model_map",
    "mutual_knn",
    "pointwise_mutual_knn",
    "pointwise_procrustes_distance",
    "pointwise_similarity_matrix",
    "procrustes_distance",
    "rbf_cka",
    "resolve_metric",
    "similarity_matrix",
    "svcca",
]
