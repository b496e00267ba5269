"""latentatlas: what machine-learning models have learned, measured and shown.

The library is pure computation; heavy backends (torch models, Panel) are imported
only by the modules that need them, so ``import latentatlas`` stays fast.
"""

__version__ = "0.1.0"


def show(result=None, **params):
    """Display a comparison in a Jupyter notebook (see :func:`latentatlas.viz.show.show`).

    Panel is imported only when this is called, so ``import latentatlas`` stays light.
    """
    from .viz.show import show as _show

    return _show(result, **params)
