"""Detection power of the spurious-correlation rule: planted shortcuts of several kinds.

For each cue kind, bias strength and seed, a small CNN is trained on procedural images whose
class is linked to the cue with that strength, then analysed on decorrelated images
(``capture_activations`` -> ``capture_gradients`` -> ``analyse_concepts``); unbiased controls
are trained the same way. A rule flags a (concept, class) pair when it flags it at any layer.
Per rule the script prints

- TPR: the fraction of runs whose planted (concept, class) pair is flagged, per kind and strength;
- FPR: the fraction of the other (concept, class) pairs flagged, in controls (every pair)
  and in biased runs (pairs of concepts other than the cued one), per strength.

Cue kinds (``latentatlas.demos.shapes``): ``colour`` (background colour), ``texture``
(striped shapes), ``patch`` (a small watermark at a fixed position), ``size`` (large shapes),
``partial`` (background colour on a random half of the class only), and the held-out
``glyph-texture`` (glyph classes, a faint background texture on one class: issue 14's case).

The rule's thresholds are chosen here: a grid search on the *tuning* runs (seeds and kinds of
``--tune-seeds``/``--tune-kinds``) keeps the rules whose FPR of pairs is at most ``--max-fpr``
(default 1 %) in the tuning controls and in the tuning biased runs, and picks the one with the
highest mean TPR at bias >= 0.8 across tuning kinds, the loosest among equals (a looser rule
flags a superset, so within the budget it has the most power on new data); the tables report the current and the chosen rule
on the held-out runs (the other seeds, and kinds never tuned on).

Every trained run is cached as netCDF under ``--cache`` (default
``~/.cache/latentatlas/concept_power``), so re-evaluating rules costs no training::

    nice -n 10 python benchmarks/concept_power.py            # trains what is missing, then prints
    python benchmarks/concept_power.py --seeds 0 1 --biases 0.8 1.0 --kinds colour patch
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

import numpy as np

SETTINGS = {"n_train": 3000, "n_analysis": 2000, "image_size": 20, "epochs": 6, "width": 12}
KINDS = ("colour", "texture", "patch", "size", "partial", "glyph-texture")


def case(kind: str):
    """Generator, classes and generator arguments of a cue kind (or a control: ``shapes``/``glyphs``)."""
    from latentatlas.demos.shapes import GLYPHS, SHAPES, make_glyphs, make_shapes

    if kind in ("glyph-texture", "glyphs"):
        return make_glyphs, GLYPHS, {}
    cue = {"colour": "background", "partial": "background", "shapes": "background"}.get(kind, kind)
    return make_shapes, SHAPES, {"cue": cue, **({"part": 0.5} if kind == "partial" else {})}


def control_of(kind: str) -> str:
    return "glyphs" if kind.startswith("glyph") else "shapes"


def run_path(kind: str, bias: float, seed: int, cache: Path) -> Path:
    return cache / f"{kind}-b{bias:.2f}-s{seed}.nc"


def run(kind: str, bias: float, seed: int, cache: Path):
    """The cached analysis of one trained model (trained now if missing)."""
    import torch

    from latentatlas.demos.shapes import cue_demo
    from latentatlas.io import load, save

    path = run_path(kind, bias, seed, cache)
    if not path.exists():
        torch.set_num_threads(1)
        make, classes, kwargs = case(kind)
        result, _ = cue_demo(make, classes, bias, seed=seed, progress=False, generator_kwargs=kwargs, **SETTINGS)
        save(result.drop_vars("probability").assign_attrs(kind=kind), path)
    return load(path)


def flagged_pairs(result, rule) -> np.ndarray:
    """(concept, class) pairs a rule flags at any layer, bool (n_concepts, n_classes)."""
    return rule(result).any("layer").transpose("concept", "class").values


def score(runs: dict, rule) -> dict:
    """TPR per (kind, bias) and FPR per (kind or control, bias) of a rule over cached runs.

    Returns
    -------
    dict
        ``tpr`` and ``fpr``: (kind, bias) -> mean over seeds; ``n``: (kind, bias) -> number of runs.
    """
    hits: dict = {}
    false: dict = {}
    for (kind, bias, seed), result in runs.items():
        flags = flagged_pairs(result, rule)
        concepts = list(result["concept"].values)
        classes = list(result["class"].values)
        if bias == 0:
            negative = np.ones_like(flags)
        else:
            k, c = concepts.index(result.attrs["planted_concept"]), classes.index(result.attrs["planted_class"])
            hits.setdefault((kind, bias), []).append(bool(flags[k, c]))
            cued = result["concept_attribute"].values == result["concept_attribute"].values[k]
            negative = np.repeat(~cued[:, None], len(classes), 1)  # other values of the cued attribute are planted too
        false.setdefault((kind, bias), []).append((flags & negative).sum() / negative.sum())
    return {
        "tpr": {k: np.mean(v) for k, v in hits.items()},
        "fpr": {k: np.mean(v) for k, v in false.items()},
        "n": {k: len(v) for k, v in false.items()},
    }


def table(runs: dict, rule, title: str) -> str:
    """The power table of a rule: TPR per kind (rows) and bias (columns), FPR per bias."""
    s = score(runs, rule)
    kinds = sorted({k for k, _ in s["tpr"]}, key=lambda k: KINDS.index(k))
    biases = sorted({b for _, b in s["tpr"]})
    seeds = sorted({seed for _, _, seed in runs})

    def hits(kind, b):
        n = s["n"].get((kind, b), 0)
        return f"{round(s['tpr'][(kind, b)] * n):>2d}/{n:<3d}" if n else "   -  "

    lines = [f"{title} (seeds {seeds})", "TPR (planted pair flagged)   " + "  ".join(f"b={b:.2f}" for b in biases)]
    for kind in kinds:
        lines.append(f"  {kind:26s} " + "  ".join(hits(kind, b) for b in biases))
    lines.append("FPR (other pairs flagged)    " + "  ".join(f"b={b:.2f}" for b in biases) + "   control (runs)")
    for kind in kinds:
        control = s["fpr"].get((control_of(kind), 0.0), np.nan)
        row = "  ".join(f"{s['fpr'][(kind, b)]:6.3f}" if (kind, b) in s["fpr"] else "     -" for b in biases)
        lines.append(f"  {kind:26s} {row}   {control:6.3f} ({s['n'].get((control_of(kind), 0.0), 0)})")
    return "\n".join(lines)


def grid():
    """Candidate thresholds of the calibrated rule (``spurious_correlations`` keywords)."""
    values = (0.6, 0.7), (0.0, 0.02, 0.05, 0.1), (0.01, 0.02, 0.05), (0.01, 0.05), (False, True)
    for acc, exc, out, alpha, sens in itertools.product(*values):
        yield {"min_accuracy": acc, "min_excess": exc, "min_output_excess": out, "alpha": alpha, "use_sensitivity": sens}


def choose(runs: dict, max_fpr: float):
    """The loosest grid rule with the highest tuning power whose FPR stays within ``max_fpr``.

    The FPR budget holds for the controls (every pair, each generator's mean) and for the
    biased runs (pairs of other concepts than the cued one). Among rules of equal power the
    loosest thresholds win: a looser rule flags a superset, so within the budget it has the
    most power on new data.
    """
    from latentatlas.concepts import spurious_correlations

    best = None
    for params in grid():
        s = score(runs, lambda r, p=params: spurious_correlations(r, **p))
        control = max(v for (kind, b), v in s["fpr"].items() if b == 0)
        biased = np.mean([v for (kind, b), v in s["fpr"].items() if b > 0])
        if control > max_fpr or biased > max_fpr:
            continue
        power = np.mean([v for (kind, b), v in s["tpr"].items() if b >= 0.8])
        loose = (-params["min_output_excess"], -params["min_excess"], -params["min_accuracy"], params["alpha"],
                 params["use_sensitivity"])
        if best is None or (power, loose) > best[0]:
            best = ((power, loose), params, control, biased)
    return best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--biases", nargs="+", type=float, default=[0.5, 0.8, 1.0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    p.add_argument("--tune-seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--tune-kinds", nargs="+", default=["colour", "texture", "patch"])
    p.add_argument("--max-fpr", type=float, default=0.01, help="FPR budget of pairs, in tuning controls and biased runs")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("LATENTATLAS_CACHE", Path.home() / ".cache/latentatlas")) / "concept_power")
    p.add_argument("--train-only", action="store_true", help="train and cache the runs, print nothing")
    p.add_argument("--cached-only", action="store_true", help="evaluate the cached runs among those selected, train none")
    args = p.parse_args(argv)
    from tqdm.auto import tqdm

    from latentatlas.concepts import spurious_correlations

    args.cache.mkdir(parents=True, exist_ok=True)
    jobs = [(k, b, s) for s in args.seeds for k in args.kinds for b in args.biases]
    jobs += [(c, 0.0, s) for s in args.seeds for c in sorted({control_of(k) for k in args.kinds})]
    if args.cached_only:
        jobs = [job for job in jobs if run_path(*job, args.cache).exists()]
    runs = {job: run(*job, args.cache) for job in tqdm(jobs, desc="runs (train + analyse)")}
    if args.train_only:
        return
    accuracy = {}
    for (kind, bias, _), r in runs.items():
        accuracy.setdefault((kind, bias), []).append(r.attrs["model_accuracy"])
    print("model accuracy on decorrelated images (mean over seeds):")
    for (kind, bias), v in sorted(accuracy.items()):
        print(f"  {kind:14s} b={bias:.2f}  {np.mean(v):.3f}")

    tune = {k: v for k, v in runs.items() if k[2] in args.tune_seeds and (k[0] in args.tune_kinds or k[1] == 0)}
    held = {k: v for k, v in runs.items() if k not in tune}  # other seeds, and kinds never tuned on
    found = choose(tune, args.max_fpr)
    if found is None:
        print(f"no rule on the grid keeps the tuning controls' FPR <= {args.max_fpr}")
        return
    (power, _), params, control, biased = found
    print(
        f"\nchosen on tuning runs (seeds {args.tune_seeds}, kinds {args.tune_kinds}, FPR budget {args.max_fpr}): {params}\n"
        f"  tuning: mean TPR at bias >= 0.8 {power:.2f}, control FPR {control:.4f}, biased-run FPR {biased:.4f}"
    )
    current = {"min_accuracy": 0.7, "min_excess": 0.1, "alpha": 0.05, "use_outputs": False, "use_sensitivity": False}
    for name, rule_params in (("BEFORE: rule of the shapes demo", current), ("AFTER: calibrated rule", params)):
        for label, part in (("held-out runs (untuned seeds and kinds)", held), ("all runs", runs)):
            if part:
                print()
                print(table(part, lambda r, q=rule_params: spurious_correlations(r, **q), f"{name}, {label}"))


if __name__ == "__main__":
    main()
