"""Panel viewers of comparison results: served (``latentatlas serve``), in notebooks, or exported.

Panel, Bokeh and Plotly are imported here and only here; ``import latentatlas`` stays light.
"""

from .atlas import Atlas
from .drilldown import DrillDown
from .fre_matrix import FREMatrix
from .structure import StructureViewer

__all__ = ["Atlas", "DrillDown", "FREMatrix", "StructureViewer"]
