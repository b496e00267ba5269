"""3D structure viewer drawn with Bokeh alone: atoms in Jmol colours, bonds, unit cell, per-atom errors.

Python lays the scene out once per structure (atoms sorted far to near in a default view); the
browser turns it on drag and redraws it, sorted again by depth, in a small Bokeh callback. No 3D
library is loaded: plotly.js (4.8 MB) cost about a second of parsing on every page load. The same
callback works served, in notebooks and in a static HTML export.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import panel as pn
import param
import xarray as xr
from bokeh.layouts import column
from bokeh.models import ColorBar, ColumnDataSource, CustomJS, DataRange1d, HoverTool, LinearColorMapper, Select
from bokeh.palettes import Inferno256
from bokeh.plotting import figure

from ..schema import check_comparison

_CELL_EDGES = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]
_ERROR_PALETTE = Inferno256[:240]  # the brightest yellows vanish on white
_UNTESTED = "#d3d3d3"
# Default view: turned off the cell axes so a cubic cell shows its depth.
_HOME = (np.array([[1.0, 0, 0], [0, np.cos(0.35), -np.sin(0.35)], [0, np.sin(0.35), np.cos(0.35)]])
         @ np.array([[np.cos(-0.5), 0, np.sin(-0.5)], [0, 1.0, 0], [-np.sin(-0.5), 0, np.cos(-0.5)]]))

# Runs in the browser on a drag (turn the scene), on reset (back to the default view) and when new
# 3D data arrives (redraw it as turned so far). ``view.tags`` holds the turn (row-major 3x3, on top
# of the default view) and the last pointer position; ``view`` is not synced, so neither is that.
_PROJECT_JS = """
const ev = cb_obj.event_name;
let t = view.tags.length == 11 ? Array.from(view.tags) : [1, 0, 0, 0, 1, 0, 0, 0, 1, NaN, NaN];
if (ev == 'reset') {
  t = [1, 0, 0, 0, 1, 0, 0, 0, 1, NaN, NaN];
} else if (ev == 'panstart') {
  view.tags = t.slice(0, 9).concat([cb_obj.sx, cb_obj.sy]);
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
view.tags = t;
const turn = (x, y, z) => [t[0] * x + t[1] * y + t[2] * z, t[3] * x + t[4] * y + t[5] * z,
                           t[6] * x + t[7] * y + t[8] * z];
const a = atoms3d.data, n = a.x.length;
const p = Array.from({length: n}, (_, i) => turn(a.x[i], a.y[i], a.z[i]));
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
  const [x0, y0] = turn(l.x0[i], l.y0[i], l.z0[i]);
  const [x1, y1] = turn(l.x1[i], l.y1[i], l.z1[i]);
  ends.x0.push(x0); ends.y0.push(y0); ends.x1.push(x1); ends.y1.push(y1);
}
lines.data = ends;
"""

# Static export: the structure picked in the drop-down replaces the scene's data.
_PICK_JS = """
const s = scenes[cb_obj.options.indexOf(cb_obj.value)];
lines3d.data = s.lines;
bounds.data = s.bounds;
title.text = s.title;
atoms3d.data = s.atoms;  // last: its change redraws the scene
"""


def _bonds(atoms) -> tuple[np.ndarray, np.ndarray]:
    """Bonded pairs (i < j) inside the cell, from ASE's natural covalent cutoffs."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    i, j, shift = neighbor_list("ijS", atoms, natural_cutoffs(atoms, mult=1.1))
    keep = (i < j) & ~shift.any(axis=1)
    return i[keep], j[keep]


def _colour_top(errors: np.ndarray) -> float:
    """Error at the top of the colour scale: the largest finite one (1 if none is positive)."""
    return float(np.max(errors[np.isfinite(errors)], initial=0.0)) or 1.0


def _hex(rgb: np.ndarray) -> list[str]:
    """(n, 3) colours in [0, 1] as ``#rrggbb``."""
    return ["#{:02x}{:02x}{:02x}".format(*c) for c in np.round(255 * np.asarray(rgb)).astype(int)]


def scene_data(atoms, atom_errors: np.ndarray | None = None, error_label: str = "error") -> dict[str, dict]:
    """Columns drawing one structure in the default view.

    Parameters
    ----------
    atoms : ase.Atoms
    atom_errors : ndarray (n_atoms,), optional
        Colour atoms by these values (NaN: not in the test set, drawn grey); default element colours.
    error_label : str
        Hover and legend label of the errors.

    Returns
    -------
    dict
        ``atoms``: columns over atoms sorted far to near (``x, y`` on screen, ``z`` towards the
        viewer, in Å about the cell's centre, or the atoms' for a molecule; ``radius``, ``color``,
        ``index``, ``element``, ``error``, ``info`` (hover text), ``group`` (legend entry));
        ``lines``: bond and cell-edge segments ``x0, y0, z0, x1, y1, z1, color, width``;
        ``bounds``: ``x, y`` = ``[-r, r]``, a box holding the structure in any orientation.
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
    if atom_errors is None:
        color, group = _hex(jmol_colors[atoms.numbers]), symbols
        info = np.full(len(atoms), "")
    else:
        known = np.isfinite(errors)
        top = len(_ERROR_PALETTE) - 1
        level = np.clip(np.nan_to_num(errors) / _colour_top(errors) * top, 0, top).astype(int)
        color = np.where(known, np.array(_ERROR_PALETTE)[level], _UNTESTED)
        group = np.where(known, error_label, "not in test set")
        info = np.array([f"{error_label}: {e:.4f}" if np.isfinite(e) else "not in the test set" for e in errors])
    radius = 0.2 + 0.35 * covalent_radii[atoms.numbers]
    order = np.argsort(pos[:, 2], kind="stable")
    columns = {
        "x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2], "radius": radius, "color": np.asarray(color),
        "index": np.arange(len(atoms)), "element": symbols, "error": errors, "info": info, "group": np.asarray(group),
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
    }


def _flat(lines: dict) -> dict:
    """Segments as drawn in the default view (the screen plane of the 3D ends)."""
    return {k: v for k, v in lines.items() if k not in ("z0", "z1")}


class StructureScene:
    """A Bokeh figure of one structure in 3D: drag to turn, wheel to zoom, hover an atom.

    :meth:`show` puts a structure in; every browser showing the figure redraws it.

    Attributes
    ----------
    figure : bokeh.plotting.figure
    atoms3d, lines3d, bounds : ColumnDataSource
        The scene in the default view (see :func:`scene_data`), set from Python.
    atoms, lines : ColumnDataSource
        What is drawn: the scene as turned in the browser (not synced back to the server).
    """

    def __init__(self, height: int = 460):
        self.atoms3d, self.lines3d, self.bounds = ColumnDataSource(), ColumnDataSource(), ColumnDataSource()
        self.atoms, self.lines = ColumnDataSource(syncable=False), ColumnDataSource(syncable=False)
        self.mapper = LinearColorMapper(palette=_ERROR_PALETTE, low=0.0, high=1.0)
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
        drawn = fig.circle("x", "y", radius="radius", source=self.atoms, fill_color="color", line_color="#333333",
                           line_width=1, legend_field="group")
        fig.legend.location = "top_left"
        fig.legend.background_fill_alpha = 0.6
        fig.add_tools(HoverTool(renderers=[drawn], tooltips="<b>atom @index @element</b><br>@info"))
        self.colorbar = ColorBar(color_mapper=self.mapper, width=12, visible=False)
        fig.add_layout(self.colorbar, "right")
        redraw = CustomJS(args=dict(atoms3d=self.atoms3d, lines3d=self.lines3d, view=self.atoms, lines=self.lines),
                          code=_PROJECT_JS)
        for event in ("panstart", "pan", "reset"):
            fig.js_on_event(event, redraw)
        self.atoms3d.js_on_change("data", redraw)
        self.figure = fig

    def show(self, atoms, atom_errors=None, error_label: str = "error", title: str = "") -> None:
        """Draw ``atoms`` (see :func:`scene_data`), coloured by ``atom_errors`` if given."""
        scene = scene_data(atoms, atom_errors, error_label)
        # the drawn sources first: in a browser, the 3D data arriving after them redraws them as turned there
        self.atoms.data, self.lines.data = scene["atoms"], _flat(scene["lines"])
        self.bounds.data, self.lines3d.data, self.atoms3d.data = scene["bounds"], scene["lines"], scene["atoms"]
        self.figure.title.text = title
        self.colorbar.visible = atom_errors is not None
        if atom_errors is not None:
            self.mapper.high = _colour_top(scene["atoms"]["error"])
            self.colorbar.title = error_label


def structure_figure(atoms, atom_errors=None, error_label: str = "error", title: str = ""):
    """A Bokeh figure of one structure (see :class:`StructureScene`); display it with ``pn.pane.Bokeh``."""
    scene = StructureScene()
    scene.show(atoms, atom_errors, error_label, title)
    return scene.figure


def structure_gallery(frames: Sequence, labels: Sequence[str], title: str = ""):
    """A drop-down of structures over one 3D view; works without a server (static export).

    Returns
    -------
    bokeh.layouts.Column
    """
    scene = StructureScene()
    scene.show(frames[0], title=f"{title}{labels[0]}")
    scenes = [dict(scene_data(atoms), title=f"{title}{label}") for atoms, label in zip(frames, labels)]
    pick = Select(options=list(labels), value=labels[0], width=400)
    pick.js_on_change("value", CustomJS(
        args=dict(scenes=scenes, atoms3d=scene.atoms3d, lines3d=scene.lines3d, bounds=scene.bounds,
                  title=scene.figure.title),
        code=_PICK_JS,
    ))
    return column(pick, scene.figure, sizing_mode="stretch_width")


class StructureViewer(pn.viewable.Viewer):
    """One structure of a comparison in 3D, coloured by element or by per-atom error."""

    comparison = param.ClassSelector(class_=xr.Dataset, doc="A comparison (or features) Dataset with structures")
    structure = param.Integer(default=0, bounds=(0, None), doc="Index of the structure shown")
    color_by = param.Selector(default="element", objects=["element", "error"], doc="Atom colours")
    atom_errors = param.Array(default=None, allow_None=True, doc="Per-atom error over all atoms (NaN: not tested)")
    error_label = param.String(default="pointwise error", doc="Name of the errors in hover and colour bar")

    def __init__(self, comparison: xr.Dataset, **params):
        from ..dataset import frames_from_features

        if "pca" in comparison:
            check_comparison(comparison)
        super().__init__(comparison=comparison, **params)
        self.frames = frames_from_features(comparison)
        self.param.structure.bounds = (0, len(self.frames) - 1)
        self.scene = StructureScene()
        self._update()
        self._pane = pn.pane.Bokeh(self.scene.figure, sizing_mode="stretch_width")
        self._color = pn.widgets.RadioButtonGroup.from_param(self.param.color_by)

    @param.depends("structure", "color_by", "atom_errors", "error_label", watch=True)
    def _update(self):
        ds, k = self.comparison, self.structure
        atoms = self.frames[k]
        errors = None
        if self.color_by == "error" and self.atom_errors is not None:
            errors = np.asarray(self.atom_errors)[ds["atom_structure"].values == k]
        title = f"structure {k}: {atoms.get_chemical_formula()} ({ds['subset'].values[k]}, {len(atoms)} atoms)"
        self.scene.show(atoms, errors, self.error_label, title)

    def __panel__(self):
        return pn.Column(pn.Row(pn.pane.Markdown("**Colour atoms by**", margin=(8, 5)), self._color),
                         self._pane, sizing_mode="stretch_width")
