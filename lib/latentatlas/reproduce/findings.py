"""What the reproduction found: every number and sentence of the report, computed from the results.

:func:`findings` reads a :class:`~latentatlas.reproduce.Reproduction` and returns
:class:`Findings`, plain data that :mod:`latentatlas.reproduce.report` renders (markdown,
figures); nothing here draws or writes. Two values are called different only when they
differ by more than ``Z`` times their combined spread (``sqrt(s_a² + s_b²)``); otherwise
they are "indistinguishable". The paper's values are always labelled as the paper's (MAD
dataset; PET-MAD, MACE, DPA, UMA).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from ..diagnostics import caveats
from .analyses import architecture, unrelated_pairs

__all__ = ["PAPER", "QUESTIONS", "Z", "NEAR_ZERO", "Findings", "conclusions", "findings", "relation", "subset_summary"]

Z = 2.0
"""Differences beyond ``Z`` combined standard deviations are called real."""

NEAR_ZERO = 0.05
"""A cumulant step below this GFRE would mean the next order is nearly a linear function of the previous ones."""

# Reference values of Chorna et al. (arXiv:2512.05717), MAD dataset, last-layer features.
PAPER = {
    "gfre_pet_mad_to_mace": 0.26,
    "gfre_mace_to_pet_mad": 0.60,
    "mean_offdiag_gfre": 0.66,
    "mean_offdiag_lfre": 0.37,
    "finetuned_vs_parent": 0.03,
    "cumulant_step_range": (0.24, 0.42),
}


def relation(a: float, sa: float, b: float, sb: float) -> str:
    """``"smaller than"``, ``"larger than"`` or ``"indistinguishable from"`` (within ``Z`` combined spreads)."""
    spread = np.hypot(sa, sb)
    if a < b - Z * spread:
        return "smaller than"
    if a > b + Z * spread:
        return "larger than"
    return "indistinguishable from"


def _pm(value: float, spread: float, digits: int = 3) -> str:
    return f"{value:.{digits}f} ± {spread:.{digits}f}"


def _short(name: str) -> str:
    return str(name).removesuffix(":last")


def _is_mlip(model: str) -> bool:
    return architecture(model) != "descriptor"


# -- computed conclusions --------------------------------------------------------------------


def _ordered_pairs(cross, metric, keep):
    """[(source, target, value, std)] over ordered off-diagonal pairs with keep(source_model, target_model)."""
    out = []
    models = [str(m) for m in cross.source_model.values]
    for i, s in enumerate(cross.source.values):
        for j, t in enumerate(cross.target.values):
            if i != j and keep(models[i], models[j]):
                out.append((str(s), str(t), float(cross[metric].values[i, j]), float(cross[f"{metric}_std"].values[i, j])))
    return out


def _mean_pm(pairs):
    """Mean over pairs, and the mean of their spreads (an upper bound of the mean's spread over splits)."""
    return float(np.mean([p[2] for p in pairs])), float(np.mean([p[3] for p in pairs]))


#: the key questions, each with the paper's answer (cumulant steps: ``k = 1…K`` is added when computed)
QUESTIONS = {
    "levels": ("Mean off-diagonal GFRE / LFRE between unrelated uMLIPs",
               f"GFRE {PAPER['mean_offdiag_gfre']}, LFRE {PAPER['mean_offdiag_lfre']}"),
    "asymmetry": ("Asymmetry of reconstruction (most asymmetric uMLIP pair)",
                  f"PET-MAD→MACE {PAPER['gfre_pet_mad_to_mace']}, MACE→PET-MAD {PAPER['gfre_mace_to_pet_mad']}"),
    "fine_tuning": ("Fine-tuning bias: fine-tuned model vs its parent",
                    f"fine-tuned PET-MAD vs parent ≈ {PAPER['finetuned_vs_parent']}, far below unrelated models"),
    "cumulants": ("Cumulant steps φ^(k)→φ^(k+1)",
                  "between {} and {}, never near zero".format(*PAPER["cumulant_step_range"])),
}  # fmt: skip


def conclusions(result) -> list[dict]:
    """The key comparisons with the paper, each computed from the numbers.

    Returns
    -------
    list of dict
        Keys ``question``, ``paper``, ``ours``, ``verdict`` (``"agrees"``, ``"differs"``,
        ``"partly agrees"`` or ``"not computed"``) and ``why`` (one computed sentence).
    """
    return [*_cross_model_rows(result.cross), _fine_tuning_row(result.fine_tuning), _cumulant_row(result.cumulants)]


def _row(key: str, ours: str, verdict: str, why: str, question: str | None = None) -> dict:
    """One key comparison: the question of :data:`QUESTIONS` (or ``question``), the paper's answer and ours."""
    default, paper = QUESTIONS[key]
    return {"question": question or default, "paper": paper, "ours": ours, "verdict": verdict, "why": why}


def _verdict(rel: str, expected: str) -> str:
    """``"agrees"`` when :func:`relation` gave the paper's ``expected`` relation, else ``"differs"``."""
    return "agrees" if rel == expected else "differs"


def _not_computed(key: str, needs: str) -> dict:
    return _row(key, "—", "not computed", f"Not computed: needs {needs} among the selected models.")


def _cross_model_rows(cross) -> list[dict]:
    """Mean GFRE / LFRE levels between unrelated uMLIPs, and the most asymmetric uMLIP pair."""
    unrelated = lambda a, b: _is_mlip(a) and _is_mlip(b) and architecture(a) != architecture(b)  # noqa: E731
    mlips = lambda a, b: _is_mlip(a) and _is_mlip(b)  # noqa: E731
    g_pairs, l_pairs = _ordered_pairs(cross, "gfre", unrelated), _ordered_pairs(cross, "lfre", unrelated)
    if not g_pairs:
        return [_not_computed(key, "uMLIPs of two architectures") for key in ("levels", "asymmetry")]
    (g, gs), (lo, ls) = _mean_pm(g_pairs), _mean_pm(l_pairs)
    rel = relation(lo, ls, g, gs)
    why = (f"Paper: LFRE well below GFRE (part of the difference between models is non-linear). "
           f"Ours: mean LFRE is {rel} mean GFRE. Our GFRE level is {'below' if g < PAPER['mean_offdiag_gfre'] else 'above'} "
           f"the paper's ({g:.2f} vs {PAPER['mean_offdiag_gfre']}), with other models and data.")
    ours = f"GFRE {_pm(g, gs)}, LFRE {_pm(lo, ls)} ({len(g_pairs)} ordered cross-architecture pairs)"
    levels = _row("levels", ours, _verdict(rel, "smaller than"), why)
    pairs = {(s, t): (v, sd) for s, t, v, sd in _ordered_pairs(cross, "gfre", mlips)}
    gaps = [(abs(v - pairs[(t, s)][0]), s, t) for (s, t), (v, _) in pairs.items() if s < t]
    _, s, t = max(gaps)
    (a, sa), (b, sb) = pairs[(s, t)], pairs[(t, s)]
    if a > b:
        (s, a, sa), (t, b, sb) = (t, b, sb), (s, a, sa)
    rel = relation(a, sa, b, sb)
    asymmetry = _row(
        "asymmetry", f"{_short(s)}→{_short(t)} {_pm(a, sa)}, {_short(t)}→{_short(s)} {_pm(b, sb)}", _verdict(rel, "smaller than"),
        f"Paper: one model's features contain most of the other's but not the reverse. Ours: "
        f"{_short(s)}→{_short(t)} is {rel} the reverse direction.",
    )
    return [levels, asymmetry]


def _fine_tuning_row(ft) -> dict:
    """The fine-tuned model and its parent against the closest unrelated pair."""
    if ft is None or not ft.sizes.get("finetuned_pair", 0) or not ft.sizes.get("unrelated_pair", 0):
        return _not_computed("fine_tuning", "chgnet-r2scan, chgnet-0.3.0 and a SevenNet model")
    child, parent = ft.attrs["finetuned"], ft.attrs["parent"]
    ab, abs_ = float(ft["finetuned_gfre_ab"][0]), float(ft["finetuned_gfre_ab_std"][0])
    ba, bas = float(ft["finetuned_gfre_ba"][0]), float(ft["finetuned_gfre_ba_std"][0])
    both = [(float(ft[f"unrelated_gfre_{d}"][i]), float(ft[f"unrelated_gfre_{d}_std"][i]),
             *((ft["unrelated_a"][i].item(), ft["unrelated_b"][i].item())[:: 1 if d == "ab" else -1]))
            for i in range(ft.sizes["unrelated_pair"]) for d in ("ab", "ba")]  # fmt: skip
    u, us, us_src, us_tgt = min(both)
    r1, r2 = relation(ab, abs_, u, us), relation(ba, bas, u, us)
    return _row(
        "fine_tuning",
        f"{child}→{parent} {_pm(ab, abs_)}, {parent}→{child} {_pm(ba, bas)}; smallest unrelated {us_src}→{us_tgt} {_pm(u, us)}",
        "agrees" if r1 == r2 == "smaller than" else ("partly agrees" if "smaller than" in (r1, r2) else "differs"),
        f"{child}→{parent} is {r1} the smallest unrelated GFRE, {parent}→{child} is {r2} it; "
        f"our fine-tuned/parent distance is {max(ab, ba) / PAPER['finetuned_vs_parent']:.0f}× the paper's at most.",
    )


def _cumulant_row(cum) -> dict:
    """The smallest cumulant step of any uMLIP against 'near zero', and the share of steps in the paper's range."""
    names = [n for n, m in zip(cum.feature_set.values, cum.feature_set_model.values) if _is_mlip(m)]
    if not names:
        return _not_computed("cumulants", "a uMLIP")
    steps = cum["step"].sel(feature_set=names)
    spread = cum["step_std"].sel(feature_set=names)
    lo, hi = PAPER["cumulant_step_range"]
    inside = float(((steps >= lo) & (steps <= hi)).mean())
    where = steps.argmin(...)
    low, low_sd = float(steps[where]), float(spread[where])
    name, k = _short(steps.feature_set.values[int(where["feature_set"])]), int(steps.step_order.values[int(where["step_order"])])
    rel = relation(low, low_sd, NEAR_ZERO, 0.0)
    return _row(
        "cumulants",
        f"between {float(steps.min()):.2f} and {float(steps.max()):.2f} over {len(names)} models "
        f"({inside:.0%} of steps inside the paper's range)",
        _verdict(rel, "larger than"),
        f"The smallest step, {_pm(low, low_sd)} ({name}, k = {k}), is {rel} {NEAR_ZERO} (our 'near zero'), so "
        f"{'every order adds information' if rel == 'larger than' else 'some order may add (almost) nothing'}.",
        question=f"{QUESTIONS['cumulants'][0]}, k = 1…{int(cum.step_order.max())}",
    )


# -- everything the report states -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Findings:
    """The computed content of the report, in its order: numbers and the sentences they give.

    Attributes
    ----------
    conclusions : list of dict
        :func:`conclusions`: the key comparisons with the paper.
    cross_caveats : list of str
        Warnings about the cross-model matrices (overfitting, unstable local fits, diagnostics).
    lfre_floor : str
        The mean of the LFRE diagonal, the floor of the local fits.
    variants : list of str
        Each variant pair's larger GFRE against the smallest unrelated-pair GFRE.
    layer_rows : list of (str, str, (float, float), (float, float))
        Model, inner layer, GFRE last → layer and layer → last (mean, sd over splits).
    layers : list of str
        Per model, its inner layers against its last layer on average.
    subsets : xarray.Dataset
        :func:`subset_summary`.
    subset_ranking : str
        The subsets with the largest and the smallest GFRE.
    uncertainty : str
        How large the spread over splits is, and which differences it makes noise.
    learning_rows : list of (float, float, (float, float), (float, float)) or None
        Per training share of the learning curve: training structures, share, mean and
        largest off-diagonal GFRE (each ± sd); None without a learning curve.
    learning : str or None
        Whether the last step of the learning curve changes the values beyond their spread.
    measures : str or None
        Which measure ranks the model pairs most and least like GFRE; None without the
        measures or with two pairs or fewer.
    """

    conclusions: list[dict]
    cross_caveats: list[str]
    lfre_floor: str
    variants: list[str]
    layer_rows: list[tuple]
    layers: list[str]
    subsets: xr.Dataset
    subset_ranking: str
    uncertainty: str
    learning_rows: list[tuple] | None
    learning: str | None
    measures: str | None


def findings(result) -> Findings:
    """Everything the report states about ``result`` (a :class:`~latentatlas.reproduce.Reproduction`)."""
    layer_rows, layers = _layer_findings(result)
    learning_rows, learning = _learning_findings(result.learning) if result.learning is not None else (None, None)
    return Findings(
        conclusions=conclusions(result),
        cross_caveats=_cross_caveats(result.cross) + caveats(result.cross, ["gfre", "lfre"]),
        lfre_floor=_lfre_floor(result),
        variants=_variant_statements(result),
        layer_rows=layer_rows,
        layers=layers,
        subsets=subset_summary(result),
        subset_ranking=_subset_ranking(result),
        uncertainty=_uncertainty(result),
        learning_rows=learning_rows,
        learning=learning,
        measures=_closest_measures(result.measures) if result.measures is not None else None,
    )


def _lfre_floor(result) -> str:
    diag = float(np.mean(np.diagonal(result.cross["lfre"].values)))
    return (f"The LFRE diagonal (a set reconstructing itself locally from {result.settings.n_local_points} neighbours) "
            f"averages {diag:.3f}: the floor of the local fits.")


def _subset_ranking(result) -> str:
    stats = subset_summary(result)
    names = result.subsets.subset.values
    g, gs = stats["gfre"].values, stats["gfre_std"].values
    first, second, last = np.argsort(-g)[[0, 1, -1]]
    return (f"Mean over off-diagonal uMLIP pairs. Largest GFRE: {names[first]} ({_pm(g[first], gs[first])}), "
            f"which is {relation(g[first], gs[first], g[second], gs[second])} the second, {names[second]} "
            f"({_pm(g[second], gs[second])}); smallest: {names[last]} ({_pm(g[last], gs[last])}). "
            "The paper's per-subset values are not quoted here, so no agreement is claimed.")


def _uncertainty(result) -> str:
    cross = result.cross
    off = ~np.eye(cross.sizes["source"], dtype=bool)
    spreads = np.concatenate([cross["gfre_std"].values[off], cross["lfre_std"].values[off]])
    return (f"Over {result.settings.n_splits} splits the standard deviation of an off-diagonal cross-model FRE is "
            f"{np.median(spreads):.3f} (median; max {np.max(spreads):.3f}). Differences smaller than about "
            f"{Z * np.sqrt(2) * np.median(spreads):.3f} ({Z:g}·√2 median sd) are noise.")


def _learning_findings(curve) -> tuple[list[tuple], str | None]:
    """Learning-curve rows (mean and largest off-diagonal GFRE per share) and whether the last step converged."""
    values, spread = curve["learning_gfre"].values, curve["learning_gfre_std"].values
    off = ~np.eye(values.shape[1], dtype=bool)
    n_train = curve["learning_n_train_structures"].values
    rows = []
    for k, fraction in enumerate(curve.train_fraction.values):
        v, e = values[k][off], spread[k][off]
        top = int(np.argmax(v))
        rows.append((n_train[k], fraction, (v.mean(), e.mean()), (v[top], e[top])))
    if len(n_train) < 2:
        return rows, None
    change = np.abs(values[-1] - values[-2])[off]
    return rows, (
        f"From {n_train[-2]:.0f} to {n_train[-1]:.0f} training structures the off-diagonal values change "
        f"by {np.median(change):.3f} (median; largest {change.max():.3f}): "
        + ("they have not converged, more structures would change them."
           if change.max() > 2 * np.median(spread[-1][off]) else "within about twice their spread over splits.")
    )


def _layer_findings(result) -> tuple[list[tuple], list[str]]:
    """GFRE between each model's last and inner layers, both directions, and one sentence per model."""
    rows, statements = [], []
    for model, ds in result.layers.items():
        layers = list(ds.source_layer.values)
        last = ds.source.values[layers.index("last")]
        fwd, back = [], []
        for name, layer in zip(ds.source.values, layers):
            if layer == "last":
                continue
            a = (float(ds["gfre"].sel(source=last, target=name)), float(ds["gfre_std"].sel(source=last, target=name)))
            b = (float(ds["gfre"].sel(source=name, target=last)), float(ds["gfre_std"].sel(source=name, target=last)))
            fwd.append(a)
            back.append(b)
            rows.append((model, layer, a, b))
        mf, mb = np.mean([v for v, _ in fwd]), np.mean([v for v, _ in back])
        sf, sb = np.mean([s for _, s in fwd]), np.mean([s for _, s in back])
        statements.append(
            f"{model}: averaged over inner layers, last → inner {_pm(mf, sf)} is {relation(mf, sf, mb, sb)} "
            f"inner → last {_pm(mb, sb)}; the inner layer closest to the last one (smallest inner → last) is "
            f"{layers[int(np.argmin([v for v, _ in back]))] if back else '-'}."
        )
    return rows, statements


def _closest_measures(ms) -> str | None:
    """Which measure's ranking of the pairs is closest to GFRE's, and which is farthest (None: too few pairs)."""
    from ..similarity import MEASURES

    measures = [str(m) for m in ms.measure.values]
    corr = ms["rank_correlation"].values
    if ms.sizes["pair"] <= 2 or not np.all(np.isfinite(corr[0, 1:])):
        return None
    others = corr[0, 1:]
    best, worst = measures[1 + int(np.argmax(others))], measures[1 + int(np.argmin(others))]
    return (f"Over {ms.sizes['pair']} pairs, the ranking closest to GFRE's is {MEASURES[best].label}'s "
            f"(ρ = {others.max():+.2f}), the farthest {MEASURES[worst].label}'s (ρ = {others.min():+.2f}).")


def subset_summary(result):
    """Per-subset errors averaged over the off-diagonal uMLIP pairs (all pairs if fewer than two uMLIPs).

    Returns
    -------
    xarray.Dataset over ``subset``
        ``gfre``, ``lfre``: mean RMS pointwise error; ``gfre_std``, ``lfre_std``: mean of the
        pairs' bootstrap spreads.
    """
    sub = result.subsets
    models = [str(m) for m in result.cross.source_model.values]
    mask = np.array([[i != j and _is_mlip(a) and _is_mlip(b) for j, b in enumerate(models)] for i, a in enumerate(models)])
    if not mask.any():
        mask = ~np.eye(len(models), dtype=bool)
    data = {}
    for m in ("gfre", "lfre"):
        data[m] = ("subset", sub[f"{m}_rms"].values[:, mask].mean(axis=1))
        data[f"{m}_std"] = ("subset", sub[f"{m}_rms_std"].values[:, mask].mean(axis=1))
    return xr.Dataset(data, coords={"subset": sub.subset.values})


def _cross_caveats(cross) -> list[str]:
    """Computed warnings about the cross-model matrices (overfitting, unstable local fits)."""
    off = ~np.eye(cross.sizes["source"], dtype=bool)
    g, gs = cross["gfre"].values[off], cross["gfre_std"].values[off]
    lo, ls = cross["lfre"].values[off], cross["lfre_std"].values[off]
    lines = []
    over = int(np.sum(g > 1))
    if over:
        lines.append(
            f"{over} of {g.size} off-diagonal GFRE values exceed 1, about the error of predicting every target feature by its "
            "training mean: there the linear map fit on the training structures does not carry over to the test "
            "structures (likely too few training structures for the number of features: a larger fraction of the benchmark should lower them)."
        )
    worse = int(np.sum(lo > g + Z * np.hypot(gs, ls)))
    if worse:
        lines.append(f"In {worse} of {lo.size} off-diagonal cells LFRE is larger than GFRE beyond {Z:g}σ: there the "
                     "local fits on the nearest neighbours generalise worse than the global one.")
    unstable = [_short(n) for n in cross.source.values
                if float(cross["lfre_std"].sel(source=n).max()) > 0.5 * float(cross["lfre"].sel(source=n).max())]
    if unstable:
        lines.append(
            f"LFRE from {', '.join(unstable)} varies by more than half its largest value between splits: the local "
            "ridge on the nearest neighbours extrapolates badly for some test atoms (for instance when many training "
            "atoms share nearly identical features, as the equivalent atoms of ideal crystals do); read those rows with care."
        )
    return lines


def _variant_statements(result) -> list[str]:
    """Computed sentences comparing variant pairs with each other and with unrelated pairs."""
    var, ft = result.variants, result.fine_tuning
    unrelated = []
    if ft is not None:
        unrelated = [(float(ft[f"unrelated_gfre_{d}"][i]), float(ft[f"unrelated_gfre_{d}_std"][i]))
                     for i in range(ft.sizes.get("unrelated_pair", 0)) for d in ("ab", "ba")]
    else:
        models = [str(m) for m in result.cross.source_model.values]
        names = dict(zip(models, result.cross.source.values))
        for a, b, _ in unrelated_pairs(models):
            for s, t in ((a, b), (b, a)):
                unrelated.append((float(result.cross["gfre"].sel(source=names[s], target=names[t])),
                                  float(result.cross["gfre_std"].sel(source=names[s], target=names[t]))))
    lines = []
    low = min(unrelated) if unrelated else None
    for i in range(var.sizes.get("pair", 0)):
        worst = max((float(var["gfre_ab"][i]), float(var["gfre_ab_std"][i])), (float(var["gfre_ba"][i]), float(var["gfre_ba_std"][i])))
        text = f"{var.label.values[i]}: the larger direction, GFRE {_pm(*worst)}"
        if low is not None:
            text += f", is {relation(*worst, *low)} the smallest unrelated-pair GFRE {_pm(*low)}"
        lines.append(text + ".")
    return lines
