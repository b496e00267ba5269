"""The pointwise-error colour scale, one definition for every view that colours errors.

The drill-down and the 3D structure viewer colour the same errors of one (source, target) pair:
both take their :class:`~bokeh.models.LinearColorMapper` from :func:`error_mapper` and its top
from :func:`colour_high` over all test samples of the pair, so one error gets one colour in both.
"""

from __future__ import annotations

import numpy as np
from bokeh.models import LinearColorMapper
from bokeh.palettes import Inferno256

#: Colour scales end at this percentile of the pair's errors so a few outliers do not flatten the
#: rest (brighter = above); the browser-side update of the drill-down uses the same number.
COLOUR_PERCENTILE = 98
#: Colour of samples without an error (not in the test set).
UNTESTED = "lightgrey"


def colour_high(errors: np.ndarray) -> float:
    """Top of the colour scale over all of a pair's errors (NaN ignored), 1 if none is positive.

    Parameters
    ----------
    errors : ndarray (n_samples,)
    """
    errors = np.asarray(errors, float)
    finite = np.sort(errors[np.isfinite(errors)])
    high = finite[int(np.floor(COLOUR_PERCENTILE / 100 * (finite.size - 1)))] if finite.size else 0.0
    return float(high) if high > 0 else 1.0


def error_mapper() -> LinearColorMapper:
    """A mapper from error to colour: Inferno from black (0) up to :func:`colour_high`; above it, one bright tone.

    The brightest yellows of Inferno are left out: they vanish on white.
    """
    return LinearColorMapper(palette=Inferno256[:230], low=0.0, high=1.0, nan_color=UNTESTED,
                             high_color=Inferno256[240])
