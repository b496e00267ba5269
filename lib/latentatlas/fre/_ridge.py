"""The cross-validated cut-off ridge regression behind every FRE measure: one kernel.

This is the computation of scikit-matter's ``Ridge2FoldCV(alpha_type="relative",
regularization_method="cutoff", scoring="neg_root_mean_squared_error")``, reorganised so
that everything that depends only on the source features X is factorised once and then
serves any number of targets Y, for a batch of independent problems at once:

* :class:`CVRidge` holds a batch of ``b`` problems with their two CV folds given: GFRE and
  GFRD fit one problem (``b = 1``, all training samples), LFRE one problem per test sample
  (its neighbourhood). The folds may differ in size between problems: shorter folds are
  padded with zero rows, which changes neither the SVDs' non-zero part nor any residual;
* the singular value decompositions of the two CV folds of X are computed once;
* the SVD of the whole training set follows from them without touching X again:
  ``X[fold rows] = blockdiag(U1, U2) @ [S1 V1ᵀ; S2 V2ᵀ]``, so the SVD of the small stacked
  matrix ``M = [S1 V1ᵀ; S2 V2ᵀ]`` gives the singular values and right vectors of X, and
  ``Uᵀ Y = U_Mᵀ [U1ᵀ Y1; U2ᵀ Y2]`` with only orthogonal transforms;
* fold-1 predictions on fold 2 lie in the range of U2, so the CV residuals of all
  cut-offs are evaluated in that small basis (size ≤ n_features) instead of over samples.

Two summation orders evaluate those residuals for every cut-off (``exact``):

* ``exact=True`` updates the residual explicitly at each distinct cut-off rank and
  recomputes the part outside a fold's span where subtracting norms would cancel. It
  stays accurate when a target is reconstructed almost perfectly (a set from itself),
  so the global fits use it: their CV scores equal ``Ridge2FoldCV.cv_values_`` to 1e-12.
  Its cost grows with the number of distinct ranks in the batch.
* ``exact=False`` expands ``‖D − C_k B_k‖²`` into prefix sums over components: one batched
  product serves every cut-off of every problem, whatever its rank. The local fits use
  it (hundreds of neighbourhoods, each with its own ranks); the expansion loses digits
  only where a residual is far below its target's norm.

Each step uses orthogonal transforms only (no normal equations), so results agree with
scikit-matter to rounding. :class:`SharedRidge` is the single-problem front end (folds
from training rows, targets split once by :class:`FoldTargets`);
:mod:`latentatlas.fre._local` builds the batched neighbourhoods.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._split import DEFAULT_SEED, two_folds

DEFAULT_ALPHAS = np.geomspace(1e-9, 0.9, 20)

# Below this fraction of a target's fold variance, the part of the residual outside the
# fold's feature span is recomputed explicitly rather than by subtraction of norms.
_CANCELLATION_GUARD = 1e-8


def check_alphas(alphas=None) -> np.ndarray:
    """The relative cut-offs as a 1-D float array (default :data:`DEFAULT_ALPHAS`), checked.

    Every estimator and matrix function validates ``alphas`` here, and only here.
    """
    if alphas is None:
        return DEFAULT_ALPHAS
    values = np.asarray(alphas, dtype=float)
    if values.ndim == 0:
        values = values[None]
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"alphas must be a non-empty 1-D sequence of finite numbers, got {alphas!r}")
    if np.any(values < 0) or np.any(values >= 1):
        raise ValueError(
            f"relative alphas must lie in [0, 1), got {values}: each discards singular values below "
            "alpha times the largest (e.g. alphas=numpy.geomspace(1e-9, 0.9, 20), the default)"
        )
    return values


def column_blocks(widths) -> list[slice]:
    """Column slices of targets with ``widths`` columns each, standing side by side."""
    ends = np.cumsum(widths, dtype=int)
    return [slice(int(end - width), int(end)) for end, width in zip(ends, widths)]


def _inverse_where(s, kept):
    """1/s where ``kept``, 0 elsewhere (no division by discarded, possibly zero, values)."""
    return np.where(kept, 1.0 / np.where(kept, s, 1.0), 0.0)


def _divide_kept(A, fold):
    """``A`` (b, r_to, r) with each column divided by the fold's singular value, 0 beyond its numerical rank."""
    kept = (fold.inv > 0)[:, None, :]
    return np.where(kept, A / np.where(kept, fold.s[:, None, :], 1.0), 0.0)


class _FoldSVD:
    """Thin SVDs (b, m, r), (b, r), (b, r, d) of one CV fold of each problem, and its numerical ranks."""

    def __init__(self, X, rcond):
        self.U, self.s, self.Vt = np.linalg.svd(X, full_matrices=False)
        kept = self.s > rcond
        self.n_kept = kept.sum(axis=1)
        self.inv = _inverse_where(self.s, kept)

    def ranks(self, scaled_alphas):
        """Components kept (b, n_alphas) at each absolute cut-off ``scaled_alphas`` (b, n_alphas)."""
        return np.minimum(self.n_kept[:, None], np.sum(self.s[:, None, :] > scaled_alphas[:, :, None], axis=2))


class Fit(NamedTuple):
    """The CV fit of targets: projections on the folds' bases, scores and chosen cut-offs."""

    D1: np.ndarray  # (b, r1, t): U1ᵀ Y1
    D2: np.ndarray  # (b, r2, t): U2ᵀ Y2
    scores: np.ndarray  # (b, n_targets, n_alphas): mean negative RMSE of the two folds
    best: np.ndarray  # (b, n_targets): index of the chosen alpha (the first maximum)


class CVRidge:
    """Relative-cutoff ridge with 2-fold CV for a batch of problems, fit once per source.

    Parameters
    ----------
    X1, X2 : ndarray of shape (b, m1, d) and (b, m2, d)
        Scaled source features of the two CV folds of each problem (zero rows pad folds
        shorter than the longest of the batch).
    n_samples : int
        Number of samples of one problem; with the number of features it sets the
        numerical rank threshold ``max(n_samples, d) · eps · s``.
    n1, n2 : int or ndarray of shape (b,)
        Numbers of samples in the two folds (the divisors of the mean squared errors).
    alphas : array-like of shape (n_alphas,), optional
        Relative cut-offs: singular values below ``alpha * s_max`` are discarded; checked
        by :func:`check_alphas`.
    """

    def __init__(self, X1, X2, n_samples, n1, n2, alphas=None):
        self.alphas = check_alphas(alphas)
        rcond = max(n_samples, X1.shape[2]) * np.spacing(X1.dtype.type(1))
        self.svds = f1, f2 = _FoldSVD(X1, rcond), _FoldSVD(X2, rcond)
        self.fold_sizes = (n1, n2)
        self.scaled_alphas = self.alphas[None, :] * np.maximum(f1.s.max(axis=1), f2.s.max(axis=1))[:, None]  # (b, a)
        self.ranks = f1.ranks(self.scaled_alphas), f2.ranks(self.scaled_alphas)
        # Predictions of a fold-1 fit on fold 2 are U2 @ (C12[:, :k] @ (U1ᵀY1)[:k]), and vice versa;
        # cross[i] maps the other fold's coefficients into fold i's basis.
        P = f2.Vt @ np.swapaxes(f1.Vt, 1, 2)  # (b, r2, r1)
        self.cross = (_divide_kept(f1.s[:, :, None] * np.swapaxes(P, 1, 2), f2), _divide_kept(f2.s[:, :, None] * P, f1))
        self.Um, self.s, self.Vt = np.linalg.svd(
            np.concatenate([f1.s[:, :, None] * f1.Vt, f2.s[:, :, None] * f2.Vt], axis=1), full_matrices=False)
        self._gram = None

    def fit(self, Y1, Y2, *, exact=True, starts=(0,), sq=None) -> Fit:
        """Cross-validate every cut-off for targets split into the same folds.

        Parameters
        ----------
        Y1, Y2 : ndarray of shape (b, m1, t) and (b, m2, t)
            Scaled target features of the two folds (padded as the source's).
        exact : bool
            Summation order of the CV residuals (see the module docstring).
        starts : sequence of int
            First column of each target when several stand side by side (``exact`` only);
            each gets its own cut-off, exactly as if it were fit alone.
        sq : pair of ndarray of shape (b, t), optional
            Column sums of squares of ``Y1`` and ``Y2`` when already known.
        """
        Y = (Y1, Y2)
        D = tuple(np.swapaxes(fold.U, 1, 2) @ Y_fold for fold, Y_fold in zip(self.svds, Y))
        # fold 2 judged by the fit on fold 1, then fold 1 by the fit on fold 2
        on2, on1 = (self._fold_rmse(to, Y[to], D[to], D[1 - to], exact, np.asarray(starts), None if sq is None else sq[to])
                    for to in (1, 0))
        scores = (-on2 + -on1) / 2
        return Fit(*D, scores, np.argmax(scores, axis=2))

    def _fold_rmse(self, to, Y_to, D_to, D_from, exact, starts, sq_to):
        """RMSE (b, n_targets, n_alphas) on fold ``to`` (0 or 1) of the fits on the other fold."""
        fold_to, fold_from, ranks = self.svds[to], self.svds[1 - to], self.ranks[1 - to]
        C, n_to = self.cross[to], self.fold_sizes[to]
        if exact:  # per problem: batched, it would cost one product per distinct rank of the batch
            sq_to = [np.einsum("ij,ij->j", Y, Y) for Y in Y_to] if sq_to is None else sq_to
            return np.stack([
                _exact_rmse(Y_to[i], n_to if np.ndim(n_to) == 0 else n_to[i], sq_to[i], D_to[i], fold_to.U[i], C[i],
                            D_from[i, : fold_from.n_kept[i]], ranks[i], starts)
                for i in range(len(D_to))])
        if self._gram is None:
            self._gram = tuple(map(_gram_parts, self.cross))
        # Components beyond each fold's numerical rank are not used as coefficients.
        B_from = D_from * (fold_from.inv > 0)[:, :, None]
        return _expanded_rmse(Y_to, D_to, C, *self._gram[to], B_from, ranks, _column(n_to))[:, None]

    def final_ranks(self, best):
        """Components (b, n_targets) of the whole-set fit at each chosen cut-off index ``best`` (b, n_targets)."""
        chosen = np.take_along_axis(self.scaled_alphas, best, axis=1)
        return np.sum(self.s[:, None, :] > chosen[:, :, None], axis=2)

    def projected_targets(self, fit):
        """``Uᵀ Y`` (b, r, t) in the left singular basis of the whole set."""
        return np.swapaxes(self.Um, 1, 2) @ np.concatenate([fit.D1, fit.D2], axis=1)

    def coef(self, fit, widths):
        """Weights W (b, d, t) of the chosen cut-offs; predictions are ``X @ W``.

        ``widths`` gives the number of columns of each target, as in :meth:`fit`.
        """
        UtY = self.projected_targets(fit)
        ranks = self.final_ranks(fit.best)
        W = np.empty((len(UtY), self.Vt.shape[2], UtY.shape[2]))
        for i in range(len(UtY)):
            for cols, k in zip(column_blocks(widths), ranks[i]):
                W[i, :, cols] = (self.Vt[i, :k].T / self.s[i, :k]) @ UtY[i, :k, cols]
        return W

    def coordinates(self, x):
        """Points ``x`` (b, d), one per problem, in the right singular basis of its whole set, (b, r)."""
        return np.einsum("bd,brd->br", x, self.Vt)

    def predict(self, fit, coords):
        """Predictions (b, t) at one point per problem given by its ``coordinates`` (one target)."""
        k = self.final_ranks(fit.best)[:, 0]
        inv_s = _inverse_where(self.s, np.arange(self.s.shape[1])[None, :] < k[:, None])
        return np.einsum("br,brt->bt", coords * inv_s, self.projected_targets(fit))

    def at_grid_edge(self, best):
        """Whether each chosen alpha index (b, n_targets) lies at an edge of the grid that matters.

        The largest alpha counts always (a larger cut-off could still do better). The
        smallest counts only when it keeps more components than the next alpha: otherwise
        the two tie and the first is taken by convention.
        """
        n = len(self.alphas)
        if n < 2:  # nothing was chosen
            return np.zeros(np.shape(best), dtype=bool)
        low_matters = (self.ranks[0][:, 0] != self.ranks[0][:, 1]) | (self.ranks[1][:, 0] != self.ranks[1][:, 1])
        return (best == n - 1) | ((best == 0) & low_matters[:, None])

    def gram_times(self, W):
        """``Xᵀ X @ W`` (b, d, t) from the factorisation, for weights ``W`` (b, d, t)."""
        return np.swapaxes(self.Vt, 1, 2) @ ((self.s**2)[:, :, None] * (self.Vt @ W))


def _column(n):
    """Fold sizes shaped to divide (b, n_alphas, t) sums of squares."""
    return np.reshape(n, (-1, 1, 1)) if np.ndim(n) else n


def _exact_rmse(Y_to, n_to, total, D_to, U_to, C, B_from, ranks, starts):
    """RMSE of one problem's predictions from the other fold, (n_targets, n_alphas), residuals explicit.

    ``total`` holds the column sums of squares of ``Y_to``; the result is the mean over each
    target's columns of the column RMSEs, scikit-matter's ``neg_root_mean_squared_error``
    with the sign flipped.
    """
    out_of_span = total - np.einsum("ij,ij->j", D_to, D_to)
    risky = out_of_span < _CANCELLATION_GUARD * total
    if np.any(risky):  # nearly all of Y lies in the fold's span: subtract explicitly
        rest = Y_to[:, risky] - U_to @ D_to[:, risky]
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


def _expanded_rmse(Y_to, D_to, C, low, diag, B_from, ranks, n_rows):
    """RMSE (b, n_alphas), mean over target columns, on one fold for each problem's cut-off ranks.

    ``C @ B_from`` restricted to the first k columns/rows is the other fold's prediction in
    this fold's singular basis; all cut-offs follow from prefix sums over k. ``low`` and
    ``diag`` are the strict lower triangle and the diagonal of ``CᵀC`` (source side only).
    """
    in_basis = np.sum(D_to**2, axis=1)  # (b, t)
    out_of_span = np.maximum(np.sum(Y_to**2, axis=1) - in_basis, 0.0)
    CtD = np.swapaxes(C, 1, 2) @ D_to  # (b, m_from, t)
    # ‖D − C_k B_k‖² = ‖D‖² − 2 Σ_{i<k} B_i (CᵀD)_i + Σ_{i<k} (B_i² G_ii + 2 B_i (tril(G)B)_i),  G = CᵀC
    terms = -2 * B_from * CtD + B_from**2 * diag + 2 * B_from * (low @ B_from)
    prefix = _prefix_sums(terms)
    in_span = in_basis[:, None, :] + np.take_along_axis(prefix, ranks[:, :, None], axis=1)
    mse = (out_of_span[:, None, :] + np.maximum(in_span, 0.0)) / n_rows
    return np.mean(np.sqrt(mse), axis=2)


def _prefix_sums(terms):
    """``prefix[:, k] = terms[:, :k].sum(axis=1)`` for k = 0..m, shape (b, m + 1, t).

    The same sequential sums as ``np.cumsum(terms, axis=1)``, one vectorised add per k:
    numpy's cumsum along a middle axis is about 9x slower.
    """
    prefix = np.empty((terms.shape[0], terms.shape[1] + 1, terms.shape[2]))
    prefix[:, 0] = 0.0
    for k in range(terms.shape[1]):
        np.add(prefix[:, k], terms[:, k], out=prefix[:, k + 1])
    return prefix


def _gram_parts(C):
    """Strict lower triangle and diagonal (as a column) of ``CᵀC``, per problem."""
    G = np.swapaxes(C, 1, 2) @ C
    return np.tril(G, -1), np.diagonal(G, axis1=1, axis2=2)[:, :, None]


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
        self.starts = np.array([block.start for block in column_blocks(self.widths)], dtype=int)
        self.n_train, self.n_columns = Y_train.shape


class SharedRidge:
    """The CV ridge of one source (a batch of one :class:`CVRidge`), applied to many targets.

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
        self.n_train = n_train = X_train.shape[0]
        n1, n2 = fold_sizes if fold_sizes is not None else (None, None)
        n_samples = n_train if fold_sizes is None else int(n1 + n2)
        if n_samples < 4:
            raise ValueError(f"need at least 4 training samples for 2-fold cross-validation, got {n_samples}")
        self.folds = rows1, rows2 = two_folds(n_train, seed) if folds is None else folds
        X1, X2 = X_train[rows1], X_train[rows2]
        self.kernel = CVRidge(X1[None], X2[None], n_samples, len(X1) if n1 is None else n1,
                              len(X2) if n2 is None else n2, alphas)
        self.alphas = self.kernel.alphas

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
        t = targets
        fit = self.kernel.fit(t.Y1[None], t.Y2[None], starts=t.starts, sq=([t.sq1], [t.sq2]))
        return self.kernel.coef(fit, t.widths)[0], fit.scores[0], fit.best[0]

    def at_grid_edge(self, best):
        """:meth:`CVRidge.at_grid_edge` of the chosen alpha indices (n_targets,)."""
        return self.kernel.at_grid_edge(np.asarray(best)[None])[0]

    def fold_singular_values(self):
        """Singular values of the two CV folds of the source."""
        return tuple(fold.s[0] for fold in self.kernel.svds)

    def gram_times(self, W):
        """``X_trainᵀ X_train @ W`` from the factorisation, shape (n_features, n_targets)."""
        return self.kernel.gram_times(W[None])[0]
