"""Centring and scaling to unit total variance with training-set statistics."""

from __future__ import annotations

import numpy as np

from ..dataset import FeatureError


def fit_scaler(X_train, name="X"):
    """Mean and total-variance scale of ``X_train`` (scikit-matter's ``StandardFlexibleScaler``).

    Returns
    -------
    mean : ndarray of shape (n_features,)
    scale : float
        ``sqrt(sum of column variances)``, so scaled training data has unit total variance.
    """
    mean = np.average(X_train, axis=0)
    return mean, scale_from_variance(np.average((X_train - mean) ** 2, axis=0).sum(), name)


def scale_from_variance(var_sum, name="X"):
    """``sqrt(var_sum)``, the scale giving unit total variance; an error if there is no variance."""
    if var_sum < 1e-12:
        raise FeatureError(
            f"feature set {name!r} has zero variance on the training samples; "
            "it carries no information to reconstruct from or to (check it, or drop it)"
        )
    return np.sqrt(var_sum)


def scale_rows(X, rows, mean, scale, out=None):
    """``(X[rows] - mean) / scale``, written into ``out`` if given (shape (n_rows, n_features))."""
    out = np.subtract(X[rows], mean, out=out)
    out /= scale
    return out


def scale_split(X, train_idx, test_idx, name="X"):
    """Training and test rows of ``X``, centred and scaled with training statistics."""
    X_train = X[train_idx]
    mean, scale = fit_scaler(X_train, name)
    return scale_rows(X_train, slice(None), mean, scale, out=X_train), scale_rows(X, test_idx, mean, scale)
