"""Train/test splits and the 2-fold split used inside the cross-validated ridge.

Two ways to draw the inner folds (``cv``):

* ``"skmatter"``: samples fall into the folds at random, exactly as scikit-matter's
  ``Ridge2FoldCV`` (``KFold(2, shuffle=True)``), so results match published numbers.
* ``"grouped"``: samples of one group (one structure; in an LFRE neighbourhood, one
  feature vector) always fall into the same fold. With random folds, equivalent atoms of
  one crystal sit in both folds, the CV rewards the smallest cut-off and the map
  extrapolates wildly on test structures. With every group a single sample, the grouped
  folds are exactly the scikit-matter folds.
"""

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


CV_MODES = ("grouped", "skmatter")


def check_cv(cv):
    """``cv`` must be one of :data:`CV_MODES`."""
    if cv not in CV_MODES:
        raise ValueError(f"unknown cv mode {cv!r}; choose 'grouped' (folds keep groups together) or "
                         "'skmatter' (random folds, scikit-matter's exact numbers)")
    return cv


def grouped_fold2(labels, n_labels, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Which samples fall into the second CV fold when whole groups are assigned to folds.

    Groups are taken in a random order (the order in which :func:`two_folds` takes single
    samples) and go to fold 2 while it holds fewer than ``n - n // 2`` samples; the last
    group always goes to fold 1. With one sample per group this is exactly :func:`two_folds`.
    With a single group, fold 2 is empty.

    Parameters
    ----------
    labels : ndarray of int, shape (..., n)
        Group of each sample, in ``0 .. n_labels - 1``; leading axes are independent sets
        of samples (e.g. LFRE neighbourhoods).
    n_labels : int

    Returns
    -------
    ndarray of bool, shape (..., n)
    """
    labels = np.asarray(labels)
    n = labels.shape[-1]
    order = np.arange(n_labels)
    np.random.RandomState(seed).shuffle(order)
    rank = np.empty(n_labels, dtype=np.intp)
    rank[order] = np.arange(n_labels)
    key = rank[labels]
    by_key = np.argsort(key, axis=-1, kind="stable")
    sorted_key = np.take_along_axis(key, by_key, axis=-1)
    position = np.broadcast_to(np.arange(n), sorted_key.shape)
    new_group = np.ones(sorted_key.shape, dtype=bool)
    new_group[..., 1:] = sorted_key[..., 1:] != sorted_key[..., :-1]
    group_start = np.maximum.accumulate(np.where(new_group, position, 0), axis=-1)
    to_fold2 = group_start < n - n // 2
    # A large group taken late can leave fold 1 empty: the last group then goes to fold 1.
    last_group = group_start == group_start[..., -1:]
    to_fold2 &= ~(to_fold2.all(axis=-1, keepdims=True) & last_group)
    in_fold2 = np.empty(labels.shape, dtype=bool)
    np.put_along_axis(in_fold2, by_key, to_fold2, axis=-1)
    return in_fold2


def grouped_two_folds(groups, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The two CV folds of samples with group labels ``groups``; a group never spans both.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Any hashable labels (e.g. the structure of each training atom).

    Returns
    -------
    fold1, fold2 : ndarray of int, sorted
    """
    _, first, labels = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    # groups numbered by first appearance, so that single-sample groups give two_folds' folds
    labels = np.argsort(np.argsort(first))[labels.ravel()]
    n_labels = len(first)
    if n_labels < 2:
        raise ValueError(
            f"grouped cross-validation needs at least 2 groups (structures) in the training set, got {n_labels}; "
            "add structures, or use cv='skmatter'"
        )
    in_fold2 = grouped_fold2(labels, n_labels, seed)
    return np.flatnonzero(~in_fold2), np.flatnonzero(in_fold2)


def inner_folds(n_train, cv="skmatter", groups=None, seed=DEFAULT_SEED):
    """The inner CV folds of ``n_train`` training samples: random (``"skmatter"``) or by ``groups``."""
    if check_cv(cv) == "skmatter":
        return two_folds(n_train, seed)
    if groups is None:
        raise ValueError("cv='grouped' needs groups: the group (e.g. structure) of every sample")
    groups = np.asarray(groups)
    if groups.shape != (n_train,):
        raise ValueError(f"groups must have one label per training sample ({n_train}), got shape {groups.shape}")
    return grouped_two_folds(groups, seed)


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
