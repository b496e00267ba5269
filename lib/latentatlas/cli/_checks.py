"""Checks of command-line arguments, made before any work starts.

Number types for ``argparse`` (a bad value is reported like any other usage error), the
output check every command runs before computing, and the one-line message a user mistake
gets instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

# optional dependency (import name) -> the extra of pyproject.toml that installs it
EXTRAS = {
    "panel": "app", "bokeh": "app", "networkx": "app",
    "torch": "models", "chgnet": "models", "sevenn": "models", "featomic": "models", "dscribe": "models",
    "torchani": "models", "metatomic": "models", "metatensor": "models", "vesin": "models", "sklearn": "concepts", "matplotlib": "reproduce",
    "dask": "scale", "distributed": "scale", "zarr": "scale", "faiss": "scale",
}


def _number(kind, minimum=None, maximum=None, *, above=None):
    """An argparse type: ``kind`` (int or float) within [minimum, maximum] and > ``above``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) or (
            above is not None and value <= above
        ):
            low = f"> {above}" if above is not None else (f">= {minimum}" if minimum is not None else "")
            high = f"<= {maximum}" if maximum is not None else ""
            raise argparse.ArgumentTypeError(f"{text} is out of range; give a value {' and '.join(filter(None, [low, high]))}")
        return value

    return parse


positive_int = _number(int, 1)
"""An integer >= 1 (thread counts, batch sizes, split counts, orders)."""

non_negative_int = _number(int, 0)
"""An integer >= 0."""

port_number = _number(int, 0, 65535)
"""A TCP port, 0 for any free one."""

positive_float = _number(float, above=0.0)
"""A number > 0."""

open_fraction = _number(float, maximum=1.0, above=0.0)
"""A number in (0, 1]."""


def check_output(out: str | Path, inputs: Iterable[str | Path] = (), *, folder: bool = False, option: str = "--out") -> Path:
    """Check, before any work, that ``out`` can be written and is none of ``inputs``.

    Parameters
    ----------
    out : str or Path
        The output file (or folder, with ``folder=True``).
    inputs : iterable of str or Path
        Files the command reads; writing over one of them would lose it.
    option : str
        How the user gave ``out``, for the message.

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        ``out`` is an input, a folder where a file is wanted (or the reverse), or its folder
        cannot be created or written to; the message names the option and the fix.
    """
    out = Path(out)
    for given in inputs:
        if _same_file(out, Path(given)):
            raise ValueError(f"{option} {out} is also an input ({given}); write the result to another file")
    if folder and out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out} is a file; give a folder (it is created if missing)")
    if not folder and out.is_dir():
        raise ValueError(f"{option} {out} is a folder; give a file name, e.g. {out / 'result.nc'}")
    parent = out if folder else out.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {out}: {existing} is a file, so the folder {parent} cannot be created; give another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {out}: no permission to write in {existing}; give a path in a folder you can write to")
    return out


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def user_error(err: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input or machine, None for a bug."""
    if isinstance(err, ImportError):
        extra = EXTRAS.get((err.name or "").partition(".")[0])
        if extra:
            return f"the optional package {err.name!r} is not installed; install it with: pip install 'latentatlas[{extra}]'"
        return str(err)
    if isinstance(err, KeyError):
        return str(err.args[0]) if err.args else repr(err)
    if isinstance(err, OSError):
        if err.strerror and err.filename:
            return f"{err.strerror}: {err.filename}"
        return str(err)
    if isinstance(err, ValueError):
        return str(err)
    return None
