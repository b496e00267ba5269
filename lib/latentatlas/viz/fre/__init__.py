"""The FRE app: matrix of a comparison, drill-down into one pair, model map, and their data access.

- :mod:`.state`: :class:`~.state.FREState`, the one ``param`` object every view depends on;
- :mod:`.links`: what the browser does without Python (a click on a cell drives the
  drill-down), declared once and run by Python and by generated JavaScript;
- :mod:`.matrix`, :mod:`.drilldown`, :mod:`.model_map`: the views; :mod:`.help`: the words on
  them (what each plot is, units, better/worse ends);
- :mod:`.app`: :class:`~.app.Atlas`, the views laid out (plain, or in a template for serving);
- :mod:`.data`: reading a comparison for display (no UI imports).
"""

from .app import Atlas
from .drilldown import DrillDown
from .matrix import FREMatrix
from .state import FREState

__all__ = ["Atlas", "DrillDown", "FREMatrix", "FREState"]
