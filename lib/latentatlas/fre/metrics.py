"""Feature reconstruction measures between two feature sets (Goscinski et al. 2021).

All functions take source features ``X`` (n_samples, n_x) and target features ``Y``
(n_samples, n_y) describing the same samples. Both are centred and scaled to unit total
variance with training statistics; a linear map X → Y is fit on the training samples and
judged on the test samples. Defaults reproduce ``skmatter.metrics`` exactly: the same
50/50 split (seed 0x5F3759DF), the same ``Ridge2FoldCV`` cut-off regularisation over
relative alphas ``geomspace(1e-9, 0.9, 20)``.

* GFRE: how well X reconstructs Y linearly (0: perfectly; 1: not at all).
* GFRD: how much that reconstruction distorts, i.e. departs from an orthogonal map.
* LFRE: GFRE computed locally, around each test sample, from its nearest training
  neighbours in X; it catches non-linear but locally linear relations.

Inner cross-validation (``cv``): the default ``"skmatter"`` draws the two CV folds that
choose the ridge cut-off at random, exactly as scikit-matter. ``cv="grouped"`` keeps
every group in one fold: for GFRE and GFRD the ``groups`` given (e.g. the structure of
each atom, when train and test are split by structure), for LFRE identical feature
vectors inside each neighbourhood. Random folds put equivalent atoms of one crystal in
both folds, so the CV picks the smallest cut-off and the map extrapolates on test
structures; grouped folds measure what the split measures.
"""

from __future__ import annotations

import numpy as np

from ..dataset import validate_features
from ._local import local_errors
from ._ridge import SharedRidge
from ._scale import scale_split
from ._split import DEFAULT_SEED, check_cv, check_local_points, inner_folds, resolve_split

__all__ = ["gfre", "gfrd", "lfre", "pointwise_gfre", "pointwise_gfrd", "pointwise_lfre", "rms"]


def rms(pointwise, axis=-1):
    """Root mean square over ``axis``: the global value of a pointwise measure."""
    pointwise = np.asarray(pointwise)
    return np.linalg.norm(pointwise, axis=axis) / np.sqrt(pointwise.shape[axis])


def _prepare(X, Y, train_idx, test_idx, seed, names=("X", "Y")):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n = validate_features(dict(zip(names, (X, Y))))
    train_idx, test_idx = resolve_split(n, train_idx, test_idx, seed)
    return (train_idx, *scale_split(X, train_idx, test_idx, names[0]), *scale_split(Y, train_idx, test_idx, names[1]))


def _global_ridge(X, Y, train_idx, test_idx, alphas, seed, cv, groups):
    """Scaled data and the CV ridge of X → Y: (ridge, W, X_test, Y_test)."""
    train_idx, X_train, X_test, Y_train, Y_test = _prepare(X, Y, train_idx, test_idx, seed)
    inner_groups = None if groups is None else np.asarray(groups)[train_idx]
    ridge = SharedRidge(X_train, alphas, seed, folds=inner_folds(len(train_idx), cv, inner_groups, seed))
    W, _, _ = ridge.fit(Y_train)
    return ridge, W, X_test, Y_test


def pointwise_gfre(X, Y, *, train_idx=None, test_idx=None, alphas=None, seed=DEFAULT_SEED, cv="skmatter", groups=None):
    """Global feature reconstruction error of each test sample.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_x)
        Source features.
    Y : array-like of shape (n_samples, n_y)
        Target features.
    train_idx, test_idx : array-like of int, optional
        Default: scikit-matter's 50/50 split. If only one is given, the other is its complement.
    alphas : array-like, optional
        Relative cut-offs for the cross-validated ridge; default ``geomspace(1e-9, 0.9, 20)``.
    seed : int
        Seed of the default split and of the CV folds.
    cv : {"skmatter", "grouped"}, default "skmatter"
        Inner CV folds: random, as scikit-matter (its numbers to rounding), or keeping each
        of ``groups`` in one fold.
    groups : array-like of shape (n_samples,), optional
        Group of every sample (e.g. its structure), needed by ``cv="grouped"``.

    Returns
    -------
    ndarray of shape (n_test,)
        ``‖y_i − x_i W‖`` for each test sample, in scaled units.
    """
    _, W, X_test, Y_test = _global_ridge(X, Y, train_idx, test_idx, alphas, seed, cv, groups)
    return np.linalg.norm(Y_test - X_test @ W, axis=1)


def gfre(X, Y, *, train_idx=None, test_idx=None, alphas=None, seed=DEFAULT_SEED, cv="skmatter", groups=None) -> float:
    """Global feature reconstruction error X → Y: RMS of :func:`pointwise_gfre`."""
    return float(rms(pointwise_gfre(X, Y, train_idx=train_idx, test_idx=test_idx, alphas=alphas, seed=seed,
                                    cv=cv, groups=groups)))


def orthogonal_map(XtXW):
    """Orthogonal (semi-orthogonal if shapes differ) Q maximising ``tr(Qᵀ Xᵀ X W)``.

    The Procrustes solution ``Q = U Vᵀ`` from the thin SVD of ``Xᵀ (X W)``, shape
    (n_x, n_y). For n_x ≤ n_y it equals scikit-matter's zero-padded orthogonal regression;
    for n_x > n_y, where scikit-matter fails, Q has orthonormal columns (a projection
    followed by a rotation), the natural generalisation.
    """
    U, _, Vt = np.linalg.svd(XtXW, full_matrices=False)
    return U @ Vt


def pointwise_gfrd(X, Y, *, train_idx=None, test_idx=None, alphas=None, seed=DEFAULT_SEED, cv="skmatter", groups=None):
    """Global feature reconstruction distortion of each test sample.

    The distance between the ridge reconstruction ``x_i W`` and the best orthogonal
    reconstruction ``x_i Q`` of it (Q fit on the training samples). Parameters as
    :func:`pointwise_gfre`; X and Y may have different numbers of features.

    If the CV cut-off leaves the ridge map with rank below both feature dimensions, the
    best orthogonal map is not unique (in scikit-matter neither), and the value depends on
    which one LAPACK returns; a fixed small cut-off (``alphas=[1e-6]``) avoids this.

    Returns
    -------
    ndarray of shape (n_test,)
    """
    ridge, W, X_test, _ = _global_ridge(X, Y, train_idx, test_idx, alphas, seed, cv, groups)
    Q = orthogonal_map(ridge.gram_times(W))
    return np.linalg.norm(X_test @ W - X_test @ Q, axis=1)


def gfrd(X, Y, *, train_idx=None, test_idx=None, alphas=None, seed=DEFAULT_SEED, cv="skmatter", groups=None) -> float:
    """Global feature reconstruction distortion X → Y: RMS of :func:`pointwise_gfrd`."""
    return float(rms(pointwise_gfrd(X, Y, train_idx=train_idx, test_idx=test_idx, alphas=alphas, seed=seed,
                                    cv=cv, groups=groups)))


def pointwise_lfre(
    X, Y, *, n_local_points, train_idx=None, test_idx=None, alphas=None, seed=DEFAULT_SEED, chunk_size=128, n_jobs=-1,
    strict_local_points=False, cv="skmatter",
):
    """Local feature reconstruction error of each test sample.

    For each test sample, its ``n_local_points`` nearest training samples in (scaled) X
    are centred locally and a cross-validated ridge X → Y is fit on them; the error is the
    distance of the sample's Y from that local reconstruction. Neighbours are searched in
    chunks of ``chunk_size`` test samples, so memory stays bounded; ``n_jobs`` threads
    (default: all cores) process chunks in parallel. With ``cv="grouped"`` the CV folds of
    each neighbourhood keep identical X vectors together (see :mod:`latentatlas.fre._local`).
    A ``n_local_points`` above the number of training samples uses them all, with a
    warning, as scikit-matter does (``strict_local_points=True``: an error instead).

    Returns
    -------
    ndarray of shape (n_test,)
    """
    check_cv(cv)
    _, X_train, X_test, Y_train, Y_test = _prepare(X, Y, train_idx, test_idx, seed)
    n_local_points = check_local_points(n_local_points, len(X_train), strict_local_points)
    errors, _, _ = local_errors(X_train, X_test, [(Y_train, Y_test)], n_local_points, alphas, seed, chunk_size, n_jobs,
                                cv=cv)
    return errors[0]


def lfre(
    X, Y, *, n_local_points, train_idx=None, test_idx=None, alphas=None, seed=DEFAULT_SEED, chunk_size=128, n_jobs=-1,
    strict_local_points=False, cv="skmatter",
) -> float:
    """Local feature reconstruction error X → Y: RMS of :func:`pointwise_lfre`."""
    return float(
        rms(
            pointwise_lfre(
                X, Y, n_local_points=n_local_points, train_idx=train_idx, test_idx=test_idx,
                alphas=alphas, seed=seed, chunk_size=chunk_size, n_jobs=n_jobs, cv=cv,
                strict_local_points=strict_local_points,
            )
        )
    )
