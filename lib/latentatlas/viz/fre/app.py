"""The composed dashboard: FRE matrix -> drill-down -> 3D structure, plus load-your-own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import panel as pn
import param
import xarray as xr

from ...schema import feature_sets, kind_of, metric_label
from .data import (METRICS, as_levels, demo_comparison_paths, load_levels, metric_unit, metrics_of,
                   per_atom_errors, per_structure_errors, pointwise_metrics_of, sample_dim)
from .drilldown import DrillDown
from .matrix import FREMatrix
from .model_map import model_map_figure
from ..structure import StructureViewer
from ..serving import after_first_view, app_link
from ..upload import open_upload

TITLE = "latentatlas: what do the latent features of interatomic potentials share?"

INTRO = (
    "Each feature set is one layer of one model (or a hand-made descriptor such as SOAP), evaluated on the "
    "same atoms. A **feature reconstruction error** asks how well the features of a *source* predict those "
    "of a *target* on held-out samples: small values mean the target's information is contained in the "
    "source. Click a cell of the matrix to see that pair's error on every test sample"
)
#: how the served dashboard continues :data:`INTRO` (the static report cannot open structures on selection)
SERVED_INTRO = ", select samples to open their structure in 3D."


def metric_help(metrics) -> str:
    """Markdown list explaining each metric, with the unit its plots are labelled in."""
    return "\n".join(f"- **{METRICS[m][0]}**: {METRICS[m][1]} Colour scale: {metric_unit(m)}."
                     for m in metrics if m in METRICS)


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


class Atlas(pn.viewable.Viewer):
    """The whole dashboard on one comparison (or several levels of one).

    Parameters
    ----------
    comparison : xarray.Dataset, mapping label -> Dataset, path(s) of comparison files, or None
        None: the built-in demo comparison shipped in ``data/``.
    """

    level = param.Selector(objects=["atom level"], doc="Atom-level or structure-level (cumulant) features")
    metric = param.Selector(objects=["gfre"], doc="FRE metric shown")

    def __init__(self, comparison=None, **params):
        super().__init__(**params)
        if comparison is None:
            comparison = demo_comparison_paths()
        if isinstance(comparison, (str, Path, list, tuple)) or (
            isinstance(comparison, dict) and all(isinstance(v, (str, Path)) for v in comparison.values())
        ):
            self.levels = load_levels(comparison)
        else:
            self.levels = as_levels(comparison)
        self._message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._upload = pn.widgets.FileInput(accept=".nc", multiple=False)
        self._upload.param.watch(self._on_upload, ["value", "filename"])
        self._help = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._views = pn.Column(sizing_mode="stretch_width")
        self._level_widget = pn.widgets.Select.from_param(self.param.level, name="Level", width=220)
        self._metric_widget = pn.widgets.RadioButtonGroup.from_param(self.param.metric, name="Metric")
        self._set_levels(self.levels)

    def _set_levels(self, levels: dict[str, xr.Dataset]):
        self.levels = levels
        labels = list(levels)
        self.param.level.objects = labels
        with param.parameterized.discard_events(self):
            self.level = labels[0]
        self._build()

    @param.depends("level", watch=True)
    def _build(self):
        ds = self.levels[self.level]
        metrics = metrics_of(ds)
        self.param.metric.objects = metrics
        self._metric_widget.options = {metric_label(m): m for m in metrics}
        with param.parameterized.discard_events(self):
            self.metric = self.metric if self.metric in metrics else metrics[0]
        self.matrix = FREMatrix(ds, metric=self.metric)
        self.drill = DrillDown(ds, metric=self._drill_metric(), pair=self.matrix.pair)
        self._map = pn.pane.Bokeh(model_map_figure(ds, self.metric), visible=f"{self.metric}_map" in ds)
        self._drill_note = pn.pane.Markdown(self._drill_text(), sizing_mode="stretch_width")
        self.viewer = StructureViewer(ds, color_by="error")
        self.matrix.param.watch(self._on_pair, "pair")
        self.drill.param.watch(self._on_structure, ["structure", "sample"])
        self._on_pair()
        self._on_structure()
        self._help.object = metric_help(metrics)
        sources = pn.widgets.MultiChoice.from_param(self.matrix.param.sources, name="Feature sets (rows and columns)",
                                                    sizing_mode="stretch_width")
        n = ds.sizes["structure"]
        splits = ds[self.metric].attrs.get("n_splits", ds.attrs.get("n_splits", "?"))
        self._views.objects = [
            pn.pane.Markdown(f"### Feature reconstruction matrix ({self.level}: {ds.sizes.get('source')} feature sets, "
                             f"{n} structures, {splits} train/test splits)"),
            sources,
            self.matrix,
            after_first_view(self._rest),
        ]

    def _rest(self):
        """What follows the heatmap: the browser-side link to the drill-down, model map, drill-down, 3D viewer."""
        self.drill.link(self.matrix.source)
        return pn.Column(
            self._map,
            pn.pane.Markdown("### Drill-down: the selected pair on every test sample\n"
                             "Box- or lasso-select points in either plot to highlight them in both; "
                             "the structure of the selected sample with the largest error opens below."),
            self._drill_note,
            self.drill,
            pn.pane.Markdown("### Structure\nAtoms in Jmol colours with covalent bonds and the unit cell; "
                             "hover an atom for its index, element and error. Positions in Å."),
            self.viewer,
            sizing_mode="stretch_width",
        )

    def _drill_metric(self) -> str:
        """The metric itself, or (CKA, CCA, ... have no per-sample form) the first one that has one."""
        pointwise = pointwise_metrics_of(self.levels[self.level])
        return self.metric if self.metric in pointwise else pointwise[0]

    def _drill_text(self) -> str:
        drill = self._drill_metric()
        if drill == self.metric:
            return ""
        name = lambda m: metric_label(m)  # noqa: E731
        return (f"*{name(self.metric)} has no per-sample form: the drill-down shows {name(drill)} "
                "for the selected pair.*")

    @param.depends("metric", watch=True)
    def _new_metric(self):
        ds = self.levels[self.level]
        self.matrix.metric = self.metric
        self.drill.metric = self._drill_metric()
        self._drill_note.object = self._drill_text()
        self._map.object = model_map_figure(ds, self.metric)
        self._map.visible = f"{self.metric}_map" in ds
        self._on_pair()

    def _on_pair(self, *_):
        ds = self.levels[self.level]
        self.drill.pair = self.matrix.pair
        metric = self.drill.metric
        errors = per_atom_errors(ds, metric, *self.matrix.pair)
        label = f"{metric_label(metric)} {self.matrix.pair[0]} → {self.matrix.pair[1]}"
        self.viewer.param.update(atom_errors=errors, structure_errors=per_structure_errors(ds, metric, *self.matrix.pair),
                                 error_label=label)

    def _on_structure(self, *_):
        if self.drill.structure is None:
            errors = np.asarray(self.drill.points.data["error"])
            self.drill.structure = int(self.drill.points.data["structure"][int(np.nanargmax(errors))])
        # at atom level the selected sample is an atom: the 3D viewer rings it
        atom = self.drill.sample if sample_dim(self.levels[self.level], self.drill.metric) == "atom" else None
        self.viewer.param.update(structure=self.drill.structure, atom=atom)

    def _on_upload(self, *_):
        def open_file(path, name):
            levels = comparison_from_file(path)
            self._set_levels({f"{name}: {label}": ds for label, ds in levels.items()})

        open_upload(self._upload.value, self._upload.filename, open_file, message=self._message, busy=self._views)

    def __panel__(self):
        controls = pn.Row(
            self._level_widget,
            pn.Column(pn.pane.Markdown("**Metric**", margin=(0, 5)), self._metric_widget),
            pn.Column(pn.pane.Markdown("**Load your own** comparison or features netCDF "
                                       "(`latentatlas featurize ... --out features.nc`)", margin=(0, 5)),
                      self._upload),
            sizing_mode="stretch_width",
        )
        return pn.Column(
            pn.pane.Markdown(f"# {TITLE}\n{INTRO}{SERVED_INTRO}", sizing_mode="stretch_width"),
            *app_link("concepts", "→ Concept knowledge graphs: which concepts each layer of a model encodes"),
            self._help,
            controls,
            self._message,
            self._views,
            sizing_mode="stretch_width",
            max_width=1500,
        )

