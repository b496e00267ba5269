"""Demo data with known answers: the shipped demo results and synthetic data with planted ground truth.

- :mod:`~latentatlas.demos.comparison`: the built-in FRE comparison the dashboard opens on
  (``python -m latentatlas.demos.comparison`` rewrites it).
- :mod:`~latentatlas.demos.concepts`: the built-in concept result of the concept app
  (``python -m latentatlas.demos.concepts``).
- :mod:`~latentatlas.demos.shapes`: procedural images (shapes, glyphs) with a plantable
  shortcut, and the small CNN trained on them.
- :mod:`~latentatlas.demos.atoms`: chemistry concepts in the layers of pretrained potentials.

Nothing here is imported by ``import latentatlas``; each module imports what it needs.
"""
