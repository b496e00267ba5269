"""Display a comparison inline in Jupyter."""

from __future__ import annotations

from pathlib import Path

import panel as pn

from .atlas import Atlas


def show(result=None, **params) -> Atlas:
    """The full dashboard for ``result``, ready to display as a notebook cell's output.

    Parameters
    ----------
    result : xarray.Dataset, mapping label -> Dataset, path, or None
        A comparison (:func:`latentatlas.compare.compare`), several levels of one, a netCDF file
        holding one, or None for the built-in demo comparison.
    **params
        Initial ``level`` / ``metric`` of :class:`~latentatlas.viz.Atlas`.

    Returns
    -------
    Atlas
        Its views (``.matrix``, ``.drill``, ``.viewer``) can also be displayed one by one.
    """
    pn.extension("plotly")  # loads plotly.js into the notebook; Bokeh is loaded by Panel itself
    return Atlas(str(result) if isinstance(result, Path) else result, **params)
