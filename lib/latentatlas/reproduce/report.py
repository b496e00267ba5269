"""Markdown report and PNG figures of a :class:`~latentatlas.reproduce.Reproduction`.

Every sentence that compares numbers is computed from them: two values are called
different only when they differ by more than ``Z`` times their combined spread
(``sqrt(s_a² + s_b²)``); otherwise they are "indistinguishable". The paper's values are
always labelled as the paper's (MAD dataset; PET-MAD, MACE, DPA, UMA).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..diagnostics import FLAGS, caveats, cell_marks
from .analyses import architecture, unrelated_pairs

__all__ = ["PAPER", "Z", "NEAR_ZERO", "conclusions", "figures", "relation", "subset_summary", "write_report"]

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


def conclusions(result) -> list[dict]:
    """The key comparisons with the paper, each computed from the numbers.

    Returns
    -------
    list of dict
        Keys ``question``, ``paper``, ``ours``, ``verdict`` (``"agrees"``, ``"differs"``,
        ``"partly agrees"`` or ``"not computed"``) and ``why`` (one computed sentence).
    """
    cross = result.cross
    rows = []
    unrelated = lambda a, b: _is_mlip(a) and _is_mlip(b) and architecture(a) != architecture(b)  # noqa: E731
    mlips = lambda a, b: _is_mlip(a) and _is_mlip(b)  # noqa: E731

    g_pairs, l_pairs = _ordered_pairs(cross, "gfre", unrelated), _ordered_pairs(cross, "lfre", unrelated)
    if not g_pairs:
        rows += [
            _not_computed("Mean off-diagonal GFRE / LFRE between unrelated uMLIPs",
                          f"GFRE {PAPER['mean_offdiag_gfre']}, LFRE {PAPER['mean_offdiag_lfre']}", "uMLIPs of two architectures"),
            _not_computed("Asymmetry of reconstruction (most asymmetric uMLIP pair)",
                          f"PET-MAD→MACE {PAPER['gfre_pet_mad_to_mace']}, MACE→PET-MAD {PAPER['gfre_mace_to_pet_mad']}",
                          "uMLIPs of two architectures"),
        ]
    else:
        (g, gs), (lo, ls) = _mean_pm(g_pairs), _mean_pm(l_pairs)
        rel = relation(lo, ls, g, gs)
        rows.append({
            "question": "Mean off-diagonal GFRE / LFRE between unrelated uMLIPs",
            "paper": f"GFRE {PAPER['mean_offdiag_gfre']}, LFRE {PAPER['mean_offdiag_lfre']}",
            "ours": f"GFRE {_pm(g, gs)}, LFRE {_pm(lo, ls)} ({len(g_pairs)} ordered cross-architecture pairs)",
            "verdict": "agrees" if rel == "smaller than" else "differs",
            "why": (f"Paper: LFRE well below GFRE (part of the difference between models is non-linear). "
                    f"Ours: mean LFRE is {rel} mean GFRE. Our GFRE level is "
                    f"{'below' if g < PAPER['mean_offdiag_gfre'] else 'above'} the paper's "
                    f"({g:.2f} vs {PAPER['mean_offdiag_gfre']}), with other models and data."),
        })
        pairs = {(s, t): (v, sd) for s, t, v, sd in _ordered_pairs(cross, "gfre", mlips)}
        gaps = [(abs(v - pairs[(t, s)][0]), s, t) for (s, t), (v, _) in pairs.items() if s < t]
        _, s, t = max(gaps)
        (a, sa), (b, sb) = pairs[(s, t)], pairs[(t, s)]
        if a > b:
            (s, a, sa), (t, b, sb) = (t, b, sb), (s, a, sa)
        rel = relation(a, sa, b, sb)
        rows.append({
            "question": "Asymmetry of reconstruction (most asymmetric uMLIP pair)",
            "paper": f"PET-MAD→MACE {PAPER['gfre_pet_mad_to_mace']}, MACE→PET-MAD {PAPER['gfre_mace_to_pet_mad']}",
            "ours": f"{_short(s)}→{_short(t)} {_pm(a, sa)}, {_short(t)}→{_short(s)} {_pm(b, sb)}",
            "verdict": "agrees" if rel == "smaller than" else "differs",
            "why": (f"Paper: one model's features contain most of the other's but not the reverse. Ours: "
                    f"{_short(s)}→{_short(t)} is {rel} the reverse direction."),
        })
    ft = result.fine_tuning
    if ft is None or not ft.sizes.get("finetuned_pair", 0) or not ft.sizes.get("unrelated_pair", 0):
        rows.append(_not_computed("Fine-tuning bias: fine-tuned model vs its parent",
                                  f"fine-tuned PET-MAD vs parent ≈ {PAPER['finetuned_vs_parent']}, far below unrelated models",
                                  "chgnet-r2scan, chgnet-0.3.0 and a SevenNet model"))
    else:
        child, parent = ft.attrs["finetuned"], ft.attrs["parent"]
        ab, abs_ = float(ft["finetuned_gfre_ab"][0]), float(ft["finetuned_gfre_ab_std"][0])
        ba, bas = float(ft["finetuned_gfre_ba"][0]), float(ft["finetuned_gfre_ba_std"][0])
        both = [(float(ft[f"unrelated_gfre_{d}"][i]), float(ft[f"unrelated_gfre_{d}_std"][i]),
                 *((ft["unrelated_a"][i].item(), ft["unrelated_b"][i].item())[:: 1 if d == "ab" else -1]))
                for i in range(ft.sizes["unrelated_pair"]) for d in ("ab", "ba")]
        u, us, us_src, us_tgt = min(both)
        r1, r2 = relation(ab, abs_, u, us), relation(ba, bas, u, us)
        verdict = "agrees" if r1 == r2 == "smaller than" else ("partly agrees" if "smaller than" in (r1, r2) else "differs")
        rows.append({
            "question": "Fine-tuning bias: fine-tuned model vs its parent",
            "paper": f"fine-tuned PET-MAD vs parent ≈ {PAPER['finetuned_vs_parent']}, far below unrelated models",
            "ours": f"{child}→{parent} {_pm(ab, abs_)}, {parent}→{child} {_pm(ba, bas)}; smallest unrelated {us_src}→{us_tgt} {_pm(u, us)}",
            "verdict": verdict,
            "why": (f"{child}→{parent} is {r1} the smallest unrelated GFRE, {parent}→{child} is {r2} it; "
                    f"our fine-tuned/parent distance is {max(ab, ba) / PAPER['finetuned_vs_parent']:.0f}× the paper's at most."),
        })
    cum = result.cumulants
    names = [n for n, m in zip(cum.feature_set.values, cum.feature_set_model.values) if _is_mlip(m)]
    if not names:
        lo, hi = PAPER["cumulant_step_range"]
        rows.append(_not_computed("Cumulant steps φ^(k)→φ^(k+1)", f"between {lo} and {hi}, never near zero", "a uMLIP"))
    else:
        steps = cum["step"].sel(feature_set=names)
        spread = cum["step_std"].sel(feature_set=names)
        lo, hi = PAPER["cumulant_step_range"]
        inside = float(((steps >= lo) & (steps <= hi)).mean())
        where = steps.argmin(...)
        low, low_sd = float(steps[where]), float(spread[where])
        name, k = _short(steps.feature_set.values[int(where["feature_set"])]), int(steps.step_order.values[int(where["step_order"])])
        rel = relation(low, low_sd, NEAR_ZERO, 0.0)
        rows.append({
            "question": f"Cumulant steps φ^(k)→φ^(k+1), k = 1…{int(cum.step_order.max())}",
            "paper": f"between {lo} and {hi}, never near zero",
            "ours": (f"between {float(steps.min()):.2f} and {float(steps.max()):.2f} over {len(names)} models "
                     f"({inside:.0%} of steps inside the paper's range)"),
            "verdict": "agrees" if rel == "larger than" else "differs",
            "why": (f"The smallest step, {_pm(low, low_sd)} ({name}, k = {k}), is {rel} {NEAR_ZERO} (our 'near zero'), so "
                    f"{'every order adds information' if rel == 'larger than' else 'some order may add (almost) nothing'}."),
        })
    return rows


def _not_computed(question, paper, needs):
    return {"question": question, "paper": paper, "ours": "—", "verdict": "not computed",
            "why": f"Not computed: needs {needs} among the selected models."}


# -- figures ----------------------------------------------------------------------------------


def _heatmap(ax, matrix, spread, title, annotate=True):
    values = matrix.values
    im = ax.imshow(values, vmin=0, vmax=max(1.0, float(np.nanmax(values))), cmap="viridis")
    labels = [_short(n) for n in matrix.source.values]
    ax.set_xticks(range(len(labels)), [_short(n) for n in matrix.target.values], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("target", fontsize=8)
    ax.set_ylabel("source", fontsize=8)
    ax.set_title(title, fontsize=9)
    if annotate:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                ax.text(j, i, f"{values[i, j]:.2f}\n±{spread.values[i, j]:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if values[i, j] < 0.6 else "black")
    return im


def figures(result, out: str | Path) -> dict[str, Path]:
    """Write the PNG figures into ``out``; returns ``{name: path}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}

    def save(fig, name):
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths[name] = path

    cross = result.cross
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), layout="constrained")
    for ax, metric in zip(axes, ("gfre", "lfre")):
        im = _heatmap(ax, cross[metric], cross[f"{metric}_std"], f"{metric.upper()} (last layers), mean ± sd over {cross[metric].attrs['n_splits']} splits")
    fig.colorbar(im, ax=axes, shrink=0.7)
    save(fig, "cross_model")

    table = _pair_rows(result)
    if table:
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1.2))
        y = np.arange(len(table))
        for offset, key, colour in ((-0.18, 0, "tab:blue"), (0.18, 1, "tab:orange")):
            ax.barh(y + offset, [r[1][key][0] for r in table], xerr=[r[1][key][1] for r in table], height=0.34,
                    color=colour, label=("a → b", "b → a")[key])
        ax.set_yticks(y, [r[0] for r in table], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("GFRE (last layers), mean ± sd over splits")
        ax.legend(fontsize=7)
        save(fig, "pairs")

    if result.layers:
        n = len(result.layers)
        cols = min(4, n)
        rows = -(-n // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False, layout="constrained")
        for ax, (model, ds) in zip(axes.flat, result.layers.items()):
            m = ds["gfre"].assign_coords(source=ds.source_layer.values, target=ds.target_layer.values)
            s = ds["gfre_std"].assign_coords(source=ds.source_layer.values, target=ds.target_layer.values)
            im = _heatmap(ax, m, s, model)
        for ax in list(axes.flat)[n:]:
            ax.axis("off")
        fig.colorbar(im, ax=axes, shrink=0.6)
        save(fig, "layers")

    cum = result.cumulants
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    lo, hi = PAPER["cumulant_step_range"]
    axes[0].axhspan(lo, hi, color="grey", alpha=0.2, label="paper's range (MAD)")
    for name in cum.feature_set.values:
        sel = cum.sel(feature_set=name)
        axes[0].errorbar(sel.step_order, sel["step"], yerr=sel["step_std"], marker="o", ms=3, capsize=2, label=_short(name))
        axes[1].errorbar(sel.order, sel["first_to_k"], yerr=sel["first_to_k_std"], marker="o", ms=3, capsize=2, label=_short(name))
    axes[0].set(xlabel="k", ylabel="GFRE φ^(k) → φ^(k+1)", title="does order k+1 add information?", ylim=(0, None))
    axes[1].set(xlabel="k", ylabel="GFRE φ^(1) → φ^(k)", title="information beyond the mean", ylim=(0, None))
    axes[0].legend(fontsize=6)
    for ax in axes:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    save(fig, "cumulants")

    sub = result.subsets
    stats = subset_summary(result)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = np.arange(len(sub.subset))
    for offset, metric, colour in ((-0.2, "gfre", "tab:blue"), (0.2, "lfre", "tab:green")):
        ax.bar(x + offset, stats[metric], yerr=stats[f"{metric}_std"], width=0.4, color=colour, capsize=2, label=metric.upper())
    ax.set_xticks(x, sub.subset.values)
    ax.set_ylabel("RMS pointwise error, mean over\noff-diagonal uMLIP pairs (first split)")
    ax.legend()
    save(fig, "subsets")
    if result.measures is not None:
        save(_measures_figure(plt, result.measures), "measures")

    if result.learning is not None:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        curve = result.learning
        n_train = curve["learning_n_train_structures"].values
        for s in curve.source.values:
            for t in curve.target.values:
                if s != t:
                    ax.errorbar(n_train, curve["learning_gfre"].sel(source=s, target=t),
                                yerr=curve["learning_gfre_std"].sel(source=s, target=t), marker="o", ms=3, capsize=2,
                                lw=0.8, label=f"{_short(s)} → {_short(t)}")
        ax.set(xlabel="training structures", ylabel="GFRE (same test half)", title="learning curve", ylim=(0, None))
        ax.legend(fontsize=5, ncol=2)
        save(fig, "learning_curve")
    return paths


def _measures_figure(plt, ms):
    """Rank correlations between the measures, and one model map (classical MDS) per measure."""
    from ..similarity import MEASURES

    measures = [str(m) for m in ms.measure.values]
    maps = [m for m in measures if f"{m}_map" in ms]
    cols = min(5, 1 + len(maps))
    rows = -(-(1 + len(maps)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), layout="constrained", squeeze=False)
    ax = axes[0, 0]
    labels = [MEASURES[m].label for m in measures]
    im = ax.imshow(ms["rank_correlation"].values, vmin=-1, vmax=1, cmap="RdBu")
    ax.set_xticks(range(len(labels)), labels, rotation=70, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title("rank correlation over model pairs", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.7)
    slots = [a for k, a in enumerate(axes.ravel()) if k != 0]
    for a, m in zip(slots, maps):
        xy = ms[f"{m}_map"].transpose("source", "axis").values
        a.scatter(xy[:, 0], xy[:, 1], s=25)
        for (x, y), name in zip(xy, ms.source.values):
            a.annotate(_short(name), (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
        a.set_title(f"model map: {MEASURES[m].label}", fontsize=9)
        a.tick_params(labelsize=6)
    for a in slots[len(maps):]:
        a.axis("off")
    return fig


def _measure_lines(ms) -> list[str]:
    """Section 8: the pairs ranked by every measure, and how far the rankings agree."""
    from ..similarity import MEASURES

    measures = [str(m) for m in ms.measure.values]
    labels = [MEASURES[m].label + (" ↓" if MEASURES[m].lower_is_better else " ↑") for m in measures]
    lines = ["", f"## 9. Other measures: how each ranks the model pairs ({ms.attrs['n_splits']} splits)", "",
             "![measures](measures.png)", "",
             "Each unordered pair of last-layer feature sets, by every measure (FRE: mean of both directions; "
             "↓ smaller is more similar, ↑ larger is), with its rank in brackets (1: most similar pair). CKA, CCA, "
             "SVCCA and mutual k-NN are computed on the test atoms of each split; Procrustes angles are aligned on "
             "the training atoms and judged on the test atoms, like FRE.", "",
             "| pair | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    order = np.argsort(ms["pair_rank"].sel(measure="gfre").values)
    for p in order:
        a, b = str(ms.pair.values[p]).split(" | ")
        cells = [f"{ms['pair_value'].values[p, k]:.3f} ({ms['pair_rank'].values[p, k]:g})" for k in range(len(measures))]
        lines.append(f"| {_short(a)} \\| {_short(b)} | " + " | ".join(cells) + " |")
    corr = ms["rank_correlation"].values
    lines += ["", "Spearman rank correlation between the measures over the pairs (+1: the same ranking):", "",
              "| | " + " | ".join(MEASURES[m].label for m in measures) + " |", "|---" * (len(measures) + 1) + "|"]
    lines += [f"| {MEASURES[m].label} | " + " | ".join(f"{v:+.2f}" for v in corr[k]) + " |" for k, m in enumerate(measures)]
    if ms.sizes["pair"] > 2 and np.all(np.isfinite(corr[0, 1:])):
        others = corr[0, 1:]
        best, worst = measures[1 + int(np.argmax(others))], measures[1 + int(np.argmin(others))]
        lines += ["", f"Over {ms.sizes['pair']} pairs, the ranking closest to GFRE's is {MEASURES[best].label}'s "
                  f"(ρ = {others.max():+.2f}), the farthest {MEASURES[worst].label}'s (ρ = {others.min():+.2f})."]
    return lines


# -- tables ---------------------------------------------------------------------------------


def _pair_rows(result):
    """[(label, ((a→b, sd), (b→a, sd)))] for variant, fine-tuned and unrelated pairs (GFRE)."""
    rows = []
    var = result.variants
    for i in range(var.sizes.get("pair", 0)):
        rows.append((str(var.label.values[i]), ((float(var["gfre_ab"][i]), float(var["gfre_ab_std"][i])),
                                                (float(var["gfre_ba"][i]), float(var["gfre_ba_std"][i])))))
    ft = result.fine_tuning
    if ft is not None:
        for kind in ("finetuned", "unrelated"):
            for i in range(ft.sizes.get(f"{kind}_pair", 0)):
                a, b = ft[f"{kind}_a"].values[i], ft[f"{kind}_b"].values[i]
                rows.append((f"{kind.replace('finetuned', 'fine-tuned')}: {a} | {b}",
                             ((float(ft[f"{kind}_gfre_ab"][i]), float(ft[f"{kind}_gfre_ab_std"][i])),
                              (float(ft[f"{kind}_gfre_ba"][i]), float(ft[f"{kind}_gfre_ba_std"][i])))))
    return rows


def subset_summary(result):
    """Per-subset errors averaged over the off-diagonal uMLIP pairs (all pairs if fewer than two uMLIPs).

    Returns
    -------
    xarray.Dataset over ``subset``
        ``gfre``, ``lfre``: mean RMS pointwise error; ``gfre_std``, ``lfre_std``: mean of the
        pairs' bootstrap spreads.
    """
    import xarray as xr

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


def _md_matrix(matrix, spread, flags=None) -> list[str]:
    """Markdown table of a matrix ± spread; with ``flags``, each cell carries its diagnostic marks."""
    sources = [_short(n) for n in matrix.source.values]
    targets = [_short(n) for n in matrix.target.values]
    marks = np.full(matrix.shape, "") if flags is None else np.vectorize(cell_marks, otypes=[str])(flags.values)
    lines = ["| source \\ target | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
    for i, s in enumerate(sources):
        lines.append(f"| {s} | " + " | ".join(_pm(matrix.values[i, j], spread.values[i, j], 2)
                                              + (f" {marks[i, j]}" if marks[i, j] else "") for j in range(len(targets))) + " |")
    return lines


def _learning_lines(curve) -> list[str]:
    """Markdown table of the learning curve: mean over off-diagonal pairs and the largest change of the last step."""
    values, spread = curve["learning_gfre"].values, curve["learning_gfre_std"].values
    off = ~np.eye(values.shape[1], dtype=bool)
    n_train = curve["learning_n_train_structures"].values
    lines = ["| training structures | share | mean off-diagonal GFRE | largest off-diagonal GFRE |", "|---|---|---|---|"]
    for k, fraction in enumerate(curve.train_fraction.values):
        v, e = values[k][off], spread[k][off]
        top = int(np.argmax(v))
        lines.append(f"| {n_train[k]:.0f} | {fraction:.0%} | {_pm(v.mean(), e.mean())} | {_pm(v[top], e[top])} |")
    if len(n_train) > 1:
        change = np.abs(values[-1] - values[-2])[off]
        lines += ["", f"From {n_train[-2]:.0f} to {n_train[-1]:.0f} training structures the off-diagonal values change "
                  f"by {np.median(change):.3f} (median; largest {change.max():.3f}): "
                  + ("they have not converged, more structures would change them."
                     if change.max() > 2 * np.median(spread[-1][off]) else "within about twice their spread over splits.")]
    return lines


def _layer_lines(result) -> list[str]:
    lines = ["| model | layer | GFRE last → layer | GFRE layer → last |", "|---|---|---|---|"]
    statements = []
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
            lines.append(f"| {model} | {layer} | {_pm(*a)} | {_pm(*b)} |")
        mf, mb = np.mean([v for v, _ in fwd]), np.mean([v for v, _ in back])
        sf, sb = np.mean([s for _, s in fwd]), np.mean([s for _, s in back])
        statements.append(
            f"- {model}: averaged over inner layers, last → inner {_pm(mf, sf)} is {relation(mf, sf, mb, sb)} "
            f"inner → last {_pm(mb, sb)}; the inner layer closest to the last one (smallest inner → last) is "
            f"{layers[int(np.argmin([v for v, _ in back]))] if back else '-'}."
        )
    return lines + [""] + statements


def write_report(result, out: str | Path) -> Path:
    """Write figures and ``report.md`` into ``out``; returns the report's path."""
    out = Path(out)
    paths = figures(result, out)
    st, bench = result.settings, result.benchmark
    cross = result.cross
    L = [
        "# Reproducing Chorna et al. (arXiv:2512.05717) on the latentatlas built-in benchmark",
        "",
        "The paper compared PET-MAD, MACE, DPA and UMA on the MAD dataset. Those weights are not available "
        "offline, so the same analyses are run on the models shipped here. **Every number in this report is ours** "
        "unless it is explicitly labelled as the paper's; the paper's values are quoted from the paper (MAD dataset, "
        "last-layer features) and were not recomputed.",
        "",
        f"- Benchmark: built-in{' (small)' if st.small else ''}, {bench['n_structures']} structures, {bench['n_atoms']} atoms; "
        "structures per subset: " + ", ".join(f"{k} {v}" for k, v in bench["subsets"].items()),
        f"- Dropped frames (an element a model does not know, or an atom with no neighbour within the smallest model cutoff): "
        + (", ".join(bench["dropped"]) if bench["dropped"] else "none"),
        f"- Models: {', '.join(bench['models'])}",
        f"- Splits: {st.n_splits} random 50/50 splits of the structures, stratified by subset (first seed 0x5F3759DF); "
        "every value is mean ± standard deviation over the splits. Features centred and scaled to unit total variance "
        "with training statistics; ridge with 2-fold cross-validated relative cut-off over scikit-matter's alpha grid.",
        f"- Inner CV mode: **{st.cv}**: " + (
            "the two folds that choose the ridge cut-off keep each structure whole (LFRE: each feature vector of a "
            "neighbourhood), as the train/test split does."
            if st.cv == "grouped" else
            "random folds, exactly as scikit-matter; atoms of one structure sit in both folds, which can choose too small "
            "a cut-off (`--cv grouped` avoids it)."),
        "- Marks after a value (see `latentatlas.diagnostics`): " + ", ".join(
            f"`{mark}` {text}" for mark, text in ((m, t) for _, m, t in FLAGS.values())) + ".",
        f"- LFRE: {st.n_local_points} nearest training atoms; evaluated on at most {st.lfre_per_subset} random test atoms "
        "per subset in each split (the full training set is searched for neighbours).",
        f"- Differences are called real only beyond {Z:g} combined standard deviations; aggregate means (over pairs) are "
        "given ± the mean of the pairs' spreads, an upper bound of the aggregate's spread over splits.",
        "",
        "## Key results: ours vs the paper",
        "",
        "| question | paper (MAD) | ours (built-in benchmark) | verdict |",
        "|---|---|---|---|",
    ]
    rows = conclusions(result)
    L += [f"| {r['question']} | {r['paper']} | {r['ours']} | **{r['verdict']}** |" for r in rows]
    L += [""] + [f"- **{r['question']}**: {r['why']}" for r in rows]
    L += ["", "## 1. Cross-model matrices (last layers)", "", "![cross-model](cross_model.png)", "", "GFRE:", ""]
    L += _md_matrix(cross["gfre"], cross["gfre_std"], cross.get("gfre_flags"))
    L += ["", "LFRE:", ""] + _md_matrix(cross["lfre"], cross["lfre_std"], cross.get("lfre_flags"))
    L += [""] + _cross_caveats(cross) + [f"- {line}" for line in caveats(cross, ["gfre", "lfre"])]
    diag = float(np.mean(np.diagonal(cross["lfre"].values)))
    L += ["", f"The LFRE diagonal (a set reconstructing itself locally from {st.n_local_points} neighbours) averages "
          f"{diag:.3f}: the floor of the local fits."]
    L += ["", "## 2–3. Variants of one architecture, fine-tuning, unrelated pairs", "", "![pairs](pairs.png)", "",
          "| pair (a \\| b) | GFRE a → b | GFRE b → a | LFRE a → b | LFRE b → a |", "|---|---|---|---|---|"]
    var = result.variants
    for i in range(var.sizes.get("pair", 0)):
        L.append(f"| {var.label.values[i]} ({var.a.values[i]} \\| {var.b.values[i]}) | "
                 + " | ".join(_pm(float(var[f"{m}_{d}"][i]), float(var[f"{m}_{d}_std"][i])) for m in ("gfre", "lfre") for d in ("ab", "ba")) + " |")
    ft = result.fine_tuning
    if ft is not None:
        for kind in ("finetuned", "unrelated"):
            for i in range(ft.sizes.get(f"{kind}_pair", 0)):
                L.append(f"| {ft[f'{kind}_label'].values[i]} ({ft[f'{kind}_a'].values[i]} \\| {ft[f'{kind}_b'].values[i]}) | "
                         + " | ".join(_pm(float(ft[f"{kind}_{m}_{d}"][i]), float(ft[f"{kind}_{m}_{d}_std"][i]))
                                      for m in ("gfre", "lfre") for d in ("ab", "ba")) + " |")
    L += [""] + _variant_statements(result)
    if ft is not None and "layer" in ft.coords:
        L += ["", f"Fine-tuned ({ft.attrs['finetuned']}) vs parent ({ft.attrs['parent']}) at each layer:", "",
              "| layer | GFRE fine-tuned → parent | GFRE parent → fine-tuned |", "|---|---|---|"]
        L += [f"| {layer} | {_pm(float(ft['layer_gfre_ab'][i]), float(ft['layer_gfre_ab_std'][i]))} | "
              f"{_pm(float(ft['layer_gfre_ba'][i]), float(ft['layer_gfre_ba_std'][i]))} |" for i, layer in enumerate(ft.layer.values)]
    elif ft is None:
        L += ["", "Fine-tuning (analysis 3) not computed: it needs both chgnet-r2scan and chgnet-0.3.0."]
    if result.layers:
        L += ["", "## 4. Last layer vs inner layers (GFRE, both directions)", "", "![layers](layers.png)", ""]
        L += _layer_lines(result)
    cum = result.cumulants
    L += ["", f"## 5. Progressive cumulants (structure level, {cum.attrs.get('n_structures', '')} structures)", "",
          "![cumulants](cumulants.png)", "",
          "| feature set | " + " | ".join(f"φ{k}→φ{k + 1}" for k in cum.step_order.values) + " |",
          "|---" * (cum.sizes["step_order"] + 1) + "|"]
    for name in cum.feature_set.values:
        sel = cum.sel(feature_set=name)
        L.append(f"| {_short(name)} | " + " | ".join(_pm(float(v), float(s), 2) for v, s in zip(sel["step"].values, sel["step_std"].values)) + " |")
    L += ["", "| feature set | " + " | ".join(f"φ1→φ{k}" for k in cum.order.values) + " |", "|---" * (cum.sizes["order"] + 1) + "|"]
    for name in cum.feature_set.values:
        sel = cum.sel(feature_set=name)
        L.append(f"| {_short(name)} | " + " | ".join(_pm(float(v), float(s), 2) for v, s in zip(sel["first_to_k"].values, sel["first_to_k_std"].values)) + " |")
    L += ["", "## 6. Per-subset breakdown (first split; spread: bootstrap over test structures)", "", "![subsets](subsets.png)", "",
          "| subset | test atoms (GFRE) | GFRE | LFRE |", "|---|---|---|---|"]
    stats = subset_summary(result)
    sub = result.subsets
    g, gs = stats["gfre"].values, stats["gfre_std"].values
    for i, subset in enumerate(sub.subset.values):
        L.append(f"| {subset} | {int(sub['gfre_n_test_atoms'][i])} | {_pm(g[i], gs[i])} | "
                 f"{_pm(float(stats['lfre'][i]), float(stats['lfre_std'][i]))} |")
    first, second, last = np.argsort(-g)[[0, 1, -1]]
    L += ["", f"Mean over off-diagonal uMLIP pairs. Largest GFRE: {sub.subset.values[first]} ({_pm(g[first], gs[first])}), "
          f"which is {relation(g[first], gs[first], g[second], gs[second])} the second, {sub.subset.values[second]} "
          f"({_pm(g[second], gs[second])}); smallest: {sub.subset.values[last]} ({_pm(g[last], gs[last])}). "
          "The paper's per-subset values are not quoted here, so no agreement is claimed."]
    spreads = np.concatenate([cross["gfre_std"].values[~np.eye(cross.sizes["source"], dtype=bool)],
                              cross["lfre_std"].values[~np.eye(cross.sizes["source"], dtype=bool)]])
    L += ["", "## 7. Uncertainty", "",
          f"Over {st.n_splits} splits the standard deviation of an off-diagonal cross-model FRE is "
          f"{np.median(spreads):.3f} (median; max {np.max(spreads):.3f}). Differences smaller than about "
          f"{Z * np.sqrt(2) * np.median(spreads):.3f} ({Z:g}·√2 median sd) are noise."]
    if result.learning is not None:
        L += ["", "## 8. Is the benchmark big enough? Cross-model GFRE against training structures", "",
              "![learning curve](learning_curve.png)", "",
              "Same test half in each split; the training structures are a random (nested) share of the training half.", ""]
        L += _learning_lines(result.learning)
    if result.measures is not None:
        L += _measure_lines(result.measures)
    L += ["", "## Files", ""]
    L += [f"- `{p.name}`" for p in sorted(out.glob("*.nc"))] + [f"- `{p.name}`" for p in paths.values()]
    L += ["", "## Runtime", "", "| step | seconds |", "|---|---|"]
    L += [f"| {k} | {v:.1f} |" for k, v in result.timings.items()]
    L += [f"| total | {sum(result.timings.values()):.1f} |", ""]
    path = out / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(L), encoding="utf-8")
    tmp.replace(path)
    return path


def _cross_caveats(cross) -> list[str]:
    """Computed warnings about the cross-model matrices (overfitting, unstable local fits)."""
    off = ~np.eye(cross.sizes["source"], dtype=bool)
    g, gs = cross["gfre"].values[off], cross["gfre_std"].values[off]
    lo, ls = cross["lfre"].values[off], cross["lfre_std"].values[off]
    lines = []
    over = int(np.sum(g > 1))
    if over:
        lines.append(
            f"- {over} of {g.size} off-diagonal GFRE values exceed 1, about the error of predicting every target feature by its "
            "training mean: there the linear map fit on the training structures does not carry over to the test "
            "structures (likely too few training structures for the number of features: a larger fraction of the benchmark should lower them)."
        )
    worse = int(np.sum(lo > g + Z * np.hypot(gs, ls)))
    if worse:
        lines.append(f"- In {worse} of {lo.size} off-diagonal cells LFRE is larger than GFRE beyond {Z:g}σ: there the "
                     "local fits on the nearest neighbours generalise worse than the global one.")
    unstable = [_short(n) for n in cross.source.values
                if float(cross["lfre_std"].sel(source=n).max()) > 0.5 * float(cross["lfre"].sel(source=n).max())]
    if unstable:
        lines.append(
            f"- LFRE from {', '.join(unstable)} varies by more than half its largest value between splits: the local "
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
        text = f"- {var.label.values[i]}: the larger direction, GFRE {_pm(*worst)}"
        if low is not None:
            text += f", is {relation(*worst, *low)} the smallest unrelated-pair GFRE {_pm(*low)}"
        lines.append(text + ".")
    return lines
