"""Drill-down into the selected (source, target) pair: per-sample values on a map and per subset.

Both plots draw the same Bokeh data source, so a box or lasso selection in one highlights
the same samples in the other, in the browser, with or without a server. Every pair's
values are precomputed into a store, and what a new pair changes is declared once
(:class:`~latentatlas.viz.fre.links.Follow`), so a click on the matrix updates the plots in
the browser too; that is also what keeps the static export interactive.

The per-sample values come from one train/test split (:func:`latentatlas.compare.compare`
keeps the first split's); the heading above the plots names it, next to the matrix's mean
over all splits.
"""

from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColorBar, ColumnDataSource, Div, HoverTool
from bokeh.plotting import figure
from bokeh.transform import jitter

from ...schema import metric_label
from ..colour import error_mapper
from .data import metric_unit, pair_key, pair_table, sample_dim, sample_properties, selection_csv, split_note
from .help import colour_title, ends_formatter, help_icon
from .links import Follow, browser_state, follow_pair, state_row
from .state import VALUE, FREView, pc_name

_QUANTILES = ("lo", "q1", "q2", "q3", "hi")


def _template(choice: str, ds) -> str:
    """Store column (template over the pair's positions ``{i}``, ``{j}``) holding a map choice."""
    if choice == VALUE:
        return "e{i}_{j}"
    for k in range(ds.sizes["pc"]):
        if choice == pc_name(k):
            return f"pc{k}_{{i}}"
    return f"prop_{choice}"


def _quartiles(values: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """(5, n_subsets): lower whisker, quartiles, upper whisker (1.5 IQR) of ``values`` in each subset."""
    q = np.array([np.nanpercentile(values[m], [0, 25, 50, 75, 100]) for m in masks]).T
    iqr = q[3] - q[1]
    q[0] = [np.nanmin(values[m][values[m] >= lo]) for m, lo in zip(masks, q[1] - 1.5 * iqr)]
    q[4] = [np.nanmax(values[m][values[m] <= hi]) for m, hi in zip(masks, q[3] + 1.5 * iqr)]
    return q


class DrillDown(FREView):
    """Per-sample values of ``state.pair``: a map (PCs of the source, or the axes chosen) and a strip per subset.

    Selecting samples (tap, box or lasso) sets ``state.selection``; the state then opens the
    structure of the worst selected sample. A button downloads the selection (CSV).

    Parameters: see :class:`~latentatlas.viz.fre.state.FREView`; ``offline=True`` (static export)
    leaves out the controls that need Python (map axes and colour, selection download).
    """

    def __init__(self, comparison=None, *, state=None, **params):
        super().__init__(comparison, state=state, **params)
        state = self.state
        self.points, self.store = ColumnDataSource(), ColumnDataSource()
        self.box, self.boxstore = ColumnDataSource(), ColumnDataSource()
        self.mapper = error_mapper()  # the 3D viewer's scale too (viz/colour.py)
        self.heading = Div(name="drill_pair", sizing_mode="stretch_width")
        self._fill()
        self.map, self.strip = self._figures()
        self.follows = [Follow(self.points, self.store, self._columns(), mapper=self.mapper, text=self.heading,
                               suffix=self._suffix()),
                        Follow(self.box, self.boxstore, {q: q + "{i}_{j}" for q in _QUANTILES})]
        browser = browser_state(state)
        for follow in self.follows:
            follow_pair(browser, follow)
            follow.apply(state_row(state))
        self._restyle()
        self.points.selected.on_change("indices", self._on_select)
        state.param.watch(self._on_state, ["comparison", "drill_metric", "pair", "selection", "map_x", "map_y",
                                           "map_colour"])
        controls = [] if self.offline else [
            pn.widgets.Select.from_param(state.param.map_x, name="Map: x axis", width=170),
            pn.widgets.Select.from_param(state.param.map_y, name="y axis", width=170),
            pn.widgets.Select.from_param(state.param.map_colour, name="colour", width=170),
            pn.widgets.FileDownload(callback=self._selection_csv, filename="selection.csv", label="Selection (CSV)",
                                    align="end"),
        ]
        self._pane = pn.Column(
            pn.pane.Bokeh(self.heading, sizing_mode="stretch_width"),
            *([pn.Row(*controls, sizing_mode="stretch_width")] if controls else []),
            pn.Row(
                pn.Column(help_icon("drill_map"), pn.pane.Bokeh(self.map, sizing_mode="stretch_width"),
                          sizing_mode="stretch_width"),
                pn.Column(help_icon("drill_strip"), pn.pane.Bokeh(self.strip, sizing_mode="stretch_width"),
                          sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    def _suffix(self) -> str:
        """Heading after the pair: what the values are, their unit, and which split they come from."""
        ds, metric = self.state.comparison, self.state.drill_metric
        return (f": {metric_label(metric)} of each test {sample_dim(ds, metric)} ({metric_unit(metric)}) — "
                f"{split_note(ds, metric)}")

    def _columns(self) -> dict[str, str]:
        ds, s = self.state.comparison, self.state
        return {"error": "e{i}_{j}", "x": _template(s.map_x, ds), "y": _template(s.map_y, ds),
                "colour": _template(s.map_colour, ds)}

    def _fill(self):
        """(Re)compute the precomputed stores for the state's comparison and per-sample metric."""
        ds, metric = self.state.comparison, self.state.drill_metric
        names = [str(s) for s in ds["source"].values]
        table = pair_table(ds, metric)
        dim = sample_dim(ds, metric)
        pointwise = ds[f"{metric}_pointwise"].values
        pca = ds["pca"].transpose("source", dim, "pc").values[:, table["sample"]]
        store = {f"prop_{k}": v for k, v in sample_properties(ds, metric).items()}
        boxstore = {}
        subsets = np.unique(table["subset"])
        masks = [table["subset"] == s for s in subsets]
        for i in range(len(names)):
            store.update({f"pc{k}_{i}": pca[i, :, k] for k in range(pca.shape[2])})
            for j in range(len(names)):
                key = pair_key(i, j)
                store[f"e{key}"] = pointwise[i, j]
                boxstore.update({f"{q}{key}": row for q, row in zip(_QUANTILES, _quartiles(pointwise[i, j], masks))})
        self.store.data, self.boxstore.data = store, boxstore
        blank = np.full(table["sample"].size, np.nan)
        self.points.data = {**table, "error": blank, "x": blank, "y": blank, "colour": blank}
        self.box.data = {"subset": subsets, **{q: np.full(subsets.size, np.nan) for q in _QUANTILES}}

    def _figures(self):
        tools = "tap,box_select,lasso_select,wheel_zoom,pan,reset,save"
        hover = HoverTool(tooltips=[
            ("structure", "@structure (@formula, @subset)"),
            ("sample", "@sample @element"),
            ("value", "@error{0.0000}"),
        ])
        fmap = figure(name="drill_map", tools=tools, active_drag="box_select", height=360, min_width=300,
                      sizing_mode="stretch_width")
        fmap.scatter(
            "x", "y", source=self.points, size=6, line_color=None,
            fill_color={"field": "colour", "transform": self.mapper},
            selection_line_color="black", nonselection_fill_alpha=0.15,
        )
        fmap.add_tools(hover)
        self.colorbar = ColorBar(color_mapper=self.mapper, width=12)
        fmap.add_layout(self.colorbar, "right")
        strip = figure(
            name="drill_strip", x_range=list(self.box.data["subset"]), tools=tools, active_drag="box_select",
            height=360, min_width=300, sizing_mode="stretch_width", x_axis_label="subset",
        )
        strip.vbar("subset", 0.7, "q1", "q3", source=self.box, fill_color="lightsteelblue", line_color="steelblue", alpha=0.6)
        strip.segment("subset", "lo", "subset", "hi", source=self.box, line_color="steelblue")
        strip.scatter("subset", "q2", source=self.box, marker="dash", size=28, line_color="navy", line_width=2)
        strip.scatter(
            jitter("subset", width=0.5, range=strip.x_range, distribution="uniform"), "error",
            source=self.points, size=4, line_color=None,
            fill_color={"field": "colour", "transform": self.mapper},
            nonselection_fill_alpha=0.15, selection_fill_color="black",
        )
        strip.add_tools(hover)
        strip.xaxis.major_label_orientation = 0.6
        return fmap, strip

    def _restyle(self):
        """Axis labels, colour bar and strip categories for the state's choices."""
        s, label = self.state, metric_label(self.state.drill_metric)
        name = lambda choice: f"{label} of the pair" if choice == VALUE else choice  # noqa: E731
        self.map.xaxis.axis_label, self.map.yaxis.axis_label = name(s.map_x), name(s.map_y)
        value = s.map_colour == VALUE
        self.colorbar.title = colour_title(s.drill_metric) if value else s.map_colour
        self.colorbar.formatter = ends_formatter(s.drill_metric if value else None)
        self.strip.yaxis.axis_label = colour_title(s.drill_metric)
        self.strip.title.text = f"Per subset (box: quartiles; one dot per test {sample_dim(s.comparison, s.drill_metric)})"
        self.strip.x_range.factors = list(self.box.data["subset"])

    def _on_state(self, *events):
        changed = {e.name for e in events}
        if changed & {"comparison", "drill_metric"}:
            self._fill()
        row = state_row(self.state)
        if changed & {"comparison", "drill_metric", "map_x", "map_y", "map_colour"}:
            self.follows[0].columns, self.follows[0].suffix = self._columns(), self._suffix()
            for follow in self.follows:
                follow.refresh(row)  # new columns: the browser's copy of the table too
            self._restyle()
        elif "pair" in changed:
            for follow in self.follows:
                follow.apply(row)
        if list(self.points.selected.indices) != list(self.state.selection):
            self.points.selected.indices = list(self.state.selection)

    def _on_select(self, attr, old, new):
        if list(new) != list(self.state.selection):
            self.state.selection = [int(k) for k in new]

    def _selection_csv(self):
        from io import StringIO

        s = self.state
        return StringIO(selection_csv(s.comparison, s.drill_metric, s.pair, s.selection))

    def __panel__(self):
        return self._pane
