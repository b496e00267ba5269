"""What the concept app shows, in one place, and the one description of how views follow it.

:class:`ConceptState` holds the choice (result, layer, node, concept, class, heatmap values);
every view reads it. A static HTML export has no Python, so the browser keeps a twin of the
state (:class:`StateModel`, a Bokeh data model) and the views' browser-side behaviour is
generated from declarations that Python evaluates too:

- :class:`Show`: a Bokeh property shows ``table[state.<param>]`` (a data source's columns at the
  chosen layer, a title, a selection);
- :class:`PickValue`: a widget sets a state parameter (the layer selector, the heatmap toggle);
- :class:`PickRow`: a tap sets state parameters from columns of the tapped row ("" leaves one as it is).

:func:`link` writes each declaration once as a browser callback on the state's one twin and keeps
Python and the twin equal. Where a change comes from decides where views are redrawn: a change made in the browser
is drawn there at once and only mirrored into :class:`ConceptState` (nothing is sent back, so a
slow server can never answer with an older choice than the user's latest); a change made in
Python (a notebook, a server-side widget) is drawn by Python and sent to the browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import param
import xarray as xr
from bokeh.core.properties import String
from bokeh.model import DataModel, Model
from bokeh.models import CustomJS

__all__ = ["SHOW", "ConceptState", "PickRow", "PickValue", "Show", "StateModel", "link"]

#: what the heatmap's cells can show
SHOW = ("probe accuracy", "sensitivity")
#: the state parameters the browser holds
SHARED = ("layer", "node", "concept", "class_name", "show")


class ConceptState(param.Parameterized):
    """The concept app's selection; every view depends on it. Values are names, as in the result."""

    result = param.ClassSelector(class_=xr.Dataset, doc="The concept analysis shown")
    layer = param.Selector(objects=[], doc="Layer whose graph, heatmap row and examples are shown")
    node = param.String(default="", doc="Graph node whose profile is shown ('concept:<k>', 'class:<c>' or 'layer:<l>')")
    concept = param.Selector(objects=[], doc="Concept whose examples are shown")
    class_name = param.Selector(objects=[], label="Class", doc="Class whose examples are shown")
    show = param.Selector(objects=list(SHOW), default=SHOW[0], doc="What the heatmap's cells show")

    def __init__(self, result: xr.Dataset, **params):
        """Open on ``params``, else on the result's most telling link (:func:`~.data.default_selection`)."""
        from .data import derive

        super().__init__(result=result)
        # the choices are this result's (on the instance's parameters: another state may show another result)
        for name, dim in (("layer", "layer"), ("concept", "concept"), ("class_name", "class")):
            self.param[name].objects = [str(v) for v in result[dim].values]
        layer, concept, cls = derive(result).opening
        params = {"layer": layer, "concept": concept, "class_name": cls, **params}
        params.setdefault("node", f"concept:{params['concept']}")
        self.param.update(params)


class StateModel(DataModel):
    """The browser's twin of :class:`ConceptState` (its :data:`SHARED` parameters, as text)."""

    layer = String()
    node = String()
    concept = String()
    class_name = String()
    show = String()


@dataclass(frozen=True)
class Show:
    """``model.<attr>`` shows ``table[state.<param>]`` (values not in ``table`` leave it as it is)."""

    param: str
    model: Model
    attr: str
    table: dict

    def apply(self, value) -> None:
        if value in self.table:
            setattr(self.model, self.attr, self.table[value])


@dataclass(frozen=True)
class PickValue:
    """Changing ``widget.<attr>`` sets ``state.<param>`` to it (to ``values[it]`` for an index)."""

    widget: Model
    attr: str
    param: str
    values: tuple | None = None


@dataclass(frozen=True)
class PickRow:
    """Tapping one row of ``source`` sets each ``state.<param>`` to that row's ``columns[param]`` value ("": unchanged)."""

    source: Model
    columns: dict = field(default_factory=dict)

    def updates(self, index: int) -> dict:
        """The state parameters a tap on row ``index`` sets."""
        row = {p: str(self.source.data[c][index]) for p, c in self.columns.items()}
        return {p: v for p, v in row.items() if v != ""}


# The browser side of the declarations: one function each, the declaration's contents as arguments
# (a Show's table as JSON text: as a Bokeh value, every number in it would be walked and encoded per page).
_SHOW_JS = """
const table = JSON.parse(table_json, (key, v) => v === "NaN" ? NaN : v);
const value = state[param];
if (value in table) { model[attr] = table[value]; }
"""
_PICK_VALUE_JS = """
const value = widget[attr];
state[param] = values.length ? values[value] : value;
"""
_PICK_ROW_JS = """
const i = source.selected.indices;
if (i.length != 1) { return; }
for (const [param, column] of columns) {
    const value = String(source.data[column][i[0]]);
    if (value !== "") { state[param] = value; }
}
"""


def _nan_as_text(obj):
    """``obj`` with every float NaN as the text "NaN" (JSON has no NaN; the browser turns it back)."""
    if isinstance(obj, dict):
        return {k: _nan_as_text(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_as_text(v) for v in obj] if any(isinstance(v, (dict, list, tuple, float)) for v in obj) else obj
    return "NaN" if isinstance(obj, float) and obj != obj else obj


def _text(value) -> str:
    return "" if value is None else str(value)


class _Link:
    """The browser twin of one :class:`ConceptState`: keeps both equal and applies :class:`Show` declarations in Python."""

    def __init__(self, state: ConceptState):
        self.state, self.shows = state, []
        self.model = StateModel(name="concept_state", **{name: _text(getattr(state, name)) for name in SHARED})
        self._from_browser = False
        state.param.watch(self._on_state, list(SHARED))
        for name in SHARED:
            self.model.on_change(name, self._on_model)

    def _on_state(self, *events) -> None:
        self.model.update(**{e.name: _text(e.new) for e in events})  # no-op (no message) when already equal
        if self._from_browser:
            return  # the browser has drawn it already
        for event in events:
            for show in self.shows:
                if show.param == event.name:
                    show.apply(_text(event.new))

    def _on_model(self, attr, old, new) -> None:
        if _text(getattr(self.state, attr)) == new:
            return
        self._from_browser = True
        try:
            self.state.param.update({attr: new})
        finally:
            self._from_browser = False


def link(state: ConceptState, shows: list[Show] = (), picks: list[PickValue] = (), taps: dict | None = None) -> StateModel:
    """Write a view's declarations as browser callbacks on the twin of ``state`` and apply its shows in Python.

    Every view of one state shares one twin (made on the first call), so a choice made in the
    browser reaches all views there, without a round trip through the server.

    Parameters
    ----------
    shows, picks : the view's declarations
    taps : dict of TapTool -> PickRow
        The tap tool whose taps are each :class:`PickRow` (its callback runs on a user's tap only,
        never when a selection is set by a :class:`Show`).

    Returns
    -------
    StateModel
        The twin, holding ``state``'s current values.
    """
    if getattr(state, "_link", None) is None:
        state._link = _Link(state)
    twin = state._link
    twin.shows.extend(shows)
    for show in shows:
        twin.model.js_on_change(show.param, CustomJS(
            args=dict(state=twin.model, param=show.param, model=show.model, attr=show.attr,
                      table_json=json.dumps(_nan_as_text(show.table))),
            code=_SHOW_JS,
        ))
    for pick in picks:
        pick.widget.js_on_change(pick.attr, CustomJS(
            args=dict(state=twin.model, widget=pick.widget, attr=pick.attr, param=pick.param,
                      values=list(pick.values or ())),
            code=_PICK_VALUE_JS,
        ))
    for tool, pick in (taps or {}).items():
        tool.callback = CustomJS(args=dict(state=twin.model, source=pick.source, columns=list(pick.columns.items())),
                                 code=_PICK_ROW_JS)
    return twin.model
