"""The concept app: knowledge graph -> per-layer profile, layer x concept heatmap, examples."""

from __future__ import annotations

from pathlib import Path

import panel as pn
import param
import xarray as xr

from ..serving import app_link
from .data import builtin_concepts, derive, load_concepts
from .examples import ConceptExamples
from .state import ConceptState
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
    "profile across layers; tap a layer node, a heatmap cell or use the selector to change the layer. Each plot's "
    "*What is this?* says how to read it."
)


def _as_result(result) -> xr.Dataset:
    if result is None:
        return builtin_concepts()
    if isinstance(result, (str, Path)):
        return load_concepts(result)
    return result  # checked once per distinct result by derive()


class ConceptAtlas(pn.viewable.Viewer):
    """The whole concept app on one concept analysis.

    Every view draws one :class:`~latentatlas.viz.concepts.state.ConceptState` (:attr:`state`):
    set its ``layer``, ``node``, ``concept``, ``class_name`` or ``show`` to change what all
    views show.

    What is built when: the built-in result is read on the first ``ConceptAtlas()`` of a process
    (:func:`~latentatlas.viz.concepts.data.builtin_concepts`) and the tables behind the views
    (graph at every layer, profiles, heatmap cells) on the first app of each distinct result
    (:func:`~latentatlas.viz.concepts.data.derive`); every app after that builds only its state,
    its Bokeh models and the example tiles (about 0.4 s of CPU on this machine,
    ``benchmarks/concept_app.py``). ``__panel__`` lays them out as one plain Column
    (notebooks, static exports, the served app); :meth:`template` puts that Column in a Panel
    template with a sidebar. An upload builds a new state and new views.

    Parameters
    ----------
    result : xarray.Dataset, path of a concept-result netCDF file, or None
        None: the built-in biased shapes demo shipped in ``data/``.
    frames : sequence of ase.Atoms, optional
        Structures of a per-atom result whose frames are not a built-in set.
    static : bool
        Lay out for a static HTML export: no upload, examples fixed to the opening selection.
    **params
        Opening values of the state (``layer``, ``node``, ``concept``, ``class_name``, ``show``).
    """

    state = param.ClassSelector(class_=ConceptState, doc="What every view shows; a new one for each result")

    def __init__(self, result=None, *, frames=None, static: bool = False, **params):
        super().__init__()
        self.static = static
        self._frames = frames
        self._message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._upload = pn.widgets.FileInput(accept=".nc", multiple=False)
        self._upload.param.watch(self._on_upload, ["value", "filename"])
        self._views = pn.Column(sizing_mode="stretch_width")
        self._set_result(_as_result(result), **params)

    @property
    def result(self) -> xr.Dataset:
        return self.state.result

    def _set_result(self, result: xr.Dataset, **params):
        derive(result)  # checks it: a bad upload fails here, before anything is replaced
        self.state = ConceptState(result, **params)
        self.graph = ConceptGraph(self.state)
        self.profile = ConceptProfile(self.state)
        self.heatmap = ConceptHeatmap(self.state)
        self.examples = ConceptExamples(self.state, frames=self._frames, controls=not self.static)
        n = {d: result.sizes[d] for d in ("layer", "concept", "class")}
        about = f"{n['layer']} layers, {n['concept']} concepts, {n['class']} classes, {result.sizes['sample']} held-out samples"
        if result.attrs.get("demo") == "shapes":
            about += (f"; shapes demo: a CNN trained on images where {result.attrs['biased_class']}s were mostly on "
                      f"{result.attrs['biased_background']} (bias {result.attrs['bias']}), analysed on images where "
                      "background and shape are independent")
        note = ("*Static report: the graph, profiles, layer selector and heatmap work in the browser; the examples "
                "stay on the opening selection (serve the app to browse them).*" if self.static else "")
        # graph and profile side by side where both fit, one above the other on narrower screens
        side_by_side = pn.FlexBox(
            pn.Column(self.graph, sizing_mode="stretch_width", styles={"flex": "1 1 620px"}),
            pn.Column(self.profile, sizing_mode="stretch_width", styles={"flex": "1 1 480px"}),
            flex_wrap="wrap", sizing_mode="stretch_width",
        )
        self._views.objects = [
            pn.pane.Markdown(f"### Knowledge graph and per-layer profile\n{about}. {note}", sizing_mode="stretch_width"),
            side_by_side,
            self.heatmap,
            self.examples,
        ]

    def _on_upload(self, *_):
        open_upload(self._upload.value, self._upload.filename, lambda path, _: self._set_result(load_concepts(path)),
                    message=self._message, busy=self._views)

    def _load_own(self) -> list:
        """The upload, served apps only (a static report has no server to read the file)."""
        if self.static:
            return []
        return [pn.pane.Markdown("**Load your own** concept result (`latentatlas concepts ... --out result.nc`)",
                                 margin=(0, 5)), self._upload]

    def template(self, **params) -> pn.template.BootstrapTemplate:
        """The served app in a Panel template: the link to the FRE app and the upload in the sidebar, views in the main area.

        The views stay one plain :class:`panel.Column` (``__panel__`` without the header) so that
        notebooks and static exports, which cannot use a template, show the same.
        """
        params = {"title": "latentatlas concepts", "sidebar_width": 260, **params}
        sidebar = [*app_link("atlas", "→ Feature reconstruction atlas: how the latent features of models relate"),
                   *self._load_own()]
        main = pn.Column(pn.pane.Markdown(f"## {TITLE}\n{INTRO}", sizing_mode="stretch_width"), self._message,
                         self._views, sizing_mode="stretch_width")
        return pn.template.BootstrapTemplate(sidebar=sidebar, main=[main], **params)

    def __panel__(self):
        parts = [pn.pane.Markdown(f"# {TITLE}\n{INTRO}", sizing_mode="stretch_width"),
                 *app_link("atlas", "→ Feature reconstruction atlas: how the latent features of models relate")]
        if not self.static:
            parts.append(pn.Column(*self._load_own()))
        return pn.Column(*parts, self._message, self._views, sizing_mode="stretch_width", max_width=1500)


def concept_report(result) -> pn.Column:
    """The concept app in a form that needs no server (for :func:`latentatlas.viz.export.export_html`)."""
    return ConceptAtlas(result, static=True).__panel__()
