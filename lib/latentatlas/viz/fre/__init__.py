"""The FRE app: matrix of a comparison, drill-down into one pair, model map, and their data access."""

from .app import Atlas
from .drilldown import DrillDown
from .matrix import FREMatrix

__all__ = ["Atlas", "DrillDown", "FREMatrix"]
