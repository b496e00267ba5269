"""Drill-down into one (source, target) pair: pointwise errors per subset and on a PCA map.

Both plots draw the same Bokeh data source, so a box or lasso selection in one highlights
the same samples in the other, in the browser, with or without a server. Every pair's
errors are precomputed into a store so a click on the heatmap updates the plots in the
browser too (:meth:`DrillDown.link`); that is also what keeps the static export interactive.
"""

from __future__ import annotations

import numpy as np
import panel as pn
import param
import xarray as xr
from bokeh.models import ColorBar, ColumnDataSource, CustomJS, HoverTool
from bokeh.plotting import figure
from bokeh.transform import jitter

from ...schema import metric_label
from ..colour import COLOUR_PERCENTILE as _COLOUR_PERCENTILE, colour_high as _colour_high, error_mapper
from .data import check_comparison, default_pair, pair_key, pair_table, pointwise_metrics_of, sample_dim

_QUANTILES = ("lo", "q1", "q2", "q3", "hi")

# Runs in the browser when a heatmap cell is clicked: swap in that pair's precomputed columns.
_SELECT_PAIR_JS = """
const i = heat.selected.indices;
if (i.length != 1) { return; }
const key = heat.data.key[i[0]];
const s = key.split('_')[0];
const d = Object.assign({}, points.data);
d.error = store.data['e' + key];
d.x = store.data['x' + s];
d.y = store.data['y' + s];
points.data = d;
const b = Object.assign({}, box.data);
for (const c of quantiles) { b[c] = boxstore.data[c + key]; }
box.data = b;
const finite = Array.from(d.error).filter(Number.isFinite).sort((a, b) => a - b);
const high = finite.length ? finite[Math.floor(pct / 100 * (finite.length - 1))] : 0;
mapper.high = high > 0 ? high : 1;
const suffix = title.text.slice(Math.max(title.text.indexOf(': pointwise'), 0));
title.text = heat.data.source[i[0]] + ' → ' + heat.data.target[i[0]] + suffix;
"""


#: Unit of the per-sample values of measures that are not in units of the target's spread.
_UNITS = {"gfrd": "dimensionless", "procrustes": "aligned distance, unit RMS", "procrustes_cca": "aligned distance, unit RMS",
          "mknn": "fraction of shared neighbours"}


class DrillDown(pn.viewable.Viewer):
    """Pointwise errors of one pair: per-subset distribution and PCA map of the source features.

    Selecting samples (tap, box or lasso) sets :attr:`sample` to the selected sample with the
    largest error and :attr:`structure` to the structure holding it.
    """

    comparison = param.ClassSelector(class_=xr.Dataset, doc="A comparison Dataset (latentatlas.compare)")
    metric = param.Selector(objects=["gfre"], doc="Metric whose pointwise errors are shown")
    pair = param.Tuple(default=("", ""), length=2, doc="(source, target) shown")
    structure = param.Integer(default=None, allow_None=True, doc="Structure of the selected sample")
    sample = param.Integer(default=None, allow_None=True,
                           doc="Selected sample with the largest error (index along the atom or structure dimension)")

    def __init__(self, comparison: xr.Dataset, **params):
        check_comparison(comparison)
        metrics = pointwise_metrics_of(comparison)
        self.param.metric.objects = metrics
        params.setdefault("metric", metrics[0])
        params.setdefault("pair", default_pair(comparison, params["metric"]))
        super().__init__(comparison=comparison, **params)
        self.names = [str(s) for s in comparison["source"].values]
        self.points = ColumnDataSource()
        self.store = ColumnDataSource()
        self.box = ColumnDataSource()
        self.boxstore = ColumnDataSource()
        self.mapper = error_mapper()
        self._fill()
        self.map, self.strip = self._figures()
        self._show_pair()
        self.points.selected.on_change("indices", self._on_select)
        self._pane = pn.Row(
            pn.pane.Bokeh(self.map, sizing_mode="stretch_width"),
            pn.pane.Bokeh(self.strip, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    @property
    def label(self) -> str:
        return metric_label(self.metric)

    @property
    def suffix(self) -> str:
        """Title after 'source → target' (shared with the browser-side update)."""
        unit = _UNITS.get(self.metric, "target σ")
        return f": pointwise {self.label} per test {sample_dim(self.comparison, self.metric)} ({unit})"

    def _fill(self):
        """(Re)compute the precomputed stores for the current metric."""
        ds = self.comparison
        table = pair_table(ds, self.metric)
        test = table["sample"]
        dim = sample_dim(ds, self.metric)
        pointwise = ds[f"{self.metric}_pointwise"].values
        pca = ds["pca"].transpose("source", dim, ...).values[:, test]
        store, boxstore = {}, {}
        subsets = np.unique(table["subset"])
        masks = [table["subset"] == s for s in subsets]
        for i in range(len(self.names)):
            store[f"x{i}"], store[f"y{i}"] = pca[i, :, 0], pca[i, :, 1]
            for j in range(len(self.names)):
                key = pair_key(i, j)
                errors = pointwise[i, j]
                store[f"e{key}"] = errors
                q = np.array([np.nanpercentile(errors[m], [0, 25, 50, 75, 100]) for m in masks]).T
                iqr = q[3] - q[1]
                q[0] = [np.nanmin(errors[m][errors[m] >= lo]) for m, lo in zip(masks, q[1] - 1.5 * iqr)]
                q[4] = [np.nanmax(errors[m][errors[m] <= hi]) for m, hi in zip(masks, q[3] + 1.5 * iqr)]
                for name, row in zip(_QUANTILES, q):
                    boxstore[f"{name}{key}"] = row
        self.store.data = store
        self.boxstore.data = boxstore
        self.points.data = {**table, "x": store["x0"], "y": store["y0"], "error": store["e0_0"]}
        self.box.data = {"subset": subsets, **{name: boxstore[f"{name}0_0"] for name in _QUANTILES}}
        self._shown = None

    def _figures(self):
        tools = "tap,box_select,lasso_select,wheel_zoom,pan,reset,save"
        hover = HoverTool(tooltips=[
            ("structure", "@structure (@formula, @subset)"),
            ("sample", "@sample @element"),
            ("error", "@error{0.0000}"),
        ])
        unit = sample_dim(self.comparison, self.metric)
        fmap = figure(
            name="drill_map", tools=tools, active_drag="box_select", height=380, min_width=360, sizing_mode="stretch_width",
            x_axis_label="PC 1 of the source features", y_axis_label="PC 2 of the source features",
        )
        fmap.scatter(
            "x", "y", source=self.points, size=6, line_color=None,
            fill_color={"field": "error", "transform": self.mapper},
            selection_line_color="black", nonselection_fill_alpha=0.15,
        )
        fmap.add_tools(hover)
        self.colorbar = ColorBar(color_mapper=self.mapper, title="pointwise error", width=12)
        fmap.add_layout(self.colorbar, "right")
        subsets = list(self.box.data["subset"])
        strip = figure(
            name="drill_strip", x_range=subsets, tools=tools, active_drag="box_select", height=380, min_width=360,
            sizing_mode="stretch_width", title=f"Distribution per subset (box: quartiles, whiskers 1.5 IQR; one dot per test {unit})",
            x_axis_label="subset", y_axis_label="pointwise error",
        )
        strip.vbar("subset", 0.7, "q1", "q3", source=self.box, fill_color="lightsteelblue", line_color="steelblue", alpha=0.6)
        strip.segment("subset", "lo", "subset", "hi", source=self.box, line_color="steelblue")
        strip.scatter("subset", "q2", source=self.box, marker="dash", size=28, line_color="navy", line_width=2)
        strip.scatter(
            jitter("subset", width=0.5, range=strip.x_range, distribution="uniform"), "error",
            source=self.points, size=4, line_color=None,
            fill_color={"field": "error", "transform": self.mapper},
            nonselection_fill_alpha=0.15, selection_fill_color="black",
        )
        strip.add_tools(hover)
        strip.xaxis.major_label_orientation = 0.6
        return fmap, strip

    def _restyle_axes(self):
        label = self.label
        self.colorbar.title = f"pointwise {label} (top: {_COLOUR_PERCENTILE}th percentile)"
        self.strip.yaxis.axis_label = f"pointwise {label}"
        self.strip.x_range.factors = list(self.box.data["subset"])

    def _show_pair(self):
        """Show :attr:`pair` from the store (the browser may already have done it: then skip)."""
        text = f"{self.pair[0]} → {self.pair[1]}{self.suffix}"
        if self._shown == text and self.map.title.text == text:
            return
        i, j = self.names.index(self.pair[0]), self.names.index(self.pair[1])
        key, store = pair_key(i, j), self.store.data
        self.points.data.update(x=store[f"x{i}"], y=store[f"y{i}"], error=store[f"e{key}"])
        self.box.data.update({name: self.boxstore.data[f"{name}{key}"] for name in _QUANTILES})
        self.mapper.high = _colour_high(store[f"e{key}"])
        self.map.title.text = text
        self._restyle_axes()
        self._shown = text

    @param.depends("metric", watch=True)
    def _new_metric(self):
        self._fill()
        self._show_pair()

    @param.depends("pair", watch=True)
    def _new_pair(self):
        self._show_pair()

    def _on_select(self, attr, old, new):
        if not new:
            return
        errors = np.asarray(self.points.data["error"])[new]
        best = new[int(np.nanargmax(errors))] if np.isfinite(errors).any() else new[0]
        self.param.update(sample=int(self.points.data["sample"][best]), structure=int(self.points.data["structure"][best]))

    def link(self, heat_source: ColumnDataSource) -> None:
        """Update these plots in the browser when a cell of ``heat_source`` (an FREMatrix) is clicked."""
        heat_source.selected.js_on_change("indices", CustomJS(
            args=dict(
                heat=heat_source, points=self.points, store=self.store, box=self.box,
                boxstore=self.boxstore, mapper=self.mapper, title=self.map.title,
                quantiles=list(_QUANTILES), pct=_COLOUR_PERCENTILE,
            ),
            code=_SELECT_PAIR_JS,
        ))

    def __panel__(self):
        return self._pane
