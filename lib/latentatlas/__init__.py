"""latentatlas: what machine-learning models have learned, measured and shown.

The library is pure computation; heavy backends (torch models, Panel) are imported
only by the modules that need them, so ``import latentatlas`` stays fast.
"""

__version__ = "0.1.0"
