"""Viewers of a concept analysis: knowledge graph, per-layer profile, layer x concept heatmap.

All three draw Bokeh data sources whose per-layer and per-node contents are precomputed
(:mod:`latentatlas.viz.concepts.data`), and small Bokeh callbacks swap them in the browser when
a node is tapped or a layer is chosen. So the same views stay interactive in the static HTML
export; when served, Python hears the same taps and updates the example pane.
"""

from __future__ import annotations

import json

import panel as pn
import param
import xarray as xr
from bokeh.models import (
    CDSView,
    ColorBar,
    ColumnDataSource,
    CustomJS,
    FactorRange,
    GroupFilter,
    HoverTool,
    LinearColorMapper,
    RadioButtonGroup,
    Range1d,
    Select,
    TapTool,
)
from bokeh.palettes import Viridis256
from bokeh.layouts import column
from bokeh.plotting import figure
from bokeh.transform import dodge

from .layout import AGREEMENT_COLOURS
from .data import check_concepts, default_selection, graph_tables, node_id, profiles, sensitivity_cells

__all__ = ["ConceptGraph", "ConceptHeatmap", "ConceptProfile"]

# Runs in the browser when a layer is chosen: swap in that layer's precomputed graph columns.
_SELECT_LAYER_JS = """
const t = JSON.parse(tables)[select.value];
if (t === undefined) { return; }
nodes.data = t.nodes;
presence.data = t.presence;
encodes.data = t.encodes;
title.text = prefix + select.value + suffix;
for (const band of bands) { band.data = {layer: [select.value]}; }
"""

# Runs in the browser when a node is tapped: show its profile; a layer node also picks the layer.
_SELECT_NODE_JS = """
const i = nodes.selected.indices;
if (i.length != 1) { return; }
const p = JSON.parse(store)[nodes.data.id[i[0]]];
lines.data = p.lines;
points.data = p.points;
title.text = p.title;
if (nodes.data.kind[i[0]] == 'layer') { select.value = nodes.data.label[i[0]]; }
"""

# Runs in the browser when a heatmap cell is tapped: pick its layer and show its concept's profile.
_SELECT_CELL_JS = """
const i = heat.selected.indices;
if (i.length != 1) { return; }
select.value = heat.data.layer[i[0]];
const k = nodes.data.id.indexOf('concept:' + heat.data.concept[i[0]]);
if (k >= 0) { nodes.selected.indices = [k]; }
"""

# Runs in the browser when the heatmap's toggle changes: show probe accuracy or sensitivity.
_SHOW_JS = """
const key = toggle.active == 1 ? 'sens' : 'acc';
const d = Object.assign({}, cells.data);
d.value = d[key + '_value'];
d.label = d[key + '_label'];
d.text_color = Array.from(d.value, (v) => v > 0.8 ? 'black' : 'white');  // value may be a typed array
cells.data = d;
title.text = titles[toggle.active];
bar.title = bars[toggle.active];
"""

_GRAPH_TITLE = ("Knowledge graph at layer ", ": edge width = model presence — tap a node")


def _opening(viewer, result: xr.Dataset, params: dict) -> str:
    """Check ``result``, offer its layers in ``viewer.layer``, default to the opening layer; the opening concept."""
    check_concepts(result)
    viewer.param.layer.objects = [str(v) for v in result["layer"].values]
    start_layer, concept, _ = default_selection(result)
    params.setdefault("layer", start_layer)
    return concept


class ConceptGraph(pn.viewable.Viewer):
    """Layers, concepts and classes as a graph at one layer; tapping a node sets :attr:`node`.

    Class-concept edges: width is the model presence of the concept in the class at
    :attr:`layer`, colour says whether it agrees with the dataset presence (or is unreliable
    because the layer does not encode the concept); suspected spurious links at this layer
    are overdrawn dashed and marked. Layer-concept edges are drawn by probe accuracy.
    Tapping a layer node also picks that layer.
    """

    result = param.ClassSelector(class_=xr.Dataset, doc="A concept analysis (latentatlas.concepts.analyse_concepts)")
    layer = param.Selector(objects=[""], doc="Layer whose presences label the class-concept edges")
    node = param.String(default="", doc="Id of the tapped node ('concept:<k>', 'class:<c>' or 'layer:<l>')")

    def __init__(self, result: xr.Dataset, **params):
        concept = _opening(self, result, params)
        params.setdefault("node", node_id("concept", concept))
        super().__init__(result=result, **params)
        self.tables = graph_tables(result)
        t = self.tables[self.layer]
        self.nodes = ColumnDataSource(t["nodes"])
        self.presence = ColumnDataSource(t["presence"])
        self.encodes = ColumnDataSource(t["encodes"])
        self.select = Select(title="Layer", value=self.layer, options=list(self.param.layer.objects), width=200)
        self.figure = self._figure()
        self._bands = []
        self._select_node()
        self.select.js_on_change("value", CustomJS(
            args=dict(tables=json.dumps(self.tables), select=self.select, nodes=self.nodes, presence=self.presence,
                      encodes=self.encodes, title=self.figure.title, prefix=_GRAPH_TITLE[0], suffix=_GRAPH_TITLE[1],
                      bands=self._bands),
            code=_SELECT_LAYER_JS,
        ))
        self.select.on_change("value", self._on_select)
        self.nodes.selected.on_change("indices", self._on_tap)
        self._pane = pn.pane.Bokeh(column(self.select, self.figure, sizing_mode="stretch_width"),
                                   sizing_mode="stretch_width")

    def _figure(self):
        n = max(len(self.result[d]) for d in ("layer", "concept", "class"))
        fig = figure(
            name="concept_graph", x_range=Range1d(-0.55, 2.55), y_range=Range1d(-0.08, 1.1), tools="tap,wheel_zoom,pan,reset,save",
            toolbar_location="above", height=max(440, 40 * n + 120), min_width=560, sizing_mode="stretch_width",
            title=f"{_GRAPH_TITLE[0]}{self.layer}{_GRAPH_TITLE[1]}",
        )
        fig.axis.visible = False
        fig.grid.grid_line_color = None
        fig.segment("x0", "y0", "x1", "y1", source=self.encodes, line_color="color", line_alpha="alpha",
                    line_width="width")
        edges = fig.segment("x0", "y0", "x1", "y1", source=self.presence, line_color="color", line_width="width",
                            line_alpha=0.75, hover_line_alpha=1.0, legend_field="agreement")
        flagged = fig.segment("x0", "y0", "x1", "y1", source=self.presence, line_color=AGREEMENT_COLOURS["over"],
                              line_width=3, line_dash="dashed", line_alpha="spurious",
                              legend_label="suspected spurious at this layer")
        fig.text("mx", "my", text={"value": "⚠ spurious"},
                 source=self.presence, text_alpha="spurious", text_color=AGREEMENT_COLOURS["over"],
                 text_font_size="10pt", text_font_style="bold", text_align="center", text_baseline="bottom")
        dots = fig.scatter("x", "y", source=self.nodes, size="size", fill_color="color", fill_alpha="alpha",
                           line_color="white", line_width=1.5, selection_line_color="black", selection_line_width=3,
                           nonselection_fill_alpha="alpha", nonselection_line_alpha=1.0)
        for kind, dx, align in (("layer", -0.06, "right"), ("concept", 0.0, "center"), ("class", 0.06, "left")):
            view = CDSView(filter=GroupFilter(column_name="kind", group=kind))
            fig.text(x=dodge("x", dx), y=dodge("y", 0.0 if kind != "concept" else 0.025),
                     text="label", source=self.nodes, view=view, text_align=align, text_baseline="middle",
                     text_font_size="9pt", nonselection_text_alpha=1.0, background_fill_color="white",
                     background_fill_alpha=0.75)
        for x, label in ((0.0, "layers"), (1.0, "concepts"), (2.0, "classes")):
            fig.text(x=[x], y=[1.07], text=[label], text_align="center", text_font_style="bold",
                     text_font_size="10pt")
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
        fig.select_one(TapTool).renderers = [dots]
        fig.select_one(TapTool).mode = "replace"
        fig.legend.orientation = "horizontal"
        fig.add_layout(fig.legend[0], "below")
        fig.legend.label_text_font_size = "8pt"
        fig.legend.title = "model vs dataset presence (edges)"
        fig.legend.title_text_font_size = "8pt"
        return fig

    def _select_node(self):
        ids = list(self.nodes.data["id"])
        self.nodes.selected.indices = [ids.index(self.node)] if self.node in ids else []

    @param.depends("layer", watch=True)
    def _show_layer(self):
        t = self.tables[self.layer]
        if self.select.value != self.layer:
            self.select.value = self.layer
        self.nodes.data, self.presence.data, self.encodes.data = t["nodes"], t["presence"], t["encodes"]
        self.figure.title.text = f"{_GRAPH_TITLE[0]}{self.layer}{_GRAPH_TITLE[1]}"
        self._select_node()
        for band in self._bands:
            band.data = {"layer": [self.layer]}

    @param.depends("node", watch=True)
    def _new_node(self):
        self._select_node()

    def _on_select(self, attr, old, new):
        if new != self.layer:
            self.layer = new

    def _on_tap(self, attr, old, new):
        if len(new) != 1:
            return
        nid = str(self.nodes.data["id"][new[0]])
        if nid != self.node:
            self.node = nid
        if nid.startswith("layer:") and nid[len("layer:"):] != self.layer:
            self.layer = nid[len("layer:"):]

    def link(self, profile: "ConceptProfile | None" = None, heatmap: "ConceptHeatmap | None" = None) -> None:
        """Drive ``profile`` (node taps) and ``heatmap`` (layer band, cell taps) in the browser too."""
        if profile is not None:
            self.nodes.selected.js_on_change("indices", CustomJS(
                args=dict(nodes=self.nodes, store=json.dumps(profile.profiles), lines=profile.lines,
                          points=profile.points, title=profile.figure.title,
                          select=self.select),
                code=_SELECT_NODE_JS,
            ))
        if heatmap is not None:
            self._bands.append(heatmap.band)
            heatmap.cells.selected.js_on_change("indices", CustomJS(
                args=dict(heat=heatmap.cells, select=self.select, nodes=self.nodes), code=_SELECT_CELL_JS))

    def __panel__(self):
        return self._pane



class ConceptProfile(pn.viewable.Viewer):
    """One graph node across all layers (see :func:`~latentatlas.viz.concepts.data.profiles`).

    Solid lines are measured at each layer, dashed ones are references (permuted-label
    baseline, dataset presence); hover a point for its value.
    """

    result = param.ClassSelector(class_=xr.Dataset, doc="A concept analysis (latentatlas.concepts.analyse_concepts)")
    node = param.String(default="", doc="Id of the node shown ('concept:<k>', 'class:<c>' or 'layer:<l>')")

    def __init__(self, result: xr.Dataset, **params):
        check_concepts(result)
        params.setdefault("node", node_id("concept", default_selection(result)[1]))
        super().__init__(result=result, **params)
        self.profiles = profiles(result)
        self.lines, self.points = ColumnDataSource(), ColumnDataSource()
        self.figure = self._figure()
        self._show()
        self._pane = pn.pane.Bokeh(self.figure, sizing_mode="stretch_width")

    def _figure(self):
        layers = [str(v) for v in self.result["layer"].values]
        fig = figure(name="concept_profile", x_range=FactorRange(*layers), y_range=Range1d(-0.25, 1.05), height=380, min_width=360,
                     sizing_mode="stretch_width", tools="wheel_zoom,pan,reset,save", toolbar_location="above",
                     x_axis_label="layer (input → output)", y_axis_label="accuracy, presence or excess")
        fig.multi_line("xs", "ys", source=self.lines, line_color="color", line_width="width", line_dash="dash",
                       legend_field="label")
        dots = fig.scatter("x", "y", source=self.points, size=7, fill_color="color", line_color="white")
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[("", "@label"), ("layer", "@x"), ("value", "@y{0.000}")]))
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "8pt"
        fig.legend.background_fill_alpha = 0.6
        fig.add_layout(fig.legend[0], "right")
        return fig

    @param.depends("node", watch=True)
    def _show(self):
        if self.node not in self.profiles:
            raise ValueError(f"unknown node {self.node!r}; valid: {sorted(self.profiles)}")
        p = self.profiles[self.node]
        self.lines.data, self.points.data = p["lines"], p["points"]
        self.figure.title.text = p["title"]

    def __panel__(self):
        return self._pane


_SHOW = ["probe accuracy", "sensitivity"]
_HEAT_TITLES = [
    "Probe balanced accuracy per layer and concept (held out; * above the permuted-label baseline, "
    "adjusted p < {alpha}) — tap a cell",
    "Sensitivity per layer and concept: 1 - adjusted p of the most sensitive class's output along the concept "
    "(* p < {alpha}; hover for the class) — tap a cell",
]


class ConceptHeatmap(pn.viewable.Viewer):
    """Layers x concepts heatmap of held-out probe balanced accuracy (0.5 = chance), or of sensitivity.

    Hover a cell for the accuracy, its permuted-label baseline, the adjusted p-value and
    MOAD; an asterisk marks accuracies significantly above the baseline. Where the result
    has concept sensitivities, a toggle (:attr:`show`) switches to them: per cell the class
    whose output moves most significantly along the concept (see
    :func:`~latentatlas.viz.concepts.data.sensitivity_cells`). The chosen :attr:`layer` is
    outlined; tapping a cell sets :attr:`layer` and :attr:`concept`.
    """

    result = param.ClassSelector(class_=xr.Dataset, doc="A concept analysis (latentatlas.concepts.analyse_concepts)")
    layer = param.Selector(objects=[""], doc="Layer outlined")
    concept = param.String(default="", doc="Concept of the tapped cell")
    alpha = param.Number(default=0.05, bounds=(0, 1), doc="Significance level of the asterisks")
    show = param.Selector(objects=_SHOW, default=_SHOW[0], doc="What the cells show (sensitivity needs gradients)")

    def __init__(self, result: xr.Dataset, **params):
        params.setdefault("concept", _opening(self, result, params))
        super().__init__(result=result, **params)
        self.cells = ColumnDataSource(self._cells())
        self.band = ColumnDataSource({"layer": [self.layer]})
        self.figure = self._figure()
        self.cells.selected.on_change("indices", self._on_tap)
        self.toggle = RadioButtonGroup(labels=_SHOW, active=_SHOW.index(self.show), visible="sens_value" in self.cells.data)
        bar = self.figure.select_one(ColorBar)
        self.toggle.js_on_change("active", CustomJS(
            args=dict(toggle=self.toggle, cells=self.cells, title=self.figure.title, bar=bar,
                      titles=[t.format(alpha=self.alpha) for t in _HEAT_TITLES],
                      bars=["balanced accuracy", "1 - p (sensitivity)"]),
            code=_SHOW_JS,
        ))
        self.toggle.on_change("active", lambda attr, old, new: setattr(self, "show", _SHOW[new]))
        if self.show != _SHOW[0]:
            self._show_values()
        self._pane = pn.pane.Bokeh(column(self.toggle, self.figure, sizing_mode="stretch_width"),
                                   sizing_mode="stretch_width")

    def _cells(self) -> dict:
        r = self.result.transpose("layer", "concept", ...)
        layer, concept = xr.broadcast(r["layer"], r["concept"])
        acc, p = r["probe_accuracy"].values.ravel(), r["accuracy_pvalue"].values.ravel()
        labels = [f"{a:.2f}" + ("*" if v < self.alpha else "") for a, v in zip(acc, p)]
        return {
            "layer": layer.values.astype(str).ravel(), "concept": concept.values.astype(str).ravel(),
            "accuracy": acc, "baseline": r["accuracy_baseline"].values.ravel(), "pvalue": p,
            "moad": r["moad"].values.ravel(),
            "significant": ["yes" if v < self.alpha else "no" for v in p],
            "value": acc, "label": labels, "acc_value": acc, "acc_label": labels,
            "text_color": ["black" if a > 0.8 else "white" for a in acc],
            **sensitivity_cells(self.result, self.alpha),
        }

    def _figure(self):
        concepts = [str(v) for v in self.result["concept"].values]
        layers = [str(v) for v in self.result["layer"].values]
        fig = figure(name="concept_heatmap", x_range=concepts, y_range=list(reversed(layers)), tools="tap,save,reset",
                     toolbar_location="above", height=140 + 42 * len(layers), min_width=480,
                     sizing_mode="stretch_width", x_axis_label="concept", y_axis_label="layer",
                     title=_HEAT_TITLES[0].format(alpha=self.alpha))
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
               ("its derivative adjusted p", "@sens_pvalue{0.0000}")] if "sens_value" in self.cells.data else []),
        ]))
        fig.select_one(TapTool).mode = "replace"
        fig.xaxis.major_label_orientation = 0.8
        fig.grid.grid_line_color = None
        fig.add_layout(ColorBar(color_mapper=mapper, title="balanced accuracy", width=12), "right")
        return fig

    @param.depends("layer", watch=True)
    def _show_layer(self):
        self.band.data = {"layer": [self.layer]}

    @param.depends("show", watch=True)
    def _show_values(self):
        i = _SHOW.index(self.show)
        if i == 1 and "sens_value" not in self.cells.data:
            raise ValueError("this result has no concept sensitivity: analyse it with gradients= (capture_gradients)")
        key = ("acc", "sens")[i]
        data = dict(self.cells.data)
        data["value"], data["label"] = data[f"{key}_value"], data[f"{key}_label"]
        data["text_color"] = ["black" if v > 0.8 else "white" for v in data["value"]]
        self.cells.data = data
        self.figure.title.text = _HEAT_TITLES[i].format(alpha=self.alpha)
        self.figure.select_one(ColorBar).title = ("balanced accuracy", "1 - p (sensitivity)")[i]
        if self.toggle.active != i:
            self.toggle.active = i

    def _on_tap(self, attr, old, new):
        if len(new) != 1:
            return
        self.param.update(layer=str(self.cells.data["layer"][new[0]]), concept=str(self.cells.data["concept"][new[0]]))

    def __panel__(self):
        return self._pane
