"""Viewers of a concept analysis: knowledge graph, per-layer profile, layer x concept heatmap.

Each view draws one :class:`~latentatlas.viz.concepts.state.ConceptState` and declares how it
follows it (:class:`~.state.Show`) and what its controls and taps choose (:class:`~.state.PickValue`,
:class:`~.state.PickRow`). The tables behind the declarations are precomputed per result
(:func:`~latentatlas.viz.concepts.data.derive`), so the same views stay interactive in the
static HTML export; when served, Python hears every choice through the state and updates the
example pane.
"""

from __future__ import annotations

import panel as pn
import param
import xarray as xr
from bokeh.models import (
    CDSView,
    ColorBar,
    ColumnDataSource,
    FactorRange,
    GroupFilter,
    HoverTool,
    Legend,
    LegendItem,
    LinearColorMapper,
    RadioButtonGroup,
    Range1d,
    Select,
    TapTool,
)
from bokeh.palettes import Viridis256
from bokeh.layouts import column
from bokeh.plotting import figure

from .data import derive, heatmap_cells
from .layout import AGREEMENT_COLOURS, KIND_COLOURS, NODE_LEGEND, SPURIOUS_COLOUR, concept_look
from .state import SHOW, ConceptState, PickRow, PickValue, Show, link

__all__ = ["ConceptGraph", "ConceptHeatmap", "ConceptProfile", "help_pane", "state_of"]


def state_of(source: ConceptState | xr.Dataset, params: dict) -> ConceptState:
    """The state a view draws: ``source`` itself, or a new state of the result ``source`` opened with ``params``."""
    if isinstance(source, ConceptState):
        if params:
            source.param.update(params)
        return source
    return ConceptState(source, **params)


def _tool(fig, kind):
    """The figure's tool of type ``kind`` (``fig.select_one`` would walk every model the figure references)."""
    return next(t for t in fig.tools if isinstance(t, kind))


def help_pane(name: str, text: str) -> pn.pane.HTML:
    """A folded "What is this?" note on the plot called ``name`` (plain HTML: it opens without a server)."""
    return pn.pane.HTML(f'<details class="what-is-this" data-plot="{name}"><summary>What is this?</summary>'
                        f'<div style="max-width: 60em">{text}</div></details>',
                        sizing_mode="stretch_width", margin=(0, 10))


_GRAPH_HELP = (
    "Layers (left), the human concepts probed (middle) and the classes (right) at the layer shown. "
    "<b>Class–concept edges</b>: width is the model's presence of the concept in the class (mean probe "
    "probability), scaled from the weakest to the strongest presence in the result; colour compares it with "
    "the dataset's presence: <i>agrees</i> (within 0.1), <i>over</i> (the model sees the concept in the class "
    "more than the data has it), <i>under</i>, or <i>unreliable</i> where this layer's probe does not encode "
    "the concept. Red dashes mark a <b>suspected spurious correlation</b> at this layer; hover an edge for the "
    "rule's conditions. <b>Layer–concept edges</b> are drawn by probe accuracy. <b>Nodes</b>: a concept's size "
    "and opacity grow with its probe's balanced accuracy at this layer (key under the graph); the layer shown is "
    "the large layer node. Tap a node for its profile; tap a layer node or use the selector to change the layer."
)
_PROFILE_HELP = (
    "The tapped node across all layers, input to output. For a concept: its probe's balanced accuracy against "
    "the permuted-label baseline, and per class the model's presence (solid) against the dataset's (dashed) and, "
    "where the result has it, the class output's sensitivity along the concept (TCAV score, dotted). For a class: "
    "its class probe's accuracy and the excess presence (what the labels do not explain) of the concepts most "
    "over-present in it. For a layer: means over concepts. Hover a point for its value."
)
_HEAT_HELP = (
    "One cell per layer and concept: the held-out balanced accuracy of a linear probe reading the concept from "
    "the layer (0.5 is chance; * marks accuracies above the permuted-label baseline, Benjamini–Hochberg adjusted "
    "p below the level shown). The toggle switches to sensitivity, where the result has it: per cell 1 − p of "
    "the class whose output moves most significantly along the concept (hover for the class). The red outline "
    "is the layer shown; tap a cell to show its layer and concept."
)


class ConceptGraph(pn.viewable.Viewer):
    """Layers, concepts and classes as a graph at the state's layer; tapping a node chooses it.

    Class-concept edges: width is the model presence of the concept in the class at the
    layer, colour says whether it agrees with the dataset presence (or is unreliable because
    the layer does not encode the concept); suspected spurious links at this layer are
    overdrawn dashed and marked. Layer-concept edges are drawn by probe accuracy. Tapping a
    node sets the state's ``node`` (and its ``layer``, ``concept`` or ``class_name``).
    """

    state = param.ClassSelector(class_=ConceptState, doc="What the app shows")

    def __init__(self, source: ConceptState | xr.Dataset, **params):
        state = state_of(source, params)
        super().__init__(state=state)
        result, tables = state.result, derive(state.result).tables
        t = tables[state.layer]
        self.nodes = ColumnDataSource(t["nodes"])
        self.presence = ColumnDataSource(t["presence"])
        self.encodes = ColumnDataSource(t["encodes"])
        ids = t["nodes"]["id"]
        self.nodes.selected.indices = [ids.index(state.node)] if state.node in ids else []
        self.select = Select(title="Layer", name="concept_layer", value=state.layer,
                             options=list(state.param.layer.objects), width=200)
        self.figure = self._figure(max(result.sizes[d] for d in ("layer", "concept", "class")))
        self.pick = PickRow(self.nodes, {"node": "id", "layer": "pick_layer", "concept": "pick_concept",
                                         "class_name": "pick_class"})
        layers = list(tables)
        link(state, shows=[
            Show("layer", self.nodes, "data", {l: tables[l]["nodes"] for l in layers}),
            Show("layer", self.presence, "data", {l: tables[l]["presence"] for l in layers}),
            Show("layer", self.encodes, "data", {l: tables[l]["encodes"] for l in layers}),
            Show("layer", self.select, "value", {l: l for l in layers}),
            Show("layer", self.figure.title, "text", {l: self._title(l) for l in layers}),
            Show("node", self.nodes.selected, "indices", {n: [k] for k, n in enumerate(ids)}),
        ], picks=[PickValue(self.select, "value", "layer")], taps={_tool(self.figure, TapTool): self.pick})
        self._pane = pn.pane.Bokeh(column(self.select, self.figure, sizing_mode="stretch_width"),
                                   sizing_mode="stretch_width")

    @staticmethod
    def _title(layer: str) -> str:
        return f"Knowledge graph at layer {layer}"

    def tap(self, node: str) -> None:
        """Do what tapping ``node`` (an id such as ``"class:circle"``) in the browser does."""
        self.state.param.update(self.pick.updates(list(self.nodes.data["id"]).index(node)))

    def _figure(self, n: int):
        fig = figure(
            name="concept_graph", x_range=Range1d(-0.55, 2.55), y_range=Range1d(-0.2, 1.1),
            tools="tap,wheel_zoom,pan,reset,save", toolbar_location="above", height=max(480, 40 * n + 200),
            min_width=560, sizing_mode="stretch_width", title=self._title(self.state.layer),
        )
        fig.axis.visible = False
        fig.grid.grid_line_color = None
        fig.segment("x0", "y0", "x1", "y1", source=self.encodes, line_color="color", line_alpha="alpha",
                    line_width="width")
        edges = fig.segment("x0", "y0", "x1", "y1", source=self.presence, line_color="color", line_width="width",
                            line_alpha=0.75, hover_line_alpha=1.0)
        # only the flagged edges, drawn opaque: the legend's sample is then a visible dashed line
        flagged_view = CDSView(filter=GroupFilter(column_name="flag", group="yes"))
        flagged = fig.segment("x0", "y0", "x1", "y1", source=self.presence, view=flagged_view,
                              line_color=SPURIOUS_COLOUR, line_width=3, line_dash="dashed")
        fig.text("mx", "my", text={"value": "⚠ spurious"}, source=self.presence, view=flagged_view,
                 text_color=SPURIOUS_COLOUR, text_font_size="10pt", text_font_style="bold", text_align="center",
                 text_baseline="bottom")
        dots = fig.scatter("x", "y", source=self.nodes, size="size", fill_color="color", fill_alpha="alpha",
                           line_color="white", line_width=1.5, selection_line_color="black", selection_line_width=3,
                           nonselection_fill_alpha="alpha", nonselection_line_alpha=1.0)
        fig.text("label_x", "label_y", text="label", source=self.nodes, text_align="align", text_baseline="middle",
                 text_font_size="9pt", nonselection_text_alpha=1.0, background_fill_color="white",
                 background_fill_alpha=0.75, name="node_labels")
        fig.text(x=[0.0, 1.0, 2.0], y=[1.07] * 3, text=["layers", "concepts", "classes"], text_align="center",
                 text_font_style="bold", text_font_size="10pt")
        self._size_key(fig)
        fig.add_tools(
            HoverTool(renderers=[dots], tooltips=[("", "@kind @label"), ("", "@info")]),
            HoverTool(renderers=[edges, flagged], line_policy="interp", tooltips=[
                ("class – concept", "@class – @concept"),
                ("model presence", "@model{0.000}"),
                ("dataset presence", "@dataset{0.000}"),
                ("excess / class excess", "@excess{+0.000} / @class_excess{+0.000}"),
                ("sensitivity (TCAV) / derivative", "@sensitivity{0.00} / @derivative{+0.000}"),
                ("model's own class excess", "@output_excess{+0.000}"),
                ("agreement", "@agreement"),
                ("rule at this layer", "@why"),
                ("flagged spurious at", "@spurious_layers"),
            ]),
        )
        tap = _tool(fig, TapTool)
        tap.renderers, tap.mode = [dots], "replace"
        self._legends(fig)
        return fig

    @staticmethod
    def _legends(fig) -> None:
        """Legends of the edge colours and the node colours, always complete.

        They are drawn from legend-only renderers (one row per entry, no position, so nothing
        in the plot): a legend drawn from the graph's own renderers would lose the entries absent
        at the layer shown (no sample for "suspected spurious" where nothing is flagged).
        """
        nan = float("nan")
        edges = ColumnDataSource({"label": list(AGREEMENT_COLOURS), "color": list(AGREEMENT_COLOURS.values()),
                                  "x": [nan] * len(AGREEMENT_COLOURS)})
        edge_key = fig.segment("x", "x", "x", "x", source=edges, line_color="color", line_width=4)
        spurious_key = fig.segment([nan], [nan], [nan], [nan], line_color=SPURIOUS_COLOUR, line_width=3,
                                   line_dash="dashed")
        nodes = ColumnDataSource({"label": [NODE_LEGEND[k] for k in KIND_COLOURS], "color": list(KIND_COLOURS.values()),
                                  "x": [nan] * len(KIND_COLOURS)})
        node_key = fig.scatter("x", "x", source=nodes, fill_color="color", line_color="white", size=12)
        for name, title, items in (
            ("concept_edge_legend", "edges: model vs dataset presence",
             [LegendItem(label={"field": "label"}, renderers=[edge_key]),
              LegendItem(label="suspected spurious at this layer", renderers=[spurious_key])]),
            ("concept_node_legend", "nodes", [LegendItem(label={"field": "label"}, renderers=[node_key])]),
        ):
            fig.add_layout(Legend(name=name, title=title, items=items, orientation="horizontal", ncols=3,
                                  label_text_font_size="8pt", title_text_font_size="8pt", margin=2, padding=4,
                                  click_policy="none"), "below")

    @staticmethod
    def _size_key(fig) -> None:
        """Concept nodes at three probe accuracies, under the concept column: what a node's size says."""
        accuracies = (0.5, 0.75, 1.0)
        looks = [concept_look(a) for a in accuracies]
        xs = [0.85, 1.0, 1.15]
        fig.scatter(xs, [-0.13] * 3, size=[s for s, _ in looks], fill_alpha=[a for _, a in looks],
                    fill_color="#6a3d9a", line_color="white", name="node_size_key")
        fig.text(xs, [-0.175] * 3, text=[f"{a:g}" for a in accuracies], text_align="center", text_baseline="middle",
                 text_font_size="8pt")
        fig.text([0.77], [-0.13], text=["concept size: probe accuracy"], text_align="right",
                 text_baseline="middle", text_font_size="8pt")

    def __panel__(self):
        return pn.Column(help_pane("concept_graph", _GRAPH_HELP), self._pane, sizing_mode="stretch_width")


class ConceptProfile(pn.viewable.Viewer):
    """The state's node across all layers (see :func:`~latentatlas.viz.concepts.data.profiles`).

    Solid lines are measured at each layer, dashed ones are references (permuted-label
    baseline, dataset presence); hover a point for its value.
    """

    state = param.ClassSelector(class_=ConceptState, doc="What the app shows")

    def __init__(self, source: ConceptState | xr.Dataset, **params):
        state = state_of(source, params)
        super().__init__(state=state)
        self.profiles = derive(state.result).profiles
        if state.node not in self.profiles:
            raise ValueError(f"unknown node {state.node!r}; valid: {sorted(self.profiles)}")
        p = self.profiles[state.node]
        self.lines, self.points = ColumnDataSource(p["lines"]), ColumnDataSource(p["points"])
        self.figure = self._figure(p["title"])
        link(state, shows=[
            Show("node", self.lines, "data", {n: p["lines"] for n, p in self.profiles.items()}),
            Show("node", self.points, "data", {n: p["points"] for n, p in self.profiles.items()}),
            Show("node", self.figure.title, "text", {n: p["title"] for n, p in self.profiles.items()}),
        ])
        self._pane = pn.pane.Bokeh(self.figure, sizing_mode="stretch_width")

    def _figure(self, title: str):
        layers = list(self.state.param.layer.objects)
        fig = figure(name="concept_profile", x_range=FactorRange(*layers), y_range=Range1d(-0.25, 1.05), height=380,
                     min_width=360, sizing_mode="stretch_width", tools="wheel_zoom,pan,reset,save",
                     toolbar_location="above", x_axis_label="layer (input → output)",
                     y_axis_label="accuracy, presence or excess", title=title)
        fig.multi_line("xs", "ys", source=self.lines, line_color="color", line_width="width", line_dash="dash",
                       legend_field="label")
        dots = fig.scatter("x", "y", source=self.points, size=7, fill_color="color", line_color="white")
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[("", "@label"), ("layer", "@x"), ("value", "@y{0.000}")]))
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "8pt"
        fig.legend.background_fill_alpha = 0.6
        fig.add_layout(fig.legend[0], "right")
        return fig

    def __panel__(self):
        return pn.Column(help_pane("concept_profile", _PROFILE_HELP), self._pane, sizing_mode="stretch_width")


_HEAT_TITLES = {
    SHOW[0]: "Probe balanced accuracy per layer and concept (* above baseline, p < {alpha})",
    SHOW[1]: "Sensitivity: 1 − p of the most sensitive class (* p < {alpha})",
}
_BAR_TITLES = {SHOW[0]: "balanced accuracy", SHOW[1]: "1 - p (sensitivity)"}


class ConceptHeatmap(pn.viewable.Viewer):
    """Layers x concepts heatmap of held-out probe balanced accuracy (0.5 = chance), or of sensitivity.

    Hover a cell for the accuracy, its permuted-label baseline, the adjusted p-value and
    MOAD; an asterisk marks accuracies significantly above the baseline. Where the result
    has concept sensitivities, a toggle (the state's ``show``) switches to them: per cell the
    class whose output moves most significantly along the concept (see
    :func:`~latentatlas.viz.concepts.data.sensitivity_cells`). The state's layer is outlined;
    tapping a cell chooses its layer and concept.
    """

    state = param.ClassSelector(class_=ConceptState, doc="What the app shows")
    alpha = param.Number(default=0.05, bounds=(0, 1), constant=True, doc="Significance level of the asterisks")

    def __init__(self, source: ConceptState | xr.Dataset, alpha: float = 0.05, **params):
        state = state_of(source, params)
        super().__init__(state=state, alpha=alpha)
        cells = derive(state.result).cells if alpha == 0.05 else heatmap_cells(state.result, alpha)
        self.has_sensitivity = "sens_value" in cells
        if state.show == SHOW[1] and not self.has_sensitivity:
            raise ValueError("this result has no concept sensitivity: analyse it with gradients= (capture_gradients)")
        shown = {s: self._shown(cells, s) for s in (SHOW if self.has_sensitivity else SHOW[:1])}
        titles = {s: t.format(alpha=alpha) for s, t in _HEAT_TITLES.items()}
        self.cells = ColumnDataSource(shown[state.show])
        self.band = ColumnDataSource({"layer": [state.layer]})
        self.figure = self._figure(titles[state.show])
        self.toggle = RadioButtonGroup(labels=list(SHOW), active=SHOW.index(state.show), name="concept_show",
                                       visible=self.has_sensitivity)
        bar = next(r for r in self.figure.right if isinstance(r, ColorBar))
        bar.title = _BAR_TITLES[state.show]
        self.pick = PickRow(self.cells, {"layer": "layer", "node": "node", "concept": "concept"})
        link(state, shows=[
            Show("layer", self.band, "data", {l: {"layer": [l]} for l in state.param.layer.objects}),
            Show("show", self.cells, "data", shown),
            Show("show", self.figure.title, "text", titles),
            Show("show", bar, "title", _BAR_TITLES),
            Show("show", self.toggle, "active", {s: i for i, s in enumerate(SHOW)}),
        ], picks=[PickValue(self.toggle, "active", "show", values=SHOW)],
            taps={_tool(self.figure, TapTool): self.pick})
        self._pane = pn.pane.Bokeh(column(self.toggle, self.figure, sizing_mode="stretch_width"),
                                   sizing_mode="stretch_width")

    @staticmethod
    def _shown(cells: dict, show: str) -> dict:
        """The cells' columns with ``value``, ``label`` and ``text_color`` of what ``show`` shows."""
        key = "acc" if show == SHOW[0] else "sens"
        value = cells[f"{key}_value"]
        return {**cells, "value": value, "label": cells[f"{key}_label"],
                "text_color": ["black" if v > 0.8 else "white" for v in value]}

    def tap(self, layer: str, concept: str) -> None:
        """Do what tapping the cell (``layer``, ``concept``) in the browser does."""
        rows = list(zip(self.cells.data["layer"], self.cells.data["concept"]))
        self.state.param.update(self.pick.updates(rows.index((layer, concept))))

    def _figure(self, title: str):
        concepts = list(self.state.param.concept.objects)
        layers = list(self.state.param.layer.objects)
        fig = figure(name="concept_heatmap", x_range=concepts, y_range=list(reversed(layers)), tools="tap,save,reset",
                     toolbar_location="above", height=160 + 42 * len(layers), min_width=480,
                     sizing_mode="stretch_width", x_axis_label="concept", y_axis_label="layer", title=title)
        mapper = LinearColorMapper(palette=Viridis256, low=0.5, high=1.0, low_color=Viridis256[0])
        fig.rect("concept", "layer", 1, 1, source=self.cells, line_color="white",
                 fill_color={"field": "value", "transform": mapper}, nonselection_fill_alpha=1.0,
                 selection_line_color="red", selection_line_width=3)
        fig.text("concept", "layer", text="label", source=self.cells, text_align="center", text_baseline="middle",
                 text_font_size="8pt", text_color="text_color", nonselection_text_alpha=1.0)
        fig.rect(x=len(concepts) / 2, y="layer", width=len(concepts), height=0.96, source=self.band,
                 fill_alpha=0, line_color="#d62728", line_width=3)
        fig.add_tools(HoverTool(tooltips=[
            ("layer, concept", "@layer, @concept"),
            ("probe balanced accuracy", "@accuracy{0.000}"),
            ("permuted-label baseline", "@baseline{0.000}"),
            ("adjusted p-value", "@pvalue{0.0000}"),
            ("significant", "@significant"),
            ("MOAD", "@moad{0.000}"),
            *([("most sensitive class (TCAV score)", "@sens_class (@sens_score{0.00})"),
               ("its derivative adjusted p", "@sens_pvalue{0.0000}")] if self.has_sensitivity else []),
        ]))
        _tool(fig, TapTool).mode = "replace"
        fig.xaxis.major_label_orientation = 0.8
        fig.grid.grid_line_color = None
        fig.add_layout(ColorBar(color_mapper=mapper, width=12), "right")
        return fig

    def __panel__(self):
        return pn.Column(help_pane("concept_heatmap", _HEAT_HELP), self._pane, sizing_mode="stretch_width")
