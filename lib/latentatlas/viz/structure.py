"""3D structure viewer (Plotly): atoms in Jmol colours, bonds, unit cell, per-atom errors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import panel as pn
import param
import plotly.graph_objects as go
import xarray as xr

from .data import check_comparison

_CELL_EDGES = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]


def _bonds(atoms) -> tuple[np.ndarray, np.ndarray]:
    """Bonded pairs (i < j) inside the cell, from ASE's natural covalent cutoffs."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    i, j, shift = neighbor_list("ijS", atoms, natural_cutoffs(atoms, mult=1.1))
    keep = (i < j) & ~shift.any(axis=1)
    return i[keep], j[keep]


def _line_xyz(starts: np.ndarray, ends: np.ndarray) -> tuple[list, list, list]:
    """Segments as one Plotly line trace (points separated by None)."""
    xyz = [[], [], []]
    for a, b in zip(starts, ends):
        for k in range(3):
            xyz[k] += [a[k], b[k], None]
    return tuple(xyz)


def structure_traces(atoms, atom_errors: np.ndarray | None = None, error_label: str = "error") -> list:
    """Plotly traces drawing one structure.

    Parameters
    ----------
    atoms : ase.Atoms
    atom_errors : ndarray (n_atoms,), optional
        Colour atoms by these values (NaN: not in the test set, drawn grey); default element colours.
    error_label : str
        Colour bar title and hover label of the errors.
    """
    from ase.data import covalent_radii
    from ase.data.colors import jmol_colors

    pos = atoms.positions
    symbols = atoms.get_chemical_symbols()
    traces = []
    if atoms.pbc.any() and atoms.cell.rank == 3:  # a molecule's box is not a unit cell
        corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float) @ atoms.cell.array
        x, y, z = _line_xyz(corners[[e[0] for e in _CELL_EDGES]], corners[[e[1] for e in _CELL_EDGES]])
        traces.append(go.Scatter3d(x=x, y=y, z=z, mode="lines", line=dict(color="#555", width=2),
                                   hoverinfo="skip", name="unit cell"))
    bi, bj = _bonds(atoms)
    if bi.size:
        x, y, z = _line_xyz(pos[bi], pos[bj])
        traces.append(go.Scatter3d(x=x, y=y, z=z, mode="lines", line=dict(color="#999", width=5),
                                   hoverinfo="skip", name="bonds"))
    sizes = 8 + 14 * covalent_radii[atoms.numbers]
    errors = np.full(len(atoms), np.nan) if atom_errors is None else np.asarray(atom_errors, float)
    text = [
        f"atom {k} {s}" + (f"<br>{error_label}: {e:.4f}" if np.isfinite(e) else
                            ("<br>not in the test set" if atom_errors is not None else ""))
        for k, (s, e) in enumerate(zip(symbols, errors))
    ]
    if atom_errors is None:
        colors = ["rgb({:.0f},{:.0f},{:.0f})".format(*(255 * jmol_colors[z])) for z in atoms.numbers]
        for symbol in dict.fromkeys(symbols):
            m = np.array(symbols) == symbol
            traces.append(go.Scatter3d(
                x=pos[m, 0], y=pos[m, 1], z=pos[m, 2], mode="markers", name=symbol,
                marker=dict(size=sizes[m], color=np.array(colors)[m], line=dict(color="#333", width=1), opacity=1),
                text=np.array(text)[m], hovertemplate="%{text}<extra></extra>",
            ))
        return traces
    known = np.isfinite(errors)
    if (~known).any():
        traces.append(go.Scatter3d(
            x=pos[~known, 0], y=pos[~known, 1], z=pos[~known, 2], mode="markers", name="not in test set",
            marker=dict(size=sizes[~known], color="lightgrey", opacity=0.6),
            text=np.array(text)[~known], hovertemplate="%{text}<extra></extra>",
        ))
    traces.append(go.Scatter3d(
        x=pos[known, 0], y=pos[known, 1], z=pos[known, 2], mode="markers", name=error_label,
        marker=dict(size=sizes[known], color=errors[known], colorscale="Inferno", cmin=0,
                    colorbar=dict(title=dict(text=error_label, side="right"), thickness=14),
                    line=dict(color="#333", width=1), opacity=1),
        text=np.array(text)[known], hovertemplate="%{text}<extra></extra>",
    ))
    return traces


def _layout(title: str) -> dict:
    axis = dict(title="", showbackground=False, showgrid=False, zeroline=False, showticklabels=False)
    return dict(
        title=dict(text=title, x=0.02, font=dict(size=14)),
        scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="data"),
        margin=dict(l=0, r=0, t=40, b=0), height=460, legend=dict(x=0, y=0.95),
        paper_bgcolor="white", uirevision="structure",
    )


def structure_figure(atoms, atom_errors=None, error_label="error", title="") -> go.Figure:
    """A Plotly figure of one structure (see :func:`structure_traces`)."""
    return go.Figure(structure_traces(atoms, atom_errors, error_label), layout=_layout(title))


def structures_figure(frames: Sequence, labels: Sequence[str], title: str = "") -> go.Figure:
    """One figure with a drop-down to switch between several structures (works without a server)."""
    traces, owner = [], []
    for k, atoms in enumerate(frames):
        new = structure_traces(atoms)
        traces += new
        owner += [k] * len(new)
    owner = np.array(owner)
    for t, k in zip(traces, owner):
        t.visible = bool(k == 0)
    buttons = [
        dict(label=label, method="update", args=[{"visible": (owner == k).tolist()}, {"title.text": f"{title}{label}"}])
        for k, label in enumerate(labels)
    ]
    layout = _layout(f"{title}{labels[0]}")
    layout["updatemenus"] = [dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.08, yanchor="top")]
    return go.Figure(traces, layout=layout)


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
        self._pane = pn.pane.Plotly(self._figure(), sizing_mode="stretch_width", height=470,
                                    config={"displaylogo": False, "responsive": True})
        self._color = pn.widgets.RadioButtonGroup.from_param(self.param.color_by)

    def _figure(self) -> go.Figure:
        ds, k = self.comparison, self.structure
        atoms = self.frames[k]
        errors = None
        if self.color_by == "error" and self.atom_errors is not None:
            errors = np.asarray(self.atom_errors)[ds["atom_structure"].values == k]
        title = f"structure {k}: {atoms.get_chemical_formula()} ({ds['subset'].values[k]}, {len(atoms)} atoms)"
        return structure_figure(atoms, errors, self.error_label, title)

    @param.depends("structure", "color_by", "atom_errors", "error_label", watch=True)
    def _update(self):
        self._pane.object = self._figure()

    def __panel__(self):
        return pn.Column(pn.Row(pn.pane.Markdown("**Colour atoms by**", margin=(8, 5)), self._color),
                         self._pane, sizing_mode="stretch_width")
