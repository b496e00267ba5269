"""The latentatlas dashboard on the built-in demo comparison: ``panel serve app/atlas.py``."""

import panel as pn

from latentatlas.viz import Atlas
from latentatlas.viz.fre.data import demo_comparison_paths, load_levels
from latentatlas.viz.serving import local_resources

pn.extension()
local_resources()
# read the shipped results once per server process, not once per browser session
levels = pn.state.as_cached("latentatlas-demo-levels", lambda: load_levels(demo_comparison_paths()))
Atlas(levels).servable(title="latentatlas")
