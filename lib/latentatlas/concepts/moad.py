"""BAGEL's MOAD score: how much closer samples sharing a concept are in a layer.

For a layer's activations and a binary concept, MOAD is the mean cosine similarity over
pairs of distinct samples that both carry the concept minus the mean cosine similarity over
pairs where exactly one does. Positive: the concept groups samples together in that layer.

Both means come from sums of unit vectors (``sum_{i != j in P} u_i.u_j = |s_P|^2 - |P|``),
so the cost is O(n d) instead of O(n^2 d).
"""

from __future__ import annotations

import numpy as np

__all__ = ["moad"]


def moad(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """MOAD score of each concept in one layer.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
        Activations (the analysis passes them standardised: raw post-ReLU activations are all
        positive, which makes every cosine similarity large).
    Y : ndarray of bool (n_samples, n_concepts)

    Returns
    -------
    ndarray (n_concepts,)
        NaN for a concept with fewer than 2 positive or no negative samples. Zero-norm
        samples count as cosine 0 with everything.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=bool)
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise ValueError(f"X (n, d) and Y (n, k) must have the same number of rows, got {X.shape} and {Y.shape}")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    U = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    unit = (norms[:, 0] > 0).astype(float)  # u_i.u_i: 1, or 0 for a zero vector
    total = U.sum(0)
    s_pos = Y.T.astype(float) @ U  # (k, d)
    s_neg = total - s_pos
    n_pos = Y.sum(0).astype(float)
    n_neg = len(Y) - n_pos
    self_pos = Y.T.astype(float) @ unit
    with np.errstate(invalid="ignore", divide="ignore"):
        within = ((s_pos**2).sum(1) - self_pos) / (n_pos * (n_pos - 1))
        across = (s_pos * s_neg).sum(1) / (n_pos * n_neg)
    return np.where((n_pos >= 2) & (n_neg >= 1), within - across, np.nan)
