"""Small result files shipped inside the package, so every install can show its demos.

``demo_comparison.nc`` and ``demo_comparison_structure_level.nc`` (the dashboard's built-in
comparison, written by ``python -m latentatlas.demos.comparison``) and ``demo_concepts_shapes.nc``
(the concept app's built-in analysis, ``python -m latentatlas.demos.concepts``). Both
scripts write into this folder by default.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["folder"]


def folder() -> Path:
    """The folder of the shipped data files, wherever the package is installed."""
    return Path(str(files(__name__)))
