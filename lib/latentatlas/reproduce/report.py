"""Markdown report and PNG figures of a :class:`~latentatlas.reproduce.Reproduction`.

Rendering only: every number and sentence that concludes something comes from
:func:`~latentatlas.reproduce.findings.findings` (plain data); this module lays it out
beside the result tables and draws the figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..diagnostics import FLAGS, cell_marks
from .findings import PAPER, Z, Findings, _pm, _short, findings, subset_summary

# the conclusions were computed here before findings.py: their names stay importable from here too
from .findings import NEAR_ZERO, conclusions, relation  # noqa: F401, E402  isort: skip

__all__ = [
    "PAPER", "Z", "NEAR_ZERO", "conclusions", "figures", "findings", "markdown", "relation", "subset_summary",
    "write_report",
]  # fmt: skip


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


def _measure_lines(ms, closest: str | None) -> list[str]:
    """Section 9: the pairs ranked by every measure, how far the rankings agree, and ``closest`` (:class:`Findings`)."""
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
        a, b = str(ms.a.values[p]), str(ms.b.values[p])
        cells = [f"{ms['pair_value'].values[p, k]:.3f} ({ms['pair_rank'].values[p, k]:g})" for k in range(len(measures))]
        lines.append(f"| {_short(a)} \\| {_short(b)} | " + " | ".join(cells) + " |")
    corr = ms["rank_correlation"].values
    lines += ["", "Spearman rank correlation between the measures over the pairs (+1: the same ranking):", "",
              "| | " + " | ".join(MEASURES[m].label for m in measures) + " |", "|---" * (len(measures) + 1) + "|"]
    lines += [f"| {MEASURES[m].label} | " + " | ".join(f"{v:+.2f}" for v in corr[k]) + " |" for k, m in enumerate(measures)]
    if closest is not None:
        lines += ["", closest]
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




def _md_orders(cum, variable: str, dim: str, heading) -> list[str]:
    """Markdown table of a cumulant ``variable`` ± spread: a row per feature set, a column per ``dim`` (``heading(k)``)."""
    lines = ["| feature set | " + " | ".join(heading(k) for k in cum[dim].values) + " |", "|---" * (cum.sizes[dim] + 1) + "|"]
    for name in cum.feature_set.values:
        sel = cum.sel(feature_set=name)
        lines.append(f"| {_short(name)} | " + " | ".join(_pm(float(v), float(s), 2)
                                                       for v, s in zip(sel[variable].values, sel[f"{variable}_std"].values)) + " |")
    return lines


# -- the report -----------------------------------------------------------------------------


def write_report(result, out: str | Path) -> Path:
    """Write figures and ``report.md`` into ``out``; returns the report's path."""
    out = Path(out)
    paths = figures(result, out)
    files = [p.name for p in sorted(out.glob("*.nc"))] + [p.name for p in paths.values()]
    path = out / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(markdown(result, findings(result), files), encoding="utf-8")
    tmp.replace(path)
    return path


def markdown(result, found: Findings, files: list[str]) -> str:
    """The report as markdown: ``found`` (:func:`findings` of ``result``) beside ``result``'s tables.

    Parameters
    ----------
    result : Reproduction
    found : Findings
    files : list of str
        Names of the files written beside the report (netCDF results, figures).
    """
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
    rows = found.conclusions
    L += [f"| {r['question']} | {r['paper']} | {r['ours']} | **{r['verdict']}** |" for r in rows]
    L += [""] + [f"- **{r['question']}**: {r['why']}" for r in rows]
    L += ["", "## 1. Cross-model matrices (last layers)", "", "![cross-model](cross_model.png)", "", "GFRE:", ""]
    L += _md_matrix(cross["gfre"], cross["gfre_std"], cross.get("gfre_flags"))
    L += ["", "LFRE:", ""] + _md_matrix(cross["lfre"], cross["lfre_std"], cross.get("lfre_flags"))
    L += [""] + _bullets(found.cross_caveats)
    L += ["", found.lfre_floor]
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
    L += [""] + _bullets(found.variants)
    if ft is not None and "layer" in ft.coords:
        L += ["", f"Fine-tuned ({ft.attrs['finetuned']}) vs parent ({ft.attrs['parent']}) at each layer:", "",
              "| layer | GFRE fine-tuned → parent | GFRE parent → fine-tuned |", "|---|---|---|"]
        L += [f"| {layer} | {_pm(float(ft['layer_gfre_ab'][i]), float(ft['layer_gfre_ab_std'][i]))} | "
              f"{_pm(float(ft['layer_gfre_ba'][i]), float(ft['layer_gfre_ba_std'][i]))} |" for i, layer in enumerate(ft.layer.values)]
    elif ft is None:
        L += ["", "Fine-tuning (analysis 3) not computed: it needs both chgnet-r2scan and chgnet-0.3.0."]
    if result.layers:
        L += ["", "## 4. Last layer vs inner layers (GFRE, both directions)", "", "![layers](layers.png)", "",
              "| model | layer | GFRE last → layer | GFRE layer → last |", "|---|---|---|---|"]
        L += [f"| {model} | {layer} | {_pm(*a)} | {_pm(*b)} |" for model, layer, a, b in found.layer_rows]
        L += [""] + _bullets(found.layers)
    cum = result.cumulants
    L += ["", f"## 5. Progressive cumulants (structure level, {cum.attrs.get('n_structures', '')} structures)", "",
          "![cumulants](cumulants.png)", ""]
    L += _md_orders(cum, "step", "step_order", lambda k: f"φ{k}→φ{k + 1}")
    L += [""] + _md_orders(cum, "first_to_k", "order", lambda k: f"φ1→φ{k}")
    L += ["", "## 6. Per-subset breakdown (first split; spread: bootstrap over test structures)", "", "![subsets](subsets.png)", "",
          "| subset | test atoms (GFRE) | GFRE | LFRE |", "|---|---|---|---|"]
    stats, sub = found.subsets, result.subsets
    for i, subset in enumerate(sub.subset.values):
        L.append(f"| {subset} | {int(sub['gfre_n_test_atoms'][i])} | {_pm(float(stats['gfre'][i]), float(stats['gfre_std'][i]))} | "
                 f"{_pm(float(stats['lfre'][i]), float(stats['lfre_std'][i]))} |")
    L += ["", found.subset_ranking]
    L += ["", "## 7. Uncertainty", "", found.uncertainty]
    if found.learning_rows is not None:
        L += ["", "## 8. Is the benchmark big enough? Cross-model GFRE against training structures", "",
              "![learning curve](learning_curve.png)", "",
              "Same test half in each split; the training structures are a random (nested) share of the training half.", "",
              "| training structures | share | mean off-diagonal GFRE | largest off-diagonal GFRE |", "|---|---|---|---|"]
        L += [f"| {n:.0f} | {share:.0%} | {_pm(*mean)} | {_pm(*top)} |" for n, share, mean, top in found.learning_rows]
        if found.learning is not None:
            L += ["", found.learning]
    if result.measures is not None:
        L += _measure_lines(result.measures, found.measures)
    L += ["", "## Files", ""]
    L += [f"- `{name}`" for name in files]
    L += ["", "## Runtime", "", "| step | seconds |", "|---|---|"]
    L += [f"| {k} | {v:.1f} |" for k, v in result.timings.items()]
    L += [f"| total | {sum(result.timings.values()):.1f} |", ""]
    return "\n".join(L)


def _bullets(sentences: list[str]) -> list[str]:
    return [f"- {s}" for s in sentences]
