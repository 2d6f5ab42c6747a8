"""Figure plumbing shared by the job and the evaluation commands (matplotlib with the Agg
backend: no display), and the job's fitness figure (fitness.png), which `discover inspect` draws too.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402


def save_figure(fig, path: Path, **savefig) -> Path:
    """Writes `fig` to a temporary file next to `path`, renames it into place, closes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    try:
        fig.savefig(tmp, **{"dpi": 110, "bbox_inches": "tight", **savefig})
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def fitness_figure(
    path: Path,
    histories: dict[str, dict[str, tuple]],
    reliability: dict[str, tuple] | None = None,
    floor: float | None = None,
    unit: str = "fitness",
) -> Path:
    """Fitness per generation: a colour per source, a line style per series; below it, when
    `reliability` has a source, a panel of the split-half rank correlation r of the fitness per
    generation (same colours) in [-1, 1], r = R / (2 - R) of the stepped-up reliability R that
    the job records, with `floor` (the warning's threshold on R) dashed at its r; the title gives
    each source's pooled stepped-up reliability. Legends sit below the panels.

    histories: {source label: {series name: (generation `[G]`, fitness `[G]`)}};
    reliability: {source label: (generation `[G]`, stepped-up reliability R `[G]`)};
    unit: the y label (`fitness_unit`).
    """
    height = 5.6 + 0.25 * len(histories) if reliability else 4.4
    fig = plt.figure(figsize=(6.4, height), layout="constrained")
    if reliability:
        ax, low = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.5]})
    else:
        ax, low = fig.subplots(), None
    colours = {label: f"C{i}" for i, label in enumerate(histories)}
    styles = _draw_fitness(ax, histories, colours)
    ax.set_ylabel(unit, fontsize=9)
    ax.set_title("Meta-training fitness" + (f" of {next(iter(histories))}" if len(histories) == 1 else ""))
    ax.grid(alpha=0.3)
    if low is not None and reliability:
        _draw_reliability(low, reliability, colours, floor)
        ax = low
    ax.set_xlabel("generation")
    handles = [Line2D([], [], color="black", ls=ls, lw=lw, label=name) for name, (ls, lw) in styles.items()]
    if len(histories) > 1:
        handles += [Line2D([], [], color=c, lw=2, label=label) for label, c in colours.items()]
    if low is not None and floor is not None:
        handles += low.get_legend_handles_labels()[0]
    if handles:  # a job whose every generation diverged so far has nothing to draw yet
        fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncols=2, frameon=False)
    return save_figure(fig, path)


def _draw_fitness(ax, histories: dict[str, dict[str, tuple]], colours: dict[str, str]) -> dict:
    """Draws every series of every source; returns {series name: (line style, width)} for the
    legend (running means bold, the raw series thin and faint behind them)."""
    raw_styles = ["-", "--", ":", "-."]
    styles = {}
    for label, series in histories.items():
        smoothed = any(name.startswith(RUNNING_MEAN) for name in series)
        raw = [name for name in series if not name.startswith(RUNNING_MEAN)]
        for name, (x, y) in series.items():
            bold = name.startswith(RUNNING_MEAN)  # the ES mean's running mean dashed, the population's solid
            style = ("--" if "ES mean" in name else "-") if bold else raw_styles[raw.index(name) % 4]
            width = 2.0 if bold else 1.0
            alpha = 1.0 if bold or not smoothed else 0.35
            one = len(histories) == 1
            ax.plot(x, y, ls=style, lw=width, alpha=alpha, color="black" if bold and one else colours[label])
            styles[name] = (style, width)
    return styles


def _draw_reliability(
    ax, reliability: dict[str, tuple], colours: dict[str, str], floor: float | None
) -> None:
    """The split-half correlation r = R / (2 - R) per generation of each source in [-1, 1], the
    floor's r dashed, each source's pooled stepped-up reliability in the title."""
    from meta_objectives.reliability import pooled_reliability  # here: jax only where drawn

    pooled = []
    for label, (x, stepped_up) in reliability.items():
        r = split_half(np.asarray(stepped_up, dtype=float))
        ax.plot(x, r, color=colours.get(label, "C0"), marker=".", ms=3, lw=1)
        value = f"{float(pooled_reliability(stepped_up)):.2f}"
        pooled.append(f"{label} {value}" if len(reliability) > 1 else value)
    if floor is not None:
        label = f"warning: reliability < {floor:g} (r < {split_half(floor):.2f})"
        ax.axhline(split_half(floor), ls="--", color="grey", lw=1, label=label)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("split-half rank\ncorrelation r", fontsize=9)
    ax.set_title(f"pooled reliability, 2r/(1+r) of the mean r: {', '.join(pooled)}", fontsize=8)
    ax.grid(alpha=0.3)


def split_half(stepped_up):
    """The split-half correlation r of a Spearman-Brown stepped-up reliability R = 2r / (1 + r):
    r = R / (2 - R) (in [-1, 1] for any R the step-up can give)."""
    return stepped_up / (2 - stepped_up)


def fitness_unit(meta_objective: dict, inner: str = "ppo") -> str:
    """The y label of a fitness from a spec's [meta_objective] table (defaults: `MetaObjective`'s;
    an empty baseline_rule is inner algorithm `inner`'s reference baseline), e.g.
    'fitness: paired score of the final return\n(0 = ppo_clip, 1 = ppo_clip's gain over random)'."""
    from meta_objectives.objectives import MetaObjective

    defaults = MetaObjective().with_baseline_rule(inner)
    kind = meta_objective.get("kind", defaults.kind)
    normalize = meta_objective.get("normalize", defaults.normalize)
    baseline = meta_objective.get("baseline_rule") or defaults.baseline_rule
    what = {
        "final_return": f"final return (last {meta_objective.get('last_k', defaults.last_k)} updates)",
        "curve_area": "learning-curve area per update",
        "eval_return": "evaluation return",
    }.get(kind, kind)
    if normalize == "paired":
        return f"fitness: paired score of the {what}\n(0 = {baseline}, 1 = {baseline}'s gain over random)"
    if normalize == "baseline":
        return f"fitness: {what} relative to {baseline}\n(0 = {baseline}, 1 = twice {baseline}'s)"
    return f"fitness: {what}"


FITNESS_SERIES = {
    "fitness_mean": "population mean",
    "fitness_max": "population max",
    "mean_fitness": "ES mean",
    "best_so_far": "best so far",
}


RUNNING_MEAN = "running mean"
SMOOTH_FROM = 40  # generations from which the population mean and the ES mean get a running mean
SMOOTHED = ("population mean", "ES mean")


def running_mean(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean `[G]` of `y` `[G]` over the last `window` values (fewer at the start),
    ignoring NaN; NaN where the window holds no finite value."""
    finite = np.isfinite(y)
    # cumulative sums padded with a leading 0: the sum over (i - window, i] is c[i + 1] - c[i + 1 - window]
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, y, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    end = np.arange(1, y.size + 1)
    start = np.maximum(end - window, 0)
    n = counts[end] - counts[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[end] - sums[start]) / np.maximum(n, 1), np.nan)


def fitness_series(history: list[dict]) -> dict[str, tuple]:
    """{series name: (generation `[G]`, fitness `[G]`)} of a job's metrics.jsonl records for
    `fitness_figure`: population mean and max, the ES mean's score, best so far (null or absent
    -> NaN); series with no finite value are left out. From SMOOTH_FROM generations on, also the
    running means of the population mean and the ES mean over max(5, G // 40) generations: a long
    run's per-generation fitness is mostly the draw of tasks and seeds, its trend is what shows
    progress."""
    gens = np.asarray([h.get("generation", i) for i, h in enumerate(history)])
    series = {}
    for key, name in FITNESS_SERIES.items():
        y = np.asarray([float(h[key]) if isinstance(h.get(key), (int, float)) else np.nan for h in history])
        if np.isfinite(y).any():
            series[name] = (gens, y)
    if len(history) >= SMOOTH_FROM:
        window = max(5, len(history) // 40)
        for name in SMOOTHED:
            if name in series:
                series[f"{RUNNING_MEAN} of the {name} ({window} gen.)"] = (
                    gens,
                    running_mean(series[name][1], window),
                )
    return series


def reliability_series(history: list[dict]) -> tuple | None:
    """(generation `[G]`, fitness_reliability `[G]`) of a job's metrics.jsonl records (null ->
    NaN), or None when no record has a finite one (one seed per member, or not ES)."""
    gens = np.asarray([h.get("generation", i) for i, h in enumerate(history)])
    y = np.asarray(
        [
            float(h["fitness_reliability"])
            if isinstance(h.get("fitness_reliability"), (int, float))
            else np.nan
            for h in history
        ]
    )
    return (gens, y) if np.isfinite(y).any() else None
