"""Per-atom latent features of pretrained universal interatomic potentials, every layer.

Registry
--------
============================  ====================  ==========================================
name                          layers                model (weights shipped in the wheel)
============================  ====================  ==========================================
``chgnet-0.3.0``              conv1..conv4, last    CHGNet 0.3.0 (MPtrj)
``chgnet-0.2.0``              conv1..conv3, last    CHGNet 0.2.0 (MPtrj, older training)
``chgnet-r2scan``             conv1..conv4, last    CHGNet fine-tuned from 0.3.0 on MP r2SCAN
``sevennet-0``                gate0..gate3, last    SevenNet-0 (11Jul2024)
``sevennet-0-22may2024``      gate0..gate3, last    SevenNet-0 (22May2024): same recipe, other run
``sevennet-l3i5``             gate0..gate3, last    SevenNet-l3i5 (lmax 3)
``sevennet-mf-0-pbe``         gate0..gate3, last    SevenNet-MF-0, PBE fidelity head
``sevennet-mf-0-r2scan``      gate0..gate3, last    SevenNet-MF-0, r2SCAN fidelity head
``ani-1x-0`` .. ``ani-1x-7``  aev, last             ANI-1x ensemble members 0..7 (H, C, N, O only)
``soap``                      power_spectrum        species-agnostic SOAP (featomic)
============================  ====================  ==========================================

``last`` is always the input of the energy head. See the backend modules
(:mod:`.chgnet`, :mod:`.sevennet`, :mod:`.ani`, :mod:`.soap`) for what each layer is.
A ``torch.nn.Module`` potential of your own: :class:`.module.ModuleFeaturizer` (hooks on named
submodules, no registry entry needed).

Any exported metatomic model file (``.pt``: PET, MACE, ... trained with metatrain, or
your own) is a featuriser too: pass its path instead of a name (:mod:`.metatomic`).

Example
-------
>>> from latentatlas.features import get_featurizer
>>> ds = get_featurizer("chgnet-0.3.0").featurize(frames)          # doctest: +SKIP
>>> ds, energy = get_featurizer("sevennet-0").featurize_with_energy(frames, ["last"])  # doctest: +SKIP
>>> ds = get_featurizer("path/to/pet.pt").featurize(frames)       # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from .base import Featurizer, UnsupportedElementError

__all__ = ["Featurizer", "UnsupportedElementError", "get_featurizer", "get_featurizers", "list_featurizers"]

# name -> (backend module, class, constructor arguments)
_REGISTRY = {
    "chgnet-0.3.0": ("chgnet", "CHGNetFeaturizer", {"model": "0.3.0"}),
    "chgnet-0.2.0": ("chgnet", "CHGNetFeaturizer", {"model": "0.2.0"}),
    "chgnet-r2scan": ("chgnet", "CHGNetFeaturizer", {"model": "r2scan"}),
    "sevennet-0": ("sevennet", "SevenNetFeaturizer", {"model": "7net-0"}),
    "sevennet-0-22may2024": ("sevennet", "SevenNetFeaturizer", {"model": "7net-0_22may2024"}),
    "sevennet-l3i5": ("sevennet", "SevenNetFeaturizer", {"model": "7net-l3i5"}),
    "sevennet-mf-0-pbe": ("sevennet", "SevenNetFeaturizer", {"model": "7net-mf-0", "modal": "PBE"}),
    "sevennet-mf-0-r2scan": ("sevennet", "SevenNetFeaturizer", {"model": "7net-mf-0", "modal": "R2SCAN"}),
    **{f"ani-1x-{i}": ("ani", "ANIFeaturizer", {"member": i}) for i in range(8)},
    "soap": ("soap", "SoapFeaturizer", {}),
}

# backend module -> (python package it needs, how to install it)
_REQUIRES = {
    "chgnet": ("chgnet", "pip install 'latentatlas[models]'  (or: pip install chgnet)"),
    "sevennet": ("sevenn", "pip install 'latentatlas[models]'  (or: pip install sevenn)"),
    # torchani 2.2.4 ships the ANI-1x weights in its wheel; later releases download them
    "ani": ("torchani", "pip install 'latentatlas[models]'  (or: pip install 'torchani==2.2.4' 'setuptools<81')"),
    "soap": ("featomic", "pip install 'latentatlas[models]'  (or: pip install featomic)"),
    "metatomic": ("metatomic", "pip install 'latentatlas[models]'  (or: pip install metatomic-torch vesin)"),
}


def list_featurizers(available_only: bool = False) -> list[str]:
    """Names accepted by :func:`get_featurizer`.

    Parameters
    ----------
    available_only : bool
        Only those whose backend package is installed.
    """
    from importlib.util import find_spec

    names = list(_REGISTRY)
    if available_only:
        names = [n for n in names if find_spec(_REQUIRES[_REGISTRY[n][0]][0]) is not None]
    return names


def get_featurizer(name: str, **kwargs) -> Featurizer:
    """The featuriser registered as ``name``, with the model loaded (from local weights).

    Parameters
    ----------
    name : str
        One of :func:`list_featurizers`, or the path of an exported metatomic model
        file (ends in ``.pt``/``.pth`` or contains a ``/``).
    **kwargs
        Override constructor arguments (e.g. ``checkpoint=PATH`` for local weights,
        ``cutoff=4.0`` for SOAP, ``extensions_dir=DIR`` for a metatomic model).

    Raises
    ------
    KeyError
        Unknown name (the message lists the known ones).
    ImportError
        The backend package is not installed (the message says how to install it).
    """
    from importlib.util import find_spec

    from .metatomic import is_model_file

    if name in _REGISTRY:
        module, cls, defaults = _REGISTRY[name]
        defaults = {**defaults, "name": name}
    elif is_model_file(name):
        module, cls, defaults = "metatomic", "MetatomicFeaturizer", {"path": str(name)}
    else:
        raise KeyError(f"unknown featurizer {name!r}; available: {', '.join(_REGISTRY)}, or the path of a metatomic model file (.pt)")
    package, install = _REQUIRES[module]
    if find_spec(package) is None:
        raise ImportError(f"featurizer {name!r} needs the {package!r} package, which is not installed; install it with: {install}")
    backend = importlib.import_module(f"{__name__}.{module}")
    return getattr(backend, cls)(**{**defaults, **kwargs})


def get_featurizers(names, *, extensions_dir=None) -> list[Featurizer]:
    """Several featurisers at once, registry names and model files mixed, with distinct names.

    Two model files whose metadata give the same name (two fine-tunes of one model) are
    told apart by their file names.

    Parameters
    ----------
    names : sequence of str
        Registry names or metatomic model files; repeats are dropped.
    extensions_dir : path, optional
        TorchScript extensions folder for the model files.

    Raises
    ------
    ValueError
        Two featurisers would still share a name.
    """
    from .metatomic import is_model_file

    featurizers = []
    for name in dict.fromkeys(names):
        kwargs = {"extensions_dir": extensions_dir} if name not in _REGISTRY and is_model_file(name) and extensions_dir is not None else {}
        featurizers.append(get_featurizer(name, **kwargs))
    taken = [f.name for f in featurizers]
    for f in featurizers:
        if taken.count(f.name) > 1 and hasattr(f, "path"):
            f.name = f.path.stem
    taken = [f.name for f in featurizers]
    clashes = sorted({n for n in taken if taken.count(n) > 1})
    if clashes:
        raise ValueError(f"several models are named {clashes}; give model files distinct file names")
    return featurizers
