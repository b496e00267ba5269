"""The FRE app's state: one ``param.Parameterized`` that every view of the app depends on.

:class:`FREState` holds what the user chose (level, metric, feature sets shown, the selected
pair, the selected samples, the drill-down map's axes and colour) and what follows from it
(the level's comparison, the metric with a per-sample form, the structure shown in 3D). Views
read it and write the parameter their own control sets; none copies a value into another
view. The state keeps itself consistent: a new level, metric or set of feature sets moves the
pair, the per-sample metric and the map's choices in one batch, so a view never sees a half
update.

The part of the state the browser must follow without a server (the selected pair) is
mirrored in a non-visual Bokeh model (:attr:`FREState.browser`, see
:mod:`latentatlas.viz.fre.links`).
"""

from __future__ import annotations

from pathlib import Path

import panel as pn
import param
import xarray as xr

from ...schema import metric_label
from .data import (as_levels, default_pair, demo_comparison_paths, load_levels, metrics_of, pointwise_metrics_of,
                   sample_properties, worst_sample)

#: Map axis or colour that is the selected pair's per-sample value (the others: PCs and sample properties).
VALUE = "value of the pair"


def pc_name(k: int) -> str:
    """Display name of principal component ``k`` (0-based) of the source features."""
    return f"PC {k + 1} of the source"


def read_levels(comparison) -> dict[str, xr.Dataset]:
    """Checked levels from a comparison Dataset, a mapping label -> Dataset, or path(s) of comparison files."""
    if isinstance(comparison, (str, Path, list, tuple)) or (
            isinstance(comparison, dict) and all(isinstance(v, (str, Path)) for v in comparison.values())):
        return load_levels(comparison)
    return as_levels(comparison)


def map_choices(ds: xr.Dataset, metric: str) -> list[str]:
    """What the drill-down map can put on an axis or in colour: the pair's value, PCs, sample properties."""
    return [VALUE, *(pc_name(k) for k in range(ds.sizes["pc"])), *sample_properties(ds, metric)]


class FREState(param.Parameterized):
    """Everything the FRE app shows, in one place.

    Parameters
    ----------
    comparison : xarray.Dataset, mapping label -> Dataset, or path(s) of comparison files
        One comparison, or several levels of one (atom level, structure level, ...).
    **params
        Initial values (``level``, ``metric``, ``pair``, ...).
    """

    levels = param.Dict(default={}, doc="Level label -> checked comparison Dataset (set through show)")
    level = param.Selector(objects=[], check_on_set=True,
                           doc="Level shown: atom-level or structure-level (cumulant) features")
    comparison = param.ClassSelector(class_=xr.Dataset, doc="The level's comparison (follows level)")
    metric = param.Selector(objects=[], check_on_set=True, doc="Metric of the matrix")
    drill_metric = param.Selector(objects=[], check_on_set=True,
                                  doc="Metric of the per-sample views: the matrix's, or (CKA, CCA, ... have no "
                                      "per-sample form) the first that has one")
    sources = param.ListSelector(default=[], objects=[], doc="Feature sets shown as rows and columns (none: all)")
    pair = param.Tuple(default=("", ""), length=2, doc="(source, target) of the selected cell")
    selection = param.List(default=[], item_type=int, doc="Selected test samples (positions in the level's test set)")
    sample = param.Integer(default=None, allow_None=True, doc="The worst selected sample (index along the atom or "
                                                              "structure dimension; None: nothing selected)")
    structure = param.Integer(default=0, bounds=(0, None), doc="Structure shown in 3D: the one holding the worst "
                                                               "selected sample (of all, before a selection)")
    map_x = param.Selector(objects=[], check_on_set=True, doc="Drill-down map: horizontal axis")
    map_y = param.Selector(objects=[], check_on_set=True, doc="Drill-down map: vertical axis")
    map_colour = param.Selector(objects=[], check_on_set=True, doc="Drill-down map and strip: colour")

    def __init__(self, comparison=None, **params):
        super().__init__()
        self.browser = None  # the browser-side mirror, made by the first view that needs it (links.browser_state)
        self.show(demo_comparison_paths() if comparison is None else comparison, **params)

    def show(self, comparison, **wanted):
        """Show other levels (a new file): everything else follows, keeping ``wanted`` values that fit."""
        levels = read_levels(comparison)
        self.param.level.objects = list(levels)
        self._settle(levels, wanted.pop("level", next(iter(levels))), **wanted)

    def _settle(self, levels, level, **wanted):
        """Set ``level`` and every parameter that depends on it in one batch, keeping ``wanted`` values that fit."""
        ds = levels[level]
        metrics, names = metrics_of(ds), [str(s) for s in ds["source"].values]
        # asked for: checked; carried over from another level: kept where it exists
        metric = wanted.get("metric", self.metric if self.metric in metrics else metrics[0])
        if metric not in metrics:
            raise ValueError(f"metric {metric!r} is not in the comparison; choose from {metrics}")
        if "pair" in wanted and not set(wanted["pair"]) <= set(names):
            raise ValueError(f"pair {tuple(wanted['pair'])} names a feature set not in the comparison; choose from {names}")
        sources = [s for s in wanted.get("sources", names) if s in names] or names
        values = dict(comparison=ds, metric=metric, sources=sources)
        values["pair"] = self._fitting_pair(ds, metric, sources, wanted.get("pair", self.pair))
        values["selection"] = list(wanted.get("selection", []))
        # one batch, choices (``objects``) included: a widget never sees the new level's choices with the old
        # value (the browser's feature-set chooser would send back an empty choice)
        with param.parameterized.batch_call_watchers(self):
            self.param.metric.objects = metrics
            self.param.sources.objects = names
            self.param.drill_metric.objects = pointwise_metrics_of(ds)
            values.update(self._follow_metric(ds, metric, wanted))
            sample, structure = worst_sample(ds, values["drill_metric"], values["pair"], values["selection"])
            values["sample"] = sample if values["selection"] else None
            values["structure"] = wanted.get("structure", structure)
            self.param.structure.bounds = (0, ds.sizes["structure"] - 1)
            if levels is not self.levels:
                values["levels"] = levels
            if self.level != level:
                values["level"] = level
            self.param.update(**values)
        # the rest of what was asked for (drill-down map axes and colour, ...), checked by param
        self.param.update(**{k: v for k, v in wanted.items() if k not in values})

    def _follow_metric(self, ds, metric, wanted=None) -> dict:
        """``drill_metric`` and the map's choices for ``metric``: as ``wanted`` (checked by param), else as they
        were where they still exist."""
        pointwise = pointwise_metrics_of(ds)
        drill = metric if metric in pointwise else pointwise[0]
        choices = map_choices(ds, drill)
        for name in ("map_x", "map_y", "map_colour"):
            self.param[name].objects = choices
        wanted = wanted or {}

        def pick(name, default):
            if name in wanted:
                return wanted[name]
            return getattr(self, name) if getattr(self, name) in choices else default

        return dict(drill_metric=drill, map_x=pick("map_x", pc_name(0)),
                    map_y=pick("map_y", pc_name(1) if ds.sizes["pc"] > 1 else VALUE),
                    map_colour=pick("map_colour", VALUE))

    @staticmethod
    def _fitting_pair(ds, metric, sources, pair) -> tuple[str, str]:
        """``pair`` if both feature sets are shown, else the least similar pair among those shown."""
        if set(pair) <= set(sources) and "" not in pair:
            return tuple(pair)
        return default_pair(ds.sel(source=sources, target=sources), metric)

    @param.depends("level", watch=True)
    def _new_level(self):
        if self.comparison is not self.levels[self.level]:
            self._settle(self.levels, self.level)

    @param.depends("metric", watch=True)
    def _new_metric(self):
        self.param.update(**self._follow_metric(self.comparison, self.metric))

    @param.depends("sources", watch=True)
    def _new_sources(self):
        if not self.sources:
            # none chosen shows all: also what the browser's chooser sends back when a new level replaces its options
            self.sources = list(self.param.sources.objects)
            return
        self.pair = self._fitting_pair(self.comparison, self.metric, self.sources, self.pair)

    @param.depends("selection", watch=True)
    def _new_selection(self):
        if self.selection:  # one update: the 3D viewer redraws once for the structure and its ringed atom
            sample, structure = worst_sample(self.comparison, self.drill_metric, self.pair, self.selection)
            self.param.update(sample=sample, structure=structure)

    @property
    def title(self) -> str:
        """``"<metric label> <source> → <target>"``: what the per-sample values shown are."""
        return f"{metric_label(self.drill_metric)} {self.pair[0]} → {self.pair[1]}"


def view_state(comparison, state: FREState | None, params: dict) -> FREState:
    """The state a view shows: the app's ``state``, or (a view shown alone) its own, made from ``comparison``.

    Parameters of the state given to the view (``metric=``, ``pair=``, ...) are taken out of ``params``.

    Raises
    ------
    ValueError
        Both or neither of ``comparison`` and ``state`` are given.
    """
    if (comparison is None) == (state is None):
        raise ValueError("give a view either a comparison (it then makes its own state) or the app's state=, not both")
    if state is not None:
        return state
    own = {k: params.pop(k) for k in list(params) if k in FREState.param and k != "name"}
    return FREState(comparison, **own)


class FREView(pn.viewable.Viewer):
    """A view of the FRE app: it shows ``state``, or (given a comparison instead) a state of its own.

    Parameters
    ----------
    comparison : xarray.Dataset, optional
        Shown alone: the view makes its own :class:`FREState` (``metric=``, ``pair=``, ... go to it).
    state : FREState, optional
        The app's state, shared with other views.
    """

    state = param.ClassSelector(class_=FREState, doc="What is shown (shared by the app's views)")
    offline = param.Boolean(default=False, doc="Built for a static export: nothing that needs Python runs it")

    def __init__(self, comparison=None, *, state=None, **params):
        state = view_state(comparison, state, params)
        super().__init__(state=state, **params)
