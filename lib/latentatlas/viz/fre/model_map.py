"""Model map: feature sets placed by classical MDS of a comparison matrix (``<metric>_map``)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from ...schema import metric_label


def model_map_figure(ds: xr.Dataset, metric: str):
    """A small scatter of the feature sets on the first two MDS axes, coloured by model.

    Returns
    -------
    bokeh Figure, or None when ``ds`` has no ``<metric>_map`` (older files, non-finite matrices).
    """
    if f"{metric}_map" not in ds.data_vars:
        return None
    coords = ds[f"{metric}_map"].transpose("source", "axis").values
    names = [str(s) for s in ds["source"].values]
    models = [str(m) for m in ds["source_model"].values] if "source_model" in ds.coords else names
    palette = {m: Category10_10[i % 10] for i, m in enumerate(dict.fromkeys(models))}
    source = ColumnDataSource({"x": coords[:, 0], "y": coords[:, 1] if coords.shape[1] > 1 else np.zeros(len(names)),
                               "name": names, "colour": [palette[m] for m in models]})
    label = metric_label(metric)
    explained = ds[f"{metric}_map"].attrs.get("explained", float("nan"))
    fig = figure(height=320, width=420, tools="pan,wheel_zoom,reset,save", name="model_map",
                 title=f"Model map from {label} (MDS, {explained:.0%} of variance)",
                 x_axis_label="MDS 1", y_axis_label="MDS 2")
    fig.scatter("x", "y", source=source, size=11, color="colour", line_color="black")
    fig.text("x", "y", text="name", source=source, text_font_size="8pt", x_offset=7, y_offset=-4)
    fig.add_tools(HoverTool(tooltips=[("feature set", "@name"), ("position", "(@x{0.000}, @y{0.000})")]))
    return fig
