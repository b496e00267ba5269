"""The concept knowledge graph, derived from a concept-analysis Dataset.

Nodes are the classes, the concepts and the layers of a result of
:func:`~latentatlas.concepts.presence.analyse_concepts`; class-concept edges carry the
model and dataset presence at one layer, layer-concept edges the probe accuracy. Nothing
is stored apart from the Dataset: the graph is rebuilt from it whenever needed.

Spurious-correlation rule
-------------------------
Concept k is a *suspected spurious correlate* of class c at layer l when all hold:

1. the layer encodes the concept: held-out probe balanced accuracy >= ``min_accuracy``;
2. the layer sees k in class c more than the labels explain: ``excess`` >= ``min_excess``
   and different from the permuted-label baseline (adjusted p < ``alpha``);
3. and, the other way round, it sees class c in samples with k more than their classes
   explain: ``class_excess`` >= ``min_excess`` (adjusted p < ``alpha``);
4. the model presence exceeds the dataset presence (``difference`` > 0).

Conditions 2 and 3 use excesses, not the raw difference, because the raw difference of a
class-balanced probe moves towards 0.5 - P(k | c) in every class as the probe's accuracy
drops, while an excess is zero for a probe whose errors do not depend on the class.
Requiring both directions separates a two-way link between concept and class from the
one-sided quirks every model has (e.g. small shapes being harder to recognise).
The permuted-label p-value of the accuracy is reported but not used: in low-dimensional,
clustered layers (class logits) probes fitted to permuted labels still split the
clusters, so their accuracy spreads widely and that test has little power.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["spurious_correlations", "knowledge_graph", "AGREEMENT_COLOURS"]

AGREEMENT_COLOURS = {
    "agrees": "#2ca02c",
    "over": "#d62728",
    "under": "#1f77b4",
    "unreliable": "#c7c7c7",
}


def _encoded(result: xr.Dataset, min_accuracy: float) -> xr.DataArray:
    return result["probe_accuracy"] >= min_accuracy


def spurious_correlations(
    result: xr.Dataset, *, min_accuracy: float = 0.7, min_excess: float = 0.1, alpha: float = 0.05
) -> xr.DataArray:
    """Where the rule of this module flags a suspected spurious correlation.

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`~latentatlas.concepts.presence.analyse_concepts`.
    min_accuracy, min_excess, alpha : float
        Thresholds of the rule (module docstring).

    Returns
    -------
    xarray.DataArray of bool (layer, concept, class)
    """
    _check_result(result)
    flagged = (
        _encoded(result, min_accuracy)
        & (result["excess"] >= min_excess)
        & (result["excess_pvalue"] < alpha)
        & (result["class_excess"] >= min_excess)
        & (result["class_excess_pvalue"] < alpha)
        & (result["difference"] > 0)
    )
    flagged.attrs = {
        "rule": "probe accuracy >= min_accuracy; excess and class_excess >= min_excess, both significant; difference > 0",
        "min_accuracy": min_accuracy,
        "min_excess": min_excess,
        "alpha": alpha,
    }
    return flagged.rename("spurious").transpose("layer", "concept", "class")


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
    min_accuracy: float = 0.7,
    min_excess: float = 0.1,
    alpha: float = 0.05,
    agree_tolerance: float = 0.1,
):
    """A networkx graph of classes, concepts and layers, ready to draw.

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`~latentatlas.concepts.presence.analyse_concepts`.
    layer : str, optional
        Layer whose presences label the class-concept edges; default the last layer.
    min_accuracy, min_excess, alpha : float
        Thresholds of the spurious-correlation rule (module docstring); ``min_accuracy`` and
        ``alpha`` also decide which layer-concept edges are ``significant``.
    agree_tolerance : float
        ``|difference|`` up to which model and dataset presence agree.

    Returns
    -------
    networkx.Graph
        Node ids ``"class:<c>"``, ``"concept:<k>"``, ``"layer:<l>"``; node attributes ``kind``,
        ``label``, ``x``, ``y`` (a three-column layout: layers, concepts, classes) and

        - class: ``n_examples`` (held-out samples);
        - concept: ``attribute``, ``value``, ``accuracy`` (list over layers), ``best_layer``,
          ``first_layer`` (first layer that encodes it, "" if none);
        - layer: ``index``, ``mean_accuracy``, ``moad`` (mean over concepts).

        Class-concept edges (``kind="presence"``): ``weight`` (model presence at ``layer``),
        ``dataset_presence``, ``difference``, ``excess``, ``class_excess``, ``agreement`` (agrees / over / under,
        or unreliable where the probe does not encode the concept at ``layer``), ``color``,
        ``spurious`` (flagged at any layer) and ``spurious_layers`` (list of the layers that flag it).
        Layer-concept edges (``kind="encodes"``): ``weight`` (probe accuracy), ``moad``,
        ``pvalue`` (vs permuted labels), ``significant`` (``pvalue < alpha``), ``encoded``
        (accuracy >= ``min_accuracy``). Graph attributes: ``layer``, ``layers`` and the rule's
        thresholds.
    """
    import networkx as nx

    _check_result(result)
    layers = [str(v) for v in result["layer"].values]
    layer = layers[-1] if layer is None else layer
    if layer not in layers:
        raise KeyError(f"unknown layer {layer!r}; valid layers: {layers}")
    concepts = [str(v) for v in result["concept"].values]
    classes = [str(v) for v in result["class"].values]
    flagged = spurious_correlations(result, min_accuracy=min_accuracy, min_excess=min_excess, alpha=alpha)
    encoded = _encoded(result, min_accuracy).transpose("layer", "concept")
    accuracy = result["probe_accuracy"].transpose("layer", "concept").values

    G = nx.Graph(
        layer=layer,
        layers=layers,
        min_accuracy=min_accuracy,
        min_excess=min_excess,
        alpha=alpha,
        agree_tolerance=agree_tolerance,
    )

    def column(items):
        return np.linspace(1.0, 0.0, len(items)) if len(items) > 1 else np.array([0.5])

    sample_class = result["sample_class"].values if "sample_class" in result.coords else np.array([])
    for y, c in zip(column(classes), classes):
        G.add_node(f"class:{c}", kind="class", label=c, x=2.0, y=float(y), n_examples=int((sample_class == c).sum()))
    for i, (y, k) in enumerate(zip(column(concepts), concepts)):
        enc = encoded.values[:, i]
        G.add_node(
            f"concept:{k}",
            kind="concept",
            label=k,
            x=1.0,
            y=float(y),
            attribute=str(result["concept_attribute"].values[i]) if "concept_attribute" in result.coords else k,
            value=str(result["concept_value"].values[i]) if "concept_value" in result.coords else "true",
            accuracy=[float(a) for a in accuracy[:, i]],
            best_layer=layers[int(np.nanargmax(accuracy[:, i]))],
            first_layer=layers[int(np.argmax(enc))] if enc.any() else "",
        )
    moad_mean = result["moad"].mean("concept", skipna=True)
    for j, (y, name) in enumerate(zip(column(layers), layers)):
        G.add_node(
            f"layer:{name}",
            kind="layer",
            label=name,
            x=0.0,
            y=float(y),
            index=j,
            mean_accuracy=float(accuracy[j].mean()),
            moad=float(moad_mean.sel(layer=name)),
        )
        for i, k in enumerate(concepts):
            G.add_edge(
                f"layer:{name}",
                f"concept:{k}",
                kind="encodes",
                weight=float(accuracy[j, i]),
                moad=float(result["moad"].sel(layer=name, concept=k)),
                pvalue=float(result["accuracy_pvalue"].sel(layer=name, concept=k)),
                significant=bool(result["accuracy_pvalue"].sel(layer=name, concept=k) < alpha),
                encoded=bool(encoded.values[j, i]),
            )

    at = result.sel(layer=layer)
    for k in concepts:
        reliable = bool(encoded.sel(layer=layer, concept=k))
        for c in classes:
            sel = {"concept": k, "class": c}
            diff = float(at["difference"].sel(sel))
            if not reliable:
                agreement = "unreliable"
            elif abs(diff) <= agree_tolerance:
                agreement = "agrees"
            else:
                agreement = "over" if diff > 0 else "under"
            spurious_layers = [name for name, f in zip(layers, flagged.sel(sel).values) if f]
            G.add_edge(
                f"class:{c}",
                f"concept:{k}",
                kind="presence",
                weight=float(at["model_presence"].sel(sel)),
                dataset_presence=float(result["dataset_presence"].sel(sel)),
                difference=diff,
                excess=float(at["excess"].sel(sel)),
                class_excess=float(at["class_excess"].sel(sel)),
                agreement=agreement,
                color=AGREEMENT_COLOURS[agreement],
                spurious=bool(spurious_layers),
                spurious_layers=spurious_layers,
            )
    return G
