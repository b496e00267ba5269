"""Cross-validated cutoff ridge regression shared by every target of one source.

This is the computation of scikit-matter's ``Ridge2FoldCV(alpha_type="relative",
regularization_method="cutoff", scoring="neg_root_mean_squared_error")``, reorganised so
that everything that depends only on the source features X is factorised once and then
serves any number of targets Y:

* the singular value decompositions of the two CV folds of X are computed once;
* the SVD of the whole training set follows from them without touching X again:
  ``X[fold rows] = blockdiag(U1, U2) @ [S1 V1ᵀ; S2 V2ᵀ]``, so the SVD of the small stacked
  matrix ``M = [S1 V1ᵀ; S2 V2ᵀ]`` gives the singular values and right vectors of X, and
  ``Uᵀ Y = U_Mᵀ [U1ᵀ Y1; U2ᵀ Y2]`` with only orthogonal transforms;
* fold-1 predictions on fold 2 lie in the range of U2, so the CV residuals of all
  cut-offs are evaluated in that small basis (size ≤ n_features) instead of over samples.

Each step uses orthogonal transforms only (no normal equations), so results agree with
scikit-matter to rounding.
"""

from __future__ import annotations

import numpy as np

from ._split import DEFAULT_SEED, two_folds

DEFAULT_ALPHAS = np.geomspace(1e-9, 0.9, 20)

# Below this fraction of a target's fold variance, the part of the residual outside the
# fold's feature span is recomputed explicitly rather than by subtraction of norms.
_CANCELLATION_GUARD = 1e-8


def _svd(X):
    return np.linalg.svd(X, full_matrices=False)


class _Fold:
    """SVD of one CV fold of the source, and its cut-off ranks for each alpha."""

    def __init__(self, X, rows, rcond):
        self.rows = rows
        self.U, self.s, self.Vt = _svd(X[rows])
        self.n_kept = int(np.sum(self.s > rcond))

    def ranks(self, scaled_alphas):
        return np.minimum(self.n_kept, np.sum(self.s[None, :] > scaled_alphas[:, None], axis=1))


class SharedRidge:
    """Relative-cutoff ridge with 2-fold CV, fit once per source, applied to many targets.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_features)
        Scaled source features of the training samples.
    alphas : ndarray of shape (n_alphas,), default ``geomspace(1e-9, 0.9, 20)``
        Relative cut-offs: singular values below ``alpha * s_max`` are discarded.
    seed : int
        Seed of the 2-fold split (scikit-matter's ``random_state``).
    """

    def __init__(self, X_train, alphas=None, seed=DEFAULT_SEED):
        alphas = DEFAULT_ALPHAS if alphas is None else np.asarray(alphas, dtype=float)
        if np.any(alphas < 0) or np.any(alphas >= 1):
            raise ValueError(f"relative alphas must lie in [0, 1), got {alphas}")
        self.alphas = alphas
        n_train = X_train.shape[0]
        if n_train < 4:
            raise ValueError(f"need at least 4 training samples for 2-fold cross-validation, got {n_train}")
        rcond = max(X_train.shape) * np.spacing(X_train.dtype.type(1))
        rows1, rows2 = two_folds(n_train, seed)
        self.fold1, self.fold2 = _Fold(X_train, rows1, rcond), _Fold(X_train, rows2, rcond)
        f1, f2 = self.fold1, self.fold2
        self.scaled_alphas = alphas * max(f1.s.max(), f2.s.max())
        self.ranks1, self.ranks2 = f1.ranks(self.scaled_alphas), f2.ranks(self.scaled_alphas)
        # Predictions of a fold-1 fit on fold 2 are U2 @ (C12[:, :k] @ (U1ᵀY1)[:k]), and vice versa.
        self.C12 = (f2.s[:, None] * (f2.Vt @ f1.Vt[: f1.n_kept].T)) / f1.s[: f1.n_kept]
        self.C21 = (f1.s[:, None] * (f1.Vt @ f2.Vt[: f2.n_kept].T)) / f2.s[: f2.n_kept]
        Um, self.s, self.Vt = _svd(np.vstack([f1.s[:, None] * f1.Vt, f2.s[:, None] * f2.Vt]))
        self.Um = Um
        # scikit-matter keeps len(s) components before the cut-off (its `len(s > rcond)`).
        self.final_ranks = np.minimum(len(self.s), np.sum(self.s[None, :] > self.scaled_alphas[:, None], axis=1))

    def _fold_rmse(self, Y_to, D_to, fold_to, C, B_from, ranks):
        """Per-alpha RMSE (averaged over target columns) of predictions from the other fold."""
        out_of_span = np.sum(Y_to**2, axis=0) - np.sum(D_to**2, axis=0)
        total = np.sum(Y_to**2, axis=0)
        if np.any(out_of_span < _CANCELLATION_GUARD * total):
            out_of_span = np.sum((Y_to - fold_to.U @ D_to) ** 2, axis=0)
        residual = D_to.copy()
        done = 0
        mse_by_rank = {}
        for k in np.unique(ranks):
            residual -= C[:, done:k] @ B_from[done:k]
            done = k
            mse_by_rank[k] = (out_of_span + np.sum(residual**2, axis=0)) / Y_to.shape[0]
        return np.array([np.mean(np.sqrt(np.maximum(mse_by_rank[k], 0.0))) for k in ranks])

    def fit(self, Y_train):
        """Choose the cut-off by 2-fold CV for target ``Y_train`` and return the weights.

        Parameters
        ----------
        Y_train : ndarray of shape (n_train, n_targets)
            Scaled target features of the training samples.

        Returns
        -------
        W : ndarray of shape (n_features, n_targets)
            Predictions are ``X @ W``.
        cv_scores : ndarray of shape (n_alphas,)
            Mean negative RMSE of the two folds (scikit-matter's ``cv_values_``).
        best : int
            Index of the chosen alpha (the first maximum, as ``np.argmax``).
        """
        f1, f2 = self.fold1, self.fold2
        Y1, Y2 = Y_train[f1.rows], Y_train[f2.rows]
        D1, D2 = f1.U.T @ Y1, f2.U.T @ Y2
        rmse_on_2 = self._fold_rmse(Y2, D2, f2, self.C12, D1[: f1.n_kept], self.ranks1)
        rmse_on_1 = self._fold_rmse(Y1, D1, f1, self.C21, D2[: f2.n_kept], self.ranks2)
        cv_scores = (-rmse_on_2 + -rmse_on_1) / 2
        best = int(np.argmax(cv_scores))
        k = self.final_ranks[best]
        UtY = self.Um.T[:k] @ np.vstack([D1, D2])
        W = (self.Vt[:k].T / self.s[:k]) @ UtY
        return W, cv_scores, best

    def gram_times(self, W):
        """``X_trainᵀ X_train @ W`` from the factorisation, shape (n_features, n_targets)."""
        return self.Vt.T @ ((self.s**2)[:, None] * (self.Vt @ W))
