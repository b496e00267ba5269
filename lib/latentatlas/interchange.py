"""Results as chemiscope datasets, for the field's structure-property viewer (https://chemiscope.org).

A comparison becomes the structures it was computed on, one chemiscope environment per test
sample, and as properties the errors of one (source, target) pair under every metric, the
source's PCA map, the sample's subset (and element); the map opens on PCA 1 / PCA 2 coloured
by the error. A concept analysis over atoms (:func:`latentatlas.concepts.atoms.analyse_atoms`)
becomes one environment per held-out atom with the probe probability of every concept at one
layer, the atom's class and its concept labels.

chemiscope (``pip install 'latentatlas[chemiscope]'``) builds and validates the dataset with
its own :func:`chemiscope.create_input`; the file opens with ``chemiscope.show_input(path)``
in Jupyter or at https://chemiscope.org.

Example
-------
>>> from latentatlas.interchange import write_chemiscope
>>> write_chemiscope(comparison, "pair.json.gz", metric="gfre", pair=("soap:power_spectrum", "chgnet-0.3.0:last"))  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .schema import check_comparison, check_concepts, default_pair, kind_of, metric_label, pointwise_metrics_of, sample_dim

__all__ = ["chemiscope_input", "write_chemiscope"]

#: Radius (Å) of the atomic environment chemiscope highlights around a selected atom.
CUTOFF = 3.5


def chemiscope_input(result: xr.Dataset, *, metric: str | None = None, pair: Sequence[str] | None = None,
                     layer: str | None = None, frames: Sequence | None = None) -> dict:
    """The chemiscope dataset (a JSON-ready dict) of a comparison or a per-atom concept analysis.

    Parameters
    ----------
    result : xarray.Dataset
        A comparison (:func:`latentatlas.compare.compare`) or a concept analysis over atoms.
    metric : str, optional
        Comparison: the metric whose error colours the map; default the first one present.
    pair : (source, target), optional
        Comparison: the pair whose errors are exported; default the worst off-diagonal pair.
    layer : str, optional
        Concepts: the layer whose probe probabilities are exported; default the last.
    frames : sequence of ase.Atoms, optional
        Concepts: the structures the analysis ran on (checked by fingerprint). A comparison
        carries its structures.

    Raises
    ------
    ValueError
        ``result`` is neither kind, names an unknown metric, pair or layer, or (concepts) is
        not over atoms or comes without its structures.
    """
    kind = kind_of(result)
    if kind == "comparison":
        return _comparison_input(check_comparison(result), metric, pair)
    if kind == "concepts":
        return _concepts_input(check_concepts(result), layer, frames)
    raise ValueError(f"chemiscope export takes a comparison or a concept result, got {kind or 'no latentatlas result'}")


def write_chemiscope(result: xr.Dataset, path: str | Path, **kwargs) -> Path:
    """Write :func:`chemiscope_input` of ``result`` to ``path`` (``.json`` or ``.json.gz``), atomically.

    Returns
    -------
    Path
    """
    path = Path(path)
    if not path.name.endswith((".json", ".json.gz")):
        raise ValueError(f"a chemiscope file ends with .json or .json.gz, got {path.name!r}")
    data = chemiscope_input(result, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8") as f:
            json.dump(data, f, allow_nan=False)  # plain JSON: browsers reject NaN
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _create(frames, properties: dict, environments, *, name: str, description: str, x: str, y: str, color: str) -> dict:
    import warnings

    import chemiscope

    target = "atom" if environments is not None else "structure"
    settings = chemiscope.quick_settings(x=x, y=y, map_color=color, target=target,
                                         periodic=any(a.pbc.any() for a in frames))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ambiguous target": every property says its target
        return chemiscope.create_input(
            frames,
            metadata={"name": name, "description": description,
                      "references": ["Chorna et al., arXiv:2512.05717 (feature reconstruction errors of uMLIPs)",
                                     "Chorna et al., arXiv:2507.05810 (concept knowledge graphs)"]},
            properties={k: {"target": target, **v} for k, v in properties.items()},
            environments=environments,
            settings=settings,
        )


def _environments(owner: np.ndarray, atoms: np.ndarray, n_atoms: np.ndarray) -> list[tuple[int, int, float]]:
    """(structure, index in its structure, cutoff) of the given atoms (indices over all atoms)."""
    first = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    return [(int(owner[a]), int(a - first[owner[a]]), CUTOFF) for a in atoms]


def _comparison_input(ds: xr.Dataset, metric, pair) -> dict:
    from ase.data import chemical_symbols

    from .dataset import frames_from_features

    metrics = pointwise_metrics_of(ds)  # chemiscope shows values per sample
    metric = metrics[0] if metric is None else metric
    if metric not in metrics:
        raise ValueError(f"the comparison has no metric {metric!r}; it has {metrics}")
    source, target = default_pair(ds, metric) if pair is None else (str(pair[0]), str(pair[1]))
    names = [str(s) for s in ds["source"].values]
    unknown = [n for n in (source, target) if n not in names]
    if unknown:
        raise ValueError(f"feature sets {unknown} are not in the comparison; it compares {names}")
    sample = sample_dim(ds, metric)
    test = ds[f"test_{sample}"].values.astype(int)
    frames = frames_from_features(ds)
    arrow = f"{source} → {target}"
    properties = {}
    for m in metrics:
        if sample_dim(ds, m) == sample:
            properties[f"{metric_label(m)} {arrow}"] = {
                "values": ds[f"{m}_pointwise"].sel(source=source, target=target).values.astype(float),
                "description": f"{metric_label(m)} of reconstructing {target} from {source} on this test {sample}",
            }
    pca = ds["pca"].sel(source=source).values[test]
    for k in range(pca.shape[1]):
        properties[f"PCA {k + 1} of {source}"] = {"values": pca[:, k], "description": f"principal component {k + 1} of the standardised {source} features"}
    if sample == "atom":
        owner = ds["atom_structure"].values.astype(int)
        environments = _environments(owner, test, ds["n_atoms"].values.astype(int))
        structure = owner[test]
        properties["element"] = {"values": [chemical_symbols[int(z)] for z in ds["species"].values[test]]}
    else:
        frames, environments, structure = [frames[s] for s in test], None, test
    properties["subset"] = {"values": ds["subset"].values[structure].astype(str).tolist()}
    return _create(
        frames, properties, environments,
        name=f"latentatlas: {metric_label(metric)} {arrow}",
        description=(f"{metric_label(metric)} of reconstructing {target} from {source}, per test {sample} "
                     f"(first train/test split), with the PCA map of {source}. Frames fingerprint "
                     f"{ds.attrs.get('fingerprint', 'unknown')}."),
        x=f"PCA 1 of {source}", y=f"PCA 2 of {source}", color=f"{metric_label(metric)} {arrow}",
    )


def _concepts_input(result: xr.Dataset, layer, frames) -> dict:
    from .frames import fingerprint

    if "sample_structure" not in result.coords:
        raise ValueError("this concept result is not over atoms (no 'sample_structure'); chemiscope shows structures: "
                         "analyse per-atom features (latentatlas concepts --features FILE)")
    if frames is None:
        raise ValueError("give the structures the concept analysis ran on (frames=...)")
    frames = list(frames)
    if result.attrs.get("fingerprint") and fingerprint(frames) != result.attrs["fingerprint"]:
        raise ValueError("the frames are not the ones the concept result was computed for (fingerprints differ)")
    layers = [str(v) for v in result["layer"].values]
    layer = layers[-1] if layer is None else str(layer)
    if layer not in layers:
        raise ValueError(f"the concept result has no layer {layer!r}; its layers are {layers}")
    n_atoms = np.array([len(a) for a in frames])
    owner = np.repeat(np.arange(len(frames)), n_atoms)
    atoms = result["sample"].values.astype(int)
    if atoms.max() >= len(owner) or not np.array_equal(owner[atoms], result["sample_structure"].values):
        raise ValueError("the concept result's atoms do not lie in these frames; give the frames it was computed for")
    concepts = [str(c) for c in result["concept"].values]
    probability = result["probability"].sel(layer=layer).transpose("sample", "concept").values
    labels = result["concept_label"].transpose("sample", "concept").values
    properties = {
        f"P({c}) at {layer}": {"values": probability[:, k].astype(float),
                               "description": f"probability the {layer} probe gives concept {c} on this held-out atom"}
        for k, c in enumerate(concepts)
    }
    properties.update({f"has {c}": {"values": labels[:, k].astype(int), "description": f"1 where the atom has concept {c}"}
                       for k, c in enumerate(concepts)})
    properties["class"] = {"values": result["sample_class"].values.astype(str).tolist()}
    first = [f"P({c}) at {layer}" for c in concepts[:2]]
    return _create(
        frames, properties, _environments(owner, atoms, n_atoms),
        name=f"latentatlas: concepts at layer {layer}",
        description=f"Concept probe probabilities at layer {layer} on the held-out atoms; classes: {result.attrs.get('classes', 'classes')}.",
        x=first[0], y=first[-1], color="class",
    )
