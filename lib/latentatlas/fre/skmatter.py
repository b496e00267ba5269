"""Drop-in replacements for ``skmatter.metrics``' reconstruction measures.

Same names, same signatures (including the order of ``train_idx`` and ``test_idx``, which
differs between scikit-matter's functions), same defaults, same checks: a script changes
one import::

    # from skmatter.metrics import global_reconstruction_error, local_reconstruction_error
    from latentatlas.fre.skmatter import global_reconstruction_error, local_reconstruction_error

With the default ``scaler`` and ``estimator`` the computation is :mod:`latentatlas.fre`'s
(equal to scikit-matter's to rounding, much faster). A custom ``scaler`` (fit/transform)
or ``estimator`` (fit/predict, e.g. a scikit-learn regressor) is used exactly as
scikit-matter uses it. Like scikit-matter, an ``n_local_points`` above the number of
training samples uses every training sample (here with a warning that says so).
"""

from __future__ import annotations

import numpy as np

from ._local import local_errors
from ._ridge import SharedRidge
from ._scale import scale_split
from ._split import check_local_points, resolve_split
from .metrics import orthogonal_map, pointwise_gfrd, pointwise_gfre, pointwise_lfre, rms

__all__ = [
    "check_global_reconstruction_measures_input",
    "check_local_reconstruction_measures_input",
    "global_reconstruction_distortion",
    "global_reconstruction_error",
    "local_reconstruction_error",
    "pointwise_global_reconstruction_distortion",
    "pointwise_global_reconstruction_error",
    "pointwise_local_reconstruction_error",
]


def check_global_reconstruction_measures_input(X, Y, train_idx, test_idx, scaler, estimator):
    """Train and test indices (default: the 50/50 split), with scikit-matter's shape check.

    Returns ``(train_idx, test_idx, scaler, estimator)``; ``None`` for scaler and estimator
    stays ``None`` and means latentatlas' own (scikit-matter's defaults).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"First dimension of X ({X.shape[0]}) and Y ({Y.shape[0]}) must match")
    train_idx, test_idx = resolve_split(X.shape[0], train_idx, test_idx)
    return train_idx, test_idx, scaler, estimator


def check_local_reconstruction_measures_input(X, Y, n_local_points, train_idx, test_idx, scaler, estimator):
    """As :func:`check_global_reconstruction_measures_input`, and ``n_local_points`` ≤ samples."""
    if len(X) < n_local_points:
        raise ValueError(
            f"X has {len(X)} samples but n_local_points={n_local_points}. Must have at least n_local_points samples"
        )
    return check_global_reconstruction_measures_input(X, Y, train_idx, test_idx, scaler, estimator)


def _scaled(X, Y, train_idx, test_idx, scaler):
    """X_train, X_test, Y_train, Y_test scaled by ``scaler`` (fit on the training rows of each)."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    if scaler is None:
        return scale_split(X, train_idx, test_idx, "X") + scale_split(Y, train_idx, test_idx, "Y")
    out = []
    for A in (X, Y):
        scaler.fit(A[train_idx])
        out += [scaler.transform(A[train_idx]), scaler.transform(A[test_idx])]
    return tuple(out)


def _fit_predict(estimator, X_train, Y_train, X_test):
    """Predictions on (training, test) rows: the CV ridge of scikit-matter's default, or ``estimator``."""
    if estimator is None:
        W = SharedRidge(X_train).fit(Y_train)[0]
        return X_train @ W, X_test @ W
    estimator.fit(X_train, Y_train)
    return estimator.predict(X_train), estimator.predict(X_test)


def _global(X, Y, train_idx, test_idx, scaler, estimator, fast, generic):
    """``fast`` (latentatlas's function) for the defaults, else ``generic`` on scaled rows."""
    train_idx, test_idx, scaler, estimator = check_global_reconstruction_measures_input(
        X, Y, train_idx, test_idx, scaler, estimator)
    if scaler is None and estimator is None:
        return fast(X, Y, train_idx=train_idx, test_idx=test_idx)
    X_train, X_test, Y_train, Y_test = _scaled(X, Y, train_idx, test_idx, scaler)
    predicted_train, predicted_test = _fit_predict(estimator, X_train, Y_train, X_test)
    return generic(X_train, X_test, Y_test, predicted_train, predicted_test)


def pointwise_global_reconstruction_error(X, Y, train_idx=None, test_idx=None, scaler=None, estimator=None):
    """Per test sample ``‖y_i − x_i W‖`` (scikit-matter's signature and defaults)."""
    return _global(X, Y, train_idx, test_idx, scaler, estimator, pointwise_gfre,
                   lambda X_train, X_test, Y_test, P_train, P_test: np.linalg.norm(Y_test - P_test, axis=1))


def global_reconstruction_error(X, Y, test_idx=None, train_idx=None, scaler=None, estimator=None):
    """GFRE X → Y: RMS of :func:`pointwise_global_reconstruction_error`."""
    return float(rms(pointwise_global_reconstruction_error(
        X, Y, train_idx=train_idx, test_idx=test_idx, scaler=scaler, estimator=estimator)))


def _distortion(X_train, X_test, Y_test, predicted_train, predicted_test):
    """Distance of the predictions from those of the best orthogonal map (fit on the training rows)."""
    Q = orthogonal_map(X_train.T @ predicted_train)
    return np.linalg.norm(predicted_test - X_test @ Q, axis=1)


def pointwise_global_reconstruction_distortion(X, Y, test_idx=None, train_idx=None, scaler=None, estimator=None):
    """Per test sample, distance of the reconstruction from its best orthogonal counterpart."""
    return _global(X, Y, train_idx, test_idx, scaler, estimator, pointwise_gfrd, _distortion)


def global_reconstruction_distortion(X, Y, test_idx=None, train_idx=None, scaler=None, estimator=None):
    """GFRD X → Y: RMS of :func:`pointwise_global_reconstruction_distortion`."""
    return float(rms(pointwise_global_reconstruction_distortion(
        X, Y, train_idx=train_idx, test_idx=test_idx, scaler=scaler, estimator=estimator)))


def pointwise_local_reconstruction_error(
    X, Y, n_local_points, test_idx=None, train_idx=None, scaler=None, estimator=None, n_jobs=None
):
    """Per test sample, the error of a ridge fit on its ``n_local_points`` nearest training samples."""
    train_idx, test_idx, scaler, estimator = check_local_reconstruction_measures_input(
        X, Y, n_local_points, train_idx, test_idx, scaler, estimator)
    n_jobs = -1 if n_jobs is None else n_jobs
    if scaler is None and estimator is None:
        return pointwise_lfre(X, Y, n_local_points=n_local_points, train_idx=train_idx, test_idx=test_idx,
                              n_jobs=n_jobs)
    X_train, X_test, Y_train, Y_test = _scaled(X, Y, train_idx, test_idx, scaler)
    k = check_local_points(n_local_points, len(X_train))
    if estimator is None:
        errors, _, _ = local_errors(X_train, X_test, [(Y_train, Y_test)], k, n_jobs=n_jobs)
        return errors[0]
    d2 = np.sum(X_train**2, axis=1) + np.sum(X_test**2, axis=1)[:, None] - 2 * X_test @ X_train.T
    errors = np.empty(len(X_test))
    for i, row in enumerate(d2):
        near = np.argsort(row)[:k]
        x_mean, y_mean = X_train[near].mean(axis=0), Y_train[near].mean(axis=0)
        estimator.fit(X_train[near] - x_mean, Y_train[near] - y_mean)
        errors[i] = np.linalg.norm(Y_test[i] - y_mean - estimator.predict((X_test[i] - x_mean)[None, :])[0])
    return errors


def local_reconstruction_error(
    X, Y, n_local_points, test_idx=None, train_idx=None, scaler=None, estimator=None, n_jobs=None
):
    """LFRE X → Y: RMS of :func:`pointwise_local_reconstruction_error`."""
    return float(rms(pointwise_local_reconstruction_error(
        X, Y, n_local_points, train_idx=train_idx, test_idx=test_idx, scaler=scaler, estimator=estimator, n_jobs=n_jobs)))
