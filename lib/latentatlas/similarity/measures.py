r"""Similarity and distance measures between two feature spaces.

Every function takes two feature sets ``X`` (n_samples, n_x) and ``Y`` (n_samples, n_y)
describing the same samples, like the FRE functions of :mod:`latentatlas.fre`. Unlike FRE
they are symmetric (``f(X, Y) == f(Y, X)``). In-sample measures (CKA, CCA, SVCCA, mutual
k-NN) use all rows given; the Procrustes distances are cross-validated like FRE: the
alignment is fit on training rows and judged on test rows (default: scikit-matter's
50/50 split).

============================  ===========  =====================================================
function                      range        invariant to
============================  ===========  =====================================================
:func:`linear_cka`            [0, 1] ↑     translation, isotropic scaling, orthogonal maps
:func:`debiased_cka`          ≤ 1 ↑        translation, isotropic scaling, orthogonal maps
:func:`rbf_cka`               [0, 1] ↑     translation, isotropic scaling, orthogonal maps
:func:`procrustes_distance`   [0, π/2] ↓   translation, isotropic scaling, orthogonal maps
                                           (alpha = 0: every invertible linear map)
:func:`cca_similarity`        [0, 1] ↑     translation, every invertible linear map
:func:`svcca`                 [0, 1] ↑     translation, isotropic scaling, orthogonal maps
:func:`mutual_knn`            [0, 1] ↑     translation, isotropic scaling, orthogonal maps
============================  ===========  =====================================================

↑: larger is more similar; ↓: smaller is more similar.
"""

from __future__ import annotations

import numpy as np

from ..dataset import validate_features
from ..fre._split import DEFAULT_SEED, resolve_split
from . import _core

__all__ = [
    "cca_similarity",
    "debiased_cka",
    "linear_cka",
    "mutual_knn",
    "pointwise_mutual_knn",
    "pointwise_procrustes_distance",
    "procrustes_distance",
    "rbf_cka",
    "svcca",
]


def _pair(X, Y):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    validate_features({"X": X, "Y": Y})
    return [X, Y]


def linear_cka(X, Y) -> float:
    r"""Linear centred kernel alignment (Kornblith et al. 2019), in feature-space form.

    .. math::
        \mathrm{CKA}(X, Y) = \frac{\lVert \tilde X^\top \tilde Y \rVert_F^2}
        {\lVert \tilde X^\top \tilde X \rVert_F \, \lVert \tilde Y^\top \tilde Y \rVert_F}

    with :math:`\tilde X, \tilde Y` the column-centred features. This equals
    :math:`\mathrm{HSIC}(K, L) / \sqrt{\mathrm{HSIC}(K, K)\,\mathrm{HSIC}(L, L)}` for the Gram
    matrices :math:`K = XX^\top`, :math:`L = YY^\top`, but only d × d cross-covariances are
    formed, never an n × n matrix.

    Symmetric; invariant to translation, isotropic scaling and orthogonal transforms of
    either set (not to general invertible maps). 1 for identical spaces up to those.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_x)
    Y : array-like of shape (n_samples, n_y)

    Returns
    -------
    float in [0, 1]
    """
    return float(_core.cka_values(_pair(X, Y), n_jobs=1)[0, 1])


def debiased_cka(X, Y) -> float:
    r"""CKA from the unbiased HSIC estimator (Song et al. 2012), in feature-space form.

    .. math::
        \mathrm{HSIC}_u(K, L) \propto \operatorname{tr}(\hat K \hat L)
        + \frac{\mathbf 1^\top \hat K \mathbf 1 \; \mathbf 1^\top \hat L \mathbf 1}{(n-1)(n-2)}
        - \frac{2}{n-2} \mathbf 1^\top \hat K \hat L \mathbf 1,
        \qquad \mathrm{dCKA} = \frac{\mathrm{HSIC}_u(K, L)}{\sqrt{\mathrm{HSIC}_u(K, K)\,\mathrm{HSIC}_u(L, L)}}

    where :math:`\hat K` is the linear Gram matrix of the centred features with its diagonal
    set to zero. Computed with d × d cross-covariances and the squared row norms
    (Kornblith et al. 2019), never an n × n matrix. Removes the bias of :func:`linear_cka`
    towards 1 when features are many compared with samples; can be slightly negative for
    unrelated sets. Needs n ≥ 4.

    Symmetric; invariant to translation, isotropic scaling and orthogonal transforms.

    Returns
    -------
    float (at most 1)
    """
    return float(_core.cka_values(_pair(X, Y), debiased=True, n_jobs=1)[0, 1])


def rbf_cka(X, Y, *, sigma: float = 1.0, max_samples: int | None = 2000, seed: int = DEFAULT_SEED) -> float:
    r"""CKA with Gaussian (RBF) kernels, on a random subsample of at most ``max_samples`` rows.

    .. math::
        K_{ij} = \exp\!\left(-\frac{\lVert x_i - x_j \rVert^2}{2 \sigma^2 m_X}\right), \qquad
        \mathrm{CKA} = \frac{\langle HKH, HLH \rangle_F}{\lVert HKH \rVert_F \lVert HLH \rVert_F}

    with :math:`m_X` the median squared pairwise distance (Kornblith et al. 2019's bandwidth
    rule, diagonal included) and :math:`H` the centring matrix. The Gram matrices are
    n × n, so rows beyond ``max_samples`` (default 2,000: 32 MB per set) are dropped by a
    seeded random subsample, the same rows for X and Y; ``max_samples=None`` uses all.

    Symmetric; invariant to translation, isotropic scaling and orthogonal transforms.

    Returns
    -------
    float in [0, 1]
    """
    arrays = _pair(X, Y)
    rows = _core.subsample(arrays[0].shape[0], max_samples, seed)
    return float(_core.rbf_cka_values([a[rows] for a in arrays], sigma=sigma, n_jobs=1)[0, 1])


def pointwise_procrustes_distance(
    X, Y, *, alpha: float = 1.0, train_idx=None, test_idx=None, seed: int = DEFAULT_SEED
) -> tuple[float, np.ndarray]:
    """Angular shape distance and the aligned distance of each test sample.

    See :func:`procrustes_distance`. The pointwise value of test sample i is
    :math:`\\lVert \\hat a_i - \\hat b_i \\rVert`, where :math:`\\hat A = \\tilde X_{test} W_x U`
    and :math:`\\hat B = \\tilde Y_{test} W_y V` are the aligned test samples, each scaled to
    unit RMS norm; for X, Y of equal dimension their RMS is :math:`2 \\sin(\\theta/2)`.

    Returns
    -------
    angle : float
    pointwise : ndarray of shape (n_test,)
    """
    arrays = _pair(X, Y)
    train_idx, test_idx = resolve_split(arrays[0].shape[0], train_idx, test_idx, seed)
    values, point = _core.procrustes_values(arrays, train_idx, test_idx, alpha=alpha, pointwise=True, n_jobs=1)
    return float(values[0, 1]), point[0, 1]


def procrustes_distance(X, Y, *, alpha: float = 1.0, train_idx=None, test_idx=None, seed: int = DEFAULT_SEED) -> float:
    r"""Cross-validated angular shape distance (Williams et al. 2021; netrep's ``LinearMetric``).

    Both sets are centred with training means and partially whitened,
    :math:`W = V \operatorname{diag}(\alpha + (1-\alpha)\lambda^{-1/2}) V^\top` from the
    eigenpairs of the training :math:`\tilde X^\top \tilde X` (rescaled to keep the total
    variance); the orthogonal alignment comes from the SVD
    :math:`U S V^\top = (\tilde X_{tr} W_x)^\top (\tilde Y_{tr} W_y)` on the training rows, and
    the distance is the angle between the aligned *test* representations:

    .. math::
        \theta = \arccos \frac{\langle \tilde X_{te} W_x U,\ \tilde Y_{te} W_y V \rangle_F}
        {\lVert \tilde X_{te} W_x \rVert_F \, \lVert \tilde Y_{te} W_y \rVert_F}

    ``alpha=1`` (default): orthogonal Procrustes, invariant to translation, isotropic scaling
    and rotations/reflections. ``alpha=0``: CCA-whitened, invariant to every invertible
    linear map (netrep's "CCA" metric). Symmetric; 0 means identical shapes; a metric on
    shapes (triangle inequality) in-sample. The set with fewer features is implicitly
    padded with zero columns, as netrep does. Only the directions the training rows
    determine (non-zero singular values of the cross-covariance) are aligned; with fewer
    training samples than features netrep pairs the others arbitrarily, here they add nothing.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_x)
    Y : array-like of shape (n_samples, n_y)
    alpha : float in [0, 1], default 1
    train_idx, test_idx : array-like of int, optional
        Default: scikit-matter's 50/50 split; give both as all rows for the in-sample distance.
    seed : int
        Seed of the default split.

    Returns
    -------
    float in [0, π/2] (radians)
    """
    return pointwise_procrustes_distance(X, Y, alpha=alpha, train_idx=train_idx, test_idx=test_idx, seed=seed)[0]


def cca_similarity(X, Y) -> float:
    r"""Mean canonical correlation of the centred sets.

    .. math::
        \bar\rho = \frac{1}{r} \sum_{i=1}^{r} \rho_i, \qquad \rho_i = \sigma_i(U_X^\top U_Y),
        \quad r = \min(\operatorname{rank} \tilde X, \operatorname{rank} \tilde Y)

    with :math:`U_X, U_Y` orthonormal bases of the column spaces of the centred features
    (thin SVD, cut at the numerical rank, so constant or collinear columns are ignored).
    In-sample: with as many independent features as samples it is trivially 1.

    Symmetric; invariant to translation and to every invertible linear map of either set.

    Returns
    -------
    float in [0, 1]
    """
    return float(_core.cca_values(_pair(X, Y), n_jobs=1)[0, 1])


def svcca(X, Y, *, variance: float = 0.99, criterion: str = "variance") -> float:
    r"""Singular-vector CCA (Raghu et al. 2017): CCA of the leading singular directions.

    Each centred set is reduced to its top singular directions that together explain a
    fraction ``variance`` (default 0.99) of its total variance; the result is the mean
    canonical correlation (:func:`cca_similarity`) of the reduced sets.

    .. math::
        k_X = \min\{k : \textstyle\sum_{i \le k} s_i^2 \ge v \sum_i s_i^2\}, \qquad
        \mathrm{SVCCA} = \frac{1}{\min(k_X, k_Y)} \sum_i \sigma_i(U_{X,k_X}^\top U_{Y,k_Y})

    ``criterion="singular_values"`` cuts at the fraction ``variance`` of the plain sum of
    singular values instead, a convention of some SVCCA codes.

    Symmetric; invariant to translation, isotropic scaling and orthogonal transforms (the
    variance cut-off is not invariant to general linear maps).

    Returns
    -------
    float in [0, 1]
    """
    if not 0 < variance <= 1:
        raise ValueError(f"variance must be in (0, 1], got {variance}")
    return float(_core.cca_values(_pair(X, Y), variance=variance, criterion=criterion, n_jobs=1)[0, 1])


def pointwise_mutual_knn(X, Y, *, k: int = 10) -> np.ndarray:
    r"""Per sample, the fraction of its k nearest neighbours that X and Y share.

    .. math::
        m_i = \frac{|N_k^X(i) \cap N_k^Y(i)|}{k}

    where :math:`N_k^X(i)` are the k nearest other samples of i in X (Euclidean, ties
    broken by the lower index). The local counterpart of LFRE: 1 where both spaces agree
    on the neighbourhood of a sample, about k/n where they are unrelated.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    return _core.mutual_knn_values(_pair(X, Y), k=k, n_jobs=1)[1][0, 1]


def mutual_knn(X, Y, *, k: int = 10) -> float:
    r"""Mutual k-nearest-neighbour alignment (Huh et al. 2024): mean of :func:`pointwise_mutual_knn`.

    .. math::
        \mathrm{mKNN}(X, Y) = \frac{1}{n} \sum_i \frac{|N_k^X(i) \cap N_k^Y(i)|}{k}

    Symmetric; invariant to translation, isotropic scaling and orthogonal transforms (and
    to any map that keeps the neighbour order).

    Returns
    -------
    float in [0, 1]
    """
    return float(np.mean(pointwise_mutual_knn(X, Y, k=k)))
