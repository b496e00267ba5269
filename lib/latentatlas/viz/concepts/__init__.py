"""The concept app: one state (:mod:`.state`), knowledge graph, per-node profile, layer heatmap, examples,
the graph's drawing (:mod:`.layout`) and the data access behind them (:mod:`.data`)."""

from .app import ConceptAtlas
from .examples import ConceptExamples
from .state import ConceptState
from .views import ConceptGraph, ConceptHeatmap, ConceptProfile

__all__ = ["ConceptAtlas", "ConceptExamples", "ConceptGraph", "ConceptHeatmap", "ConceptProfile", "ConceptState"]
