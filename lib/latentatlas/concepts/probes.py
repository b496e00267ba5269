"""Linear concept probes for every (layer, concept) at once, vectorised.

Each probe is an L2-regularised logistic regression with class-balanced sample weights on
standardised activations, the BAGEL recipe. The objective is exactly that of scikit-learn's
``LogisticRegression(solver="liblinear", class_weight="balanced", C=C)``, the reference of
``benchmarks/probes.py``, intercept included: liblinear penalises the intercept as the weight
of a constant feature (``intercept_scaling=1``), and so do these probes. Per layer and
concept column, with ``x_i`` the standardised activations of sample i followed by a 1,

    minimise over w:  ||w||^2 / 2 + C sum_i c_i log(1 + exp(-s_i w.x_i)),

where ``s_i = +-1`` is the label and ``c_i = n / (2 n_{class of i})`` the balanced weight.

All probes are solved together by a truncated Newton method (liblinear's method, batched):

- each layer's augmented activations are rotated onto the eigenvectors of their Gram matrix,
  which keeps ``||w||`` (the objective is unchanged) and makes the Hessian nearly diagonal.
  Directions whose eigenvalue is too small to move any logit by 1e-8 at the optimum are
  dropped: network activations are often rank-deficient (a layer of 224 features may span
  127 dimensions), and fewer directions make every product cheaper;
- each Newton system is solved by conjugate gradients preconditioned with the diagonal of
  the Hessian, followed by Armijo backtracking, every problem with its own step lengths and
  stopping test, all problems in the same batched matrix products (layers of similar rank
  share one padded batch).

The arithmetic is numpy, float64 except for the conjugate-gradient products (float32 while
their tolerance allows): for these small, skinny matrix products numpy's OpenBLAS ran 3-7x
faster than torch's MKL on the AMD CPU the benchmark was measured on.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from scipy.linalg import eigh
from scipy.special import expit
from sklearn.base import BaseEstimator

__all__ = ["LinearProbes", "balanced_accuracy"]

#: largest change of any logit, at the optimum, allowed from dropping low-variance directions
_LOGIT_CUTOFF = 1e-8
#: size of the solver's (layers, samples, columns) arrays, at most (128 MB in float64)
_CHUNK_ELEMENTS = 2**24


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Balanced accuracy of binary predictions, vectorised over leading axes.

    Parameters
    ----------
    y_true : ndarray of bool, shape (n_samples, n_concepts)
    y_pred : ndarray of bool, shape (..., n_samples, n_concepts)

    Returns
    -------
    ndarray of shape (..., n_concepts)
        Mean of the true-positive and true-negative rates; NaN where a concept has only one
        value in ``y_true``.
    """
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    n_pos = y_true.sum(0)
    n_neg = len(y_true) - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = (y_pred & y_true).sum(-2) / n_pos
        tnr = (~y_pred & ~y_true).sum(-2) / n_neg
    return 0.5 * (tpr + tnr)


def _dot(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Inner product per problem of (L, r, K) arrays, shape (L, 1, K)."""
    return np.einsum("lrk,lrk->lk", A, B)[:, None, :]


def _newton(T: np.ndarray, groups, Y: np.ndarray, weight: np.ndarray, tol: float, max_iter: int):
    """Minimise ``||u||^2 / 2 + sum_i weight_i (log(1 + exp(z_i)) - y_i z_i)``, ``z = T_l u``.

    Parameters
    ----------
    T : ndarray (L, n, r)
        Rotated activations per layer, zero beyond each layer's rank.
    groups : list of (start, stop, rank)
        Consecutive layers whose products only need the first ``rank`` columns of T.
    Y : ndarray of bool (n, K)
    weight : ndarray (n, K)
        C times the balanced sample weights.
    tol : float
        A problem is solved when its gradient norm is below ``tol`` times the initial one.
    max_iter : int
        Newton iterations at most.

    Returns
    -------
    U : ndarray (L, r, K)
        Solution of every (layer, column) problem; zero beyond each layer's rank.
    n_iter : int
        Newton iterations done.
    """
    L, n, r = T.shape
    K = Y.shape[1]
    wy = weight * Y
    # Conjugate gradients only need a direction to within their own tolerance, at least 1e-3
    # relative until the gradient is down to 1e-6 of its initial norm: until then they run
    # in float32 (on contiguous transposes, the fastest products), then in float64, whose
    # accuracy tight tolerances need. Gradient, objective and logits are always float64.
    Tt32 = np.ascontiguousarray(T.transpose(0, 2, 1), dtype=np.float32)
    T2t32 = np.square(Tt32)
    single = Tt32.transpose(0, 2, 1), Tt32
    double = T, T.transpose(0, 2, 1)

    def product(M, U):
        """M @ U per layer for M (L, n, r) and U (L, r, K), (L, n, K)."""
        out = np.empty((L, n, K), dtype=U.dtype)
        for a, b, rank in groups:
            np.matmul(M[a:b, :, :rank], U[a:b, :rank], out=out[a:b])
        return out

    def product_t(Mt, G):
        """Mt @ G per layer for Mt (L, r, n) and G (L, n, K), (L, r, K)."""
        out = np.zeros((L, r, K), dtype=G.dtype)
        for a, b, rank in groups:
            np.matmul(Mt[a:b, :rank], G[a:b], out=out[a:b, :rank])
        return out

    def objective(U, Z):
        # log(1 + exp(z)) without overflow, several times faster than np.logaddexp(0, z)
        softplus = np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z)))
        data = np.einsum("lnk,nk->lk", softplus, weight) - np.einsum("lnk,nk->lk", Z, wy)
        return 0.5 * _dot(U, U) + data[:, None, :]

    U = np.zeros((L, r, K))
    Z = np.zeros((L, n, K))
    f = objective(U, Z)
    active = np.ones((L, 1, K), dtype=bool)
    for n_iter in range(max_iter + 1):
        with np.errstate(over="ignore"):  # exp(-z) = inf gives the right limit, 0
            P = 1.0 / (1.0 + np.exp(-Z))
        g = U + product_t(double[1], weight * P - wy)
        gnorm = np.sqrt(_dot(g, g))
        if n_iter == 0:
            g0 = gnorm
        active &= gnorm > tol * g0
        if not active.any() or n_iter == max_iter:
            break
        precise = (gnorm / g0)[active].min() < 1e-6
        dtype, (M, Mt) = (np.float64, double) if precise else (np.float32, single)
        curvature = (weight * P * (1 - P)).astype(dtype)
        diagonal = 1.0 + product_t(T2t32, curvature.astype(np.float32)).astype(dtype)
        # forcing term: loose steps far from the optimum, superlinear convergence near it
        target = (np.minimum(0.5, np.sqrt(gnorm / g0)) * gnorm).astype(dtype)
        step = np.zeros((L, r, K), dtype=dtype)
        res = -g.astype(dtype)
        s = res / diagonal
        p = s
        rs = _dot(res, s)
        solving = active.copy()
        for _ in range(r):
            Hp = p + product_t(Mt, curvature * product(M, p))
            pHp = _dot(p, Hp)
            alpha = np.divide(rs, pHp, out=np.zeros_like(rs), where=solving & (pHp > 0))
            step += alpha * p
            res -= alpha * Hp
            solving &= _dot(res, res) > target**2
            if not solving.any():
                break
            s = res / diagonal
            rs, rs_old = _dot(res, s), rs
            p = s + np.divide(rs, rs_old, out=np.zeros_like(rs), where=rs_old > 0) * p
        step = step.astype(np.float64)
        q = product(T, step)
        slope = _dot(g, step)
        t = active.astype(float)
        for _ in range(50):
            f_new = objective(U + t * step, Z + t * q)
            # f_new == f: the decrease is below rounding, there is no progress left to make
            failed = active & ((f_new > f + 1e-4 * t * slope) | (f_new >= f))
            if not failed.any():
                break
            t[failed] /= 2
        # no decrease along a descent direction: rounding dominates, the problem is solved
        t[failed] = 0.0
        active &= ~failed
        U += t * step
        Z += t * q
        f = np.where(failed, f, f_new)
    if active.any():
        warnings.warn(
            f"{int(active.sum())} probe(s) not converged after max_iter={max_iter} Newton iterations "
            f"(gradient above tol={tol} times its initial norm); raise max_iter or tol",
            RuntimeWarning,
            stacklevel=3,
        )
    return U, n_iter


def _as_layers(X) -> Mapping:
    """Activations as a mapping layer -> array; one 2-D array is a single layer named ``"X"``."""
    if isinstance(X, Mapping):
        return X
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a mapping of layer -> (n_samples, n_features) array or one 2-D array, got shape {X.shape}")
    return {"X": X}


class LinearProbes(BaseEstimator):
    """Class-balanced logistic-regression probes for many layers and binary concepts.

    A scikit-learn estimator: ``get_params``/``set_params``/``clone`` work, and given one 2-D
    array ``X`` (a single layer, named ``"X"``) it is the last step of a ``Pipeline``, e.g.
    after a ``PCA``.

    Parameters
    ----------
    C : float
        Inverse L2 regularisation strength, as in scikit-learn's liblinear solver (see the
        module docstring for the objective; the intercept is penalised too).
    tol : float
        Stop a probe when its gradient norm is below ``tol`` times the initial one (liblinear
        stops at ``1e-4 * min(n_pos, n_neg) / n`` times, i.e. 2e-5 to 5e-5), or when its
        objective no longer decreases (rounding: tolerances below about 1e-9).
    max_iter : int
        Newton iterations at most.

    Attributes
    ----------
    layers_ : list of str
    mean_, scale_ : dict of layer -> ndarray (n_features,)
        Standardisation fitted on the training activations.
    coef_ : ndarray (n_layers, max_features, n_concepts)
        Weights on standardised activations (zero-padded beyond each layer's width).
    intercept_ : ndarray (n_layers, n_concepts)
    rank_ : ndarray of int (n_layers,)
        Directions of each layer's augmented activations that the probes use.
    n_iter_ : int
        Newton iterations of the slowest probe.
    """

    def __init__(self, C: float = 0.1, *, tol: float = 1e-5, max_iter: int = 100):
        self.C = C
        self.tol = tol
        self.max_iter = max_iter

    def _standardised(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        X = _as_layers(X)
        missing = [name for name in self.layers_ if name not in X]
        if missing:
            raise KeyError(f"activations lack the fitted layer(s) {missing}")
        n = {len(X[name]) for name in self.layers_}
        if len(n) != 1:
            raise ValueError(f"all layers must have the same number of samples, got {sorted(n)}")
        width = max(len(m) for m in self.mean_.values())
        out = np.zeros((len(self.layers_), n.pop(), width))
        for i, name in enumerate(self.layers_):
            values = np.asarray(X[name], dtype=np.float64)
            if values.shape[1] != len(self.mean_[name]):
                raise ValueError(
                    f"layer {name!r} has {values.shape[1]} features but the probes were fitted on {len(self.mean_[name])}"
                )
            part = out[i, :, : values.shape[1]]
            np.subtract(values, self.mean_[name], out=part)
            part /= self.scale_[name]
        return out

    def standardise(self, X: Mapping[str, np.ndarray]):
        """Standardised activations, zero-padded to the widest layer.

        Returns
        -------
        torch.Tensor (n_layers, n_samples, max_features), float64
        """
        import torch

        return torch.from_numpy(self._standardised(X))

    def fit(self, X: Mapping[str, np.ndarray], Y: np.ndarray) -> "LinearProbes":
        """Fit one probe per (layer, concept column).

        Parameters
        ----------
        X : mapping of layer -> ndarray (n_samples, n_features_layer), or one such array
        Y : ndarray of bool (n_samples, n_concepts)
            Binary concept labels; every column needs both values.
        """
        X = _as_layers(X)
        if self.C <= 0:
            raise ValueError(f"C must be positive, got {self.C}")
        Y = np.asarray(Y, dtype=bool)
        if Y.ndim != 2:
            raise ValueError(f"Y must be 2-D (n_samples, n_concepts), got shape {Y.shape}")
        self.layers_ = list(X)
        if not self.layers_:
            raise ValueError("no layer given")
        self.mean_, self.scale_ = {}, {}
        for name in self.layers_:
            values = np.asarray(X[name], dtype=np.float64)
            if len(values) != len(Y):
                raise ValueError(f"layer {name!r} has {len(values)} samples but Y has {len(Y)} rows")
            std = values.std(0)
            self.mean_[name] = values.mean(0)
            # constant features carry no information; scale 1 keeps them at exactly zero
            self.scale_[name] = np.where(std > 0, std, 1.0)
        n, K = Y.shape
        n_pos = Y.sum(0)
        single = np.flatnonzero((n_pos == 0) | (n_pos == n))
        if single.size:
            raise ValueError(f"concept columns {single.tolist()} have a single value in the training data")
        weight = self.C * np.where(Y, n / (2 * n_pos), n / (2 * (n - n_pos)))

        Z = self._standardised(X)
        widths = [len(self.mean_[name]) for name in self.layers_]
        # The optimal weight u_j along an eigenvector with eigenvalue e satisfies
        # |u_j| <= sqrt(e) ||weight||, so it moves a logit by at most e ||weight||.
        cutoff = _LOGIT_CUTOFF / np.sqrt((weight**2).sum(0)).max()
        augmented, bases = [], []
        for i, width in enumerate(widths):
            A = np.concatenate([Z[i, :, :width], np.ones((n, 1))], axis=1)
            evals, evecs = eigh(A.T @ A, driver="evd", check_finite=False)
            augmented.append(A)
            bases.append(evecs[:, evals > cutoff])
        self.rank_ = np.array([basis.shape[1] for basis in bases])
        # widest first; a layer joins the current padded batch while it pads at most 20 %
        order = np.argsort(-self.rank_, kind="stable")
        groups = []
        for j, i in enumerate(order):
            if not groups or self.rank_[i] < 0.8 * groups[-1][2]:
                groups.append([j, j + 1, self.rank_[i]])
            else:
                groups[-1][1] = j + 1
        T = np.zeros((len(widths), n, self.rank_.max()))
        for j, i in enumerate(order):
            T[j, :, : self.rank_[i]] = augmented[i] @ bases[i]
        # the solver holds several (layers, samples, columns) arrays: chunks of columns bound them
        chunk = max(1, _CHUNK_ELEMENTS // T.shape[0] // n)
        parts = [
            _newton(T, groups, Y[:, c : c + chunk], weight[:, c : c + chunk], self.tol, self.max_iter)
            for c in range(0, K, chunk)
        ]
        U = np.concatenate([part[0] for part in parts], axis=2)
        self.n_iter_ = max(part[1] for part in parts)

        self.coef_ = np.zeros((len(widths), max(widths), K))
        self.intercept_ = np.zeros((len(widths), K))
        for j, i in enumerate(order):
            w = bases[i] @ U[j, : self.rank_[i]]
            self.coef_[i, : widths[i]] = w[:-1]
            self.intercept_[i] = w[-1]
        return self

    def decision_function(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """Logits, ndarray (n_layers, n_samples, n_concepts)."""
        return self._standardised(X) @ self.coef_ + self.intercept_[:, None, :]

    def predict_proba(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """Probability that each concept is present, ndarray (n_layers, n_samples, n_concepts)."""
        return expit(self.decision_function(X))

    def score(self, X: Mapping[str, np.ndarray], Y: np.ndarray) -> np.ndarray:
        """Balanced accuracy per (layer, concept), ndarray (n_layers, n_concepts)."""
        return balanced_accuracy(Y, self.decision_function(X) > 0)
