"""The concept knowledge graph, derived from a concept-analysis Dataset.

Nodes are the classes, the concepts and the layers of a result of
:func:`~latentatlas.concepts.presence.analyse_concepts`; class-concept edges carry the
model and dataset presence at one layer, layer-concept edges the probe accuracy. Nothing
is stored apart from the Dataset: the graph is rebuilt from it whenever needed.

Spurious-correlation rule
-------------------------
Concept k is a *suspected spurious correlate* of class c at layer l when the layer encodes
k, links it to c, and the model uses k as evidence for c (:func:`rule_conditions` gives
each condition; the app shows them in an edge's hover):

1. *encoded*: held-out probe balanced accuracy >= ``min_accuracy``;
2. *layer link*, either of
   a. *presence excess*: the layer sees k in class c more than the concept labels explain,
      ``excess`` >= ``min_excess``, significant against permuted-label probes (adjusted
      p < ``alpha``), with the model presence above the dataset's (``difference`` > 0);
   b. *output sensitive* (with ``gradients``): class c's output grows along the probe's
      direction more than along permuted-label probe directions: mean ``derivative`` above
      its baseline, adjusted p < ``alpha``;
3. *model uses it*: with the model's own class probabilities (``outputs``), images with k
   get more probability of c than their classes explain: ``output_excess`` >=
   ``min_output_excess``, adjusted p < ``alpha`` against permuted concept labels; without
   them, the class probes' ``class_excess`` >= ``min_excess`` (adjusted p < ``alpha``).

Excesses, not the raw difference, because the raw difference of a class-balanced probe moves
towards 0.5 - P(k | c) in every class as the probe's accuracy drops, while an excess is zero
for a probe whose errors do not depend on the class. The model's outputs come before class
probes because a class probe re-fitted on a layer can separate classes the model itself
confuses: it misses the very shortcut the model takes (issue 14: a texture shortcut with
class excess 0.08 went unflagged). The sensitivity rescues fully biased models: where cue
and class were identical in training the probes read the cue perfectly, so no presence
excess is left, but the class output still moves along the cue's direction. The TCAV score
(fraction of positive derivatives) is reported but not used: after the last convolution only
linear maps follow, so every sample has the same derivative and random directions score 0 or 1
too. The permuted-label p-value of the accuracy is reported but not used either: in
low-dimensional, clustered layers (class logits) permuted-label probes still split the
clusters, so that test has little power.

Calibration. ``benchmarks/concept_power.py`` plants shortcuts of five kinds (background colour,
shape texture, a watermark patch, size, and a cue on half of a class only) at bias 0.5, 0.8
and 1.0 and trains the small CNN on each, with unbiased controls; a grid search on seeds 0-1
of the colour, texture and patch kinds keeps the rules whose false-positive rate over
(concept, class) pairs is at most 1 % in the controls and in the biased runs' other concepts,
and takes the loosest of those with the highest power: :data:`CALIBRATED`. Without model
outputs the earlier shapes-demo thresholds apply (:data:`PROBES_ONLY`; their power is the
benchmark's "before" table). The measured power is in the README (section "Concept knowledge
graphs").
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["spurious_correlations", "rule_conditions", "why", "knowledge_graph", "knowledge_graphs"]

#: thresholds of the calibrated rule (model outputs available), chosen by ``benchmarks/concept_power.py``
CALIBRATED = {"min_accuracy": 0.6, "min_excess": 0.0, "min_output_excess": 0.01, "alpha": 0.01}
#: thresholds of the rule without model outputs (class probes as evidence): the shapes-demo rule
PROBES_ONLY = {"min_accuracy": 0.7, "min_excess": 0.1, "min_output_excess": 0.01, "alpha": 0.05}
RULE = (
    "probe accuracy >= min_accuracy; layer link: presence excess (>= min_excess, significant, model presence above "
    "the dataset's) or output sensitivity (significant); model uses it: output excess >= min_output_excess (class "
    "excess >= min_excess without model outputs), significant"
)

def _encoded(result: xr.Dataset, min_accuracy: float) -> xr.DataArray:
    return result["probe_accuracy"] >= min_accuracy


def rule_conditions(
    result: xr.Dataset,
    *,
    min_accuracy: float | None = None,
    min_excess: float | None = None,
    min_output_excess: float | None = None,
    alpha: float | None = None,
    use_outputs: bool | None = None,
    use_sensitivity: bool | None = None,
) -> xr.Dataset:
    """Each condition of the spurious-correlation rule, bool (layer, concept, class).

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`~latentatlas.concepts.presence.analyse_concepts`.
    min_accuracy, min_excess, min_output_excess, alpha : float
        Thresholds of the rule (module docstring).
    use_outputs : bool, optional
        Take "the model uses the concept for the class" from the model's own outputs
        (``output_excess``) rather than from class probes (``class_excess``). Default: when
        the result has them.
    use_sensitivity : bool, optional
        Let a significant sensitivity of the class's output along the concept (``derivative``)
        show the layer's link as well as its presence excess. Default: when the result has it.

    Returns
    -------
    xarray.Dataset
        ``encoded``, ``excess`` (presence excess large, significant, model presence above the
        dataset's), ``sensitive`` (where used), ``layer_link`` (excess or sensitive), ``used``
        (``output`` or ``class_excess``) and ``flagged`` (encoded, layer link and used).
    """
    _check_result(result)
    use_outputs = _use(result, use_outputs, "output_excess", "outputs= (the model's class probabilities)")
    use_sensitivity = _use(result, use_sensitivity, "derivative", "gradients= (capture_gradients)")
    given = dict(min_accuracy=min_accuracy, min_excess=min_excess, min_output_excess=min_output_excess, alpha=alpha)
    t = thresholds(use_outputs, **given)
    min_accuracy, min_excess, min_output_excess, alpha = (t[k] for k in given)
    excess = (result["excess"] >= min_excess) & (result["excess_pvalue"] < alpha) & (result["difference"] > 0)
    out = xr.Dataset({"encoded": _encoded(result, min_accuracy).broadcast_like(excess), "excess": excess})
    out["layer_link"] = excess
    if use_sensitivity:
        out["sensitive"] = (result["derivative"] > result["derivative_baseline"]) & (result["derivative_pvalue"] < alpha)
        out["layer_link"] = excess | out["sensitive"]
    if use_outputs:
        used = (result["output_excess"] >= min_output_excess) & (result["output_excess_pvalue"] < alpha)
    else:
        used = (result["class_excess"] >= min_excess) & (result["class_excess_pvalue"] < alpha)
    out["used"] = used.broadcast_like(excess)
    out["flagged"] = out["encoded"] & out["layer_link"] & out["used"]
    return out.transpose("layer", "concept", "class").assign_attrs(
        use_outputs=int(use_outputs), use_sensitivity=int(use_sensitivity), **t
    )


def thresholds(use_outputs: bool, **given) -> dict:
    """The rule's thresholds: ``given`` ones (not None), else :data:`CALIBRATED` with model
    outputs or :data:`PROBES_ONLY` without."""
    defaults = CALIBRATED if use_outputs else PROBES_ONLY
    return {k: float(given[k]) if given.get(k) is not None else v for k, v in defaults.items()}


def _use(result: xr.Dataset, wanted: bool | None, variable: str, how: str) -> bool:
    have = variable in result.data_vars
    if wanted and not have:
        raise ValueError(f"the result has no {variable!r}: pass {how} to analyse_concepts")
    return have if wanted is None else bool(wanted)


def spurious_correlations(result: xr.Dataset, **rule) -> xr.DataArray:
    """Where the rule of this module flags a suspected spurious correlation.

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`~latentatlas.concepts.presence.analyse_concepts`.
    **rule
        ``min_accuracy``, ``min_excess``, ``min_output_excess``, ``alpha``, ``use_outputs``,
        ``use_sensitivity``: the rule's thresholds and evidence (module docstring;
        :func:`rule_conditions`); default the calibrated ones.

    Returns
    -------
    xarray.DataArray of bool (layer, concept, class)
    """
    conditions = rule_conditions(result, **rule)
    flagged = conditions["flagged"]
    flagged.attrs = {"rule": RULE, **conditions.attrs}
    return flagged.rename("spurious")


#: how :func:`why` names each condition of :func:`rule_conditions`
CONDITION_NAMES = {
    "encoded": "encoded",
    "excess": "presence excess",
    "sensitive": "output sensitive",
    "used": "model uses it",
}


def why(conditions: xr.Dataset) -> str:
    """Which conditions of the rule hold for one (layer, concept, class), as text.

    ``conditions`` is :func:`rule_conditions` at one point, e.g.
    ``"flagged: encoded yes, presence excess yes, output sensitive no, model uses it yes"``;
    the layer's link needs presence excess *or* output sensitivity.
    """
    return _why_table(conditions)


def _why_table(conditions: xr.Dataset):
    """:func:`why` for every point of ``conditions`` at once: nested lists of str in its dim order."""
    parts = [
        np.where(conditions[v].values, f"{label} yes", f"{label} no")
        for v, label in CONDITION_NAMES.items()
        if v in conditions
    ]
    head = np.where(conditions["flagged"].values, "flagged: ", "not flagged: ")
    text = head.astype(object)
    for i, part in enumerate(parts):
        text = text + ("" if i == 0 else ", ") + part.astype(object)
    return np.asarray(text, dtype=object).tolist()


def _check_result(result) -> None:
    needed = {
        "probe_accuracy", "accuracy_pvalue", "model_presence", "dataset_presence", "difference",
        "excess", "excess_pvalue", "class_excess", "class_excess_pvalue", "moad",
    }  # fmt: skip
    if not isinstance(result, xr.Dataset) or not needed <= set(result.data_vars):
        have = sorted(result.data_vars) if isinstance(result, xr.Dataset) else type(result).__name__
        raise ValueError(
            f"expected a concept-analysis Dataset with {sorted(needed)}, got {have}; "
            "compute it with latentatlas.concepts.analyse_concepts"
        )


def knowledge_graph(
    result: xr.Dataset,
    *,
    layer: str | None = None,
    agree_tolerance: float = 0.1,
    **rule,
):
    """A networkx graph of classes, concepts and layers (pure data: how to draw it is :mod:`latentatlas.viz.concepts`).

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`~latentatlas.concepts.presence.analyse_concepts`.
    layer : str, optional
        Layer whose presences label the class-concept edges; default the last layer.
    **rule
        The spurious-correlation rule's thresholds and evidence (module docstring,
        :func:`rule_conditions`); its ``min_accuracy`` and ``alpha`` also decide which
        layer-concept edges are ``significant``.
    agree_tolerance : float
        ``|difference|`` up to which model and dataset presence agree.

    Returns
    -------
    networkx.Graph
        Node ids ``"class:<c>"``, ``"concept:<k>"``, ``"layer:<l>"`` (classes, concepts, then layers,
        each in the result's order); node attributes ``kind``, ``label`` and

        - class: ``n_examples`` (held-out samples);
        - concept: ``attribute``, ``value``, ``accuracy`` (list over layers), ``best_layer``,
          ``first_layer`` (first layer that encodes it, "" if none);
        - layer: ``index``, ``mean_accuracy``, ``moad`` (mean over concepts).

        Class-concept edges (``kind="presence"``): ``weight`` (model presence at ``layer``),
        ``dataset_presence``, ``difference``, ``excess``, ``class_excess``, ``agreement`` (agrees / over / under,
        or unreliable where the probe does not encode the concept at ``layer``),
        ``spurious`` (flagged at any layer), ``spurious_layers`` (list of the layers that flag it),
        ``why`` (which conditions of the rule hold at ``layer``, e.g. ``"encoded yes, excess no, ..."``)
        and, where the result has them, ``sensitivity`` (TCAV score), ``derivative`` and
        ``output_excess``.
        Layer-concept edges (``kind="encodes"``): ``weight`` (probe accuracy), ``moad``,
        ``pvalue`` (vs permuted labels), ``significant`` (``pvalue < alpha``), ``encoded``
        (accuracy >= ``min_accuracy``). Graph attributes: ``layer``, ``layers`` and the rule's
        thresholds.
    """
    _check_result(result)
    layers = [str(v) for v in result["layer"].values]
    layer = layers[-1] if layer is None else layer
    if layer not in layers:
        raise KeyError(f"unknown layer {layer!r}; valid layers: {layers}")
    return _graph(_GraphInputs(result, rule_conditions(result, **rule)), layer, agree_tolerance)


def knowledge_graphs(result: xr.Dataset, *, agree_tolerance: float = 0.1, **rule) -> dict:
    """:func:`knowledge_graph` at every layer, the rule evaluated once: dict of layer -> networkx.Graph."""
    _check_result(result)
    inputs = _GraphInputs(result, rule_conditions(result, **rule))
    return {layer: _graph(inputs, layer, agree_tolerance) for layer in inputs.layers}


class _GraphInputs:
    """What every layer's graph reads, as plain arrays: one xarray lookup per variable, not per edge."""

    def __init__(self, result: xr.Dataset, conditions: xr.Dataset):
        self.result, self.conditions = result, conditions
        self.rule = {k: conditions.attrs[k] for k in ("min_accuracy", "min_excess", "min_output_excess", "alpha")}
        self.layers = [str(v) for v in result["layer"].values]
        self.concepts = [str(v) for v in result["concept"].values]
        self.classes = [str(v) for v in result["class"].values]
        self.encoded = _encoded(result, self.rule["min_accuracy"]).transpose("layer", "concept").values
        self.accuracy = result["probe_accuracy"].transpose("layer", "concept").values
        self.moad = result["moad"].transpose("layer", "concept").values
        self.pvalue = result["accuracy_pvalue"].transpose("layer", "concept").values
        self.flags = conditions["flagged"].transpose("concept", "class", "layer").values
        names = ("model_presence", "difference", "excess", "class_excess", "sensitivity", "derivative", "output_excess")
        # (concept, class) arrays, with a leading layer axis where the variable has one (output_excess has not)
        self.per_layer = {v: result[v].transpose(..., "concept", "class").values for v in names if v in result}
        self.has_layer = {v: "layer" in result[v].dims for v in self.per_layer}
        self.dataset_presence = result["dataset_presence"].transpose("concept", "class").values
        self.extra = [v for v in ("sensitivity", "derivative", "output_excess") if v in self.per_layer]


def _graph(inputs: _GraphInputs, layer: str, agree_tolerance: float):
    """The knowledge graph of :func:`knowledge_graph` at ``layer`` (a valid layer name)."""
    import networkx as nx

    result, layers, concepts, classes = inputs.result, inputs.layers, inputs.concepts, inputs.classes
    accuracy, encoded, alpha = inputs.accuracy, inputs.encoded, inputs.rule["alpha"]
    G = nx.Graph(
        layer=layer,
        layers=layers,
        **inputs.rule,
        agree_tolerance=agree_tolerance,
    )
    sample_class = result["sample_class"].values if "sample_class" in result.coords else np.array([])
    for c in classes:
        G.add_node(f"class:{c}", kind="class", label=c, n_examples=int((sample_class == c).sum()))
    for i, k in enumerate(concepts):
        enc = encoded[:, i]
        G.add_node(
            f"concept:{k}",
            kind="concept",
            label=k,
            attribute=str(result["concept_attribute"].values[i]) if "concept_attribute" in result.coords else k,
            value=str(result["concept_value"].values[i]) if "concept_value" in result.coords else "true",
            accuracy=[float(a) for a in accuracy[:, i]],
            best_layer=layers[int(np.nanargmax(accuracy[:, i]))],
            first_layer=layers[int(np.argmax(enc))] if enc.any() else "",
        )
    moad_mean = result["moad"].mean("concept", skipna=True).values
    for j, name in enumerate(layers):
        G.add_node(
            f"layer:{name}",
            kind="layer",
            label=name,
            index=j,
            mean_accuracy=float(accuracy[j].mean()),
            moad=float(moad_mean[j]),
        )
        for i, k in enumerate(concepts):
            G.add_edge(
                f"layer:{name}",
                f"concept:{k}",
                kind="encodes",
                weight=float(accuracy[j, i]),
                moad=float(inputs.moad[j, i]),
                pvalue=float(inputs.pvalue[j, i]),
                significant=bool(inputs.pvalue[j, i] < alpha),
                encoded=bool(encoded[j, i]),
            )

    at = layers.index(layer)
    values = {v: a[at] if inputs.has_layer[v] else a for v, a in inputs.per_layer.items()}
    reasons = _why_table(inputs.conditions.isel(layer=at).transpose("concept", "class"))
    for i, k in enumerate(concepts):
        reliable = bool(encoded[at, i])
        for j, c in enumerate(classes):
            diff = float(values["difference"][i, j])
            if not reliable:
                agreement = "unreliable"
            elif abs(diff) <= agree_tolerance:
                agreement = "agrees"
            else:
                agreement = "over" if diff > 0 else "under"
            spurious_layers = [name for name, f in zip(layers, inputs.flags[i, j]) if f]
            G.add_edge(
                f"class:{c}",
                f"concept:{k}",
                kind="presence",
                weight=float(values["model_presence"][i, j]),
                dataset_presence=float(inputs.dataset_presence[i, j]),
                difference=diff,
                excess=float(values["excess"][i, j]),
                class_excess=float(values["class_excess"][i, j]),
                agreement=agreement,
                spurious=bool(spurious_layers),
                spurious_layers=spurious_layers,
                why=reasons[i][j],
                **{v: float(values[v][i, j]) for v in inputs.extra},
            )
    return G
