"""The concept app on the built-in biased shapes analysis: ``panel serve app/concepts.py``.

Plain layout: ``ConceptAtlas().template()`` gives the same views with a sidebar (a Panel template), which
cost about a second more per page load on the 2-core machine (benchmarks/concept_app.py).
"""

import panel as pn

from latentatlas.viz import ConceptAtlas
from latentatlas.viz.serving import local_resources

pn.extension()
local_resources()
ConceptAtlas().servable(title="latentatlas concepts")  # the built-in result is read once per server process
