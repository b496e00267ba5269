"""Concept presence in a model versus in its dataset, per class, with significance.

The analysis follows BAGEL (arXiv:2507.05810). Samples are split per class into a training
and a held-out part. On the training part one class-balanced linear probe per (layer,
concept) is fitted (:class:`~latentatlas.concepts.probes.LinearProbes`). On the held-out
part, grouped by class:

- *model presence* of concept k in class c: the mean predicted probability of k;
- *dataset presence*: the fraction of samples of c that carry k (from the labels);
- *difference*: model minus dataset presence;
- *excess*: the part of the model presence that the concept labels do not explain, i.e. the
  mean over samples i of class c of ``p_i - m(y_i)`` where ``m(1)`` and ``m(0)`` are the
  probe's mean probability over all held-out samples with and without the concept. A probe
  with class-independent errors has zero excess in every class whatever its accuracy; a
  layer that mixes the concept up with class c has a positive excess in c. (The raw
  difference also moves with the probe's accuracy: a balanced probe at chance predicts 0.5
  everywhere.)

The same held-out samples give the converse view from class probes fitted alongside:

- *class excess* of class c for concept k: the mean over samples i that carry k of
  ``q_i - m_c(i in c)``, where q is the class-c probe's probability and ``m_c`` its mean
  over samples in and out of class c. Positive: the layer sees class c in samples with
  the concept beyond their classes (a shortcut from the concept to the class).

Significance (TCAV-style): the same probes are refitted ``n_permutations`` times on
concept labels randomly permuted across training samples and scored the same way; each
observed statistic gets a p-value from a t prediction interval of that null sample
(accuracy one-sided, presence and the excesses two-sided), adjusted with Benjamini-Hochberg over
all tests of that statistic. A p-value of the difference would equal that of the presence
(the dataset presence is a constant), hence the excess is tested instead.

:func:`analyse_concepts` runs in steps: the arguments are checked once (``_validated``) and
split (``_split``), the probes fitted (``_fit_probes``) and scored on the held-out samples
(``_score``), and the scores laid out as the variables of :data:`VARIABLES` (``_assemble``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from .. import __version__
from ..schema import stamp
from .activations import activation_arrays
from .moad import moad

__all__ = ["concept_matrix", "split_indices", "benjamini_hochberg", "analyse_concepts", "examples"]


def concept_matrix(concepts: Mapping[str, Sequence], n_samples: int | None = None):
    """Binary concept columns from per-sample labels.

    A concept whose labels are exactly two booleans (or 0/1) gives one column named after it;
    any other concept gives one column ``"<name>=<value>"`` per value (one-hot).

    Parameters
    ----------
    concepts : mapping of name -> array-like (n_samples,)
    n_samples : int, optional
        Required length of every label array.

    Returns
    -------
    Y : ndarray of bool (n_samples, n_columns)
    names, attributes, values : list of str (n_columns,)
        Column name, the concept it comes from and the value it stands for.
    """
    if not isinstance(concepts, Mapping) or not concepts:
        raise ValueError("concepts must be a non-empty mapping of concept name -> per-sample labels")
    columns, names, attributes, values = [], [], [], []
    for name, labels in concepts.items():
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels of concept {name!r} must be 1-D (one per sample), got shape {labels.shape}")
        if n_samples is not None and len(labels) != n_samples:
            raise ValueError(
                f"concept {name!r} has {len(labels)} labels but there are {n_samples} samples; "
                "give exactly one label per sample"
            )
        uniq = np.unique(labels)
        if len(uniq) < 2:
            raise ValueError(
                f"concept {name!r} has a single label value {uniq.tolist()} for all {len(labels)} samples; "
                "a probe needs samples with and without the concept: drop the concept or add samples"
            )
        if labels.dtype == bool or set(uniq.tolist()) == {0, 1}:
            columns.append(labels.astype(bool))
            names.append(str(name))
            attributes.append(str(name))
            values.append("true")
        else:
            for value in uniq:
                columns.append(labels == value)
                names.append(f"{name}={value}")
                attributes.append(str(name))
                values.append(str(value))
    return np.stack(columns, 1), names, attributes, values


def split_indices(class_index: np.ndarray, n_classes: int, test_fraction: float, seed: int):
    """Stratified split: a ``test_fraction`` of each class is held out.

    Returns
    -------
    train, test : ndarray of int
        Sorted sample indices.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(class_index == c))
        n_test = int(round(test_fraction * len(members)))
        n_test = min(max(n_test, 1), len(members) - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), same shape as the input.

    NaN entries (tests that could not be made) stay NaN and do not count as tests.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.size, np.nan)
    finite = np.flatnonzero(~np.isnan(p.ravel()))
    flat = p.ravel()[finite]
    order = np.argsort(flat)
    ranked = flat[order] * flat.size / np.arange(1, flat.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out[finite[order]] = np.minimum(adjusted, 1.0)
    return out.reshape(p.shape)


def _null_pvalue(observed: np.ndarray, null: np.ndarray, alternative: str) -> np.ndarray:
    """p-value of ``observed`` against ``null`` (repeats on axis 0), t prediction interval."""
    from scipy import stats

    r = len(null)
    mean = null.mean(0)
    spread = null.std(0, ddof=1) * np.sqrt(1 + 1 / r)
    # (NaN statistics, e.g. layers without gradients, stay NaN)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (observed - mean) / spread
        # a null with no spread at all: any departure is certain, none is not
        t = np.where(spread > 0, t, np.where(observed == mean, 0.0, np.sign(observed - mean) * np.inf))
    if alternative == "greater":
        return stats.t.sf(t, r - 1)
    return 2 * stats.t.sf(np.abs(t), r - 1)


def _class_statistics(proba: np.ndarray, Y: np.ndarray, class_index: np.ndarray, n_classes: int):
    """Model presence and excess per class.

    Parameters
    ----------
    proba : ndarray (..., n_samples, n_concepts)
    Y : ndarray of bool (n_samples, n_concepts)
    class_index : ndarray of int (n_samples,)

    Returns
    -------
    presence, excess : ndarray (..., n_concepts, n_classes)
    """
    onehot = np.eye(n_classes)[class_index]  # (n, C)
    counts = onehot.sum(0)
    presence = np.einsum("...nk,nc->...kc", proba, onehot) / counts
    m1 = (proba * Y).sum(-2) / Y.sum(0)
    m0 = (proba * ~Y).sum(-2) / (~Y).sum(0)
    expected_per_sample = np.where(Y, m1[..., None, :], m0[..., None, :])
    excess = np.einsum("...nk,nc->...kc", proba - expected_per_sample, onehot) / counts
    return presence, excess


def _concept_statistics(class_proba: np.ndarray, member: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Class excess: class-probe residual averaged over the samples that carry each concept.

    Parameters
    ----------
    class_proba : ndarray (..., n_samples, n_classes)
        Probability of class membership from the class probes.
    member : ndarray of bool (n_samples, n_classes)
    Y : ndarray of bool (n_samples, n_concepts)

    Returns
    -------
    ndarray (..., n_concepts, n_classes)
    """
    m1 = (class_proba * member).sum(-2) / member.sum(0)
    m0 = (class_proba * ~member).sum(-2) / (~member).sum(0)
    resid = class_proba - np.where(member, m1[..., None, :], m0[..., None, :])
    return np.einsum("...nc,nk->...kc", resid, Y.astype(float)) / Y.sum(0)[:, None]


def _tested(stat: np.ndarray, alternative: str, observed: str, pvalue: str, baseline: str | None = None) -> dict:
    """A statistic against its permuted-label null: observed value, adjusted p-value, baseline.

    Parameters
    ----------
    stat : ndarray (1 + n_permutations, ...)
        Index 0 is observed, the rest the null repeats.
    alternative : {"greater", "two-sided"}
    observed, pvalue, baseline : str
        Result variable names of each part (no baseline variable without ``baseline``).

    Returns
    -------
    dict of name -> ndarray (...)
    """
    out = {observed: stat[0]}
    if baseline is not None:
        out[baseline] = stat[1:].mean(0)
    out[pvalue] = benjamini_hochberg(_null_pvalue(stat[0], stat[1:], alternative))
    return out


def _sensitivity(probes, inputs: _Inputs, test: np.ndarray, test_class: np.ndarray, n_permutations: int) -> dict:
    """TCAV score and mean directional derivative per (layer, concept, class), with p-values.

    The probe of concept k (and each of its permuted-label twins) gives a direction in each
    layer; each held-out sample's derivative is taken of the output that belongs to its class.

    Returns
    -------
    dict of name -> ndarray (n_layers, n_concepts, n_classes)
        ``sensitivity`` and ``derivative``, each with its ``_baseline`` and ``_pvalue``.
    """
    from .sensitivity import directional_derivatives

    grads, own_output = inputs.grads, inputs.class_output[test_class]
    K, n_classes = inputs.Y.shape[1], len(inputs.class_names)
    L, width, _ = probes.coef_.shape
    scale = np.ones((L, width))
    for i, name in enumerate(probes.layers_):
        scale[i, : len(probes.scale_[name])] = probes.scale_[name]
    # columns of coef_ run over (repeat, concept-or-class): keep the concept probes of every repeat
    coef = probes.coef_.reshape(L, width, 1 + n_permutations, -1)[..., :K]
    directions = (coef / scale[:, :, None, None]).reshape(L, width, -1)
    G = np.full((L, len(test), width), np.nan)  # NaN: a layer without gradients
    for i, name in enumerate(probes.layers_):
        if name in grads:
            G[i] = 0.0
            G[i, :, : grads[name].shape[2]] = grads[name][test, own_output]
    dd = directional_derivatives(G, directions).reshape(L, len(test), 1 + n_permutations, K).transpose(2, 0, 1, 3)
    onehot = np.eye(n_classes)[test_class]
    counts = onehot.sum(0)
    score = np.einsum("rlnk,nc->rlkc", np.where(np.isnan(dd), np.nan, dd > 0), onehot) / counts
    mean = np.einsum("rlnk,nc->rlkc", dd, onehot) / counts
    return {
        **_tested(score, "two-sided", "sensitivity", "sensitivity_pvalue", "sensitivity_baseline"),
        **_tested(mean, "two-sided", "derivative", "derivative_pvalue", "derivative_baseline"),
    }


def _output_excess(outputs: np.ndarray, member: np.ndarray, Y: np.ndarray, n_permutations: int, rng) -> dict:
    """Class excess of the model's own class probabilities, tested against permuted concept labels.

    Parameters
    ----------
    outputs : ndarray (n_samples, n_classes)
    member : ndarray of bool (n_samples, n_classes)
    Y : ndarray of bool (n_samples, n_concepts)

    Returns
    -------
    dict of name -> ndarray (n_concepts, n_classes)
        ``output_excess`` and ``output_excess_pvalue``.
    """
    observed = _concept_statistics(outputs, member, Y)
    null = [_concept_statistics(outputs, member, Y[rng.permutation(len(Y))]) for _ in range(n_permutations)]
    return _tested(np.stack([observed, *null]), "two-sided", "output_excess", "output_excess_pvalue")


def _membership(classes: np.ndarray, class_names: list) -> np.ndarray:
    return classes[:, None] == np.asarray(class_names)[None, :]


_LK, _LKC, _KC = ("layer", "concept"), ("layer", "concept", "class"), ("concept", "class")
#: every variable of a concept result, in order: dims and long name (those of ``gradients`` and ``outputs`` last)
VARIABLES = {
    "probe_accuracy": (_LK, "held-out balanced accuracy of the concept probe"),
    "accuracy_baseline": (_LK, "mean accuracy of permuted-label probes"),
    "accuracy_pvalue": (_LK, "probe accuracy above baseline, adjusted p-value"),
    "model_presence": (_LKC, "mean probe probability over held-out samples of the class"),
    "presence_baseline": (_LKC, "model presence of permuted-label probes"),
    "presence_pvalue": (_LKC, "model presence differs from baseline, adjusted p-value"),
    "dataset_presence": (_KC, "fraction of held-out samples of the class with the concept"),
    "difference": (_LKC, "model presence minus dataset presence"),
    "excess": (_LKC, "model presence not explained by the concept labels"),
    "excess_pvalue": (_LKC, "excess differs from baseline, adjusted p-value"),
    "class_excess": (_LKC, "class-probe probability not explained by the class labels, over samples with the concept"),
    "class_excess_pvalue": (_LKC, "class excess differs from baseline, adjusted p-value"),
    "class_accuracy": (("layer", "class"), "held-out balanced accuracy of the class probe"),
    "moad": (_LK, "MOAD: mean cosine similarity, pairs sharing the concept minus mixed pairs"),
    "probability": (("layer", "sample", "concept"), "probe probability on held-out samples"),
    "concept_label": (("sample", "concept"), None),
    "sensitivity": (_LKC, "fraction of held-out samples of the class whose output grows along the concept (TCAV score)"),
    "sensitivity_baseline": (_LKC, "TCAV score of permuted-label probes"),
    "sensitivity_pvalue": (_LKC, "TCAV score differs from baseline, adjusted p-value"),
    "derivative": (_LKC, "mean derivative of the class's output along the unit concept direction"),
    "derivative_baseline": (_LKC, "mean derivative along permuted-label probe directions"),
    "derivative_pvalue": (_LKC, "mean derivative differs from baseline, adjusted p-value"),
    "output_excess": (_KC, "model class probability not explained by the class labels, over samples with the concept"),
    "output_excess_pvalue": (_KC, "output excess differs from permuted concept labels, adjusted p-value"),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """The validated inputs of :func:`analyse_concepts`.

    Attributes
    ----------
    arrays : dict of layer -> ndarray (n_samples, n_features_layer)
    Y : ndarray of bool (n_samples, n_concepts)
        Binary concept columns (:func:`concept_matrix`).
    names, attributes, values : list of str (n_concepts,)
    classes : ndarray of str (n_samples,)
    class_names : list of str (n_classes,)
        The reported classes; samples of other classes are left out.
    outputs : ndarray (n_samples, n_classes) or None
        The model's class probabilities, float64.
    grads : dict of layer -> ndarray (n_samples, n_outputs, n_features_layer), or None
    class_output : ndarray of int (n_classes,) or None
        Index of the output whose gradient belongs to each class.
    """

    arrays: dict
    Y: np.ndarray
    names: list
    attributes: list
    values: list
    classes: np.ndarray
    class_names: list
    outputs: np.ndarray | None
    grads: dict | None
    class_output: np.ndarray | None


def _validated(activations, concepts, classes, layers, class_names, n_permutations, outputs, gradients) -> _Inputs:
    """Check the arguments of :func:`analyse_concepts` once, with a clear error for each problem."""
    arrays = activation_arrays(activations, layers)
    n = len(next(iter(arrays.values())))
    classes = np.asarray(classes).astype(str)
    if classes.ndim != 1 or len(classes) != n:
        raise ValueError(
            f"got {classes.size} class labels for {n} samples of activations; give exactly one class per sample"
        )
    Y, names, attributes, values = concept_matrix(concepts, n)
    present = np.unique(classes)
    if class_names is None:
        class_names = present.tolist()
    class_names = [str(c) for c in class_names]
    empty = [c for c in class_names if c not in present]
    if empty:
        raise ValueError(f"class(es) {empty} have no examples; the classes with examples are {present.tolist()}")
    if len(set(class_names)) < 2:
        raise ValueError(f"need at least 2 distinct classes to compare concept presence, got {class_names}")
    small = [c for c in class_names if (classes == c).sum() < 2]
    if small:
        raise ValueError(f"class(es) {small} have a single example; each class needs at least 2 (train and held-out)")
    if n_permutations < 2:
        raise ValueError(f"n_permutations must be at least 2 for a baseline with a spread, got {n_permutations}")
    if outputs is not None:
        outputs = np.asarray(outputs, dtype=np.float64)
        if outputs.shape != (n, len(class_names)):
            raise ValueError(
                f"outputs must hold the model's probability of each of the {len(class_names)} classes "
                f"{class_names} for each of the {n} samples, got shape {outputs.shape}"
            )
    grads = class_output = None
    if gradients is not None:
        from .sensitivity import gradient_arrays

        grads, output_names = gradient_arrays(gradients, list(arrays), n, [v.shape[1] for v in arrays.values()])
        unmatched = [c for c in class_names if c not in output_names]
        if len(output_names) > 1 and unmatched:
            raise ValueError(
                f"gradients have outputs {output_names}: name one output per class (missing {unmatched}) "
                "or give a single output (e.g. an energy) that serves every class"
            )
        class_output = np.asarray([output_names.index(c) if len(output_names) > 1 else 0 for c in class_names])
    return _Inputs(arrays, Y, names, attributes, values, classes, class_names, outputs, grads, class_output)


def _split(inputs: _Inputs, test_fraction: float, seed: int):
    """Training and held-out samples of the reported classes (:func:`split_indices`).

    Returns
    -------
    train, test : ndarray of int
        Sorted indices into the inputs.
    test_class : ndarray of int (n_test,)
        Index into ``inputs.class_names`` of each held-out sample.
    """
    idx = np.flatnonzero(np.isin(inputs.classes, inputs.class_names))
    lookup = {c: i for i, c in enumerate(inputs.class_names)}
    class_index = np.array([lookup[c] for c in inputs.classes[idx]], dtype=np.int64)
    train, test = split_indices(class_index, len(inputs.class_names), test_fraction, seed)
    train, test = idx[train], idx[test]
    for part, where in ((train, "training"), (test, "held-out")):
        n_pos = inputs.Y[part].sum(0)
        lacking = [inputs.names[k] for k in np.flatnonzero((n_pos == 0) | (n_pos == len(part)))]
        if lacking:
            raise ValueError(
                f"concept column(s) {lacking} have a single value in the {where} split ({len(part)} samples); "
                "add samples of both values or change test_fraction"
            )
    return train, test, class_index[np.searchsorted(idx, test)]


def _fit_probes(inputs: _Inputs, train: np.ndarray, C: float, n_permutations: int, rng):
    """Concept and class probes on the training samples, and their permuted-label twins.

    Returns
    -------
    LinearProbes
        Label columns (1 + n_permutations repeats of (n_concepts + n_classes)): repeat 0 has
        the true labels, each further one the rows of the training labels permuted.
    """
    from .probes import LinearProbes  # scikit-learn: imported on first use

    # class probes ride along with the concept probes: columns K.. are class memberships
    labels_train = np.concatenate([inputs.Y, _membership(inputs.classes, inputs.class_names)], axis=1)[train]
    # permuting whole rows keeps concepts and classes of a sample together, detached from its activations
    permuted = [labels_train[rng.permutation(len(train))] for _ in range(n_permutations)]
    return LinearProbes(C=C).fit(
        {k: v[train] for k, v in inputs.arrays.items()}, np.concatenate([labels_train, *permuted], axis=1)
    )


def _score(probes, inputs: _Inputs, test: np.ndarray, test_class: np.ndarray, n_permutations: int, rng) -> dict:
    """Every statistic of the result on the held-out samples.

    Returns
    -------
    dict of name -> ndarray
        Keys and shapes of :data:`VARIABLES` (those of ``gradients`` and ``outputs`` only
        when the inputs have them).
    """
    from .probes import balanced_accuracy

    K, n_classes = inputs.Y.shape[1], len(inputs.class_names)
    X_test = {k: v[test] for k, v in inputs.arrays.items()}
    proba = probes.predict_proba(X_test)  # (L, n_test, (K + C) * (1 + R))
    L = proba.shape[0]
    proba = proba.reshape(L, len(test), 1 + n_permutations, K + n_classes).transpose(2, 0, 1, 3)  # (1 + R, L, n, K + C)
    proba, class_proba = proba[..., :K], proba[..., K:]
    Y_test, member = inputs.Y[test], _membership(inputs.classes[test], inputs.class_names)
    accuracy = balanced_accuracy(Y_test, proba > 0.5)  # (1 + R, L, K)
    presence, excess = _class_statistics(proba, Y_test, test_class, n_classes)  # (1 + R, L, K, C)
    class_excess = _concept_statistics(class_proba, member, Y_test)  # (1 + R, L, K, C)
    dataset = np.eye(n_classes)[test_class].T @ Y_test / np.bincount(test_class, minlength=n_classes)[:, None]
    dataset = dataset.T  # (K, C)
    standardised = probes.standardise(X_test).numpy()
    widths = [v.shape[1] for v in inputs.arrays.values()]

    scores = {
        **_tested(accuracy, "greater", "probe_accuracy", "accuracy_pvalue", "accuracy_baseline"),
        **_tested(presence, "two-sided", "model_presence", "presence_pvalue", "presence_baseline"),
        "dataset_presence": dataset,
        "difference": presence[0] - dataset[None],
        **_tested(excess, "two-sided", "excess", "excess_pvalue"),
        **_tested(class_excess, "two-sided", "class_excess", "class_excess_pvalue"),
        "class_accuracy": balanced_accuracy(member, class_proba[:1] > 0.5)[0],  # (L, C)
        "moad": np.stack([moad(standardised[i, :, : widths[i]], Y_test) for i in range(L)]),
        "probability": proba[0],
        "concept_label": Y_test,
    }
    if inputs.grads is not None:
        scores.update(_sensitivity(probes, inputs, test, test_class, n_permutations))
    if inputs.outputs is not None:
        scores.update(_output_excess(inputs.outputs[test], member, Y_test, n_permutations, rng))
    return scores


def _assemble(inputs: _Inputs, test: np.ndarray, test_class: np.ndarray, scores: dict, attrs: dict) -> xr.Dataset:
    """The result Dataset: ``scores`` named and laid out as :data:`VARIABLES`, coordinates, attrs, schema stamp."""
    variables = {}
    for name, (dims, long_name) in VARIABLES.items():
        if name in scores:
            variables[name] = (dims, scores[name], {"long_name": long_name} if long_name else {})
    coords = {
        "layer": list(inputs.arrays),
        "concept": inputs.names,
        "concept_attribute": ("concept", inputs.attributes),
        "concept_value": ("concept", inputs.values),
        "class": inputs.class_names,
        "sample": test,
        "sample_class": ("sample", np.asarray(inputs.class_names)[test_class]),
    }
    return stamp(xr.Dataset(variables, coords=coords, attrs=attrs), "concepts")


def analyse_concepts(
    activations,
    concepts: Mapping[str, Sequence],
    classes: Sequence,
    *,
    layers: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    test_fraction: float = 0.5,
    n_permutations: int = 20,
    C: float = 0.1,
    seed: int = 0,
    outputs=None,
    gradients: xr.Dataset | None = None,
) -> xr.Dataset:
    """Probe every (layer, concept) and compare model and dataset concept presence per class.

    Parameters
    ----------
    activations : xarray.Dataset or mapping of layer -> array (n_samples, n_features)
        From :func:`~latentatlas.concepts.activations.capture_activations`, or precomputed
        (e.g. a features Dataset: feature sets are layers, atoms are samples).
    concepts : mapping of name -> array-like (n_samples,)
        Concept labels; see :func:`concept_matrix` for how they become binary columns.
    classes : array-like (n_samples,)
        Class of each sample.
    layers : sequence of str, optional
        Subset and order of the layers; default all.
    class_names : sequence of str, optional
        Classes to report, in order; every one needs examples. Default: the sorted distinct classes.
    test_fraction : float
        Fraction of each class held out for evaluation.
    n_permutations : int
        Repeats of the permuted-label baseline (at least 2).
    C : float
        Inverse regularisation of the probes (BAGEL: 0.1).
    seed : int
        Seeds the split and the permutations.
    outputs : array-like (n_samples, n_classes), optional
        The model's own class probabilities, columns in the order of ``class_names``; adds
        ``output_excess`` and ``output_excess_pvalue`` (concept, class): class excess
        measured on the model's outputs instead of on class probes.
    gradients : xarray.Dataset, optional
        From :func:`~latentatlas.concepts.sensitivity.capture_gradients` on the same inputs
        and layers; adds the concept sensitivity (module docstring). Class c uses the output
        named c, or the only output (e.g. a potential's energy) for every class.

    Returns
    -------
    xarray.Dataset
        Dims ``layer``, ``concept``, ``class`` and ``sample`` (held-out samples, coordinate =
        index into the inputs). Variables: ``probe_accuracy``, ``accuracy_baseline``,
        ``accuracy_pvalue`` (layer, concept); ``model_presence``, ``presence_baseline``,
        ``presence_pvalue``, ``difference``, ``excess``, ``excess_pvalue`` (layer, concept,
        class); ``class_excess``, ``class_excess_pvalue`` (layer, concept, class);
        ``class_accuracy`` (layer, class); ``dataset_presence`` (concept, class); ``moad`` (layer, concept);
        ``probability`` (layer, sample, concept) and ``concept_label`` (sample, concept) for
        the held-out samples. Concept coords ``concept_attribute``/``concept_value``, sample
        coord ``sample_class``. With ``gradients``: ``sensitivity``, ``sensitivity_baseline``,
        ``sensitivity_pvalue``, ``derivative``, ``derivative_baseline``, ``derivative_pvalue``
        (layer, concept, class). With ``outputs``: ``output_excess``, ``output_excess_pvalue``.
        :data:`VARIABLES` lists them all with their long names.
    """
    inputs = _validated(activations, concepts, classes, layers, class_names, n_permutations, outputs, gradients)
    train, test, test_class = _split(inputs, test_fraction, seed)
    rng = np.random.default_rng(seed)
    probes = _fit_probes(inputs, train, C, n_permutations, rng)
    scores = _score(probes, inputs, test, test_class, n_permutations, rng)
    attrs = {
        "method": "BAGEL-style class-balanced logistic probes (arXiv:2507.05810)",
        "C": float(C),
        "test_fraction": float(test_fraction),
        "n_permutations": int(n_permutations),
        "seed": int(seed),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "correction": "Benjamini-Hochberg over all tests of each statistic",
        "latentatlas_version": __version__,
    }
    return _assemble(inputs, test, test_class, scores, attrs)


def examples(result: xr.Dataset, concept: str, cls: str, *, layer: str | None = None, n: int = 8) -> np.ndarray:
    """Indices (into the analysed samples) of held-out examples of ``cls``, most ``concept``-like first.

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`analyse_concepts`.
    concept, cls : str
        A concept column and a class of ``result``.
    layer : str, optional
        Layer whose probe ranks the examples; default the last layer.
    n : int
        At most this many indices.

    Returns
    -------
    ndarray of int (<= n,)
    """
    for value, dim in ((concept, "concept"), (cls, "class")):
        if value not in result[dim].values:
            raise KeyError(f"unknown {dim} {value!r}; valid: {result[dim].values.tolist()}")
    layer = result["layer"].values[-1] if layer is None else layer
    if layer not in result["layer"].values:
        raise KeyError(f"unknown layer {layer!r}; valid: {result['layer'].values.tolist()}")
    in_class = result["sample_class"].values == cls
    proba = result["probability"].sel(layer=layer, concept=concept).values[in_class]
    order = np.argsort(-proba, kind="stable")[:n]
    return result["sample"].values[in_class][order]
