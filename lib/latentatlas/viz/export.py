"""Offline static HTML report of a comparison or a concept analysis: one self-contained file, no server.

Hover, zoom, box/lasso selection linked across the drill-down plots and click-a-cell-to-drill
all run in the browser (Bokeh data sources and a small Bokeh callback over precomputed
per-pair errors). What needs Python is replaced by its precomputed form: one tab per
level and metric, and a drop-down of structures in the 3D viewer (turned, zoomed and hovered in the
browser too).
"""

from __future__ import annotations

import base64
import mimetypes
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import panel as pn
from bokeh.resources import INLINE

from ..schema import METRICS, kind_of, metric_label
from .fre.app import INTRO, TITLE, metric_help
from ..schema import kind_of, metric_label
from .fre.data import METRICS, as_levels, default_pair, metrics_of, pair_table, pointwise_metrics_of, sample_dim
from .fre.model_map import model_map_figure
from .fre.drilldown import DrillDown
from .fre.matrix import FREMatrix
from .structure import structure_gallery

__all__ = ["export_html", "inline_cdn_links", "save_offline", "static_report"]

# Panel still points at its CDN for a few stylesheets and the favicon, in <link> tags and inside
# the embedded document's JSON; every such URL names a file of the installed panel/dist.
_PANEL_CDN = re.compile(r"https?://cdn\.holoviz\.org/panel/[^/\s\"']+/dist/([^\"'\s)?]+)(?:\?[^\"'\s)]*)?")


def _showcase(ds, metric: str, max_structures: int) -> list[int]:
    """Structures offered in the static 3D viewer: the worst-reconstructed first, one per subset."""
    table = pair_table(ds, metric)
    errors = ds[f"{metric}_pointwise"].sel(dict(zip(("source", "target"), default_pair(ds, metric)))).values
    worst = np.argsort(-errors)
    ordered = list(dict.fromkeys(table["structure"][worst].tolist()))
    per_subset = [ordered[[str(ds["subset"].values[s]) for s in ordered].index(sub)]
                  for sub in dict.fromkeys(str(ds["subset"].values[s]) for s in ordered)]
    chosen = list(dict.fromkeys(per_subset + ordered))[:max_structures]
    return sorted(chosen)


def static_report(comparison, *, max_structures: int = 40) -> pn.Column:
    """The dashboard in a form that needs no server (see module docstring)."""
    from ..dataset import frames_from_features

    levels = as_levels(comparison)
    tabs, seen, drills = [], set(), []
    for level, ds in levels.items():
        for metric in metrics_of(ds):
            seen.add(metric)
            matrix = FREMatrix(ds, metric=metric)
            pointwise = pointwise_metrics_of(ds)
            drill = DrillDown(ds, metric=metric if metric in pointwise else pointwise[0], pair=matrix.pair)
            drill.link(matrix.source)
            drills.append(drill)
            label = metric_label(metric)
            views = [matrix, *[pn.pane.Bokeh(f) for f in [model_map_figure(ds, metric)] if f is not None], drill]
            tabs.append((f"{label} · {level}", pn.Column(*views, sizing_mode="stretch_width")))
    first = next(iter(levels.values()))
    frames = frames_from_features(first)
    drill = drills[0]  # the first tab's: the 3D atoms take the errors of the pair clicked there
    chosen = _showcase(first, drill.metric, max_structures)
    labels = [f"{k}: {frames[k].get_chemical_formula()} ({first['subset'].values[k]})" for k in chosen]
    bounds = np.concatenate([[0], np.cumsum(first["n_atoms"].values)])
    per_atom = sample_dim(first, drill.metric) == "atom"
    samples = [np.arange(bounds[k], bounds[k + 1]) if per_atom else np.full(bounds[k + 1] - bounds[k], k)
               for k in chosen]
    structures = pn.pane.Bokeh(structure_gallery(
        [frames[k] for k in chosen], labels, "structure ", points=drill.points, mapper=drill.mapper, samples=samples,
        error_label=f"{drill.label} (pair clicked in the first tab)"), sizing_mode="stretch_width")
    return pn.Column(
        pn.pane.Markdown(f"# {TITLE}\n{INTRO}.\n\n*Static report: click a matrix cell to drill down; "
                         "box-select in one drill-down plot highlights the same samples in the other.*",
                         sizing_mode="stretch_width"),
        pn.pane.Markdown(metric_help([m for m in METRICS if m in seen]), sizing_mode="stretch_width"),
        pn.Tabs(*tabs, sizing_mode="stretch_width", dynamic=False),
        pn.pane.Markdown(f"### Structures\n{len(chosen)} of {len(frames)} structures (the worst reconstructed, "
                         "at least one per subset); bonds, unit cell; positions in Å. Atoms are coloured by the "
                         "pointwise error of the pair clicked in the first tab's matrix, on its drill-down's "
                         "colour scale, and ringed in their element's Jmol colour."),
        structures,
        sizing_mode="stretch_width",
        max_width=1500,
    )


def inline_cdn_links(html: str) -> str:
    """Replace every Panel CDN URL (stylesheets, favicon) with a data: URI of the installed file.

    Raises
    ------
    ValueError
        A linked file is not shipped with the installed Panel (the export would need the network).
    """
    dist = Path(pn.__file__).parent / "dist"

    def replace(match: re.Match) -> str:
        path = dist / match.group(1)
        if not path.is_file():
            raise ValueError(f"the export links {match.group(0)}, which is not in the installed {dist}; "
                             "reinstall panel (pip install --force-reinstall panel)")
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"

    return _PANEL_CDN.sub(replace, html)


def save_offline(view, path: str | Path, *, title: str) -> Path:
    """Write a Panel ``view`` to ``path`` as one HTML file that opens with no network (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".html", dir=path.parent)
    os.close(fd)
    try:
        view.save(tmp, embed=True, resources=INLINE, title=title)
        html = inline_cdn_links(Path(tmp).read_text(encoding="utf-8"))
        Path(tmp).write_text(html, encoding="utf-8")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def export_html(result, path: str | Path, *, title: str = "latentatlas report", max_structures: int = 40) -> Path:
    """Write a self-contained offline HTML report of ``result`` to ``path`` (atomically).

    Parameters
    ----------
    result : xarray.Dataset or mapping label -> Dataset
        Output of :func:`latentatlas.compare.compare` (one or several levels), or a concept
        analysis (:func:`latentatlas.concepts.analyse_concepts`).
    path : str or Path
    max_structures : int
        Structures offered in the static 3D viewer of a comparison.
    """
    if kind_of(result) == "concepts":
        from .concepts.app import concept_report

        return save_offline(concept_report(result), path, title=title)
    return save_offline(static_report(result, max_structures=max_structures), path, title=title)
