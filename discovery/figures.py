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


def fitness_figure(path: Path, histories: dict[str, dict[str, tuple]]) -> Path:
    """Fitness per generation on one axes: a colour per source, a line style per series.

    histories: {source label: {series name: (generation `[G]`, fitness `[G]`)}}.
    """
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, series) in enumerate(histories.items()):
        for style, (name, (x, y)) in zip(styles, series.items()):
            ax.plot(x, y, ls=style, color=f"C{i}", label=f"{label}: {name}" if len(histories) > 1 else name)
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title("Meta-training fitness" if len(histories) > 1 else f"Meta-training fitness of {label}")
    ax.grid(alpha=0.3)
    if ax.lines:  # a job whose every generation diverged so far has nothing to draw yet
        ax.legend(fontsize=8)
    return save_figure(fig, path)


FITNESS_SERIES = {"fitness_mean": "population mean", "fitness_max": "population max",
                  "mean_fitness": "ES mean", "best_so_far": "best so far"}


def fitness_series(history: list[dict]) -> dict[str, tuple]:
    """{series name: (generation `[G]`, fitness `[G]`)} of a job's metrics.jsonl records for
    `fitness_figure`: population mean and max, the ES mean's score, best so far (null or absent
    -> NaN); series with no finite value are left out."""
    gens = np.asarray([h.get("generation", i) for i, h in enumerate(history)])
    series = {}
    for key, name in FITNESS_SERIES.items():
        y = np.asarray([float(h[key]) if isinstance(h.get(key), (int, float)) else np.nan
                        for h in history])
        if np.isfinite(y).any():
            series[name] = (gens, y)
    return series
