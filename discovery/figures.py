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
    styles = ["-", "--", ":", "-."]
    colours = {label: f"C{i}" for i, label in enumerate(histories)}
    if reliability:
        fig, (ax, low) = plt.subplots(
            2, 1, figsize=(6.4, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
        )
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, series in histories.items():
        for style, (name, (x, y)) in zip(styles, series.items()):
            ax.plot(
                x, y, ls=style, color=colours[label], label=f"{label}: {name}" if len(histories) > 1 else name
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


def fitness_series(history: list[dict]) -> dict[str, tuple]:
    """{series name: (generation `[G]`, fitness `[G]`)} of a job's metrics.jsonl records for
    `fitness_figure`: population mean and max, the ES mean's score, best so far (null or absent
    -> NaN); series with no finite value are left out."""
    gens = np.asarray([h.get("generation", i) for i, h in enumerate(history)])
    series = {}
    for key, name in FITNESS_SERIES.items():
        y = np.asarray([float(h[key]) if isinstance(h.get(key), (int, float)) else np.nan for h in history])
        if np.isfinite(y).any():
            series[name] = (gens, y)
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
