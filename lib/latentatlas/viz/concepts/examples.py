"""Example inputs of one concept in one class: images (shapes demo) or structures (atoms)."""

from __future__ import annotations

import numpy as np
import panel as pn
import param
import xarray as xr
from bokeh.models import ColumnDataSource, Range1d
from bokeh.plotting import figure

from ...concepts import examples
from .data import example_images, frames_for
from .state import ConceptState
from .views import state_of

__all__ = ["ConceptExamples"]


def _rgba(images: np.ndarray) -> list[np.ndarray]:
    """uint8 (n, h, w, 3) as Bokeh ``image_rgba`` arrays: uint32 (h, w), first row at the bottom."""
    alpha = np.full(images.shape[:3] + (1,), 255, np.uint8)
    packed = np.ascontiguousarray(np.concatenate([images, alpha], axis=3)[:, ::-1]).view(np.uint32)[..., 0]
    return list(packed)


class ConceptExamples(pn.viewable.Viewer):
    """The held-out samples of the state's class that its layer's probe finds most like its concept.

    Images are shown as tiles with the probe probability under each, the concept's true label
    marked; for a per-atom result the structure holding the top atom opens in 3D with every
    held-out atom coloured by the probe probability. Drawn in Python: in a static export they
    stay on the opening selection.
    """

    state = param.ClassSelector(class_=ConceptState, doc="What the app shows (concept, class_name, layer)")
    n = param.Integer(default=8, bounds=(1, 24), doc="Number of examples")
    controls = param.Boolean(default=True, doc="Show selectors of concept and class (they need Python)")

    def __init__(self, source: ConceptState | xr.Dataset, *, frames=None, n: int = 8, controls: bool = True, **params):
        state = state_of(source, params)
        super().__init__(state=state, n=n, controls=controls)
        self.frames = frames if frames is not None else frames_for(state.result)
        #: (structure index, per-atom probe probability) of the structure on show, per-atom results only
        self.shown = None
        self._caption = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._body = pn.Column(sizing_mode="stretch_width")
        self._widgets = pn.Row(
            pn.widgets.Select.from_param(state.param.concept, width=200),
            pn.widgets.Select.from_param(state.param.class_name, width=160),
        )
        self._update()

    def ranked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample indices (into the analysed inputs), probe probabilities and true labels, best first."""
        idx = examples(self.state.result, self.state.concept, self.state.class_name, layer=self.state.layer, n=self.n)
        where = np.searchsorted(self.state.result["sample"].values, idx)
        proba = self.state.result["probability"].sel(layer=self.state.layer, concept=self.state.concept).values[where]
        label = self.state.result["concept_label"].sel(concept=self.state.concept).values[where].astype(bool)
        return idx, proba, label

    @param.depends("state.concept", "state.class_name", "state.layer", "n", watch=True)
    def _update(self):
        idx, proba, label = self.ranked()
        n_class = int((self.state.result["sample_class"].values == self.state.class_name).sum())
        self._caption.object = (
            f"**{len(idx)} of {n_class} held-out `{self.state.class_name}` samples** that the `{self.state.layer}` probe "
            f"finds most `{self.state.concept}`-like (probe probability; ✓ the sample has the concept, ✗ it does not: a ✗ with a "
            "high probability is the model seeing the concept where the data has none)."
        )
        if "sample_structure" in self.state.result.coords:
            self._body.objects = [self._structure(idx, proba, label)]
        else:
            try:
                images = example_images(self.state.result, idx)
            except ValueError as err:
                self._body.objects = [pn.pane.Markdown(f"*{err}*")]
                return
            self._body.objects = [pn.pane.Bokeh(self._tiles(images, proba, label))]

    def _tiles(self, images: np.ndarray, proba: np.ndarray, label: np.ndarray):
        n, h, w = images.shape[:3]
        gap = 0.15 * w
        x = np.arange(n) * (w + gap)
        source = ColumnDataSource({
            "image": _rgba(images), "x": x, "tx": x + w / 2,
            "text": [f"{p:.2f} {'✓' if t else '✗'}" for p, t in zip(proba, label)],
        })
        width = n * (w + gap)
        # at most 96 px a tile, narrower where the page is (a fixed width would widen the whole page)
        fig = figure(name="concept_examples", x_range=Range1d(-gap, width), y_range=Range1d(-0.35 * h, h),
                     width=min(1100, 96 * n), height=150, max_width=min(1100, 96 * n), sizing_mode="scale_width", tools="",
                     toolbar_location=None, match_aspect=True)
        fig.image_rgba(image="image", x="x", y=0, dw=w, dh=h, source=source)
        fig.text("tx", -0.05 * h, text="text", source=source, text_align="center", text_baseline="top",
                 text_font_size="9pt")
        fig.axis.visible = False
        fig.grid.grid_line_color = None
        fig.outline_line_color = None
        return fig

    def _structure(self, idx: np.ndarray, proba: np.ndarray, label: np.ndarray):
        table = "\n".join(f"| {i} | {s} | {p:.3f} | {'✓' if t else '✗'} |" for i, s, p, t in zip(
            idx, self.state.result["sample_structure"].sel(sample=idx).values, proba, label))
        listing = pn.pane.Markdown(f"| atom | structure | probability | has concept |\n|---|---|---|---|\n{table}")
        if self.frames is None:
            return pn.Column(listing, pn.pane.Markdown(
                "*Structures unavailable: these atoms are not from a built-in set; pass `frames=` to show them.*"))
        from ..structure import structure_figure

        structure = int(self.state.result["sample_structure"].sel(sample=idx[0]))
        atoms = self.frames[structure]
        first = int(sum(len(a) for a in self.frames[:structure]))
        colours = np.full(len(atoms), np.nan)
        in_structure = self.state.result["sample_structure"].values == structure
        samples = self.state.result["sample"].values[in_structure]
        proba_here = self.state.result["probability"].sel(layer=self.state.layer, concept=self.state.concept)
        colours[samples - first] = proba_here.values[in_structure]
        self.shown = (structure, colours)
        fig = structure_figure(atoms, colours, f"P({self.state.concept})",
                               f"structure {structure}: {atoms.get_chemical_formula()} (atom {idx[0]} ranks first)")
        return pn.Row(listing, pn.panel(fig, sizing_mode="stretch_width", height=470), sizing_mode="stretch_width")

    def __panel__(self):
        widgets = [self._widgets] if self.controls else []
        return pn.Column(pn.pane.Markdown("### Examples"), *widgets, self._caption, self._body,
                         sizing_mode="stretch_width")
