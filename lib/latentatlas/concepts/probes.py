"""Linear concept probes for every (layer, concept) at once, vectorised in torch.

Each probe is an L2-regularised logistic regression with class-balanced sample weights on
standardised activations, the BAGEL recipe (the reference is scikit-learn's
``LogisticRegression(class_weight="balanced", C=C)``; see ``benchmarks/probes.py``). All
probes are fitted together as one batched problem:

- each layer is preconditioned by the eigenvectors of its Gram matrix, scaled with the
  Böhning bound ``0.25 * eigenvalue + 1/C`` of the logistic Hessian, so every sub-problem is
  well conditioned and one L-BFGS run over all parameters (the sum of the independent
  objectives) reaches a coarse solution in a few steps;
- each coordinate is then rescaled by the diagonal of the exact Hessian at that point (the
  eigenbasis makes the Hessian nearly diagonal) and L-BFGS finishes in the new variables;
- loss and gradient are written by hand, one matrix product per layer for all concepts.

Unlike liblinear, the intercept is not penalised.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["LinearProbes", "balanced_accuracy"]


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


class LinearProbes:
    """Class-balanced logistic-regression probes for many layers and binary concepts.

    Parameters
    ----------
    C : float
        Inverse L2 regularisation strength, as in scikit-learn (objective
        ``sum_i w_i log(1 + exp(-y_i f_i)) + ||coef||^2 / (2 C)`` with balanced weights
        ``w_i = n / (2 n_{class of i})``).
    max_iter : int
        L-BFGS iterations at most.
    tol : float
        Stop when the largest entry of the curvature-scaled gradient (per-sample averaged
        objective, see the module docstring) is below; the default gives probabilities within
        about 2e-3 of the exact optimum.
    dtype : {"float32", "float64"}
        Precision of the computation.

    Attributes
    ----------
    layers_ : list of str
    mean_, scale_ : dict of layer -> ndarray (n_features,)
        Standardisation fitted on the training activations.
    coef_ : ndarray (n_layers, max_features, n_concepts)
        Weights on standardised activations (zero-padded beyond each layer's width).
    intercept_ : ndarray (n_layers, n_concepts)
    n_iter_ : int
    """

    def __init__(self, C: float = 0.1, *, max_iter: int = 500, tol: float = 3e-4, dtype: str = "float32"):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.dtype = dtype

    def standardise(self, X: Mapping[str, np.ndarray]):
        """Standardised activations, zero-padded to the widest layer.

        Returns
        -------
        torch.Tensor (n_layers, n_samples, max_features)
        """
        import torch

        missing = [name for name in self.layers_ if name not in X]
        if missing:
            raise KeyError(f"activations lack the fitted layer(s) {missing}")
        n = {len(X[name]) for name in self.layers_}
        if len(n) != 1:
            raise ValueError(f"all layers must have the same number of samples, got {sorted(n)}")
        width = max(len(m) for m in self.mean_.values())
        out = torch.zeros(len(self.layers_), n.pop(), width, dtype=getattr(torch, self.dtype))
        for i, name in enumerate(self.layers_):
            values = np.asarray(X[name], dtype=np.float64)
            if values.shape[1] != len(self.mean_[name]):
                raise ValueError(
                    f"layer {name!r} has {values.shape[1]} features but the probes were fitted on {len(self.mean_[name])}"
                )
            out[i, :, : values.shape[1]] = torch.as_tensor((values - self.mean_[name]) / self.scale_[name])
        return out

    def fit(self, X: Mapping[str, np.ndarray], Y: np.ndarray) -> "LinearProbes":
        """Fit one probe per (layer, concept column).

        Parameters
        ----------
        X : mapping of layer -> ndarray (n_samples, n_features_layer)
        Y : ndarray of bool (n_samples, n_concepts)
            Binary concept labels; every column needs both values.
        """
        import torch

        if self.C <= 0:
            raise ValueError(f"C must be positive, got {self.C}")
        Y = np.asarray(Y)
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
        n_pos = Y.sum(0)
        single = np.flatnonzero((n_pos == 0) | (n_pos == len(Y)))
        if single.size:
            raise ValueError(f"concept columns {single.tolist()} have a single value in the training data")

        Z = self.standardise(X)
        dt = Z.dtype
        n, K = Y.shape
        y = torch.as_tensor(Y, dtype=dt)
        pos = torch.as_tensor(n_pos, dtype=dt)
        weight = torch.where(y > 0, n / (2 * pos), n / (2 * (n - pos)))
        lam = 1.0 / self.C

        widths = [len(self.mean_[name]) for name in self.layers_]
        s_b = 1.0 / np.sqrt(0.25 * n)
        bases, Ts, penalties = [], [], []
        for i, width in enumerate(widths):
            Zi = Z[i, :, :width]
            # eigh in float64: the Gram matrices of correlated activations are ill-conditioned
            evals, evecs = torch.linalg.eigh((Zi.T @ Zi).double())
            s = (1.0 / torch.sqrt(0.25 * evals.clamp_min(0) + lam)).to(dt)
            bases.append(evecs.to(dt) * s)  # coef = basis @ u
            Ts.append(Zi @ bases[-1])
            penalties.append((lam * s**2)[:, None])
        # one flat parameter: per layer a (width + 1, K) block of preconditioned weights and intercept
        offsets = np.concatenate([[0], np.cumsum([(w + 1) * K for w in widths])])
        wy = weight * y

        def blocks(flat):
            return [flat[offsets[i] : offsets[i + 1]].view(w + 1, K) for i, w in enumerate(widths)]

        def solve(u0, scale, tol):
            """L-BFGS in the variables v = u / scale, from u0."""
            V = (u0 / scale).clone().requires_grad_(True)
            opt = torch.optim.LBFGS(
                [V], lr=1.0, max_iter=self.max_iter, tolerance_grad=tol, tolerance_change=0.0,
                history_size=20, line_search_fn="strong_wolfe",
            )  # fmt: skip

            def objective():
                with torch.no_grad():
                    loss = 0.0
                    grads = []
                    for T, penalty, block in zip(Ts, penalties, blocks(V * scale)):
                        u, b = block[:-1], block[-1:]
                        logits = torch.addmm(b * s_b, T, u)
                        G = weight * torch.sigmoid(logits) - wy  # d data / d logits
                        reg = penalty * u
                        loss += float((weight * torch.nn.functional.softplus(logits) - wy * logits).sum() + 0.5 * (reg * u).sum())
                        grads += [torch.addmm(reg, T.T, G).ravel(), G.sum(0) * s_b]
                    V.grad = torch.cat(grads) * scale / n
                    return torch.tensor(loss / n, dtype=dt)

            opt.step(objective)
            return (V * scale).detach(), int(opt.state[V]["n_iter"])

        def curvature(u):
            """Diagonal of the Hessian in u, per (feature, concept) and per intercept."""
            out = []
            with torch.no_grad():
                for T, penalty, block in zip(Ts, penalties, blocks(u)):
                    p = torch.sigmoid(torch.addmm(block[-1:] * s_b, T, block[:-1]))
                    c = weight * p * (1 - p)
                    out += [torch.addmm(penalty.expand(-1, K), (T**2).T, c).ravel(), c.sum(0) * s_b**2]
            return torch.cat(out) / n

        ones = torch.ones(int(offsets[-1]), dtype=dt)
        # coarse solve, then rescale each coordinate by its current curvature and finish
        U, it1 = solve(torch.zeros(int(offsets[-1]), dtype=dt), ones, max(self.tol, 1e-3))
        U, it2 = solve(U, curvature(U).rsqrt(), self.tol)
        self.n_iter_ = it1 + it2
        coef = np.zeros((len(widths), max(widths), K))
        intercept = np.zeros((len(widths), K))
        with torch.no_grad():
            for i, (basis, block) in enumerate(zip(bases, blocks(U))):
                coef[i, : widths[i]] = (basis @ block[:-1]).numpy()
                intercept[i] = (block[-1] * s_b).numpy()
        self.coef_, self.intercept_ = coef, intercept
        return self

    def decision_function(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """Logits, ndarray (n_layers, n_samples, n_concepts)."""
        import torch

        Z = self.standardise(X)
        coef = torch.as_tensor(self.coef_, dtype=Z.dtype)
        return (Z @ coef).numpy().astype(np.float64) + self.intercept_[:, None, :]

    def predict_proba(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """Probability that each concept is present, ndarray (n_layers, n_samples, n_concepts)."""
        from scipy.special import expit

        return expit(self.decision_function(X))

    def score(self, X: Mapping[str, np.ndarray], Y: np.ndarray) -> np.ndarray:
        """Balanced accuracy per (layer, concept), ndarray (n_layers, n_concepts)."""
        return balanced_accuracy(Y, self.decision_function(X) > 0)
