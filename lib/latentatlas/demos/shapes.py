"""A procedural image dataset of coloured shapes with a plantable spurious correlation.

Each image shows one shape (the class) with concepts that are known exactly: the shape's
colour, the background colour, its texture and its size. With ``bias > 0`` one class is
drawn mostly on one background, so a model trained on those images can learn the
background as a shortcut for the class; ``bias=0`` gives the unbiased control. Nothing
is downloaded: images are rendered with numpy from a seed.

The small CNN (:class:`ShapesCNN`) is plain ``torch.nn`` and trains on a CPU in about two
minutes with the defaults of :func:`train_shapes_cnn`.
"""

from __future__ import annotations

import numpy as np

from ..concepts.activations import class_probabilities

__all__ = [
    "SHAPES",
    "COLOURS",
    "BACKGROUNDS",
    "QUICK",
    "CUES",
    "GLYPHS",
    "plant",
    "make_shapes",
    "make_glyphs",
    "shapes_demo",
    "cue_demo",
    "class_probabilities",
    "shapes_cnn",
    "train_shapes_cnn",
    "predict",
]

SHAPES = ("circle", "square", "triangle", "cross")
#: settings of :func:`shapes_demo` that train in seconds rather than minutes (tests, --quick)
QUICK = {"n_train": 4000, "n_analysis": 2000, "image_size": 24}
COLOURS = {
    "red": (0.9, 0.15, 0.1),
    "green": (0.15, 0.75, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
}
PATCH_COLOUR = (1.0, 0.6, 0.0)
#: binary cues of :func:`make_shapes` and the concept column each sets (the background cue sets
#: ``background=<biased_background>``)
CUES = {"background": None, "texture": "texture=striped", "patch": "patch", "size": "size=large"}
#: glyph classes of :func:`make_glyphs`
GLYPHS = ("L", "T", "X", "O")
# strokes of each glyph in units of its scale (y down); None: a ring of radius 0.7
_GLYPH_STROKES = (
    (((-0.5, -0.8), (-0.5, 0.8)), ((-0.5, 0.8), (0.6, 0.8))),
    (((-0.7, -0.8), (0.7, -0.8)), ((0.0, -0.8), (0.0, 0.8))),
    (((-0.7, -0.8), (0.7, 0.8)), ((-0.7, 0.8), (0.7, -0.8))),
    None,
)
BACKGROUNDS = {
    "black": (0.05, 0.05, 0.05),
    "white": (0.9, 0.9, 0.9),
    "purple": (0.5, 0.15, 0.55),
    "teal": (0.1, 0.5, 0.5),
}


# sqrt(pi / area of the shape drawn with r = 1) for circle, square, triangle, cross
_AREA_SCALE = np.sqrt(np.pi / np.array([np.pi, 1.6**2, 0.5 * 2.04 * 1.7, 2 * 2 * 0.6 - 0.6**2]))


def _shape_masks(kind: np.ndarray, cx, cy, r, size: int) -> np.ndarray:
    """Boolean masks (n, size, size) of shapes of kind index ``kind`` centred at (cx, cy)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    # scale each shape so that all have the area of a circle of radius r: size is area
    r = (r * _AREA_SCALE[kind])[:, None, None]
    circle = dx**2 + dy**2 <= r**2
    square = (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    # upward triangle with apex at the top: |dx| grows linearly from apex to base
    triangle = (dy >= -r) & (dy <= 0.7 * r) & (np.abs(dx) <= (dy + r) * 0.6)
    arm = 0.3 * r
    cross = ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    masks = np.stack([circle, square, triangle, cross])  # (4, n, size, size)
    return masks[kind, np.arange(len(kind))]


def plant(rng: np.random.Generator, eligible: np.ndarray, bias: float) -> np.ndarray:
    """A binary cue linked to ``eligible`` samples with strength ``bias``.

    With probability ``bias`` a sample carries the cue exactly when it is eligible; otherwise
    the cue is a fair coin. ``bias=0`` gives an independent cue (the control), ``bias=1``
    makes cue and eligibility identical.

    Returns
    -------
    ndarray of bool (n,)
    """
    planted = rng.random(len(eligible)) < bias
    return np.where(planted, eligible, rng.random(len(eligible)) < 0.5)


def _eligible(rng: np.random.Generator, in_class: np.ndarray, part: float) -> np.ndarray:
    """Members of the biased class that may carry the cue: a random ``part`` of them."""
    if not 0.0 < part <= 1.0:
        raise ValueError(f"part must be in (0, 1], got {part}")
    return in_class & (rng.random(len(in_class)) < part)


def _check_bias(bias: float, classes: tuple, biased_class: str) -> None:
    if not 0.0 <= bias <= 1.0:
        raise ValueError(f"bias must be in [0, 1], got {bias}")
    if biased_class not in classes:
        raise ValueError(f"unknown biased_class {biased_class!r}; choose one of {list(classes)}")


def _patch(s: int) -> tuple[slice, slice]:
    """Rows and columns of the watermark: a small square at a fixed place near the top-left corner."""
    w = max(2, s // 8)
    return slice(1, 1 + w), slice(1, 1 + w)


def make_shapes(
    n: int,
    *,
    image_size: int = 32,
    bias: float = 0.0,
    cue: str = "background",
    biased_class: str = "circle",
    biased_background: str = "purple",
    part: float = 1.0,
    noise: float = 0.08,
    seed: int = 0,
) -> dict:
    """Render ``n`` images of coloured shapes with their class and concept labels.

    Parameters
    ----------
    n : int
        Number of images.
    image_size : int
        Height and width in pixels (at least 16).
    bias : float in [0, 1]
        Strength of the planted spurious correlation between ``biased_class`` and the
        ``cue``. For the background: with probability ``bias`` an image of
        ``biased_class`` is put on ``biased_background`` and an image of any other class on
        one of the other backgrounds; otherwise the background is uniform. For a binary cue
        see :func:`plant`. ``bias=0`` makes every concept independent of the class (the
        control); ``bias=1`` makes cue and class identical.
    cue : {"background", "texture", "patch", "size"}
        The concept that carries the shortcut: background colour, striped shape, a small
        watermark patch at a fixed position, or large shape (see :data:`CUES`).
    biased_class, biased_background : str
        Which class and background the correlation links (from :data:`SHAPES`, :data:`BACKGROUNDS`).
    part : float in (0, 1]
        Only a random ``part`` of ``biased_class`` is linked to the cue (a shortcut present in
        only part of a class); the rest of the class is treated like the other classes.
    noise : float
        Standard deviation of the Gaussian pixel noise.
    seed : int

    Returns
    -------
    dict
        ``images`` float32 (n, 3, image_size, image_size) in [0, 1]; ``classes`` (n,) shape
        names; ``concepts`` dict of name -> (n,) labels for ``colour``, ``background``,
        ``texture`` (plain/striped), ``size`` (small/large) and ``patch`` (bool);
        ``planted`` the (concept column, class) pair the cue links, as named by
        :func:`~latentatlas.concepts.presence.concept_matrix`.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
    _check_bias(bias, SHAPES, biased_class)
    if cue not in CUES:
        raise ValueError(f"unknown cue {cue!r}; choose one of {list(CUES)}")
    backgrounds = list(BACKGROUNDS)
    if biased_background not in backgrounds:
        raise ValueError(f"unknown biased_background {biased_background!r}; choose one of {backgrounds}")
    rng = np.random.default_rng(seed)
    kind = rng.integers(len(SHAPES), size=n)
    colour = rng.integers(len(COLOURS), size=n)
    eligible = _eligible(rng, kind == SHAPES.index(biased_class), part)
    cued = {name: bias if name == cue else 0.0 for name in CUES}
    textured = plant(rng, eligible, cued["texture"])
    large = plant(rng, eligible, cued["size"])
    patched = plant(rng, eligible, cued["patch"])

    bg = rng.integers(len(backgrounds), size=n)
    target = backgrounds.index(biased_background)
    others = np.array([i for i in range(len(backgrounds)) if i != target])
    planted = rng.random(n) < cued["background"]
    bg[planted & eligible] = target
    bg[planted & ~eligible] = others[rng.integers(len(others), size=int((planted & ~eligible).sum()))]

    s = image_size
    r = np.where(large, rng.uniform(0.28, 0.33, n), rng.uniform(0.17, 0.21, n)) * s
    margin = np.minimum(r * _AREA_SCALE[kind] + 1, s / 2)  # keep the shape inside the image
    cx = rng.uniform(margin, s - margin)
    cy = rng.uniform(margin, s - margin)
    mask = _shape_masks(kind, cx, cy, r, s)
    yy, xx = np.mgrid[0:s, 0:s]
    stripes = ((xx + yy) // 2) % 2 == 0
    shade = np.where(textured[:, None, None] & stripes[None], 0.45, 1.0).astype(np.float32)

    fg = np.asarray(list(COLOURS.values()), dtype=np.float32)[colour]  # (n, 3)
    back = np.asarray(list(BACKGROUNDS.values()), dtype=np.float32)[bg]
    images = np.where(
        mask[:, None],
        fg[:, :, None, None] * shade[:, None],
        back[:, :, None, None],
    ).astype(np.float32)
    rows, cols = _patch(s)
    images[patched, :, rows, cols] = np.asarray(PATCH_COLOUR, dtype=np.float32)[:, None, None]
    images += rng.normal(0.0, noise, images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    column = {"background": f"background={biased_background}", **{k: v for k, v in CUES.items() if k != "background"}}
    return {
        "images": images,
        "classes": np.asarray(SHAPES)[kind],
        "concepts": {
            "colour": np.asarray(list(COLOURS))[colour],
            "background": np.asarray(backgrounds)[bg],
            "texture": np.where(textured, "striped", "plain"),
            "size": np.where(large, "large", "small"),
            "patch": patched,
        },
        "planted": (column[cue], biased_class),
    }


def _glyph_distance(kind: np.ndarray, cx, cy, scale, size: int) -> np.ndarray:
    """Distance in pixels (n, size, size) from each pixel to the strokes of glyph ``kind``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    u = (xx[None] - cx[:, None, None]) / scale[:, None, None]  # glyph units, y down
    v = (yy[None] - cy[:, None, None]) / scale[:, None, None]
    out = np.empty((len(kind), size, size), dtype=np.float32)
    for g, strokes in enumerate(_GLYPH_STROKES):
        members = kind == g
        if not members.any():
            continue
        uu, vv = u[members], v[members]
        if strokes is None:  # the ring
            d = np.abs(np.hypot(uu, vv) - 0.7)
        else:
            d = np.full(uu.shape, np.inf, dtype=np.float32)
            for (x0, y0), (x1, y1) in strokes:
                ex, ey = x1 - x0, y1 - y0
                t = np.clip(((uu - x0) * ex + (vv - y0) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
                d = np.minimum(d, np.hypot(uu - x0 - t * ex, vv - y0 - t * ey))
        out[members] = d * scale[members, None, None]
    return out


def make_glyphs(
    n: int,
    *,
    image_size: int = 20,
    bias: float = 0.0,
    biased_class: str = "O",
    noise: float = 0.05,
    seed: int = 0,
) -> dict:
    """Render ``n`` glyph images (classes :data:`GLYPHS`) with a faint background texture as cue.

    Concepts: ``colour`` of the glyph (as :data:`COLOURS`), ``stroke`` (thin/thick) and
    ``texture`` (bool: faint diagonal stripes on the dark background, a fifth of the glyph's
    contrast). With ``bias`` the texture is linked to ``biased_class`` as in :func:`plant`
    (``bias=0.9``: 95 % of that class textured, 5 % of the others). This is the held-out
    case of ``benchmarks/concept_power.py``: a cue kind the spurious-correlation rule was not
    tuned on.

    Returns
    -------
    dict
        As :func:`make_shapes`: ``images`` float32 (n, 3, image_size, image_size),
        ``classes``, ``concepts`` and ``planted``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
    _check_bias(bias, GLYPHS, biased_class)
    rng = np.random.default_rng(seed)
    kind = rng.integers(len(GLYPHS), size=n)
    colour = rng.integers(len(COLOURS), size=n)
    thick = rng.random(n) < 0.5
    textured = plant(rng, kind == GLYPHS.index(biased_class), bias)
    s = image_size
    scale = rng.uniform(0.33, 0.4, n) * s
    cx, cy = (s / 2 + rng.uniform(-0.1, 0.1, (2, n)) * s).astype(np.float32)
    ink = _glyph_distance(kind, cx, cy, scale.astype(np.float32), s) <= np.where(thick, 0.09, 0.045)[:, None, None] * s
    yy, xx = np.mgrid[0:s, 0:s]
    stripes = (((xx + yy) // 2) % 2 == 0).astype(np.float32)
    back = 0.15 + 0.12 * textured[:, None, None] * stripes[None]  # (n, s, s)
    fg = np.asarray(list(COLOURS.values()), dtype=np.float32)[colour]
    images = np.where(ink[:, None], fg[:, :, None, None], back[:, None]).astype(np.float32)
    images += rng.normal(0.0, noise, images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return {
        "images": images,
        "classes": np.asarray(GLYPHS)[kind],
        "concepts": {
            "colour": np.asarray(list(COLOURS))[colour],
            "stroke": np.where(thick, "thick", "thin"),
            "texture": textured,
        },
        "planted": ("texture", biased_class),
    }


def shapes_cnn(n_classes: int = len(SHAPES), width: int = 16):
    """A small CNN for :func:`make_shapes` images, written with plain ``torch.nn``.

    Probe-able layers (dotted names): ``block1``, ``block2``, ``block3`` (convolutional
    blocks, spatial maps), ``pool`` (global average) and ``head`` (class logits).
    """
    from collections import OrderedDict

    import torch.nn as nn

    def block(c_in, c_out, pool):
        layers = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        return nn.Sequential(*layers, *([nn.MaxPool2d(2)] if pool else []))

    return nn.Sequential(
        OrderedDict(
            block1=block(3, width, True),
            block2=block(width, 2 * width, True),
            block3=block(2 * width, 4 * width, False),
            pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            head=nn.Linear(4 * width, n_classes),
        )
    )


def train_shapes_cnn(
    images: np.ndarray,
    classes: np.ndarray,
    *,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    width: int = 16,
    class_names: tuple = SHAPES,
    seed: int = 0,
    progress: bool = True,
):
    """Train :func:`shapes_cnn` on ``images`` with cross-entropy and Adam, on the CPU.

    Parameters
    ----------
    images : ndarray (n, 3, H, W)
    classes : ndarray (n,)
        Class names from ``class_names``.
    class_names : tuple of str
        The classes in the order of the logits (:data:`SHAPES`, or :data:`GLYPHS` for glyphs).
    epochs, batch_size, lr, width, seed
        Training settings; fixed seeds make the result reproducible on one machine.

    Returns
    -------
    torch.nn.Module
        The trained model in eval mode.
    """
    import torch
    from tqdm.auto import tqdm

    unknown = sorted(set(np.unique(classes)) - set(class_names))
    if unknown:
        raise ValueError(f"unknown classes {unknown}; classes must be names from {list(class_names)}")
    if len(images) != len(classes):
        raise ValueError(f"got {len(images)} images but {len(classes)} class labels; give one label per image")
    torch.manual_seed(seed)
    model = shapes_cnn(len(class_names), width=width)
    x = torch.as_tensor(images, dtype=torch.float32)
    lookup = {name: i for i, name in enumerate(class_names)}
    y = torch.as_tensor(np.array([lookup[c] for c in classes], dtype=np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with tqdm(total=steps, desc="training shapes CNN", disable=not progress) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch_size):
                idx = order[i : i + batch_size]
                loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


def predict(model, images: np.ndarray, batch_size: int = 512, class_names: tuple = SHAPES) -> np.ndarray:
    """Predicted class names (n,) for ``images`` (n, 3, H, W)."""
    return np.asarray(class_names)[class_probabilities(model, images, batch_size).argmax(1)]


#: probed layers of :func:`shapes_cnn`
LAYERS = ("block1", "block2", "block3", "head")


def cue_demo(
    make,
    class_names: tuple,
    bias: float,
    *,
    n_train: int,
    n_analysis: int,
    image_size: int,
    epochs: int = 8,
    width: int = 16,
    seed: int = 0,
    progress: bool = True,
    generator_kwargs: dict | None = None,
    **kwargs,
):
    """Train :func:`shapes_cnn` on biased images of ``make`` and analyse it on decorrelated ones.

    Parameters
    ----------
    make : callable
        :func:`make_shapes` or :func:`make_glyphs`.
    class_names : tuple of str
        Its classes (:data:`SHAPES` or :data:`GLYPHS`).
    bias : float
        Strength of the planted cue in the training images; 0 gives the unbiased control.
    generator_kwargs : dict, optional
        More arguments of ``make`` for the training images (e.g. ``cue``, ``part``).
    **kwargs
        Passed to :func:`~latentatlas.concepts.presence.analyse_concepts`.

    Returns
    -------
    xarray.Dataset
        The concept analysis of :data:`LAYERS` with the model's own class probabilities
        (``outputs``) and the sensitivity of each class logit (``gradients``), plus attrs
        ``bias``, ``planted_concept``, ``planted_class`` and ``model_accuracy`` (on all
        analysed images).
    """
    from ..concepts.activations import capture_activations
    from ..concepts.presence import analyse_concepts
    from ..concepts.sensitivity import capture_gradients

    generator_kwargs = dict(generator_kwargs or {})
    train = make(n_train, image_size=image_size, bias=bias, seed=seed, **generator_kwargs)
    model = train_shapes_cnn(
        train["images"], train["classes"], epochs=epochs, width=width, class_names=class_names, seed=seed, progress=progress
    )
    # the analysed images are decorrelated: every concept independent of the class
    data = make(n_analysis, image_size=image_size, bias=0.0, seed=seed + 1)
    acts = capture_activations(model, data["images"], LAYERS, progress=progress)
    grads = capture_gradients(model, data["images"], LAYERS, output_names=class_names, progress=progress)
    proba = class_probabilities(model, data["images"], 512)
    result = analyse_concepts(
        acts, data["concepts"], data["classes"], class_names=list(class_names), seed=seed, outputs=proba,
        gradients=grads, **kwargs,
    )  # fmt: skip
    accuracy = float((np.asarray(class_names)[proba.argmax(1)] == data["classes"]).mean())
    return result.assign_attrs(
        bias=float(bias),
        planted_concept=train["planted"][0],
        planted_class=train["planted"][1],
        model_accuracy=accuracy,
        epochs=int(epochs),
        n_train_images=int(n_train),
        sensitivity_output="class logits",
    ), data


def shapes_demo(
    bias: float = 0.9,
    *,
    n_train: int = 8000,
    n_analysis: int = 4000,
    image_size: int = 32,
    epochs: int = 8,
    seed: int = 0,
    progress: bool = True,
    **kwargs,
):
    """Train the CNN on (biased) shapes and analyse its concepts on unbiased images.

    The training images carry the planted correlation of strength ``bias`` between
    ``"circle"`` and the ``"purple"`` background; the analysed images are drawn with
    ``bias=0`` (background independent of class), so a model presence of ``purple`` in
    circles above its dataset presence comes from the model, not from the data.

    Parameters
    ----------
    bias : float
        0 gives the unbiased control.
    n_train, n_analysis, image_size, epochs, seed
        Data and training settings (the defaults train in about two minutes on a CPU).
    **kwargs
        Passed to :func:`~latentatlas.concepts.presence.analyse_concepts`.

    Returns
    -------
    xarray.Dataset
        :func:`cue_demo`'s analysis, plus ``image`` (sample, channel, y, x) uint8 of the
        held-out images and attrs ``biased_class``, ``biased_background``.
    """
    result, data = cue_demo(
        make_shapes, SHAPES, bias, n_train=n_train, n_analysis=n_analysis, image_size=image_size, epochs=epochs,
        seed=seed, progress=progress, **kwargs,
    )  # fmt: skip
    images = np.round(data["images"][result["sample"].values] * 255).astype(np.uint8)
    return result.assign(image=(("sample", "channel", "y", "x"), images)).assign_attrs(
        demo="shapes", biased_class="circle", biased_background="purple"
    )
