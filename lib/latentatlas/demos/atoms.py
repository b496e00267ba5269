"""The chemistry concept demo: which layer of which pretrained potential first encodes which concept."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from ..concepts.atoms import analyse_atoms, energy_gradients


def atoms_demo(
    models: Sequence[str] = ("chgnet-0.3.0", "sevennet-0"),
    *,
    small: bool = True,
    sensitivity: bool = True,
    progress: bool = True,
    **kwargs,
) -> xr.Dataset:
    """Which layer of which pretrained potential first encodes which chemical concept.

    Featurises the built-in structures (:func:`latentatlas.structures.builtin_frames`) with
    every layer of each model and runs :func:`~latentatlas.concepts.atoms.analyse_atoms`.

    Parameters
    ----------
    models : sequence of str
        Names from :func:`latentatlas.features.list_featurizers`.
    small : bool
        Use the small built-in set (434 atoms) instead of the full one (15,739 atoms).
    sensitivity : bool
        Also the sensitivity of the energy to each concept (:func:`~latentatlas.concepts.atoms.energy_gradients`) for
        the CHGNet models among ``models`` (NaN for the others' layers).
    """
    from ..dataset import merge_features
    from ..features import get_featurizer
    from ..structures import builtin_frames

    frames = builtin_frames(small=small)
    parts = [get_featurizer(name).featurize(frames, progress=progress) for name in models]
    features = merge_features(*parts)
    chgnet = [name for name in models if name.startswith("chgnet")]
    if sensitivity and chgnet:
        kwargs["gradients"] = xr.merge([energy_gradients(frames, name, progress=progress) for name in chgnet])
    return analyse_atoms(features, frames, **kwargs)
