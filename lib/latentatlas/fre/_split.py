"""Train/test splits and the 2-fold split used inside the cross-validated ridge."""

from __future__ import annotations

import math

import numpy as np

DEFAULT_SEED = 0x5F3759DF


def default_split(
    n_samples: int,
    *,
    stratify=None,
    test_fraction: float = 0.5,
    seed: int = DEFAULT_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n_samples)`` into train and test indices.

    Without ``stratify`` this is exactly scikit-matter's default split
    (``train_test_split(arange(n), train_size=0.5, test_size=0.5, random_state=0x5F3759DF)``),
    so results are comparable with ``skmatter.metrics``.

    Parameters
    ----------
    n_samples : int
    stratify : array-like of shape (n_samples,), optional
        Labels (e.g. the subset of each sample's structure); every label is split with
        the same test fraction, so the test set represents every subset.
    test_fraction : float, default 0.5
    seed : int, default 0x5F3759DF

    Returns
    -------
    train_idx, test_idx : ndarray of int
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    if n_samples < 4:
        raise ValueError(f"need at least 4 samples to split into train and test folds, got {n_samples}")
    rng = np.random.RandomState(seed)
    if stratify is None:
        # Same arithmetic as sklearn's ShuffleSplit, which scikit-matter uses.
        n_test = math.ceil(test_fraction * n_samples)
        n_train = math.floor((1 - test_fraction) * n_samples)
        perm = rng.permutation(n_samples)
        return perm[n_test : n_test + n_train], perm[:n_test]
    labels = np.asarray(stratify)
    if labels.shape != (n_samples,):
        raise ValueError(f"stratify must have one label per sample ({n_samples}), got shape {labels.shape}")
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = math.ceil(test_fraction * len(members)) if len(members) > 1 else 0
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def two_folds(n_samples: int, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The two folds of ``KFold(n_splits=2, shuffle=True, random_state=seed)``'s first split.

    Returned as (train part, test part) of that split, both sorted, which is what
    scikit-matter's ``Ridge2FoldCV`` calls fold 1 and fold 2.
    """
    order = np.arange(n_samples)
    np.random.RandomState(seed).shuffle(order)
    in_fold2 = np.zeros(n_samples, dtype=bool)
    in_fold2[order[: n_samples - n_samples // 2]] = True
    return np.flatnonzero(~in_fold2), np.flatnonzero(in_fold2)


def resolve_split(n_samples, train_idx=None, test_idx=None, seed=DEFAULT_SEED):
    """Train and test indices: the default split, or the complement of the one given, checked."""
    if train_idx is None and test_idx is None:
        return default_split(n_samples, seed=seed)
    if train_idx is None:
        train_idx = np.setdiff1d(np.arange(n_samples), test_idx)
    elif test_idx is None:
        test_idx = np.setdiff1d(np.arange(n_samples), train_idx)
    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
    for label, idx in (("train_idx", train_idx), ("test_idx", test_idx)):
        if idx.size == 0:
            raise ValueError(f"{label} is empty; give at least one sample to it")
        if idx.min() < 0 or idx.max() >= n_samples:
            raise ValueError(f"{label} has indices outside 0..{n_samples - 1}")
    return train_idx, test_idx


def check_local_points(n_local_points, n_train, strict=False):
    """Neighbourhood size for LFRE: ``n_local_points``, or all ``n_train`` training samples.

    Like scikit-matter, a neighbourhood larger than the training set uses every training
    sample, with a warning that says so; ``strict=True`` raises instead. Two CV folds of at
    least two samples need 4 or more points.

    Returns
    -------
    int
        The number of neighbours to use.
    """
    import warnings

    from ..dataset import FeatureError

    if n_local_points < 4 or n_train < 4 or (strict and n_local_points > n_train):
        raise FeatureError(
            f"n_local_points={n_local_points} but the training set has {n_train} samples; "
            f"choose n_local_points between 4 and {n_train}"
        )
    if n_local_points > n_train:
        warnings.warn(
            f"n_local_points={n_local_points} exceeds the {n_train} training samples: every neighbourhood is the "
            f"whole training set (as in scikit-matter); pass n_local_points <= {n_train}, or strict_local_points=True "
            "to make this an error",
            stacklevel=3,
        )
    return min(n_local_points, n_train)
