"""The concept app on the built-in biased shapes analysis: ``panel serve app/concepts.py``."""

import panel as pn

from latentatlas.viz import ConceptAtlas
from latentatlas.viz.serving import local_resources

pn.extension()
local_resources()
ConceptAtlas().template().servable()  # the built-in result is read once per server process
