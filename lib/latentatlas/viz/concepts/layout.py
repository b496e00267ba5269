"""How the knowledge graph is drawn: node positions, colours, sizes and edge widths.

:func:`latentatlas.concepts.knowledge_graph` returns pure graph data; everything visual about it
lives here, so the analysis never depends on a picture and the picture can change alone.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "AGREEMENT_COLOURS",
    "KIND_COLOURS",
    "LABELS",
    "LINE_COLOURS",
    "NODE_LEGEND",
    "SPURIOUS_COLOUR",
    "WIDTHS",
    "concept_look",
    "edge_widths",
    "positions",
]

#: colour of a class-concept edge by its ``agreement`` (model vs dataset presence)
AGREEMENT_COLOURS = {
    "agrees": "#2ca02c",
    "over": "#d62728",
    "under": "#1f77b4",
    "unreliable": "#c7c7c7",
}
#: colour of the dashed overlay of suspected spurious edges
SPURIOUS_COLOUR = AGREEMENT_COLOURS["over"]
#: colours of the node kinds in the graph and of class lines in the profiles
KIND_COLOURS = {"layer": "#555555", "concept": "#6a3d9a", "class": "#e6550d"}
#: the node legend's entry of each node kind
NODE_LEGEND = {
    "layer": "layer (large: the one shown)",
    "concept": "concept (size, opacity: probe accuracy)",
    "class": "class",
}
LINE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
#: thinnest and thickest class-concept edge, in pixels
WIDTHS = (1.0, 9.0)
#: x of each column of the graph: layers, concepts, classes
COLUMNS = {"layer": 0.0, "concept": 1.0, "class": 2.0}
#: where a node's label sits: offset (x, y) from the node and text alignment, per node kind
LABELS = {"layer": (-0.06, 0.0, "right"), "concept": (0.0, 0.025, "center"), "class": (0.06, 0.0, "left")}


def positions(G) -> dict[str, tuple[float, float]]:
    """A three-column layout of a knowledge graph: layers, concepts, classes, each top to bottom in node order.

    Returns
    -------
    dict of node id -> (x, y)
        x is 0 (layers), 1 (concepts) or 2 (classes); y runs from 1 (first) to 0 (last), 0.5 for a lone node.
    """
    out = {}
    for kind, x in COLUMNS.items():
        ids = [n for n, d in G.nodes(data=True) if d["kind"] == kind]
        ys = np.linspace(1.0, 0.0, len(ids)) if len(ids) > 1 else np.array([0.5])
        out.update({n: (x, float(y)) for n, y in zip(ids, ys)})
    return out


def edge_widths(presence: np.ndarray, low: float, high: float) -> np.ndarray:
    """Widths in pixels of class-concept edges: model presence scaled linearly from ``low`` to ``high`` onto :data:`WIDTHS`.

    The presence of a class-balanced probe stays within a narrow band (0.23-0.64 in the shapes
    demo), so widths proportional to it all look alike; scaled over the range actually taken
    (over all layers, so one width means one presence at every layer) the strongest and
    weakest links differ eightfold. All edges stay drawn: thresholding would hide the links
    where model and data agree, which is half of what the graph compares.
    """
    thin, thick = WIDTHS
    span = high - low
    scaled = (np.asarray(presence, dtype=float) - low) / span if span > 0 else np.full(np.shape(presence), 0.5)
    return thin + (thick - thin) * np.clip(scaled, 0.0, 1.0)


def concept_look(accuracy: float) -> tuple[float, float]:
    """Marker size (pixels) and opacity of a concept node whose probe has balanced ``accuracy`` at the layer shown.

    Chance (0.5) and below: small and faint; a perfect probe: large and opaque.
    """
    strength = float(np.clip(2 * accuracy - 1, 0, 1))
    return 8 + 16 * strength, 0.35 + 0.65 * strength
