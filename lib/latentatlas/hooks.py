"""What named submodules of a torch model see during forward passes, captured with hooks.

Every place that reads a model's inner layers (the CHGNet, SevenNet and ANI featurisers,
:func:`latentatlas.concepts.capture_activations`, :class:`latentatlas.features.module.ModuleFeaturizer`)
goes through :func:`capture`, so hook registration, what a hook records and the guaranteed
removal of every hook are written once.

Example
-------
>>> with capture(model, {"block": "encoder.2", "head_input": model.head}, pre={"head_input"}) as seen:  # doctest: +SKIP
...     model(x)
>>> seen["block"][0]        # output of model.encoder[2] in the first call
>>> seen["head_input"][0]   # first positional input of model.head
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping

__all__ = ["capture", "evaluating", "resolve"]


def resolve(model, target):
    """The submodule ``target`` of ``model``: a module, or its dotted name (``"encoder.layers.3"``).

    Raises
    ------
    KeyError
        ``target`` names no submodule; the message lists the valid dotted names.
    """
    if not isinstance(target, str):
        return target
    try:
        return model.get_submodule(target)
    except AttributeError:
        valid = [name for name, _ in model.named_modules() if name]
        raise KeyError(f"{type(model).__name__} has no submodule {target!r}; valid dotted names are: {valid}") from None


@contextlib.contextmanager
def evaluating(model):
    """Put ``model`` in eval mode for the block and restore its training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def capture(
    model,
    targets: Mapping[Hashable, object],
    *,
    pre: Collection[Hashable] = (),
    transform: Callable[[Hashable, object], object] | None = None,
) -> Iterator[dict[Hashable, list]]:
    """Record the outputs (or inputs) of named submodules while the block runs.

    Parameters
    ----------
    model : torch.nn.Module
        The model the dotted names in ``targets`` are resolved against.
    targets : mapping of name -> torch.nn.Module or str
        What to watch, under the name the captured values are filed by; a string is a dotted
        submodule name of ``model``.
    pre : collection of names
        Names whose first positional *input* is recorded (a forward pre-hook) instead of the output.
    transform : callable (name, value) -> value, optional
        Applied to each value inside the hook, e.g. to copy a tensor the model later mutates in
        place or to pool a large activation before it is kept.

    Yields
    ------
    dict of name -> list
        One entry per target; each forward call of the submodule appends one value, so a model
        run on several batches inside the block leaves one value per batch, in call order.
        Submodules never called keep an empty list.

    Raises
    ------
    KeyError
        A dotted name is not a submodule of ``model``, or a ``pre`` name is not in ``targets``.
    """
    modules = {name: resolve(model, target) for name, target in targets.items()}
    unknown = [name for name in pre if name not in modules]
    if unknown:
        raise KeyError(f"pre names {unknown} are not among the targets {list(modules)}")
    seen: dict[Hashable, list] = {name: [] for name in modules}

    def keep(name, value):
        seen[name].append(value if transform is None else transform(name, value))

    with contextlib.ExitStack() as stack:
        for name, module in modules.items():
            if name in pre:
                handle = module.register_forward_pre_hook(lambda _m, args, name=name: keep(name, args[0]))
            else:
                handle = module.register_forward_hook(lambda _m, _args, out, name=name: keep(name, out))
            stack.callback(handle.remove)
        yield seen
