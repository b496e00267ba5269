"""Layer activations of any ``torch.nn.Module``, or precomputed ones given as xarray.

Activations are one 2-D array (samples, features) per layer. Spatial maps are reduced by
global average pooling so that every layer gives one vector per sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from ..dataset import feature_arrays
from ..hooks import capture, evaluating

__all__ = ["layer_names", "capture_activations", "activation_arrays", "class_probabilities", "load_factory"]


def layer_names(model) -> list[str]:
    """Dotted names of every submodule of ``model`` that can be probed."""
    return [name for name, _ in model.named_modules() if name]


def _check_layers(model, layers: Sequence[str]) -> None:
    valid = layer_names(model)
    unknown = [name for name in layers if name not in valid]
    if unknown:
        raise KeyError(
            f"unknown layer name(s) {unknown} for {type(model).__name__}; valid dotted names are: {valid}"
        )
    if not layers:
        raise ValueError(f"no layer given; choose layer names among {valid}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layer names must be unique, got {list(layers)}")


def as_batch(model, inputs):
    """``inputs`` as a non-empty torch batch in the dtype of the model's parameters."""
    import torch

    x = torch.as_tensor(inputs)
    params = next(model.parameters(), None)
    if x.is_floating_point() and params is not None:
        x = x.to(params.dtype)  # e.g. float64 arrays for a float32 model
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"inputs must be a non-empty batch (n_samples, ...), got shape {tuple(x.shape)}")
    return x


def _pool(output, name: str):
    """Global average over every dimension after (batch, channel)."""
    import torch

    if isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"layer {name!r} returned {type(output).__name__}, not a tensor; choose a layer whose output "
            "is a tensor (or a tuple whose first item is one)"
        )
    if output.ndim < 2:
        raise ValueError(f"layer {name!r} returned shape {tuple(output.shape)}; a (batch, features, ...) output is needed")
    return output.flatten(2).mean(2) if output.ndim > 2 else output


def capture_activations(
    model,
    inputs,
    layers: Sequence[str],
    *,
    batch_size: int = 256,
    progress: bool = True,
) -> xr.Dataset:
    """Run ``model`` on ``inputs`` and record the pooled output of each named layer.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; it is put in eval mode and run without gradients.
    inputs : array-like or torch.Tensor of shape (n_samples, ...)
        Batched along the first axis.
    layers : sequence of str
        Dotted submodule names (``model.get_submodule`` style), e.g. ``"block2"`` or
        ``"encoder.layers.3"``. Outputs of shape (batch, channels, *spatial) are averaged over
        the spatial axes (global average pooling, channels-first as in ``torch.nn.Conv*``).
    batch_size : int
    progress : bool
        Show a tqdm bar over batches.

    Returns
    -------
    xarray.Dataset
        One variable per layer, named as the layer, with dims ``("sample", "<layer>:feature")``.

    Raises
    ------
    KeyError
        A layer name is not a submodule; the message lists the valid names.
    """
    import torch
    from tqdm.auto import tqdm

    layers = list(layers)
    _check_layers(model, layers)
    x = as_batch(model, inputs)
    pool = lambda name, out: _pool(out, name).detach().float().cpu()  # noqa: E731
    with evaluating(model), capture(model, {n: n for n in layers}, transform=pool) as chunks, torch.no_grad():
        for start in tqdm(range(0, len(x), batch_size), desc="activations", disable=not progress):
            model(x[start : start + batch_size])
    return xr.Dataset(
        {
            name: xr.DataArray(torch.cat(chunks[name]).numpy(), dims=("sample", f"{name}:feature"), attrs={"layer": name})
            for name in layers
        }
    )


def activation_arrays(activations, layers: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Activations as ``{layer: float64 array (n_samples, n_features)}``, validated.

    Parameters
    ----------
    activations : xarray.Dataset or mapping of name -> array-like (n_samples, n_features)
        E.g. the output of :func:`capture_activations`, or a features Dataset of
        :mod:`latentatlas.dataset` (its feature sets are the layers and its atoms the samples).
        Only 2-D data variables count as layers.
    layers : sequence of str, optional
        Which layers, in order; default all.
    """
    if isinstance(activations, xr.Dataset):
        available = [k for k, v in activations.data_vars.items() if v.ndim == 2]
        if layers is None:
            layers = available
        unknown = [k for k in layers if k not in available]
        if unknown:
            raise KeyError(f"unknown layer name(s) {unknown}; valid layers of these activations are: {available}")
        activations = activations[list(layers)]
    elif not isinstance(activations, Mapping):
        raise TypeError(
            f"activations must be an xarray.Dataset or a dict of layer -> array, got {type(activations).__name__}"
        )
    return feature_arrays(activations, layers)


def load_factory(spec: str):
    """Build a model from ``"package.module:callable"`` (the callable takes no argument)."""
    import importlib

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"model must be given as 'package.module:factory', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import module {module_name!r} ({err}); check the name and that it is installed") from err
    try:
        factory = getattr(module, attr)
    except AttributeError as err:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from err
    return factory()


def class_probabilities(model, inputs, batch_size: int = 256):
    """The model's class probabilities: softmax of its output (class logits), in eval mode, without gradients.

    Returns
    -------
    ndarray of float64, shape (n_samples, n_classes)

    Raises
    ------
    ValueError
        The model's output is not 2-D (n_samples, n_classes).
    """
    import torch

    x = as_batch(model, inputs)
    with evaluating(model), torch.no_grad():
        logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    if logits.ndim != 2:
        raise ValueError(f"the model's output must be class logits (n_samples, n_classes), got shape {tuple(logits.shape)}")
    return torch.softmax(logits.double(), 1).cpu().numpy()
