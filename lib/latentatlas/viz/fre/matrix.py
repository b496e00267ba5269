"""Heatmap of one FRE metric over source x target feature sets."""

from __future__ import annotations

import numpy as np
import panel as pn
import param
import xarray as xr
from bokeh.models import ColorBar, ColumnDataSource, HoverTool, LinearColorMapper, TapTool, Whisker
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from ...diagnostics import cell_marks, cell_notes
from ...schema import metric_label
from ...similarity.registry import MEASURES
from .data import check_comparison, default_pair, learning_curve_of, metric_unit, metrics_of, pair_key


class FREMatrix(pn.viewable.Viewer):
    """Sources x targets heatmap of a metric; clicking a cell sets :attr:`pair`.

    Hovering a cell shows the mean over splits, its standard deviation (the spread) and its
    diagnostics (:mod:`latentatlas.diagnostics`), whose marks follow the value in the cell.
    When the comparison holds a learning curve (``latentatlas fre --learning-curve``), a
    small plot below shows it for the selected pair.
    """

    comparison = param.ClassSelector(class_=xr.Dataset, doc="A comparison Dataset (latentatlas.compare)")
    metric = param.Selector(objects=["gfre"], doc="Metric shown")
    sources = param.ListSelector(default=[], objects=[], doc="Feature sets shown (rows and columns)")
    pair = param.Tuple(default=("", ""), length=2, doc="(source, target) of the selected cell")

    def __init__(self, comparison: xr.Dataset, **params):
        check_comparison(comparison)
        names = [str(s) for s in comparison["source"].values]
        metrics = metrics_of(comparison)
        self.param.metric.objects = metrics
        self.param.sources.objects = names
        params.setdefault("metric", metrics[0])
        params.setdefault("pair", default_pair(comparison, params["metric"]))
        params.setdefault("sources", names)
        super().__init__(comparison=comparison, **params)
        self.source = ColumnDataSource(self._cells())
        self.mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0)
        self.figure = self._figure()
        self._restyle()
        self.source.selected.on_change("indices", self._on_tap)
        self.curve = ColumnDataSource(self._curve())
        self._pane = pn.Column(pn.pane.Bokeh(self.figure, sizing_mode="stretch_width"),
                               pn.pane.Bokeh(self._curve_figure(), visible=self._has_curve()), sizing_mode="stretch_width")

    def _cells(self) -> dict[str, np.ndarray]:
        ds = self.comparison.sel(source=list(self.sources), target=list(self.sources))
        src, tgt = np.meshgrid(ds["source"].values.astype(str), ds["target"].values.astype(str), indexing="ij")
        value = ds[self.metric].values
        spread = ds[f"{self.metric}_std"].values if f"{self.metric}_std" in ds else np.full(value.shape, np.nan)
        key = np.array([self.key(s, t) for s, t in zip(src.ravel(), tgt.ravel())])
        flags = ds[f"{self.metric}_flags"].values.ravel() if f"{self.metric}_flags" in ds else np.zeros(value.size, int)
        marks = [cell_marks(f) for f in flags]
        notes = ["; ".join(cell_notes(ds, self.metric, s, t)) or "none" for s, t in zip(src.ravel(), tgt.ravel())]
        return {
            "source": src.ravel(),
            "target": tgt.ravel(),
            "value": value.ravel(),
            "spread": spread.ravel(),
            "label": np.array([f"{v:.2f}{m}" for v, m in zip(value.ravel(), marks)]),
            "notes": np.array(notes),
            # dark text on the light (high) end of Viridis, light text on the dark end
            "text_color": np.where(value.ravel() > 0.6 * np.nanmax(value), "black", "white"),
            "key": key,
        }

    def key(self, source: str, target: str) -> str:
        """Store key of a pair: positions in the comparison's full source list."""
        names = self.param.sources.objects
        return pair_key(names.index(source), names.index(target))

    def _figure(self):
        names = list(self.sources)
        fig = figure(
            name="fre_matrix",
            x_range=names,
            y_range=list(reversed(names)),
            tools="tap,save,reset",
            toolbar_location="above",
            height=420 + 12 * len(names),
            min_width=420,
            sizing_mode="stretch_width",
            x_axis_label="target (reconstructed)",
            y_axis_label="source (used to reconstruct)",
        )
        fig.rect(
            "target", "source", 1, 1, source=self.source, line_color="white",
            fill_color={"field": "value", "transform": self.mapper},
            nonselection_fill_alpha=1.0, selection_line_color="red", selection_line_width=3,
        )
        fig.text(
            "target", "source", text="label", source=self.source, text_align="center",
            text_baseline="middle", text_font_size="9pt", text_color="text_color",
            nonselection_text_alpha=1.0,
        )
        fig.add_tools(HoverTool(tooltips=[
            ("source → target", "@source → @target"),
            ("value", "@value{0.0000}"),
            ("spread (std over splits)", "±@spread{0.0000}"),
            ("caveats", "@notes"),
        ]))
        fig.select_one(TapTool).mode = "replace"
        fig.xaxis.major_label_orientation = 0.8
        fig.grid.grid_line_color = None
        self.colorbar = ColorBar(color_mapper=self.mapper, title="", width=14)
        fig.add_layout(self.colorbar, "right")
        return fig

    def _restyle(self):
        label = metric_label(self.metric)
        values = self.source.data["value"]
        self.mapper.high = float(max(np.nanmax(values), 1e-12)) if values.size else 1.0
        self.colorbar.title = f"{label} ({metric_unit(self.metric)}, mean over splits)"
        measure = MEASURES.get(self.metric)
        what = ("each pair of feature sets (symmetric)" if measure is not None and measure.symmetric
                else "reconstructing each target (column) from each source (row)")
        self.figure.title.text = f"{label}: {what} — click a cell"
        keys = list(self.source.data["key"])
        want = self.key(*self.pair) if set(self.pair) <= set(self.param.sources.objects) else None
        self.source.selected.indices = [keys.index(want)] if want in keys else []

    @param.depends("metric", "sources", watch=True)
    def _update(self):
        self.source.data = self._cells()
        self.curve.data = self._curve()
        self._pane[1].visible = self._has_curve()
        names = list(self.sources)
        self.figure.x_range.factors = names
        self.figure.y_range.factors = list(reversed(names))
        if names and not set(self.pair) <= set(names):
            # the selected pair lost a feature set: move the selection (and what follows it) to one still shown
            self.pair = default_pair(self.comparison.sel(source=names, target=names), self.metric)
        self._restyle()

    @param.depends("pair", watch=True)
    def _select_pair(self):
        self._restyle()
        self.curve.data = self._curve()

    def _has_curve(self) -> bool:
        return learning_curve_of(self.comparison, self.metric, *self.pair) is not None

    def _curve(self) -> dict[str, np.ndarray]:
        curve = learning_curve_of(self.comparison, self.metric, *self.pair)
        if curve is None:
            return {"n_train": [], "value": [], "low": [], "high": []}
        n_train, value, spread = curve
        return {"n_train": n_train, "value": value, "low": value - spread, "high": value + spread}

    def _curve_figure(self):
        fig = figure(height=220, width=420, tools="save", toolbar_location=None, x_axis_label="training structures",
                     y_axis_label="value (same test half)", title="Learning curve of the selected pair (mean ± sd)")
        fig.line("n_train", "value", source=self.curve)
        fig.scatter("n_train", "value", source=self.curve, size=5)
        fig.add_layout(Whisker(base="n_train", lower="low", upper="high", source=self.curve))
        return fig

    def _on_tap(self, attr, old, new):
        if len(new) != 1:
            return
        pair = (str(self.source.data["source"][new[0]]), str(self.source.data["target"][new[0]]))
        if pair != self.pair:
            self.pair = pair

    def __panel__(self):
        return self._pane
