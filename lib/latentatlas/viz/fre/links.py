"""What the FRE app does in the browser, declared once for Python and for JavaScript.

A static export has no Python behind it, yet a click on a matrix cell must still show that
pair in the drill-down. The browser therefore keeps the part of the state it must follow, the
selected pair, in one non-visual Bokeh model: :func:`browser_state`, a one-row
ColumnDataSource named ``fre_state`` with the row :func:`pair_row` (``source``, ``target``
and their positions ``i``, ``j`` among the comparison's feature sets). No plot title, tag or
label carries state.

Two declarations say what happens; Python and the browser both run them:

- :data:`CELL_TO_PAIR`: which column of a clicked matrix cell becomes which field of the row
  (Python: :func:`pair_from_cell`; browser: :func:`on_cell_click`).
- :class:`Follow`: which column of a view's data source is copied from which column of a
  precomputed store when the pair changes (templates over ``{i}`` and ``{j}``), which colour
  scale is fitted to which column (:func:`colour_range` in Python)
  and which text shows the pair (:data:`PAIR_TEXT`). Python: :meth:`Follow.apply`; browser:
  :func:`follow_pair`.

In a served app the browser runs the same step the server runs, so the drill-down moves
without waiting for the server; the server's identical values then change nothing.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
from bokeh.models import ColumnDataSource, CustomJS

from ..colour import COLOUR_PERCENTILE, colour_high

#: Field of the browser-side pair row <- column of the matrix's cells.
CELL_TO_PAIR = {"source": "source", "target": "target", "i": "i", "j": "j"}

#: Text that names the shown pair (fields of the row in braces), and how it continues.
PAIR_TEXT = "<b>{source}</b> → <b>{target}</b>"


def colour_range(values) -> tuple[float, float]:
    """``(low, high)`` of a colour scale over ``values``: from min(0, smallest) up by
    :func:`~latentatlas.viz.colour.colour_high` (for errors: 0 to the pair's error scale, the 3D viewer's too).

    The browser computes the same (:data:`_FOLLOW_JS`) for the pair it shows.
    """
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    return low, low + colour_high(values - low)


def pair_row(names, pair) -> dict[str, list]:
    """The browser-side row of ``pair`` = (source, target), given the comparison's feature set ``names``."""
    return {"source": [pair[0]], "target": [pair[1]], "i": [names.index(pair[0])], "j": [names.index(pair[1])]}


def state_row(state) -> dict[str, list]:
    """The browser-side row of an :class:`~latentatlas.viz.fre.state.FREState`'s pair."""
    return pair_row([str(s) for s in state.comparison["source"].values], state.pair)


def browser_state(state) -> ColumnDataSource:
    """The browser-side mirror of ``state.pair``, made once per state and shared by all its views.

    It follows the state's pair wherever the pair is set from (a click, the feature sets chooser, a new level).
    """
    if state.browser is None:
        state.browser = ColumnDataSource(state_row(state), name="fre_state")

        def sync(*_):
            row, shown = state_row(state), state.browser.data
            if (row["source"][0], row["target"][0]) != (str(shown["source"][0]), str(shown["target"][0])):
                state.browser.data = row

        state.param.watch(sync, ["pair", "comparison"])
    return state.browser


def pair_from_cell(cells: ColumnDataSource, index: int) -> dict[str, list]:
    """Python side of a click on cell ``index`` of the matrix: the pair row it selects."""
    return {name: [cells.data[column][index]] for name, column in CELL_TO_PAIR.items()}


_CELL_JS = """
const k = cells.selected.indices;
if (k.length != 1) { return; }
const row = {};
for (const [name, column] of Object.entries(fields)) { row[name] = [cells.data[column][k[0]]]; }
if (row.source[0] != state.data.source[0] || row.target[0] != state.data.target[0]) { state.data = row; }
"""


def on_cell_click(cells: ColumnDataSource, state: ColumnDataSource) -> None:
    """Browser side of a click on a matrix cell: :data:`CELL_TO_PAIR` from the clicked cell into ``state``."""
    cells.selected.js_on_change("indices", CustomJS(args=dict(cells=cells, state=state, fields=CELL_TO_PAIR),
                                                    code=_CELL_JS))


def _fill(template: str, row: dict, escape: bool = False) -> str:
    """``template`` with ``{field}`` replaced by the row's value (as the browser does: no format spec).

    ``escape``: HTML-escape the values (feature set names are the user's, shown as HTML).
    """
    for name, values in row.items():
        value = str(values[0])
        template = template.replace("{" + name + "}", html.escape(value, quote=False) if escape else value)
    return template


@dataclass
class Follow:
    """How one view follows the pair: data columns from a store, a colour scale, a text.

    Attributes
    ----------
    target, store : ColumnDataSource
        The view's data and the precomputed columns of every pair.
    columns : dict of str -> str
        Column of ``target`` <- store column template (``{i}``: source position, ``{j}``: target's).
    mapper : bokeh ColorMapper, optional
        Fitted (:func:`colour_range`) to ``target``'s column ``colour``.
    text : bokeh Div, optional
        Shows :data:`PAIR_TEXT` followed by ``suffix``.
    """

    target: ColumnDataSource
    store: ColumnDataSource
    columns: dict[str, str]
    mapper: object = None
    colour: str = "colour"
    text: object = None
    suffix: str = ""
    callback: CustomJS = field(default=None, init=False)

    def apply(self, row: dict) -> None:
        """Python side: the same step as the browser's, skipped where the browser already made it."""
        data = self.target.data
        new = {c: self.store.data[_fill(t, row)] for c, t in self.columns.items()}
        changed = {c: v for c, v in new.items() if not _same(data.get(c), v)}
        if changed:
            self.target.data.update(changed)
        if self.mapper is not None:
            self.mapper.update(**dict(zip(("low", "high"), colour_range(self.target.data[self.colour]))))
        if self.text is not None:
            self.text.text = _fill(PAIR_TEXT, row, escape=True) + self.suffix

    def args(self) -> dict:
        return dict(target=self.target, store=self.store, columns=self.columns, mapper=self.mapper,
                    colour=self.colour, text=self.text, suffix=self.suffix)

    def refresh(self, row: dict) -> None:
        """After ``columns`` or ``suffix`` changed (served app): new browser arguments, then :meth:`apply`."""
        if self.callback is not None:
            self.callback.args = {**self.callback.args, "follows": [self.args()]}
        self.apply(row)


def _same(old, new) -> bool:
    if old is None or len(old) != len(new):
        return False
    try:
        return np.array_equal(np.asarray(old, float), np.asarray(new, float), equal_nan=True)
    except (TypeError, ValueError):
        return list(old) == list(new)


_FOLLOW_JS = """
const row = state.data;
const escape = (v) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fill = (t, html) => Object.keys(row).reduce(
  (s, k) => s.split('{' + k + '}').join(html ? escape(String(row[k][0])) : String(row[k][0])), t);
for (const f of follows) {
  const d = Object.assign({}, f.target.data);
  for (const [column, template] of Object.entries(f.columns)) { d[column] = f.store.data[fill(template)]; }
  f.target.data = d;
  if (f.mapper != null) {
    const finite = Array.from(d[f.colour]).filter(Number.isFinite).sort((a, b) => a - b);
    const low = finite.length ? Math.min(0, finite[0]) : 0;
    const high = finite.length ? finite[Math.floor(pct / 100 * (finite.length - 1))] : 1;
    f.mapper.low = low;
    f.mapper.high = high > low ? high : low + 1;
  }
  if (f.text != null) { f.text.text = fill(text, true) + f.suffix; }
}
"""


def follow_pair(state: ColumnDataSource, follow: Follow) -> None:
    """Browser side of :class:`Follow`: run it whenever ``state`` (the pair row) changes."""
    follow.callback = CustomJS(args=dict(state=state, follows=[follow.args()], pct=COLOUR_PERCENTILE, text=PAIR_TEXT),
                               code=_FOLLOW_JS)
    state.js_on_change("data", follow.callback)
