"""The concept app on the built-in biased shapes analysis: ``panel serve app/concepts.py``."""

import panel as pn

from latentatlas.viz import ConceptAtlas
from latentatlas.viz.concepts.data import builtin_concepts_path, load_concepts
from latentatlas.viz.serving import local_resources

pn.extension()
local_resources()
# read the shipped result once per server process, not once per browser session
result = pn.state.as_cached("latentatlas-demo-concepts", lambda: load_concepts(builtin_concepts_path()))
ConceptAtlas(result).servable(title="latentatlas concepts")
