"""Display a comparison or a concept analysis inline in Jupyter."""

from __future__ import annotations

from pathlib import Path

import panel as pn

from .fre.app import Atlas
from .concepts.app import ConceptAtlas
from ..schema import kind_of


def show(result=None, **params) -> Atlas | ConceptAtlas:
    """The full dashboard for ``result``, ready to display as a notebook cell's output.

    Parameters
    ----------
    result : xarray.Dataset, mapping label -> Dataset, path, or None
        A comparison (:func:`latentatlas.compare.compare`), several levels of one, a concept
        analysis (:func:`latentatlas.concepts.analyse_concepts`), a netCDF file holding one
        of them, or None for the built-in demo comparison.
    **params
        Initial parameters of the viewer (``level`` / ``metric`` of
        :class:`~latentatlas.viz.Atlas`, ``layer`` of :class:`~latentatlas.viz.ConceptAtlas`).

    Returns
    -------
    Atlas or ConceptAtlas
        Their views (``.matrix``, ``.drill``, ``.viewer``; ``.graph``, ``.profile``,
        ``.heatmap``, ``.examples``) can also be displayed one by one.
    """
    # loads BokehJS and Panel into the notebook from the installed packages: by default Panel has the
    # browser fetch them from its CDN, and the views stay blank on a machine without internet
    pn.extension(inline=True)
    if isinstance(result, (str, Path)):
        from ..io import load

        result = load(result)
    if kind_of(result) == "concepts":
        return ConceptAtlas(result, **params)
    return Atlas(result, **params)
