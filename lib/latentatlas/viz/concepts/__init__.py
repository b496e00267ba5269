"""The concept app: knowledge graph, per-node profile, layer heatmap, examples, and their data access."""

from .app import ConceptAtlas
from .examples import ConceptExamples
from .views import ConceptGraph, ConceptHeatmap, ConceptProfile

__all__ = ["ConceptAtlas", "ConceptExamples", "ConceptGraph", "ConceptHeatmap", "ConceptProfile"]
