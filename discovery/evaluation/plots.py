"""PNG figures of `discover train`, `eval` and `inspect` (the job's fitness figure is in
`discovery.figures`).

Each function takes plain numpy data, draws one figure, writes it to `path` (atomically, through
`save_figure`) and closes it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from discovery.evaluation import stats
from discovery.evaluation.results import verdict_text
from discovery.figures import save_figure


def task_file_name(label: str) -> str:
    """A task label as a file name: characters other than letters, digits and `._=-` as '_'
    ('gymnax:Pendulum-v1' -> 'gymnax_Pendulum-v1')."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label)


def curves_file(out: Path, task_label: str) -> Path:
    """Where `discover eval` draws a task's learning curves: OUT/curves_<label>.png."""
    return Path(out) / f"curves_{task_file_name(task_label)}.png"


def heatmaps_figure(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    columns: Sequence[tuple[str, dict]],
    rows: Sequence[tuple[str, str, str]],
    x_label: str,
    y_label: str,
    title: str,
    x_mark: float = 0.0,
    wrap: int = 3,
) -> Path:
    """Heatmaps of several sources: per quantity a block of panels, one per source, `wrap` to a
    line; a shared colour scale (and colour bar) per quantity.

    x `[X]`, y `[Y]`; columns: [(panel title, {row key: values `[Y, X]`})]; rows: [(row key,
    colourbar label, "sequential" (from 0 when the quantity is >= 0) or "diverging" (symmetric))].
    Dotted reference lines at x = x_mark and y = 0.
    """
    n, cols = len(columns), min(wrap, len(columns))
    lines = -(-n // cols)
    fig = plt.figure(figsize=(2.5 * cols + 1.3, (2.3 * lines + 0.5) * len(rows) + 0.3), layout="constrained")
    blocks = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    extent = (x[0], x[-1], y[0], y[-1])
    for block, (key, label, kind) in zip(blocks, rows):
        values = [np.asarray(c[key], dtype=float) for _, c in columns]
        axes = block.subplots(lines, cols, squeeze=False, sharex=True, sharey=True)
        style = _heatmap_style(values, kind)
        for i, ((panel_title, _), z) in enumerate(zip(columns, values)):
            ax = axes.flat[i]
            image = ax.imshow(z, origin="lower", extent=extent, aspect="auto", **style)
            line = "w" if kind == "sequential" else "k"
            ax.axvline(x_mark, color=line, lw=0.6, ls=":")
            ax.axhline(0.0, color=line, lw=0.6, ls=":")
            ax.set_title(panel_title, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in axes.flat[n:]:
            ax.axis("off")
            above = axes.flat[list(axes.flat).index(ax) - cols]  # the last panel of its column
            above.xaxis.set_tick_params(labelbottom=True)
        block.supxlabel(x_label, fontsize=9)
        block.supylabel(y_label, fontsize=9)
        block.colorbar(image, ax=list(axes.flat), label=label, fraction=0.04)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _heatmap_style(values: list[np.ndarray], kind: str) -> dict:
    """imshow's colour map and limits shared by a quantity's panels: symmetric about 0 for a
    diverging one, else from 0 (or the minimum, when negative) to the maximum."""
    if kind == "diverging":
        top = max(float(np.nanmax(np.abs(v))) for v in values) or 1.0
        return dict(cmap="RdBu_r", vmin=-top, vmax=top)
    lo = min(float(np.nanmin(v)) for v in values)
    hi = max(float(np.nanmax(v)) for v in values)
    lo = 0.0 if lo >= 0.0 else lo
    return dict(cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1.0)


def lines_figure(path: Path, x_label: str, panels: dict[str, dict[str, tuple]], title: str) -> Path:
    """One small panel per quantity, each with one line per source.

    panels: {panel title: {legend label: (x `[P]`, y `[P]`)}}.
    """
    n = len(panels)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.2 * rows + 0.5), squeeze=False, layout="constrained"
    )
    for ax, (name, lines) in zip(axes.flat, panels.items()):
        for label, (x, y) in lines.items():
            ax.plot(x, y, label=label)
        ax.set_title(name)
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(title)
    return save_figure(fig, path)


class Panel(NamedTuple):
    """One panel of `binned_curves_figure`: curves {legend label: (x `[B]`, y `[B]`)}, each drawn
    as a marked line; zero_lines adds dotted lines at x = 0 and y = 0, identity the line y = x."""

    title: str
    x_label: str
    y_label: str
    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    zero_lines: bool = False
    identity: bool = True


def binned_curves_figure(path: Path, rows: Sequence[Sequence[Panel]], title: str) -> Path:
    """A grid of panels (rows of columns), each with its curves and, where the panel asks for it, the
    identity y = x (dashed grey) over the range of its data."""
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(4.8 * cols, 3.9 * len(rows)), squeeze=False)
    for ax_row, panels in zip(axes, rows):
        for ax, panel in zip(ax_row, panels):
            for label, (x, y) in panel.curves.items():
                ax.plot(x, y, marker="o", ms=3, lw=1.2, label=label)
            if panel.identity:
                values = np.concatenate(
                    [np.ravel(v) for xy in panel.curves.values() for v in xy] or [np.zeros(1)]
                )
                lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
                ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=0.8, label="y = x")
            if panel.zero_lines:
                ax.axhline(0.0, color="k", lw=0.6, ls=":")
                ax.axvline(0.0, color="k", lw=0.6, ls=":")
            ax.set(title=panel.title, xlabel=panel.x_label, ylabel=panel.y_label)
            ax.title.set_fontsize(9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for ax in ax_row[len(panels) :]:
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def seed_curves_figure(path: Path, env_steps: np.ndarray, curves: np.ndarray, title: str) -> Path:
    """Per-seed learning curves `[seeds, P]` (thin) and their mean (thick) against env steps `[P]`."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, curve in enumerate(curves):
        ax.plot(env_steps, curve, lw=0.8, alpha=0.5, label=f"seed {i}")
    ax.plot(env_steps, np.nanmean(curves, axis=0), lw=2.5, color="k", label="mean")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return of episodes completed in the update")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120, bbox_inches=None)


def learning_curves_figure(
    path: Path, title: str, env_steps: np.ndarray, curves: dict[str, np.ndarray], y_label: str
) -> Path:
    """Each rule's curves `[seeds, P]` (NaN once a seed diverged) against env steps `[P]`: above,
    the mean over the seeds not diverged at each point (line) and its 95% bootstrap CI (band,
    `stats.nan_curve_stats`); below, how many seeds that is. The legend gives the seeds at the
    start and at the end."""
    fig, (ax, low) = plt.subplots(
        2, 1, figsize=(6.4, 5.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, layout="constrained"
    )
    for label, curve in curves.items():
        mean, lo, hi, count = stats.nan_curve_stats(curve)
        seeds = f"{count[0]} seeds" if count[-1] == count[0] else f"{count[0]} seeds, {count[-1]} at the end"
        (line,) = ax.plot(env_steps, mean, lw=2, label=f"{label} ({seeds})")
        ax.fill_between(env_steps, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
        low.step(env_steps, count, where="post", color=line.get_color(), lw=1.5)
    ax.set_ylabel(y_label)
    fig.suptitle(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncols=2, frameon=False)
    low.set_ylabel("seeds not\ndiverged")
    low.set_ylim(0, max(c.shape[0] for c in curves.values()) * 1.08)
    low.set_xlabel("environment steps")
    low.grid(alpha=0.3)
    return save_figure(fig, path)


def wrap_label(label: str, width: int = 14) -> str:
    """A task label broken into lines of at most `width` characters (a longer piece stays whole)
    after ':', '/', '_' or '-', for a tick label: 'gymnax:SpaceInvaders-MinAtar' ->
    'gymnax:\nSpaceInvaders-\nMinAtar'."""
    lines = [""]
    for piece in re.split(r"(?<=[:/_-])", label):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


def scores_figure(path: Path, scores: dict[str, dict[str, dict]], y_label: str, title: str) -> Path:
    """Grouped bars with CI error bars: scores = {group (task): {rule: {"value", "ci": [lo, hi]}}}.

    An entry's optional "note" (e.g. "diverged 37/40") is written in red above its bar."""
    groups = list(scores)
    labels = list(dict.fromkeys(k for g in groups for k in scores[g]))
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(
        figsize=(1.4 + 1.1 * len(groups) * max(1, len(labels) / 2), 4.4), layout="constrained"
    )
    for i, label in enumerate(labels):
        xs, entries = [], []
        for j, group in enumerate(groups):
            if label in scores[group]:
                xs.append(j + (i - (len(labels) - 1) / 2) * width)
                entries.append(scores[group][label])
        values = [e["value"] for e in entries]
        errs = [[e["value"] - e["ci"][0] for e in entries], [e["ci"][1] - e["value"] for e in entries]]
        ax.bar(xs, values, width, yerr=errs, capsize=3, label=label)
        for x, e in zip(xs, entries):
            if e.get("note"):
                ax.annotate(
                    e["note"],
                    (x, e["ci"][1]),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color="firebrick",
                    rotation=90,
                )
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel(y_label)
    ax.margins(y=0.15)
    ax.set_title(title, fontsize=10)
    fig.legend(fontsize=8, loc="outside lower center", ncols=min(len(labels), 4), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def paired_figure(path: Path, groups: dict[str, list[dict]], title: str, reference: str) -> Path:
    """Interval estimates of paired comparisons, drawn as rliable draws them: one row of panels
    per group (task, or all tasks pooled), one horizontal CI bar with a tick at the point
    estimate per comparison; left the normalised paired difference (reference line at 0), right
    P(rule > baseline) (reference line at 1/2). `reference`: the rule the differences are
    normalised by (the x label says so).

    groups: {group: [{"rule", "baseline", "normalized_difference": {"value", "ci"},
    "p_improvement": {"value", "ci"}, "verdict"}]} (`results.paired_task` entries); the verdict is
    written beside each with its diverged seeds (`results.verdict_text`).
    """
    names = list(groups)
    height = sum(0.45 * len(groups[g]) + 0.7 for g in names)
    fig, axes = plt.subplots(
        len(names),
        2,
        figsize=(8.5, 0.8 + height),
        squeeze=False,
        sharex="col",
        layout="constrained",
        gridspec_kw={"height_ratios": [len(groups[g]) + 1 for g in names]},
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    baselines = {e["baseline"] for g in names for e in groups[g]}
    one_baseline = len(baselines) == 1  # then the rows name the rules, the x labels the baseline
    base = baselines.pop() if one_baseline else "baseline"
    for row, group in enumerate(names):
        entries = groups[group]
        labels = [e["rule"] if one_baseline else f"{e['rule']} - {e['baseline']}" for e in entries]
        for col, (key, ref) in enumerate((("normalized_difference", 0.0), ("p_improvement", 0.5))):
            ax = axes[row, col]
            for i, e in enumerate(entries):
                lo, hi = e[key]["ci"]
                colour = colours[i % len(colours)]
                ax.barh(i, hi - lo, left=lo, height=0.6, color=colour, alpha=0.75)
                ax.vlines(e[key]["value"], i - 0.3, i + 0.3, color="k", lw=1.5)
            ax.axvline(ref, color="k", ls="--", lw=0.8)
            ax.use_sticky_edges = False  # bars stick to the data limits; a margin keeps their ends visible
            ax.margins(x=0.04)
            ax.set_yticks(range(len(entries)), labels if col == 0 else [""] * len(entries), fontsize=8)
            ax.set_ylim(-0.7, len(entries) - 0.3)
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
            if col == 1:
                verdicts = [verdict_text(e).replace(" (", "\n(", 1) for e in entries]
                twin = ax.twinx()
                twin.set_ylim(ax.get_ylim())
                twin.set_yticks(range(len(entries)), verdicts, fontsize=8)
        axes[row, 0].set_title(group, loc="left", fontsize=9)
    axes[-1, 0].set_xlabel(
        f"paired difference of final return,\nrule - {base} (1 = {reference}'s gain\nover random actions)",
        fontsize=9,
    )
    axes[-1, 1].set_xlabel(f"P(rule > {base}) on the same seed\n(0.5 = as often better as worse)", fontsize=9)
    fig.suptitle(title)
    return save_figure(fig, path)
