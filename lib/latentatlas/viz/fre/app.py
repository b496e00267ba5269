"""The FRE app: FRE matrix beside the 3D structure, drill-down below, controls, downloads, load-your-own.

:class:`Atlas` is thin: it makes one :class:`~latentatlas.viz.fre.state.FREState`, hands it to
every view (:class:`~latentatlas.viz.fre.matrix.FREMatrix`,
:class:`~latentatlas.viz.fre.drilldown.DrillDown`, the model map, the shared 3D
:class:`~latentatlas.viz.structure.StructureViewer`) and lays them out with the controls in a
sidebar column (``__panel__``: ``latentatlas serve``, ``app/atlas.py``, notebooks), or the same
in a Panel template (:meth:`Atlas.template`, about 0.8 s more CPU per session). Static exports
use tabs of the views (:mod:`latentatlas.viz.export`).

What is built when: constructing an Atlas builds the state, the views' Bokeh models and the
widgets (no data is read beyond the comparison given); served, the 3D viewer and the drill-down
are laid out after the first view; a new level or file updates the views in place.
"""

from __future__ import annotations

from pathlib import Path

import panel as pn
import param
import xarray as xr

from ...schema import feature_sets, kind_of, metric_label
from ..serving import after_first_view, app_link, served
from ..structure import StructureViewer
from ..upload import open_upload
from .data import as_levels, demo_comparison_paths, per_atom_errors, per_structure_errors, sample_dim
from .drilldown import DrillDown
from .help import help_icon, metric_help
from .matrix import FREMatrix
from .model_map import model_map_figure
from .state import FREState, view_state

TITLE = "latentatlas: what do the latent features of interatomic potentials share?"

INTRO = (
    "Each feature set is one layer of one model (or a hand-made descriptor such as SOAP), evaluated on the "
    "same atoms. A **feature reconstruction error** asks how well the features of a *source* predict those "
    "of a *target* on held-out samples: small values mean the target's information is contained in the "
    "source. Click a cell of the matrix to see that pair's error on every test sample"
)
#: how the served dashboard continues :data:`INTRO` (the static report cannot open structures on selection)
SERVED_INTRO = ", select samples to open their structure in 3D."


def comparison_from_file(path: str | Path) -> dict[str, xr.Dataset]:
    """Levels to display from a netCDF file: a comparison, or a features file compared on the spot.

    Raises
    ------
    ValueError
        The file is not netCDF, or is neither a comparison nor a features file.
    """
    from ...io import load

    return comparison_levels(load(path), Path(path).name)


def comparison_levels(ds: xr.Dataset, name: str) -> dict[str, xr.Dataset]:
    """Levels to display from a loaded comparison, or from features compared on the spot.

    Features from a zarr store stay on disk and are compared chunk by chunk (see
    :func:`latentatlas.compare.compare`); only the comparison is held in memory.

    ``name`` (the file's) is what error messages call the Dataset.
    """
    if kind_of(ds) == "concepts":
        raise ValueError(f"{name} is a concept result ('latentatlas concepts --out'), not a comparison or features "
                         "file: open it in the concept app (/concepts, or 'latentatlas serve RESULT.nc')")
    if kind_of(ds) == "comparison":
        return as_levels(ds.load())  # results are small: read a lazily opened (zarr) comparison once
    from ...compare import compare

    names = feature_sets(ds)
    if len(names) < 2:
        raise ValueError(
            f"{name} holds {len(names)} feature set(s) and no FRE results; give a comparison file "
            "or a features file with at least two feature sets (latentatlas featurize ... --out features.nc)"
        )
    n_samples = ds[names[0]].shape[0]  # compare validates the features (chunk by chunk for a zarr store)
    # about half the samples train; LFRE neighbourhoods must fit in the training set of small files
    return as_levels(compare(ds, names=names, n_local_points=int(min(100, max(4, n_samples // 4)))))


def _heading(text: str, plot: str | None = None) -> pn.Row:
    """A small heading, with the plot's "what is this?" icon."""
    return pn.Row(pn.pane.Markdown(f"### {text}", margin=(0, 5)), *([help_icon(plot)] if plot else []))


class Atlas(pn.viewable.Viewer):
    """The whole FRE app on one comparison (or several levels of one).

    Parameters
    ----------
    comparison : xarray.Dataset, mapping label -> Dataset, path(s) of comparison files, or None
        None: the built-in demo comparison shipped in ``data/``.
    state : FREState, optional
        Instead of ``comparison``: the state to show (shared with other views).
    **params
        Initial values of the state (``level``, ``metric``, ``pair``, ...).
    """

    state = param.ClassSelector(class_=FREState, doc="What is shown (shared by every view)")

    def __init__(self, comparison=None, *, state=None, **params):
        # None: the built-in demo (the views shown alone need a comparison)
        state = view_state(comparison, state, params) if comparison is not None or state is not None else \
            view_state(demo_comparison_paths(), None, params)
        super().__init__(state=state, **params)
        self.matrix = FREMatrix(state=state)
        self.drill = DrillDown(state=state)
        self.viewer = self._viewer()
        self._viewer_slot = pn.Column(self.viewer, sizing_mode="stretch_width")
        self._map = pn.pane.Bokeh(model_map_figure(state.comparison, state.metric))
        self._map_box = pn.Row(help_icon("model_map"), self._map)
        self._drill_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._help = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._upload = pn.widgets.FileInput(accept=".nc", multiple=False, sizing_mode="stretch_width")
        self._upload.param.watch(self._on_upload, ["value", "filename"])
        self._level_widget = pn.widgets.Select.from_param(state.param.level, name="Level", sizing_mode="stretch_width")
        self._metric_widget = pn.widgets.RadioButtonGroup.from_param(state.param.metric, name="Metric",
                                                                     orientation="vertical")
        self._sources_widget = pn.widgets.MultiChoice.from_param(state.param.sources, name="Feature sets (rows and columns)",
                                                                 sizing_mode="stretch_width")
        self._views = self._layout_views()
        self._on_comparison()
        self._on_metric()
        self._on_viewer()
        state.param.watch(self._on_comparison, "comparison")
        state.param.watch(self._on_metric, ["metric", "drill_metric"])
        state.param.watch(self._on_viewer, ["comparison", "drill_metric", "pair", "structure", "sample"])

    @property
    def levels(self) -> dict[str, xr.Dataset]:
        return self.state.levels

    def _viewer(self) -> StructureViewer:
        return StructureViewer(self.state.comparison, color_by="error")

    def _on_comparison(self, *_):
        ds = self.state.comparison
        if ds.attrs.get("fingerprint") != self.viewer.comparison.attrs.get("fingerprint"):
            self.viewer = self._viewer()  # other frames: a viewer of them
            self._viewer_slot.objects = [self.viewer]
        self._metric_widget.options = {metric_label(m): m for m in self.state.param.metric.objects}
        self._help.object = metric_help(self.state.param.metric.objects)

    def _on_metric(self, *_):
        s = self.state
        self._map.object = model_map_figure(s.comparison, s.metric)
        self._map.visible = self._map_box.visible = self._map.object is not None
        self._drill_note.object = "" if s.drill_metric == s.metric else (
            f"*{metric_label(s.metric)} has no per-sample form: the drill-down shows {metric_label(s.drill_metric)} "
            "for the selected pair.*")

    def _on_viewer(self, *_):
        """The shared 3D viewer has parameters of its own: the state's pair, structure and sample, in one redraw."""
        s = self.state
        atom_level = sample_dim(s.comparison, s.drill_metric) == "atom"
        self.viewer.param.update(atom_errors=per_atom_errors(s.comparison, s.drill_metric, *s.pair),
                                 structure_errors=per_structure_errors(s.comparison, s.drill_metric, *s.pair),
                                 error_label=s.title, structure=s.structure, atom=s.sample if atom_level else None)

    def _on_upload(self, *_):
        def open_file(path, name):
            levels = comparison_from_file(path)
            self.state.show({f"{name}: {label}": ds for label, ds in levels.items()})

        open_upload(self._upload.value, self._upload.filename, open_file, message=self._message, busy=self._views)

    def _controls(self) -> list:
        return [
            self._level_widget,
            pn.pane.Markdown("**Metric**", margin=(0, 10)),
            self._metric_widget,
            self._sources_widget,
            pn.pane.Markdown("**Load your own** comparison or features netCDF "
                             "(`latentatlas featurize ... --out features.nc`)", margin=(0, 10)),
            self._upload,
        ]

    def _layout_views(self) -> pn.Column:
        """Matrix beside the 3D structure (as chemiscope puts map and structure), the drill-down below.

        The two wrap one under the other when the window is too narrow for both (below about 1,200 px
        with the sidebar), so nothing is cut off or squeezed. Served, the 3D viewer and the drill-down
        reach the browser after the matrix has been drawn (:func:`~latentatlas.viz.serving.after_first_view`).
        """
        structure = pn.Column(sizing_mode="stretch_width", min_height=400)

        def rest():  # one build, one patch: the 3D viewer and the drill-down arrive together
            structure.objects = [self._viewer_slot]
            return pn.Column(_heading("Drill-down: the selected pair on every test sample"), self._drill_note,
                             self.drill, sizing_mode="stretch_width")

        matrix = pn.Column(_heading("Feature reconstruction matrix"), self.matrix, self._map_box,
                           sizing_mode="stretch_width", styles={"flex": "3 1 540px"})
        structure = pn.Column(_heading("Structure"), structure, sizing_mode="stretch_width", styles={"flex": "2 1 340px"})
        # JupyterLab lays a notebook's output out before it has a width: plots in flex boxes stay
        # collapsed there (tests/test_ui_notebook.py), so notebooks get the views one under the other
        views = pn.FlexBox(matrix, structure, flex_wrap="wrap", sizing_mode="stretch_width") if served() else \
            pn.Column(matrix, structure, sizing_mode="stretch_width")
        return pn.Column(self._message, views, after_first_view(rest), sizing_mode="stretch_width")

    def _intro(self) -> list:
        return [pn.pane.Markdown(f"{INTRO}{SERVED_INTRO}", sizing_mode="stretch_width"),
                *app_link("concepts", "→ Concept knowledge graphs: which concepts each layer of a model encodes")]

    def template(self, **params) -> pn.template.BootstrapTemplate:
        """The app in a Panel template: controls and metric help in the sidebar, views in the main area."""
        params = {"title": "latentatlas", "sidebar_width": 260, **params}
        return pn.template.BootstrapTemplate(
            sidebar=[*self._controls(), pn.pane.Markdown("**Metrics**", margin=(10, 10, 0, 10)), self._help],
            main=[pn.Column(pn.pane.Markdown(f"## {TITLE}"), *self._intro(), self._views, sizing_mode="stretch_width")],
            **params,
        )

    def __panel__(self):
        """Controls and the metrics' help in a sidebar beside the views (no template: one costs about 0.8 s of
        CPU per session, ``benchmarks/fre_app.py``; :meth:`template` gives the same in a Panel template)."""
        title = pn.pane.Markdown(f"## {TITLE}", sizing_mode="stretch_width")
        if not served():  # a notebook cell: controls above the views (see _layout_views)
            return pn.Column(title, *self._intro(), pn.FlexBox(*self._controls()), self._help, self._views,
                             sizing_mode="stretch_width", max_width=1600)
        sidebar = pn.Column(*self._controls(), pn.pane.Markdown("**Metrics**", margin=(10, 10, 0, 10)), self._help,
                            width=250, css_classes=["atlas-sidebar"], styles={"flex": "0 0 250px"})
        main = pn.Column(title, *self._intro(), self._views,
                         sizing_mode="stretch_width", styles={"flex": "1 1 0", "min-width": "0"})
        return pn.Row(sidebar, main, sizing_mode="stretch_width", max_width=1600)
