"""Words on the FRE app's plots: a short "what is this?" per plot, units, and better/worse ends of colour bars.

One text per plot, shown by a help icon beside it (:func:`help_icon`), in the served app,
in notebooks and in the static export alike. Units come from
:func:`~latentatlas.viz.fre.data.metric_unit` only, so a colour bar and the help never disagree.
"""

from __future__ import annotations

import panel as pn
from bokeh.models import CustomJSTickFormatter

from ...schema import metric_label
from .data import GFRD_DIAGONAL, METRICS, lower_is_better, metric_unit

#: "What is this?" of each plot, by the Bokeh figure's name.
PLOT_HELP = {
    "fre_matrix": (
        "Each cell compares two feature sets: the row is the source, the column the target. For reconstruction "
        "errors (GFRE, LFRE) the value says how much of the target the source cannot reproduce linearly on "
        "held-out samples, in units of the target's standard deviation: 0 = the target is contained in the "
        "source, 1 = no better than predicting the mean. The value is the mean over all train/test splits; "
        "hover for its spread and caveats (marks after the value). Click a cell to see that pair on every "
        "test sample below."
    ),
    "drill_map": (
        "Every test sample of the selected pair, placed by the principal components of the source features "
        "(or what you choose for the axes) and coloured by its own value for the pair (or what you choose). "
        "Box- or lasso-select to highlight the same samples in the strip plot; the structure of the worst "
        "selected sample opens in 3D. The per-sample values come from one train/test split, named above the plots."
    ),
    "drill_strip": (
        "The same per-sample values, one column per subset of the data: box from the first to the third "
        "quartile, dash at the median, whiskers to 1.5 times the interquartile range. A subset whose samples "
        "sit high is one the source cannot reproduce the target on."
    ),
    "model_map": (
        "Feature sets placed so that their distances follow the matrix (classical multidimensional scaling of "
        "the symmetrised matrix): feature sets close together carry similar information. The title gives how "
        "much of the distances' variance the two axes keep."
    ),
    "structure": (
        "One structure in 3D: drag to turn, wheel to zoom, hover an atom for its index and element (and value). "
        "In the dashboard it is the structure holding the worst selected sample, atoms coloured by element "
        "(Jmol colours) or by the selected pair's per-atom value (grey: not in the test set); the static report "
        "offers the worst-reconstructed structures in a drop-down. Positions in Å."
    ),
}


def help_icon(plot: str) -> pn.widgets.TooltipIcon:
    """The "what is this?" icon of ``plot`` (a name of :data:`PLOT_HELP`)."""
    return pn.widgets.TooltipIcon(value=PLOT_HELP[plot], css_classes=[f"help-{plot}"], margin=(8, 4))


def metric_help(metrics) -> str:
    """Markdown list explaining each metric, with the unit its plots are labelled in."""
    lines = []
    for m in metrics:
        if m in METRICS:
            note = f" {GFRD_DIAGONAL}" if m == "gfrd" else ""
            lines.append(f"- **{METRICS[m][0]}** ({metric_unit(m)}): {METRICS[m][1]}{note}")
    return "\n".join(lines)


def colour_title(metric: str, what: str = "") -> str:
    """Colour bar title of ``metric``: label and unit, the same words as :func:`metric_help`."""
    return f"{what}{metric_label(metric)} ({metric_unit(metric)})"


_ENDS_JS = """
const text = Number.isInteger(tick) ? String(tick) : String(+tick.toPrecision(3));
if (index == 0) { return text + ' ' + low; }
if (index == ticks.length - 1) { return text + ' ' + high; }
return text;
"""


def ends_formatter(metric: str | None) -> CustomJSTickFormatter:
    """Tick labels of a colour bar that say which end is better for ``metric`` (none for a plain property)."""
    if metric is None:
        low = high = ""
    else:
        low, high = ("better", "worse") if lower_is_better(metric) else ("worse", "better")
    return CustomJSTickFormatter(args=dict(low=low, high=high), code=_ENDS_JS)
