"""Panel viewers of comparison and concept-analysis results: served (``latentatlas serve``), in notebooks, or exported.

Panel, HoloViews and Bokeh are imported here and only here; ``import latentatlas`` stays light.
"""

from .atlas import Atlas
from .concept_atlas import ConceptAtlas
from .concept_examples import ConceptExamples
from .concepts import ConceptGraph, ConceptHeatmap, ConceptProfile
from .drilldown import DrillDown
from .fre_matrix import FREMatrix
from .structure import StructureViewer

__all__ = [
    "Atlas",
    "ConceptAtlas",
    "ConceptExamples",
    "ConceptGraph",
    "ConceptHeatmap",
    "ConceptProfile",
    "DrillDown",
    "FREMatrix",
    "StructureViewer",
]
