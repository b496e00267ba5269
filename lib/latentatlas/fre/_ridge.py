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
        self.U, self.s, self.Vt = _svd(X[rows])
        self.n_kept = int(np.sum(self.s > rcond))

    def ranks(self, scaled_alphas):
        return np.minimum(self.n_kept, np.sum(self.s[None, :] > scaled_alphas[:, None], axis=1))


class FoldTargets:
    """Targets split into the two CV folds once, to serve every source.

    The folds depend only on the number of training samples and the seed, so every
    source of a matrix sees the same rows; splitting and the column sums of squares are
    done here once instead of once per source.

    Parameters
    ----------
    Y_train : ndarray of shape (n_train, n_columns)
        Scaled target features of the training samples: one target, or several side by side.
    widths : sequence of int, optional
        Number of columns of each target (default: one target). Each target gets its own
        cut-off, exactly as if it were fit alone.
    folds : pair of index arrays or slices, optional
        Rows of the two CV folds; default ``two_folds(n_train, seed)``. Rows already in
        fold order can be given as two slices, which makes the split free (views).
    seed : int
        Seed of the 2-fold split when ``folds`` is not given.
    """

    def __init__(self, Y_train, widths=None, seed=DEFAULT_SEED, folds=None):
        rows1, rows2 = two_folds(Y_train.shape[0], seed) if folds is None else folds
        self.Y1, self.Y2 = Y_train[rows1], Y_train[rows2]
        self.sq1, self.sq2 = (np.einsum("ij,ij->j", Y, Y) for Y in (self.Y1, self.Y2))
        self.widths = [Y_train.shape[1]] if widths is None else [int(w) for w in widths]
        self.starts = np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(int)
        self.n_train, self.n_columns = Y_train.shape


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
    folds : pair of index arrays or slices, optional
        Rows of the two CV folds; default ``two_folds(n_train, seed)``.
    fold_sizes : pair of int, optional
        Numbers of samples in the two folds when the rows of each fold are a stand-in with
        the same Gram matrix (a triangular factor, see :mod:`latentatlas.fre.streamed`);
        default the numbers of rows.
    """

    def __init__(self, X_train, alphas=None, seed=DEFAULT_SEED, folds=None, fold_sizes=None):
        alphas = DEFAULT_ALPHAS if alphas is None else np.asarray(alphas, dtype=float)
        if np.any(alphas < 0) or np.any(alphas >= 1):
            raise ValueError(f"relative alphas must lie in [0, 1), got {alphas}")
        self.alphas = alphas
        n_train = X_train.shape[0]
        n_samples = n_train if fold_sizes is None else int(sum(fold_sizes))
        if n_samples < 4:
            raise ValueError(f"need at least 4 training samples for 2-fold cross-validation, got {n_samples}")
        rcond = max(n_samples, X_train.shape[1]) * np.spacing(X_train.dtype.type(1))
        self.n_train = n_train
        self.folds = two_folds(n_train, seed) if folds is None else folds
        self.fold_sizes = fold_sizes
        rows1, rows2 = self.folds
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

    def _fold_rmse(self, Y_to, n_to, total, D_to, fold_to, C, B_from, ranks, starts):
        """RMSE of predictions from the other fold, per alpha and per block of target columns.

        ``total`` holds the column sums of squares of ``Y_to``. Returns an array
        (n_blocks, n_alphas): the mean over each block's columns of the column RMSEs,
        scikit-matter's ``neg_root_mean_squared_error`` with the sign flipped.
        """
        out_of_span = total - np.einsum("ij,ij->j", D_to, D_to)
        risky = out_of_span < _CANCELLATION_GUARD * total
        if np.any(risky):  # nearly all of Y lies in the fold's span: subtract explicitly
            rest = Y_to[:, risky] - fold_to.U @ D_to[:, risky]
            out_of_span[risky] = np.einsum("ij,ij->j", rest, rest)
        residual = D_to.copy()
        done = 0
        distinct = np.unique(ranks)
        rmse = np.empty((len(distinct), len(starts)))
        for i, k in enumerate(distinct):
            residual -= C[:, done:k] @ B_from[done:k]
            done = k
            mse = (out_of_span + np.einsum("ij,ij->j", residual, residual)) / n_to
            column_rmse = np.sqrt(np.maximum(mse, 0.0))
            rmse[i] = np.add.reduceat(column_rmse, starts) / np.diff(np.append(starts, len(column_rmse)))
        return rmse[np.searchsorted(distinct, ranks)].T

    def fit(self, targets, widths=None):
        """Choose the cut-off by 2-fold CV for each target and return the weights.

        Parameters
        ----------
        targets : ndarray of shape (n_train, n_columns) or FoldTargets
            Scaled target features of the training samples (one target, or several side
            by side), or the same already split by :class:`FoldTargets` into the same
            folds (to fit many sources to the same targets).
        widths : sequence of int, optional
            Number of columns of each target when ``targets`` is an array (default: one
            target). Each target gets its own cut-off, exactly as if it were fit alone.

        Returns
        -------
        W : ndarray of shape (n_features, n_columns)
            Predictions are ``X @ W``.
        cv_scores : ndarray of shape (n_targets, n_alphas)
            Mean negative RMSE of the two folds (scikit-matter's ``cv_values_``).
        best : ndarray of shape (n_targets,)
            Index of the chosen alpha for each target (the first maximum, as ``np.argmax``).
        """
        if not isinstance(targets, FoldTargets):
            targets = FoldTargets(targets, widths, folds=self.folds)
        if targets.n_train != self.n_train:
            raise ValueError(f"targets have {targets.n_train} training samples, the source {self.n_train}")
        f1, f2, t = self.fold1, self.fold2, targets
        D1, D2 = f1.U.T @ t.Y1, f2.U.T @ t.Y2
        n1, n2 = (len(t.Y1), len(t.Y2)) if self.fold_sizes is None else self.fold_sizes
        rmse_on_2 = self._fold_rmse(t.Y2, n2, t.sq2, D2, f2, self.C12, D1[: f1.n_kept], self.ranks1, t.starts)
        rmse_on_1 = self._fold_rmse(t.Y1, n1, t.sq1, D1, f1, self.C21, D2[: f2.n_kept], self.ranks2, t.starts)
        cv_scores = (-rmse_on_2 + -rmse_on_1) / 2
        best = np.argmax(cv_scores, axis=1)
        UtY = self.Um.T @ np.vstack([D1, D2])
        W = np.empty((self.Vt.shape[1], t.n_columns))
        for start, width, b in zip(t.starts, t.widths, best):
            k = self.final_ranks[b]
            cols = slice(start, start + width)
            W[:, cols] = (self.Vt[:k].T / self.s[:k]) @ UtY[:k, cols]
        return W, cv_scores, best

    def at_grid_edge(self, best):
        """Whether each chosen alpha index lies at an edge of the grid that matters.

        The largest alpha counts always (a larger cut-off could still do better). The
        smallest counts only when it keeps more components than the next alpha: otherwise
        the two tie and the first is taken by convention.
        """
        if len(self.alphas) < 2:  # nothing was chosen
            return np.zeros(np.shape(best), dtype=bool)
        low_matters = self.ranks1[0] != self.ranks1[1] or self.ranks2[0] != self.ranks2[1]
        return (best == len(self.alphas) - 1) | ((best == 0) & low_matters)

    def gram_times(self, W):
        """``X_trainᵀ X_train @ W`` from the factorisation, shape (n_features, n_targets)."""
        return self.Vt.T @ ((self.s**2)[:, None] * (self.Vt @ W))
