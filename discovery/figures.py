"""Figure plumbing shared by the job and the evaluation commands (matplotlib with the Agg
backend: no display), and the job's fitness figure (fitness.png), which `discover inspect` draws too.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
) -> Path:
    """Fitness per generation: a colour per source, a line style per series; below it, when
    `reliability` has a source, a panel of the fitness reliability per generation (same colours)
    with `floor` (the warning's threshold) dashed.

    histories: {source label: {series name: (generation `[G]`, fitness `[G]`)}};
    reliability: {source label: (generation `[G]`, reliability `[G]`)}.
    """
    styles = ["-", "--", ":", "-."]  # of the raw series; running means are bold
    colours = {label: f"C{i}" for i, label in enumerate(histories)}
    if reliability:
        fig, (ax, low) = plt.subplots(
            2, 1, figsize=(6.4, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
        )
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, series in histories.items():
        smoothed = any(name.startswith(RUNNING_MEAN) for name in series)
        raw = [name for name in series if not name.startswith(RUNNING_MEAN)]
        for name, (x, y) in series.items():
            # with a running mean drawn bold, the raw per-generation series recede behind it;
            # the ES mean's running mean is dashed, the population mean's solid
            bold = name.startswith(RUNNING_MEAN)
            style = ("--" if "ES mean" in name else "-") if bold else styles[raw.index(name) % len(styles)]
            ax.plot(
                x,
                y,
                ls=style,
                color="black" if bold and len(histories) == 1 else colours[label],
                lw=2.0 if bold else 1.0,
                alpha=1.0 if bold or not smoothed else 0.35,
                label=f"{label}: {name}" if len(histories) > 1 else name,
            )
    ax.set_ylabel("fitness")
    title = "Meta-training fitness" if len(histories) > 1 else f"Meta-training fitness of {label}"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.lines:  # a job whose every generation diverged so far has nothing to draw yet
        ax.legend(fontsize=8)
    if reliability:
        for label, (x, y) in reliability.items():
            low.plot(x, y, color=colours.get(label, "C0"), marker=".", ms=3, label=label)
        if floor is not None:
            low.axhline(floor, ls="--", color="grey", lw=1, label=f"warning below {floor:g}")
        low.axhline(0.0, color="black", lw=0.6)
        low.set_ylabel("fitness reliability\n(split-half, S-B)")
        low.grid(alpha=0.3)
        low.legend(fontsize=7)
        ax = low
    ax.set_xlabel("generation")
    return save_figure(fig, path)


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
