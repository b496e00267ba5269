"""Feature reconstruction as scikit-learn regressors: :class:`GlobalFRE` and :class:`LocalFRE`.

``fit(X, Y)`` learns to reconstruct the target features ``Y`` from the source features
``X``, ``predict(X)`` returns the reconstruction (in ``Y``'s units) and ``score(X, Y)`` is
minus the feature reconstruction error on those samples (greater is better, as every
scikit-learn score; not the R² of ``RegressorMixin.score``). The computation is that of
:mod:`latentatlas.fre.metrics`, on the same kernel (:mod:`latentatlas.fre._ridge`): for the
samples of a split, ``-GlobalFRE().fit(X[train], Y[train]).score(X[test], Y[test])``
equals ``gfre(X, Y, train_idx=train, test_idx=test)``, and likewise :class:`LocalFRE`
and ``lfre``. Both are estimators in the scikit-learn sense (``get_params``,
``set_params``, ``clone``), so they sit at the end of a ``Pipeline`` and
``GridSearchCV`` can choose their parameters, e.g. one fixed cut-off::

    from sklearn.model_selection import GridSearchCV
    search = GridSearchCV(GlobalFRE(), {"alphas": [1e-6, 1e-3, 1e-1]}, cv=3).fit(X, Y)

Both centre and scale ``X`` and ``Y`` to unit total variance with the training samples'
statistics, as the measures do. Needs scikit-learn (the ``concepts`` or ``test`` extra).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ._local import local_predictions
from ._ridge import SharedRidge, check_alphas
from ._scale import fit_scaler, scale_rows
from ._split import DEFAULT_SEED, check_cv, check_local_points, inner_folds
from .metrics import orthogonal_map, rms

__all__ = ["GlobalFRE", "LocalFRE"]


def _validate(estimator, X, y=None, reset=False):
    """scikit-learn's input checks (float64, finite, matching samples); sets ``n_features_in_`` when ``reset``."""
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:  # scikit-learn < 1.6
        def validate_data(est, *args, **kwargs):
            return est._validate_data(*args, **kwargs)
    if y is None:
        return validate_data(estimator, X, reset=reset, dtype=np.float64)
    return validate_data(estimator, X, y, reset=reset, dtype=np.float64, multi_output=True, y_numeric=True)


class _Reconstruction(RegressorMixin, BaseEstimator):
    """Scaling of source and target with training statistics, the score and the shared checks."""

    def _fit_scaling(self, X, y):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None: "
                             "give the target features to reconstruct")
        X, Y = _validate(self, X, y, reset=True)
        if len(X) < 4:
            raise ValueError(f"the inner 2-fold CV needs at least 4 training samples, got n_samples={len(X)}")
        self.target_is_1d_ = Y.ndim == 1
        Y = Y.reshape(len(Y), -1)
        self.x_mean_, self.x_scale_ = fit_scaler(X, "X")
        self.y_mean_, self.y_scale_ = fit_scaler(Y, "Y")
        return scale_rows(X, slice(None), self.x_mean_, self.x_scale_), scale_rows(Y, slice(None), self.y_mean_, self.y_scale_)

    def _scaled_source(self, X):
        check_is_fitted(self)
        return scale_rows(_validate(self, X), slice(None), self.x_mean_, self.x_scale_)

    def _scaled_pair(self, X, y):
        check_is_fitted(self)
        X, Y = _validate(self, X, y)
        Y = Y.reshape(len(Y), -1)
        if Y.shape[1] != len(self.y_mean_):
            raise ValueError(f"y has {Y.shape[1]} features, but {type(self).__name__} was fitted on targets with "
                             f"{len(self.y_mean_)}; give the same target features as to fit")
        return (scale_rows(X, slice(None), self.x_mean_, self.x_scale_),
                scale_rows(Y, slice(None), self.y_mean_, self.y_scale_))

    def _unscaled(self, Y_scaled):
        Y = Y_scaled * self.y_scale_ + self.y_mean_
        return Y.ravel() if self.target_is_1d_ else Y

    def predict(self, X):
        """Reconstruction of the target of every sample of ``X`` (n_samples, n_target_features), in the target's units."""
        return self._unscaled(self._reconstruct(self._scaled_source(X)))

    def pointwise_error(self, X, y):
        """Reconstruction error of each sample (n_samples,), in scaled units (the pointwise measure).

        ``X`` (n_samples, n_source_features) and ``y`` (n_samples, n_target_features).
        """
        X, Y = self._scaled_pair(X, y)
        return np.linalg.norm(Y - self._reconstruct(X), axis=1)

    def score(self, X, y, sample_weight=None):
        """Minus the reconstruction error (RMS of :meth:`pointwise_error`): greater is better."""
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__}.score takes no sample_weight: the measure weighs all samples equally")
        return -float(rms(self.pointwise_error(X, y)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        # the score is a negated error (at most 0), not an R² that a good fit brings above 0.5
        tags.regressor_tags.poor_score = True
        return tags


class GlobalFRE(_Reconstruction):
    """Global feature reconstruction X → Y: one linear map, its cut-off chosen by 2-fold CV.

    ``-score`` is the GFRE of the samples given (:func:`latentatlas.fre.gfre`), and
    :meth:`pointwise_distortion` their GFRD (:func:`latentatlas.fre.gfrd`).

    Parameters
    ----------
    alphas : float or array-like, optional
        Relative ridge cut-offs to choose from by CV; default ``geomspace(1e-9, 0.9, 20)``.
        A single value fixes the cut-off (what ``GridSearchCV`` searches over).
    cv : {"skmatter", "grouped"}, default "skmatter"
        Inner CV folds: random as scikit-matter, or keeping each of ``fit``'s ``groups`` in one fold.
    seed : int
        Seed of the inner folds.

    Attributes
    ----------
    coef_ : ndarray (n_source_features, n_target_features)
        The map on scaled features.
    alpha_ : float
        The chosen cut-off; ``alpha_index_`` its index into ``alphas_``.
    cv_scores_ : ndarray (n_alphas,)
        Mean negative RMSE of the two inner folds for each alpha.
    cutoff_at_edge_ : bool
        Whether the chosen cut-off lies at an edge of the grid that matters.
    x_mean_, x_scale_, y_mean_, y_scale_ :
        Training statistics of the scaling (mean vector, scale of unit total variance).
    """

    def __init__(self, alphas=None, *, cv="skmatter", seed=DEFAULT_SEED):
        self.alphas = alphas
        self.cv = cv
        self.seed = seed

    def fit(self, X, y, groups=None):
        """Fit the map on the training samples: sources ``X`` (n, n_source), targets ``y`` (n, n_target).

        ``groups`` (n,) labels each sample's group (e.g. its structure); needed by ``cv="grouped"``.
        In a ``GridSearchCV``, scikit-learn's metadata routing passes them on:
        ``GlobalFRE(cv="grouped").set_fit_request(groups=True)`` under
        ``sklearn.config_context(enable_metadata_routing=True)``.
        """
        check_cv(self.cv)
        alphas = check_alphas(self.alphas)
        X, Y = self._fit_scaling(X, y)
        folds = inner_folds(len(X), self.cv, groups, self.seed)
        ridge = SharedRidge(X, alphas, self.seed, folds=folds)
        self.coef_, scores, best = ridge.fit(Y)
        self.alphas_, self.cv_scores_, self.alpha_index_ = ridge.alphas, scores[0], int(best[0])
        self.alpha_ = float(self.alphas_[self.alpha_index_])
        self.cutoff_at_edge_ = bool(ridge.at_grid_edge(best)[0])
        self.orthogonal_map_ = orthogonal_map(ridge.gram_times(self.coef_))
        return self

    def _reconstruct(self, X_scaled):
        return X_scaled @ self.coef_

    def pointwise_distortion(self, X):
        """GFRD of each sample (n_samples,): distance of the reconstruction from the best orthogonal one."""
        X = self._scaled_source(X)
        return np.linalg.norm(X @ self.coef_ - X @ self.orthogonal_map_, axis=1)


class LocalFRE(_Reconstruction):
    """Local feature reconstruction X → Y: a CV ridge on each sample's nearest training neighbours.

    Like ``KNeighborsRegressor``, ``fit`` keeps the (scaled) training samples and ``predict``
    fits the local maps. ``-score`` is the LFRE of the samples given (:func:`latentatlas.fre.lfre`).

    Parameters
    ----------
    n_local_points : int, default 100
        Neighbourhood size; above the number of training samples all are used, with a
        warning (an error with ``strict_local_points``).
    alphas : float or array-like, optional
        Relative ridge cut-offs for each local CV; default ``geomspace(1e-9, 0.9, 20)``.
    cv : {"skmatter", "grouped"}, default "skmatter"
        Inner folds of each neighbourhood: random, or keeping identical source vectors together.
    seed : int
    chunk_size : int
        Samples whose neighbourhoods are fit together (memory O(chunk_size × n_train)).
    n_jobs : int
        Worker threads (-1: one per core); the results do not depend on it.
    strict_local_points : bool

    Attributes
    ----------
    X_train_, Y_train_ : ndarray
        Scaled training samples.
    n_local_points_ : int
        Neighbourhood size used.
    """

    def __init__(self, n_local_points=100, alphas=None, *, cv="skmatter", seed=DEFAULT_SEED, chunk_size=128, n_jobs=-1,
                 strict_local_points=False):
        self.n_local_points = n_local_points
        self.alphas = alphas
        self.cv = cv
        self.seed = seed
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.strict_local_points = strict_local_points

    def fit(self, X, y):
        """Keep the scaled training samples: sources ``X`` (n, n_source), targets ``y`` (n, n_target)."""
        check_cv(self.cv)
        self.alphas_ = check_alphas(self.alphas)
        self.X_train_, self.Y_train_ = self._fit_scaling(X, y)
        self.n_local_points_ = check_local_points(self.n_local_points, len(self.X_train_), self.strict_local_points)
        return self

    def _local_fits(self, X_scaled):
        return local_predictions(self.X_train_, X_scaled, self.Y_train_, self.n_local_points_, self.alphas_, self.seed,
                                 self.chunk_size, self.n_jobs, progress=False, cv=self.cv)

    def _reconstruct(self, X_scaled):
        return self._local_fits(X_scaled)[0]

    def cutoffs(self, X):
        """Index into ``alphas_`` of each sample's local cut-off (n_samples,), and whether it lies at an
        edge of the grid that matters (n_samples,)."""
        return self._local_fits(self._scaled_source(X))[1:]
