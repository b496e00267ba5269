"""The concept app: knowledge graph -> per-layer profile, layer x concept heatmap, examples."""

from __future__ import annotations

from pathlib import Path

import panel as pn
import param
import xarray as xr

from ..serving import app_link
from .data import builtin_concepts_path, check_concepts, load_concepts
from .examples import ConceptExamples
from .views import ConceptGraph, ConceptHeatmap, ConceptProfile
from ..upload import open_upload

__all__ = ["ConceptAtlas", "concept_report"]

TITLE = "latentatlas: which concepts does each layer encode, and which does it tie to a class?"

INTRO = (
    "Linear probes read each human concept from each layer (after BAGEL, arXiv:2507.05810). Per class, the "
    "model's **presence** of a concept (mean probe probability) is set against the **dataset's** (fraction of "
    "samples with the concept). A concept–class link is a **suspected spurious correlation** when the layer "
    "encodes the concept, sees it in the class beyond what the labels explain and, conversely, sees the class "
    "in samples with the concept (both significant against permuted labels). Tap a node of the graph for its "
    "profile across layers; tap a layer node, a heatmap cell or use the selector to change the layer."
)


def _as_result(result) -> xr.Dataset:
    if result is None:
        result = builtin_concepts_path()
    if isinstance(result, (str, Path)):
        return load_concepts(result)
    return check_concepts(result)


class ConceptAtlas(pn.viewable.Viewer):
    """The whole concept app on one concept analysis.

    Parameters
    ----------
    result : xarray.Dataset, path of a concept-result netCDF file, or None
        None: the built-in biased shapes demo shipped in ``data/``.
    frames : sequence of ase.Atoms, optional
        Structures of a per-atom result whose frames are not a built-in set.
    static : bool
        Lay out for a static HTML export: no upload, examples fixed to the opening selection.
    """

    layer = param.Selector(objects=[""], doc="Layer shown in the graph and outlined in the heatmap")

    def __init__(self, result=None, *, frames=None, static: bool = False, **params):
        super().__init__(**params)
        self.static = static
        self._frames = frames
        self._message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._upload = pn.widgets.FileInput(accept=".nc", multiple=False)
        self._upload.param.watch(self._on_upload, ["value", "filename"])
        self._views = pn.Column(sizing_mode="stretch_width")
        self._set_result(_as_result(result))

    def _set_result(self, result: xr.Dataset):
        self.result = result
        self.graph = ConceptGraph(result)
        self.profile = ConceptProfile(result, node=self.graph.node)
        self.heatmap = ConceptHeatmap(result, layer=self.graph.layer)
        self.examples = ConceptExamples(result, frames=self._frames, layer=self.graph.layer, controls=not self.static)
        self.graph.link(self.profile, self.heatmap)
        self.param.layer.objects = list(self.graph.param.layer.objects)
        with param.parameterized.discard_events(self):
            self.layer = self.graph.layer
        self.graph.param.watch(self._on_node, "node")
        self.graph.param.watch(lambda e: setattr(self, "layer", e.new), "layer")
        self.heatmap.param.watch(self._on_cell, "concept")
        self.heatmap.param.watch(lambda e: setattr(self, "layer", e.new), "layer")
        n = {d: result.sizes[d] for d in ("layer", "concept", "class")}
        about = f"{n['layer']} layers, {n['concept']} concepts, {n['class']} classes, {result.sizes['sample']} held-out samples"
        if result.attrs.get("demo") == "shapes":
            about += (f"; shapes demo: a CNN trained on images where {result.attrs['biased_class']}s were mostly on "
                      f"{result.attrs['biased_background']} (bias {result.attrs['bias']}), analysed on images where "
                      "background and shape are independent")
        note = ("*Static report: the graph, profiles, layer selector and heatmap work in the browser; the examples "
                "stay on the opening selection (serve the app to browse them).*" if self.static else "")
        self._views.objects = [
            pn.pane.Markdown(f"### Knowledge graph and per-layer profile\n{about}. {note}", sizing_mode="stretch_width"),
            pn.Row(pn.Column(self.graph, sizing_mode="stretch_width"), pn.Column(self.profile, width=560),
                   sizing_mode="stretch_width"),
            self.heatmap,
            self.examples,
        ]

    @param.depends("layer", watch=True)
    def _new_layer(self):
        self.graph.layer = self.layer
        self.heatmap.layer = self.layer
        self.examples.layer = self.layer

    def _on_node(self, event):
        self.profile.node = event.new
        kind, _, name = event.new.partition(":")
        if kind == "concept":
            self.examples.concept = name
        elif kind == "class":
            self.examples.class_name = name

    def _on_cell(self, event):
        self.graph.node = f"concept:{event.new}"

    def _on_upload(self, *_):
        open_upload(self._upload.value, self._upload.filename, lambda path, _: self._set_result(load_concepts(path)),
                    message=self._message, busy=self._views)

    def __panel__(self):
        parts = [pn.pane.Markdown(f"# {TITLE}\n{INTRO}", sizing_mode="stretch_width"),
                 *app_link("atlas", "→ Feature reconstruction atlas: how the latent features of models relate")]
        if not self.static:
            parts.append(pn.Column(pn.pane.Markdown("**Load your own** concept result "
                                                    "(`latentatlas concepts ... --out result.nc`)", margin=(0, 5)),
                                   self._upload))
        return pn.Column(*parts, self._message, self._views, sizing_mode="stretch_width", max_width=1500)


def concept_report(result) -> pn.Column:
    """The concept app in a form that needs no server (for :func:`latentatlas.viz.export.export_html`)."""
    return ConceptAtlas(result, static=True).__panel__()
