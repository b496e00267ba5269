"""Panel viewers of comparison and concept-analysis results: served (``latentatlas serve``), in notebooks, or exported.

- :mod:`~latentatlas.viz.fre`: the FRE app (``/atlas``);
- :mod:`~latentatlas.viz.concepts`: the concept app (``/concepts``);
- shared by both: the 3D structure viewer (:mod:`~latentatlas.viz.structure`), the pointwise-error
  colour scale (:mod:`~latentatlas.viz.colour`, the drill-down's and the 3D viewer's), static export
  (:mod:`~latentatlas.viz.export`), notebook display (:mod:`~latentatlas.viz.show`), serving
  and uploads (:mod:`~latentatlas.viz.serving`, :mod:`~latentatlas.viz.upload`).

Panel and Bokeh are imported here and only here; ``import latentatlas`` stays light. The views
draw Bokeh models directly: the same view through HoloViews costs about twice the CPU per
session (``benchmarks/holoviews_views.py``), and first-view latency is what a shared server lacks.
"""

from .concepts import ConceptAtlas, ConceptExamples, ConceptGraph, ConceptHeatmap, ConceptProfile
from .fre import Atlas, DrillDown, FREMatrix
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
