"""Concept sensitivity (TCAV-style): does the model's output move along a concept's direction?

Presence (:mod:`.presence`) says whether a layer *contains* a concept; sensitivity says
whether the *output* depends on it (after TCAV, Kim et al., ICML 2018, as in Captum's
``TCAV``). For a probe of concept k at layer l, its direction in the layer's activations
is the normal of the probe's decision boundary, ``v = w / sigma`` (the probe weights on
standardised activations divided by the standard deviations), of unit length. The
directional derivative of a scalar output f of sample i along v is

    S_k(i) = d/de f(layer output of i + e v) at e = 0 = g_i . v,

where ``g_i`` is the gradient of f with respect to the layer's pooled activation. For a
spatial map (batch, channels, *spatial) the shift ``e v`` is added at every position, which
moves the global average by exactly ``e v``: g_i is the gradient summed over positions.

This module computes the gradients ``g`` once per (layer, sample, output), with
``torch.func`` (one vector-Jacobian product vmapped over the outputs, batched over samples);
:func:`~latentatlas.concepts.presence.analyse_concepts` then projects them on every probe,
the observed ones and those fitted to permuted labels (the random concepts of the
significance test), which costs one matrix product.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from ..hooks import capture, evaluating
from .activations import _check_layers, _pool, as_batch

__all__ = ["capture_gradients", "gradient_arrays", "directional_derivatives"]


def _layer_gradients(model, x, name: str, output: Callable, n_out: int | None):
    """Gradient of every output w.r.t. the pooled output of layer ``name``, (batch, n_out, channels)."""
    import torch
    from torch.func import vjp, vmap

    module = model.get_submodule(name)
    with capture(model, {"h": module}) as seen, torch.no_grad():
        model(x)
    (out,) = seen["h"]
    h = (out[0] if isinstance(out, (tuple, list)) else out).detach()
    _pool(h, name)  # the same checks as the activations: a (batch, features, ...) tensor

    current = {}

    def replace(_m, _in, out):
        return (current["h"], *out[1:]) if isinstance(out, (tuple, list)) else current["h"]

    def head(h_in):
        current["h"] = h_in
        handle = module.register_forward_hook(replace)
        try:
            y = output(model(x))
        finally:
            handle.remove()
        return y[:, None] if y.ndim == 1 else y

    y, pullback = vjp(head, h)
    if y.ndim != 2 or len(y) != len(x):
        raise ValueError(f"output must give one value or one row of values per sample, got shape {tuple(y.shape)}")
    if n_out is not None and y.shape[1] != n_out:
        raise ValueError(f"output gives {y.shape[1]} values per sample but {n_out} output names were given")
    # one cotangent per output, each selecting that output for every sample at once
    eye = torch.eye(y.shape[1], dtype=y.dtype)[:, None, :].expand(-1, len(x), -1)
    (grads,) = vmap(pullback)(eye)  # (n_out, batch, channels, *spatial)
    return grads.flatten(3).sum(3).transpose(0, 1) if grads.ndim > 3 else grads.transpose(0, 1)


def capture_gradients(
    model,
    inputs,
    layers: Sequence[str],
    *,
    output: Callable | None = None,
    output_names: Sequence[str] | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> xr.Dataset:
    """Gradients of the model's outputs with respect to each layer's pooled activation.

    Parameters
    ----------
    model : torch.nn.Module
        Run in eval mode (batch statistics frozen, so samples do not interact).
    inputs : array-like or torch.Tensor (n_samples, ...)
    layers : sequence of str
        Dotted submodule names, as for :func:`~latentatlas.concepts.activations.capture_activations`.
    output : callable, optional
        Maps the model's output (batch, ...) to the scalar outputs of interest, (batch,) or
        (batch, n_outputs): e.g. ``lambda y: y[:, 2]`` or ``lambda y: y.log_softmax(1)``.
        Default: the model's output itself (class logits).
    output_names : sequence of str, optional
        Names of the outputs; class names make :func:`analyse_concepts` take class c's
        sensitivity from output c. Default ``output0``, ``output1``, ...
    batch_size : int
    progress : bool

    Returns
    -------
    xarray.Dataset
        One variable per layer with dims ``("sample", "output", "<layer>:feature")``: the
        derivative of each output with respect to a shift of the layer's pooled activation
        (the gradient summed over spatial positions). Coordinate ``output``.
    """
    import torch
    from tqdm.auto import tqdm

    layers = list(layers)
    _check_layers(model, layers)
    output = (lambda y: y) if output is None else output
    x = as_batch(model, inputs)
    n_out = None if output_names is None else len(output_names)
    chunks: dict[str, list] = {name: [] for name in layers}
    with evaluating(model):
        for start in tqdm(range(0, len(x), batch_size), desc="gradients", disable=not progress):
            batch = x[start : start + batch_size]
            for name in layers:
                chunks[name].append(_layer_gradients(model, batch, name, output, n_out).detach().float().cpu())
    grads = {name: torch.cat(chunks[name]).numpy() for name in layers}
    width = next(iter(grads.values())).shape[1]
    names = [f"output{i}" for i in range(width)] if output_names is None else [str(v) for v in output_names]
    return gradients_dataset(grads, names)


def gradients_dataset(grads: dict, output_names: Sequence[str]) -> xr.Dataset:
    """Per-layer gradient arrays (n_samples, n_outputs, n_features) as the Dataset of :func:`capture_gradients`."""
    return xr.Dataset(
        {
            name: xr.DataArray(g, dims=("sample", "output", f"{name}:feature"), attrs={"layer": name})
            for name, g in grads.items()
        },
        coords={"output": list(output_names)},
    )


def gradient_arrays(gradients: xr.Dataset, layers: Sequence[str], n_samples: int, widths: Sequence[int]):
    """Validated gradients: ``{layer: float64 (n_samples, n_outputs, n_features)}`` and the output names.

    Layers without gradients are left out (their sensitivity is NaN); at least one must have them.
    """
    if not isinstance(gradients, xr.Dataset) or "output" not in gradients.coords:
        raise TypeError("gradients must be the xarray.Dataset of capture_gradients (with an 'output' coordinate)")
    if not any(name in gradients.data_vars for name in layers):
        raise KeyError(f"gradients have none of the layers {list(layers)}; they have {list(gradients.data_vars)}")
    out = {}
    for name, width in zip(layers, widths):
        if name not in gradients.data_vars:
            continue  # e.g. a model without a gradient backend among several: NaN sensitivity
        g = gradients[name]
        if g.ndim != 3 or g.dims[:2] != ("sample", "output"):
            raise ValueError(f"gradients of layer {name!r} must have dims (sample, output, feature), got {g.dims}")
        if g.shape[0] != n_samples or g.shape[2] != width:
            raise ValueError(
                f"gradients of layer {name!r} have shape {g.shape}, but the activations have {n_samples} samples "
                f"and {width} features: compute both from the same inputs and layers"
            )
        values = np.asarray(g.values, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"gradients of layer {name!r} contain NaN or infinite values")
        out[name] = values
    return out, [str(v) for v in gradients["output"].values]


def directional_derivatives(grads: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Derivatives of each sample's output along unit directions.

    Parameters
    ----------
    grads : ndarray (n_layers, n_samples, n_features)
        Gradient of the output that matters for each sample (zero-padded features).
    directions : ndarray (n_layers, n_features, n_directions)
        Any lengths; each column is normalised to unit length first.

    Returns
    -------
    ndarray (n_layers, n_samples, n_directions)
    """
    norm = np.linalg.norm(directions, axis=1, keepdims=True)
    unit = np.divide(directions, norm, out=np.zeros_like(directions), where=norm > 0)
    return grads @ unit
