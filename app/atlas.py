"""The latentatlas dashboard on the built-in demo comparison: ``panel serve app/atlas.py``."""

import panel as pn

from latentatlas.viz import Atlas

pn.extension("plotly")
Atlas().servable(title="latentatlas")
