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

__all__ = [
    "SHAPES",
    "COLOURS",
    "BACKGROUNDS",
    "QUICK",
    "make_shapes",
    "shapes_demo",
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


def make_shapes(
    n: int,
    *,
    image_size: int = 32,
    bias: float = 0.0,
    biased_class: str = "circle",
    biased_background: str = "purple",
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
        Strength of the planted spurious correlation: with probability ``bias`` an image of
        ``biased_class`` is put on ``biased_background`` and an image of any other class on
        one of the other backgrounds; otherwise the background is uniform. ``bias=0`` makes
        background and class independent (the control); ``bias=1`` makes them identical.
    biased_class, biased_background : str
        Which class and background the correlation links (from :data:`SHAPES`, :data:`BACKGROUNDS`).
    noise : float
        Standard deviation of the Gaussian pixel noise.
    seed : int

    Returns
    -------
    dict
        ``images`` float32 (n, 3, image_size, image_size) in [0, 1]; ``classes`` (n,) shape
        names; ``concepts`` dict of name -> (n,) labels for ``colour``, ``background``,
        ``texture`` (plain/striped) and ``size`` (small/large).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
    if not 0.0 <= bias <= 1.0:
        raise ValueError(f"bias must be in [0, 1], got {bias}")
    if biased_class not in SHAPES:
        raise ValueError(f"unknown biased_class {biased_class!r}; choose one of {list(SHAPES)}")
    backgrounds = list(BACKGROUNDS)
    if biased_background not in backgrounds:
        raise ValueError(f"unknown biased_background {biased_background!r}; choose one of {backgrounds}")
    rng = np.random.default_rng(seed)
    kind = rng.integers(len(SHAPES), size=n)
    colour = rng.integers(len(COLOURS), size=n)
    textured = rng.random(n) < 0.5
    large = rng.random(n) < 0.5

    bg = rng.integers(len(backgrounds), size=n)
    target = backgrounds.index(biased_background)
    others = np.array([i for i in range(len(backgrounds)) if i != target])
    planted = rng.random(n) < bias
    in_class = kind == SHAPES.index(biased_class)
    bg[planted & in_class] = target
    bg[planted & ~in_class] = others[rng.integers(len(others), size=int((planted & ~in_class).sum()))]

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
    images += rng.normal(0.0, noise, images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return {
        "images": images,
        "classes": np.asarray(SHAPES)[kind],
        "concepts": {
            "colour": np.asarray(list(COLOURS))[colour],
            "background": np.asarray(backgrounds)[bg],
            "texture": np.where(textured, "striped", "plain"),
            "size": np.where(large, "large", "small"),
        },
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
    seed: int = 0,
    progress: bool = True,
):
    """Train :func:`shapes_cnn` on ``images`` with cross-entropy and Adam, on the CPU.

    Parameters
    ----------
    images : ndarray (n, 3, H, W)
    classes : ndarray (n,)
        Shape names from :data:`SHAPES`.
    epochs, batch_size, lr, width, seed
        Training settings; fixed seeds make the result reproducible on one machine.

    Returns
    -------
    torch.nn.Module
        The trained model in eval mode.
    """
    import torch
    from tqdm.auto import tqdm

    unknown = sorted(set(np.unique(classes)) - set(SHAPES))
    if unknown:
        raise ValueError(f"unknown classes {unknown}; classes must be shape names from {list(SHAPES)}")
    if len(images) != len(classes):
        raise ValueError(f"got {len(images)} images but {len(classes)} class labels; give one label per image")
    torch.manual_seed(seed)
    model = shapes_cnn(width=width)
    x = torch.as_tensor(images, dtype=torch.float32)
    y = torch.as_tensor(_class_index(classes))
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


def _class_index(classes) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(SHAPES)}
    return np.array([lookup[c] for c in classes], dtype=np.int64)


def predict(model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Predicted shape names (n,) for ``images`` (n, 3, H, W)."""
    import torch

    with torch.no_grad():
        logits = torch.cat([model(torch.as_tensor(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])
    return np.asarray(SHAPES)[logits.argmax(1).numpy()]


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
        The concept analysis of layers ``block1``, ``block2``, ``block3``, ``head``, plus
        ``image`` (sample, channel, y, x) uint8 of the held-out images, and attrs ``bias``,
        ``biased_class``, ``biased_background`` and ``model_accuracy`` (on all analysed images).
    """
    from .activations import capture_activations
    from .presence import analyse_concepts

    train = make_shapes(n_train, image_size=image_size, bias=bias, seed=seed)
    model = train_shapes_cnn(train["images"], train["classes"], epochs=epochs, seed=seed, progress=progress)
    data = make_shapes(n_analysis, image_size=image_size, bias=0.0, seed=seed + 1)
    acts = capture_activations(model, data["images"], ["block1", "block2", "block3", "head"], progress=progress)
    result = analyse_concepts(acts, data["concepts"], data["classes"], class_names=list(SHAPES), seed=seed, **kwargs)
    images = np.round(data["images"][result["sample"].values] * 255).astype(np.uint8)
    accuracy = float((predict(model, data["images"]) == data["classes"]).mean())
    return result.assign(image=(("sample", "channel", "y", "x"), images)).assign_attrs(
        demo="shapes",
        bias=float(bias),
        biased_class="circle",
        biased_background="purple",
        model_accuracy=accuracy,
        epochs=int(epochs),
        n_train_images=int(n_train),
    )
