"""Heatmap of one metric over source x target feature sets, with its downloads and learning curve."""

from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColorBar, ColumnDataSource, HoverTool, LinearColorMapper, TapTool, Whisker
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from ...diagnostics import cell_marks, cell_notes
from ...schema import metric_label
from .data import learning_curve_of, matrix_csv, matrix_netcdf
from .help import colour_title, ends_formatter, help_icon
from .links import browser_state, on_cell_click, pair_from_cell
from .state import FREView

#: Hover note on GFRD's diagonal (the help says more: data.GFRD_DIAGONAL).
_GFRD_SELF = "GFRD(A, A) > 0: a regularised map fitted on training samples is not exactly a rotation on held-out ones"


class FREMatrix(FREView):
    """Sources x targets heatmap of ``state.metric``; clicking a cell sets ``state.pair``.

    Hovering a cell shows the mean over splits, its standard deviation (the spread) and its
    diagnostics (:mod:`latentatlas.diagnostics`), whose marks follow the value in the cell.
    When the comparison holds a learning curve (``latentatlas fre --learning-curve``), a
    small plot below shows it for the selected pair. Buttons download the matrix shown (CSV,
    netCDF).

    Parameters: see :class:`~latentatlas.viz.fre.state.FREView`; ``offline=True`` (static export)
    embeds the CSV download when the view is built (and offers no netCDF).
    """

    def __init__(self, comparison=None, *, state=None, **params):
        super().__init__(comparison, state=state, **params)
        state = self.state
        self.source = ColumnDataSource(self._cells())
        self.mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0)
        self.figure = self._figure()
        self._restyle()
        self.source.selected.on_change("indices", self._on_tap)
        on_cell_click(self.source, browser_state(state))
        self.curve = ColumnDataSource(self._curve())
        self._curve_pane = pn.pane.Bokeh(self._curve_figure())
        self._show_curve()
        # a static report embeds the CSV only: the netCDF of every tab would add about 0.6 MB to it
        self._downloads = [
            pn.widgets.FileDownload(callback=self._csv, filename=self._filename("csv"), label="Matrix (CSV)",
                                    embed=self.offline),
            *([] if self.offline else [pn.widgets.FileDownload(callback=self._netcdf, filename=self._filename("nc"),
                                                               label="Matrix (netCDF)")]),
        ]
        self._pane = pn.Column(
            pn.Row(help_icon("fre_matrix"), *self._downloads),
            pn.pane.Bokeh(self.figure, sizing_mode="stretch_width"),
            self._curve_pane,
            sizing_mode="stretch_width",
        )
        state.param.watch(self._on_state, ["comparison", "metric", "sources", "pair"])

    @property
    def names(self) -> list[str]:
        """Every feature set of the comparison, in its order (rows and columns are a subset)."""
        return self.state.param.sources.objects

    def _cells(self) -> dict[str, np.ndarray]:
        metric, sources = self.state.metric, list(self.state.sources)
        ds = self.state.comparison.sel(source=sources, target=sources)
        src, tgt = np.meshgrid(ds["source"].values.astype(str), ds["target"].values.astype(str), indexing="ij")
        value = ds[metric].values
        spread = ds[f"{metric}_std"].values if f"{metric}_std" in ds else np.full(value.shape, np.nan)
        flags = ds[f"{metric}_flags"].values.ravel() if f"{metric}_flags" in ds else np.zeros(value.size, int)
        marks = [cell_marks(f) for f in flags]
        notes = [[*cell_notes(ds, metric, s, t), *([_GFRD_SELF] if metric == "gfrd" and s == t else [])]
                 for s, t in zip(src.ravel(), tgt.ravel())]
        return {
            "source": src.ravel(),
            "target": tgt.ravel(),
            "i": np.array([self.names.index(s) for s in src.ravel()], int),
            "j": np.array([self.names.index(t) for t in tgt.ravel()], int),
            "value": value.ravel(),
            "spread": spread.ravel(),
            "label": np.array([f"{v:.2f}{m}" for v, m in zip(value.ravel(), marks)]),
            "notes": np.array(["; ".join(n) or "none" for n in notes]),
            # dark text on the light (high) end of Viridis, light text on the dark end
            "text_color": np.where(value.ravel() > 0.6 * np.nanmax(value), "black", "white"),
        }

    def _figure(self):
        names = list(self.state.sources)
        fig = figure(
            name="fre_matrix",
            x_range=names,
            y_range=list(reversed(names)),
            tools="tap,save,reset",
            toolbar_location="above",
            height=380 + 12 * len(names),
            min_width=340,
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
        metric = self.state.metric
        values = self.source.data["value"]
        self.mapper.high = float(max(np.nanmax(values), 1e-12)) if values.size else 1.0
        self.colorbar.title = colour_title(metric)
        self.colorbar.formatter = ends_formatter(metric)
        self.figure.title.text = f"{metric_label(metric)}, mean over splits — click a cell"
        self._select_cell()

    def _select_cell(self):
        cells = list(zip(self.source.data["source"], self.source.data["target"]))
        want = tuple(self.state.pair)
        self.source.selected.indices = [cells.index(want)] if want in cells else []

    def _on_state(self, *events):
        if {e.name for e in events} == {"pair"}:
            self._select_cell()
        else:
            self.source.data = self._cells()
            names = list(self.state.sources)
            self.figure.x_range.factors = names
            self.figure.y_range.factors = list(reversed(names))
            self._restyle()
            for button, ext in zip(self._downloads, ("csv", "nc")):  # (no netCDF button offline)
                button.filename = self._filename(ext)
        self.curve.data = self._curve()
        self._show_curve()

    def _show_curve(self):
        # the figure too: a hidden pane alone still drew its figure in the served template
        self._curve_pane.visible = self._curve_pane.object.visible = self._has_curve()

    def _filename(self, ext: str) -> str:
        return f"{self.state.metric}_matrix.{ext}"

    def _csv(self):
        from io import StringIO

        return StringIO(matrix_csv(self.state.comparison, self.state.metric, self.state.sources))

    def _netcdf(self):
        from io import BytesIO

        return BytesIO(matrix_netcdf(self.state.comparison, self.state.metric, self.state.sources))

    def _has_curve(self) -> bool:
        return learning_curve_of(self.state.comparison, self.state.metric, *self.state.pair) is not None

    def _curve(self) -> dict[str, np.ndarray]:
        curve = learning_curve_of(self.state.comparison, self.state.metric, *self.state.pair)
        if curve is None:
            return {"n_train": [], "value": [], "low": [], "high": []}
        n_train, value, spread = curve
        return {"n_train": n_train, "value": value, "low": value - spread, "high": value + spread}

    def _curve_figure(self):
        fig = figure(height=220, width=340, tools="save", toolbar_location=None, x_axis_label="training structures",
                     y_axis_label="value (same test half)", title="Learning curve of the pair (mean ± sd)",
                     name="learning_curve")
        fig.line("n_train", "value", source=self.curve)
        fig.scatter("n_train", "value", source=self.curve, size=5)
        fig.add_layout(Whisker(base="n_train", lower="low", upper="high", source=self.curve))
        return fig

    def _on_tap(self, attr, old, new):
        if len(new) != 1:
            return
        row = pair_from_cell(self.source, new[0])
        pair = (str(row["source"][0]), str(row["target"][0]))
        if pair != tuple(self.state.pair):
            self.state.pair = pair

    def __panel__(self):
        return self._pane
