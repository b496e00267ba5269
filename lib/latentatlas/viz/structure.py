"""3D structure viewer drawn with Bokeh alone: atoms in Jmol colours, bonds, unit cell, per-atom errors.

Python lays the scene out once per structure (atoms sorted far to near in a default view); the
browser turns it on drag and redraws it, sorted again by depth, in a small Bokeh callback. No 3D
library is loaded: plotly.js (4.8 MB) cost about a second of parsing on every page load. The same
callback works served, in notebooks and in a static HTML export.

Errors are coloured on the scale the drill-down uses (:mod:`latentatlas.viz.colour`), set per
(source, target) pair, never per structure; atoms coloured by error keep a ring in their element's
Jmol colour, and the legend names the elements. :class:`StructureViewer` adds the selected-atom
ring, structure-level errors (one per structure, shown on all its atoms), the download of the
pair's errors and a "What is this?" box.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
import panel as pn
import param
import xarray as xr
from bokeh.layouts import column
from bokeh.models import (CDSView, ColorBar, ColumnDataSource, CustomJS, DataRange1d, GroupFilter, HoverTool,
                          LegendItem, LinearColorMapper, Select)
from bokeh.plotting import figure
from bokeh.core.property.vectorization import field

from ..schema import check_comparison
from .colour import COLOUR_PERCENTILE, colour_high, error_mapper

_CELL_EDGES = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]
_OUTLINE = "#333333"  # atoms' outline when filled by element
_MARK = "#00a0ff"  # ring around the highlighted atom: a blue absent from Inferno and rare in Jmol colours
# Default view: turned off the cell axes so a cubic cell shows its depth.
_HOME = (np.array([[1.0, 0, 0], [0, np.cos(0.35), -np.sin(0.35)], [0, np.sin(0.35), np.cos(0.35)]])
         @ np.array([[np.cos(-0.5), 0, np.sin(-0.5)], [0, 1.0, 0], [-np.sin(-0.5), 0, np.cos(-0.5)]]))

# Runs in the browser on a drag (turn the scene), on reset (back to the default view) and when new
# 3D data arrives (redraw it as turned so far). ``turn`` holds, per browser, the turn (row-major 3x3,
# on top of the default view) and the last pointer position: a source not synced to the server.
_PROJECT_JS = """
const ev = cb_obj.event_name;
let t = Array.from(turn.data.state);
if (ev == 'reset') {
  t = [1, 0, 0, 0, 1, 0, 0, 0, 1, NaN, NaN];
} else if (ev == 'panstart') {
  turn.data = {state: t.slice(0, 9).concat([cb_obj.sx, cb_obj.sy])};
  return;
} else if (ev == 'pan') {
  const a = isFinite(t[9]) ? 0.01 * (cb_obj.sx - t[9]) : 0;
  const b = isFinite(t[10]) ? 0.01 * (cb_obj.sy - t[10]) : 0;
  // about the screen's vertical axis by a, then its horizontal axis by b: M = Rx(b) Ry(a)
  const ca = Math.cos(a), sa = Math.sin(a), cb = Math.cos(b), sb = Math.sin(b);
  const M = [ca, 0, sa, sb * sa, cb, -sb * ca, -cb * sa, sb, cb * ca];
  const R = new Array(9);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      R[3 * i + j] = M[3 * i] * t[j] + M[3 * i + 1] * t[3 + j] + M[3 * i + 2] * t[6 + j];
    }
  }
  t = R.concat([cb_obj.sx, cb_obj.sy]);
}
turn.data = {state: t};
const turned = (x, y, z) => [t[0] * x + t[1] * y + t[2] * z, t[3] * x + t[4] * y + t[5] * z,
                             t[6] * x + t[7] * y + t[8] * z];
const a = atoms3d.data, n = a.x.length;
const p = Array.from({length: n}, (_, i) => turned(a.x[i], a.y[i], a.z[i]));
const order = Array.from({length: n}, (_, i) => i).sort((i, j) => p[i][2] - p[j][2]);  // far first
const out = {};
for (const [k, col] of Object.entries(a)) { out[k] = order.map((i) => col[i]); }
out.x = order.map((i) => p[i][0]);
out.y = order.map((i) => p[i][1]);
out.z = order.map((i) => p[i][2]);
view.data = out;
const l = lines3d.data, m = l.x0.length;
const ends = {x0: [], y0: [], x1: [], y1: [], color: Array.from(l.color), width: Array.from(l.width)};
for (let i = 0; i < m; i++) {
  const [x0, y0] = turned(l.x0[i], l.y0[i], l.z0[i]);
  const [x1, y1] = turned(l.x1[i], l.y1[i], l.z1[i]);
  ends.x0.push(x0); ends.y0.push(y0); ends.x1.push(x1); ends.y1.push(y1);
}
lines.data = ends;
"""

# Static export: the structure picked in the drop-down replaces the scene's data; with a pair's errors
# (``points``: the drill-down's source, swapped in the browser when a matrix cell is clicked), its
# atoms take the errors of their samples, coloured by the drill-down's own mapper.
_PICK_JS = """
const s = scenes[pick.options.indexOf(pick.value)];
const atoms = Object.assign({}, s.atoms);
if (points != null) {
  const error = new Map();
  points.data.sample.forEach((q, i) => error.set(q, points.data.error[i]));
  atoms.error = Array.from(atoms.sample, (q) => error.has(q) ? error.get(q) : NaN);
  atoms.info = atoms.error.map((e) => isFinite(e) ? `${label}: ${e.toFixed(4)}` : 'not in the test set');
  atoms.group = atoms.error.map((e) => isFinite(e) ? label : 'not in test set');
}
lines3d.data = s.lines;
bounds.data = s.bounds;
key.data = s.key;
title.text = s.title;
atoms3d.data = atoms;  // last: its change redraws the scene
"""


def _bonds(atoms) -> tuple[np.ndarray, np.ndarray]:
    """Bonded pairs (i < j) inside the cell, from ASE's natural covalent cutoffs."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    i, j, shift = neighbor_list("ijS", atoms, natural_cutoffs(atoms, mult=1.1))
    keep = (i < j) & ~shift.any(axis=1)
    return i[keep], j[keep]


def _hex(rgb: np.ndarray) -> list[str]:
    """(n, 3) colours in [0, 1] as ``#rrggbb``."""
    return ["#{:02x}{:02x}{:02x}".format(*c) for c in np.round(255 * np.asarray(rgb)).astype(int)]


def element_key(atoms) -> dict[str, np.ndarray]:
    """Element legend of atoms filled by error: one ring per element in its Jmol colour, lightest first.

    Returns
    -------
    dict of str -> ndarray (n_elements,)
        ``label`` (symbol), ``line`` (Jmol colour), ``x, y`` (NaN: drawn in the legend only).
    """
    from ase.data import chemical_symbols
    from ase.data.colors import jmol_colors

    numbers = np.unique(atoms.numbers)
    return {"label": np.array([chemical_symbols[z] for z in numbers]), "line": np.array(_hex(jmol_colors[numbers])),
            "x": np.full(numbers.size, np.nan), "y": np.full(numbers.size, np.nan)}


def scene_data(atoms, atom_errors: np.ndarray | None = None, error_label: str = "error",
               marked: int | None = None) -> dict[str, dict]:
    """Columns drawing one structure in the default view.

    Parameters
    ----------
    atoms : ase.Atoms
    atom_errors : ndarray (n_atoms,), optional
        Colour atoms by these values (NaN: not in the test set, drawn grey; the colour itself comes
        from the scene's colour mapper), each ringed in its element colour; default element colours.
    error_label : str
        Hover and legend label of the errors.
    marked : int, optional
        Index of an atom to highlight (the one selected elsewhere).

    Returns
    -------
    dict
        ``atoms``: columns over atoms sorted far to near (``x, y`` on screen, ``z`` towards the
        viewer, in Å about the cell's centre, or the atoms' for a molecule; ``radius``, ``color``
        (the Jmol colour of the element), ``line`` and ``width`` (outline), ``index``, ``element``,
        ``error``, ``info`` (hover text), ``group`` (legend entry), ``mark`` (``"selected"`` on the
        highlighted atom));
        ``lines``: bond and cell-edge segments ``x0, y0, z0, x1, y1, z1, color, width``;
        ``bounds``: ``x, y`` = ``[-r, r]``, a box holding the structure in any orientation;
        ``key``: the element rings' legend when coloured by error (:func:`element_key`; else empty: the
        atoms' own legend entries are then the elements).
    """
    from ase.data import covalent_radii
    from ase.data.colors import jmol_colors

    periodic = bool(atoms.pbc.any() and atoms.cell.rank == 3)  # a molecule's box is not a unit cell
    centre = atoms.cell.array.sum(axis=0) / 2 if periodic else atoms.positions.mean(axis=0)
    pos = (atoms.positions - centre) @ _HOME.T
    symbols = np.array(atoms.get_chemical_symbols())
    errors = np.full(len(atoms), np.nan) if atom_errors is None else np.asarray(atom_errors, float)
    if errors.shape != (len(atoms),):
        raise ValueError(f"atom_errors has shape {errors.shape}, expected ({len(atoms)},): one error per atom")
    if marked is not None and not 0 <= marked < len(atoms):
        raise ValueError(f"marked atom {marked} is not in this structure of {len(atoms)} atoms")
    jmol = np.array(_hex(jmol_colors[atoms.numbers]))
    by_error = atom_errors is not None
    if by_error:
        known = np.isfinite(errors)
        group = np.where(known, error_label, "not in test set")
        info = np.array([f"{error_label}: {e:.4f}" if np.isfinite(e) else "not in the test set" for e in errors])
        line, width = jmol, np.full(len(atoms), 3.0)
    else:
        group, info = symbols, np.full(len(atoms), "")
        line, width = np.full(len(atoms), _OUTLINE), np.full(len(atoms), 1.0)
    mark = np.full(len(atoms), "", dtype=object)
    if marked is not None:
        mark[marked] = "selected"
    radius = 0.2 + 0.35 * covalent_radii[atoms.numbers]
    order = np.argsort(pos[:, 2], kind="stable")
    columns = {
        "x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2], "radius": radius, "color": jmol, "line": line,
        "width": width, "index": np.arange(len(atoms)), "element": symbols, "error": errors, "info": info,
        "group": np.asarray(group), "mark": mark,
    }
    segments, colors, widths = [], [], []
    if periodic:
        corners = (np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float) @ atoms.cell.array
                   - centre) @ _HOME.T
        segments += [(corners[a], corners[b]) for a, b in _CELL_EDGES]
        colors += ["#555555"] * len(_CELL_EDGES)
        widths += [1.5] * len(_CELL_EDGES)
    bi, bj = _bonds(atoms)
    segments += list(zip(pos[bi], pos[bj]))
    colors += ["#999999"] * len(bi)
    widths += [4.0] * len(bi)
    ends = np.array(segments, float).reshape(-1, 2, 3)
    reach = np.concatenate([np.linalg.norm(pos, axis=1) + radius, np.linalg.norm(ends, axis=2).ravel()])
    r = 1.05 * float(reach.max(initial=1.0))
    return {
        "atoms": {k: v[order] for k, v in columns.items()},
        "lines": {"x0": ends[:, 0, 0], "y0": ends[:, 0, 1], "z0": ends[:, 0, 2],
                  "x1": ends[:, 1, 0], "y1": ends[:, 1, 1], "z1": ends[:, 1, 2],
                  "color": np.array(colors, dtype=str), "width": np.array(widths)},
        "bounds": {"x": [-r, r], "y": [-r, r]},
        "key": element_key(atoms if by_error else atoms[:0]),
    }


def _flat(lines: dict) -> dict:
    """Segments as drawn in the default view (the screen plane of the 3D ends)."""
    return {k: v for k, v in lines.items() if k not in ("z0", "z1")}


class StructureScene:
    """A Bokeh figure of one structure in 3D: drag to turn, wheel to zoom, hover an atom.

    :meth:`show` puts a structure in; every browser showing the figure redraws it.

    Parameters
    ----------
    mapper : LinearColorMapper, optional
        Colours of the errors; default :func:`latentatlas.viz.colour.error_mapper` (the drill-down's scale).

    Attributes
    ----------
    figure : bokeh.plotting.figure
        Named ``"structure"``; its legend lists the elements in Jmol colours (``"structure_legend"``).
    atoms3d, lines3d, bounds, key : ColumnDataSource
        The scene in the default view and its element legend (see :func:`scene_data`), set from Python.
    atoms, lines : ColumnDataSource
        What is drawn: the scene as turned in the browser (not synced back to the server).
    turn : ColumnDataSource
        The browser's turn of the scene (not synced back to the server: each browser turns its own).
    """

    def __init__(self, height: int = 460, mapper: LinearColorMapper | None = None):
        self.atoms3d, self.lines3d, self.bounds = ColumnDataSource(), ColumnDataSource(), ColumnDataSource()
        self.key = ColumnDataSource()
        self.atoms, self.lines = ColumnDataSource(syncable=False), ColumnDataSource(syncable=False)
        self.turn = ColumnDataSource(data={"state": [1.0, 0, 0, 0, 1, 0, 0, 0, 1, np.nan, np.nan]}, syncable=False,
                                     name="structure_turn")
        self.mapper = error_mapper() if mapper is None else mapper
        fig = figure(
            name="structure", tools="wheel_zoom,reset,save", active_scroll="wheel_zoom", active_drag=None, height=height,
            min_width=300, sizing_mode="stretch_width", match_aspect=True, toolbar_location="above",
            x_range=DataRange1d(range_padding=0), y_range=DataRange1d(range_padding=0),
        )
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        box = fig.scatter("x", "y", source=self.bounds, size=0, alpha=0)
        fig.x_range.renderers = fig.y_range.renderers = [box]  # fit the whole structure however turned
        fig.segment("x0", "y0", "x1", "y1", source=self.lines, line_color="color", line_width="width")
        self.drawn = fig.circle("x", "y", radius="radius", source=self.atoms, fill_color="color", line_color="line",
                                line_width="width", legend_field="group")
        # the highlighted atom: a ring drawn over everything, so it shows even behind other atoms
        fig.circle("x", "y", radius="radius", source=self.atoms, fill_color=None, line_color=_MARK, line_width=4,
                   line_dash="dashed", view=CDSView(filter=GroupFilter(column_name="mark", group="selected")),
                   name="structure_mark")
        keys = fig.scatter("x", "y", source=self.key, size=12, fill_color="white", line_color="line", line_width=3)
        legend = fig.legend[0]
        legend.items.append(LegendItem(label=field("label"), renderers=[keys]))
        legend.name = "structure_legend"
        legend.location = "top_left"
        legend.background_fill_alpha = 0.6
        legend.title_text_font_style = "normal"
        fig.add_tools(HoverTool(renderers=[self.drawn], tooltips="<b>atom @index @element</b><br>@info"))
        self.colorbar = ColorBar(color_mapper=self.mapper, width=12, visible=False)
        fig.add_layout(self.colorbar, "right")
        redraw = CustomJS(args=dict(atoms3d=self.atoms3d, lines3d=self.lines3d, view=self.atoms, lines=self.lines,
                                    turn=self.turn), code=_PROJECT_JS)
        for event in ("panstart", "pan", "reset"):
            fig.js_on_event(event, redraw)
        self.atoms3d.js_on_change("data", redraw)
        self.figure = fig

    def show(self, atoms, atom_errors=None, error_label: str = "error", title: str = "", *,
             high: float | None = None, marked: int | None = None) -> None:
        """Draw ``atoms`` (see :func:`scene_data`), coloured by ``atom_errors`` if given.

        Parameters
        ----------
        high : float, optional
            Top of the colour scale; default :func:`~latentatlas.viz.colour.colour_high` of ``atom_errors``.
            Give the pair's (all its test samples) to colour one error alike in every structure.
        marked : int, optional
            Index (in ``atoms``) of the atom to highlight.
        """
        scene = scene_data(atoms, atom_errors, error_label, marked)
        by_error = atom_errors is not None
        self.drawn.glyph.fill_color = field("error", self.mapper) if by_error else field("color")
        # the drawn sources first: in a browser, the 3D data arriving after them redraws them as turned there
        self.atoms.data, self.lines.data = scene["atoms"], _flat(scene["lines"])
        self.bounds.data, self.lines3d.data, self.key.data = scene["bounds"], scene["lines"], scene["key"]
        self.atoms3d.data = scene["atoms"]
        self.figure.title.text = title
        self.figure.legend[0].title = "ring: element (Jmol colours)" if by_error else "element (Jmol colours)"
        self.colorbar.visible = by_error
        if by_error:
            self.mapper.high = colour_high(atom_errors) if high is None else high
            # the legend names the errors: a pair's long name would be cut along the bar
            self.colorbar.title = f"colour scale (top: {COLOUR_PERCENTILE}th percentile)"


def structure_figure(atoms, atom_errors=None, error_label: str = "error", title: str = "", **show):
    """A Bokeh figure of one structure (see :class:`StructureScene`); display it with ``pn.pane.Bokeh``.

    ``show``: ``high``, ``marked`` (see :meth:`StructureScene.show`).
    """
    scene = StructureScene()
    scene.show(atoms, atom_errors, error_label, title, **show)
    return scene.figure


def structure_gallery(frames: Sequence, labels: Sequence[str], title: str = "", *, points=None, mapper=None,
                      samples: Sequence[np.ndarray] | None = None, error_label: str = "pointwise error"):
    """A drop-down of structures over one 3D view; works without a server (static export).

    Parameters
    ----------
    frames : sequence of ase.Atoms
    labels : sequence of str
        Drop-down entry of each frame (its title after ``title``).
    points : ColumnDataSource, optional
        Columns ``sample`` and ``error``: a pair's error on each test sample (a drill-down's source,
        whose data the browser replaces when another pair is chosen). Given, the atoms are coloured
        by the errors of their samples, redrawn when the pair or the structure changes.
    mapper : LinearColorMapper, optional
        Colours of the errors: the drill-down's, so both show one error in one colour.
    samples : sequence of ndarray (n_atoms,), optional
        With ``points``: the sample each atom's error is read from (its index along the comparison's
        atom dimension, or its structure's index at structure level), one array per frame.
    error_label : str
        Hover and colour bar name of the errors.

    Returns
    -------
    bokeh.layouts.Column
    """
    scene = StructureScene(mapper=mapper)
    scenes = []
    for k, (atoms, label) in enumerate(zip(frames, labels)):
        data = dict(scene_data(atoms, None if points is None else np.full(len(atoms), np.nan), error_label),
                    title=f"{title}{label}")
        if points is not None:
            data["atoms"]["sample"] = np.asarray(samples[k])[data["atoms"]["index"]]
        scenes.append(data)
    errors = None  # of the first frame, for the pair shown first
    if points is not None:
        error = dict(zip(np.asarray(points.data["sample"]).tolist(), points.data["error"]))
        errors = np.array([error.get(q, np.nan) for q in np.asarray(samples[0]).tolist()])
    scene.show(frames[0], errors, error_label, scenes[0]["title"], high=scene.mapper.high)
    pick = Select(options=list(labels), value=labels[0], width=400)
    paint = CustomJS(
        args=dict(scenes=scenes, pick=pick, points=points, label=error_label, atoms3d=scene.atoms3d,
                  lines3d=scene.lines3d, bounds=scene.bounds, key=scene.key, title=scene.figure.title),
        code=_PICK_JS,
    )
    pick.js_on_change("value", paint)
    if points is not None:
        points.js_on_change("data", paint)
    return column(pick, scene.figure, sizing_mode="stretch_width")


#: What the viewer shows, in the words of its "What is this?" box.
HELP = f"""\
One structure of the comparison in 3D: atoms as spheres in Jmol colours (sized by covalent radius),
covalent bonds in grey, the unit cell in dark grey; positions in Å.
**Drag** to turn it, **wheel** to zoom, the **reset** tool goes back to the first view;
**hover** an atom for its index (in its structure), element and error.

**Colour atoms by error**: each atom's pointwise error of the (source → target) pair chosen in the
matrix, on the drill-down's colour scale (one error, one colour in both; the top of the scale is
the pair's {COLOUR_PERCENTILE}th percentile, brighter = above); each atom keeps a ring in its element's
colour; grey atoms were not in the test set. With structure-level features there is one error per
structure: every atom shows it. The atom selected in the drill-down has a dashed blue ring.

**Download** saves the pair's errors on every test sample (CSV or netCDF): structure index, atom
index in its structure, element and error (per structure: structure, formula and error).
"""


def _file_stem(label: str) -> str:
    """A file name from an error label such as ``"GFRE soap:power_spectrum → chgnet:conv1"``."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", label.replace("→", "to")).strip("_")


class StructureViewer(pn.viewable.Viewer):
    """One structure of a comparison in 3D, coloured by element or by the pointwise error of a pair.

    The colour scale is the pair's (:func:`~latentatlas.viz.colour.colour_high` of all its test
    samples), the drill-down's: one error, one colour, whatever structure is shown.
    """

    comparison = param.ClassSelector(class_=xr.Dataset, doc="A comparison (or features) Dataset with structures")
    structure = param.Integer(default=0, bounds=(0, None), doc="Index of the structure shown")
    color_by = param.Selector(default="element", objects=["element", "error"], doc="Atom colours")
    atom_errors = param.Array(default=None, allow_None=True,
                              doc="Per-atom error of the pair over all atoms (NaN: not tested): atom-level comparisons")
    structure_errors = param.Array(default=None, allow_None=True, doc=(
        "Per-structure error of the pair over all structures (NaN: not tested): structure-level comparisons, "
        "used when atom_errors is None"))
    error_label = param.String(default="pointwise error", doc="Name of the errors in hover, colour bar and downloads")
    atom = param.Integer(default=None, allow_None=True,
                         doc="Atom to highlight (index over all atoms); shown when it is in the shown structure")

    def __init__(self, comparison: xr.Dataset, **params):
        from ..dataset import frames_from_features

        if "pca" in comparison:
            check_comparison(comparison)
        super().__init__(comparison=comparison, **params)
        self.frames = frames_from_features(comparison)
        #: first atom of each structure, and one past the last
        self.bounds = np.concatenate([[0], np.cumsum(comparison["n_atoms"].values)]).astype(int)
        self.param.structure.bounds = (0, len(self.frames) - 1)
        self.scene = StructureScene()
        self._note = pn.pane.Markdown("", visible=False, sizing_mode="stretch_width", margin=(0, 5),
                                      name="structure_note")
        self._csv = pn.widgets.FileDownload(callback=lambda: io.BytesIO(self.error_table().to_dataframe().to_csv(
            index=False).encode()), label="CSV", color="light", width=70)
        self._netcdf = pn.widgets.FileDownload(callback=lambda: io.BytesIO(self.error_table().to_netcdf()),
                                               label="netCDF", color="light", width=80)
        self._update()
        self._pane = pn.pane.Bokeh(self.scene.figure, sizing_mode="stretch_width")
        self._color = pn.widgets.RadioButtonGroup.from_param(self.param.color_by)
        self._help = pn.Card(pn.pane.Markdown(HELP, sizing_mode="stretch_width"), title="What is this?",
                             collapsed=True, sizing_mode="stretch_width", name="structure_help")

    def _errors(self) -> tuple[np.ndarray, str] | None:
        """The pair's errors over all samples and their dimension (``"atom"`` or ``"structure"``), or None."""
        if self.atom_errors is not None:
            return np.asarray(self.atom_errors, float), "atom"
        if self.structure_errors is not None:
            return np.asarray(self.structure_errors, float), "structure"
        return None

    def error_table(self) -> xr.Dataset:
        """The pair's error on each of its test samples, as downloaded.

        Returns
        -------
        xarray.Dataset over ``sample``
            Atom level: ``structure``, ``atom`` (index in its structure), ``element``, ``error``;
            structure level: ``structure``, ``formula``, ``error``. Attr ``errors``: :attr:`error_label`.

        Raises
        ------
        ValueError
            No errors are set (a features file, or no pair chosen).
        """
        found = self._errors()
        if found is None:
            raise ValueError("no errors to download: give atom_errors or structure_errors (a pair of a comparison)")
        errors, dim = found
        tested = np.flatnonzero(np.isfinite(errors))
        if dim == "atom":
            from ase.data import chemical_symbols

            structure = np.searchsorted(self.bounds, tested, side="right") - 1
            columns = {"structure": structure, "atom": tested - self.bounds[structure],
                       "element": np.asarray(chemical_symbols)[self.comparison["species"].values[tested]]}
        else:
            columns = {"structure": tested,
                       "formula": np.array([self.frames[k].get_chemical_formula() for k in tested])}
        columns["error"] = errors[tested]
        return xr.Dataset({k: ("sample", v) for k, v in columns.items()},
                          attrs={"errors": self.error_label, "level": dim})

    @param.depends("structure", "color_by", "atom_errors", "structure_errors", "error_label", "atom", watch=True)
    def _update(self):
        k = self.structure
        atoms = self.frames[k]
        first, end = self.bounds[k], self.bounds[k + 1]
        found = self._errors() if self.color_by == "error" else None
        errors, label, note = None, self.error_label, ""
        if found is not None and found[1] == "atom":
            errors = found[0][first:end]
        elif found is not None:
            errors = np.full(len(atoms), found[0][k])
            label = f"{self.error_label} (whole structure)"
            note = ("*Structure-level comparison: one error per structure, so every atom shows its structure's "
                    "error.*")
        elif self.color_by == "error":
            note = "*No errors to colour by here (no comparison pair): atoms keep their element colours.*"
        marked = self.atom - first if self.atom is not None and first <= self.atom < end else None
        title = f"structure {k}: {atoms.get_chemical_formula()} ({self.comparison['subset'].values[k]}, {len(atoms)} atoms)"
        self.scene.show(atoms, errors, label, title, high=None if found is None else colour_high(found[0]),
                        marked=marked)
        self._note.object, self._note.visible = note, bool(note)
        has_errors = self._errors() is not None
        stem = f"{_file_stem(self.error_label)}_{'per_atom' if self.atom_errors is not None else 'per_structure'}"
        for widget, ext in ((self._csv, "csv"), (self._netcdf, "nc")):
            widget.param.update(filename=f"{stem}.{ext}", disabled=not has_errors)

    def __panel__(self):
        downloads = pn.Row(pn.pane.Markdown("**Download errors**", margin=(8, 5)), self._csv, self._netcdf)
        return pn.Column(
            pn.Row(pn.pane.Markdown("**Colour atoms by**", margin=(8, 5)), self._color, downloads,
                   sizing_mode="stretch_width"),
            self._note, self._help, self._pane, sizing_mode="stretch_width")
