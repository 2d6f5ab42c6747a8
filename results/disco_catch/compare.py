"""Disco103 on Catch: our agent (ours/*.json, `ours.py`) beside DiscoRL's colab run with the
published code (reference/*.json, `reference_harness/ref_catch.py`), on the one metric both loops
record at every step: the mean return of the episodes that ended in that step's rollout.

    python results/disco_catch/compare.py    # writes compare.md and curves.png beside it

Steps are aligned by index (one rollout per step in both loops, learning from step 32 on);
ours collects 2 x 28 env steps per step, the colab 2 x 29.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

HERE = Path(__file__).parent
WINDOW = 50  # steps of the moving mean for "solved" and the plot
SOLVED = 0.9  # Catch's optimum is 1 (every ball caught)


def load(folder: str, key: str, pattern: str) -> dict[int, np.ndarray]:
    """{seed: per-step returns `[steps]`, NaN where no episode ended} of the files matching pattern."""
    runs = {}
    for path in sorted((HERE / folder).glob(pattern)):
        if ".partial" in path.name:  # a run's progress snapshot, not a finished run
            continue
        rec = json.loads(path.read_text())
        runs[int(rec["seed"])] = np.array([np.nan if v is None else v for v in rec[key]], float)
    return runs


def moving_mean(x: np.ndarray, window: int) -> np.ndarray:
    """The mean of the finite values in each trailing window `[steps - window + 1]`."""
    ok = np.isfinite(x)
    sums = np.convolve(np.where(ok, x, 0.0), np.ones(window), "valid")
    counts = np.convolve(ok.astype(float), np.ones(window), "valid")
    return sums / np.maximum(counts, 1)


def summary(runs: dict[int, np.ndarray]) -> dict:
    """Per seed: mean of the last 100 steps, the first step whose WINDOW-step mean reaches SOLVED."""
    last = np.array([np.nanmean(r[-100:]) for r in runs.values()])
    solved = []
    for r in runs.values():
        hit = np.nonzero(moving_mean(r, WINDOW) >= SOLVED)[0]
        solved.append(int(hit[0]) + WINDOW if hit.size else None)
    return {"seeds": sorted(runs), "last100": last, "solved_at": solved}


def ci(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and its 95% t interval."""
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.nan
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def table(groups: dict[str, dict]) -> list[str]:
    lines = [
        "| run | seeds | mean return, last 100 steps [95% CI] | per seed "
        "| step whose 50-step mean first reaches 0.9, per seed |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in groups.items():
        m, lo, hi = ci(s["last100"])
        per_seed = ", ".join(f"{v:.2f}" for v in s["last100"])
        solved = ", ".join("never" if v is None else str(v) for v in s["solved_at"])
        lines.append(f"| {name} | {len(s['seeds'])} | {m:.3f} [{lo:.3f}, {hi:.3f}] | {per_seed} | {solved} |")
    return lines


def difference(a: dict, b: dict, names: tuple[str, str]) -> list[str]:
    """Welch's test and interval of the difference of the last-100 means, and a Mann-Whitney test
    of the steps to reach 0.9 ("never" ranks last); unpaired: the two codes draw other numbers."""
    x, y = a["last100"], b["last100"]
    t = stats.ttest_ind(x, y, equal_var=False)
    low, high = t.confidence_interval(0.95)
    sx, sy = ([np.inf if v is None else v for v in g["solved_at"]] for g in (a, b))
    u = stats.mannwhitneyu(sx, sy, alternative="two-sided")
    return [
        f"- last-100 mean, {names[0]} - {names[1]}: {x.mean() - y.mean():+.3f} [{low:+.3f}, {high:+.3f}] "
        f"(Welch p {t.pvalue:.2f})",
        f"- step reaching 0.9, medians {np.median(sx):.0f} and {np.median(sy):.0f} "
        f"(Mann-Whitney p {u.pvalue:.2f})",
    ]


def plot(groups_runs: dict[str, dict[int, np.ndarray]], out: Path) -> None:
    """Each seed's WINDOW-step mean (thin) and the mean over seeds (thick), one colour per run."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, (name, runs) in enumerate(groups_runs.items()):
        curves = np.stack([moving_mean(r, WINDOW) for r in runs.values()])
        x = np.arange(curves.shape[1]) + WINDOW
        colour = f"C{i}"
        for curve in curves:
            ax.plot(x, curve, color=colour, lw=0.6, alpha=0.35)
        ax.plot(x, curves.mean(0), color=colour, lw=2.2, label=f"{name}: mean of {len(curves)} seeds")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("step (one rollout of 2 envs; learning from step 32, replay ratio 32)")
    ax.set_ylabel(f"episode return, {WINDOW}-step mean")
    ax.set_title("Catch 8 x 8: Disco103 in our agent and in DiscoRL's code (thin: seeds)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    groups_runs = {
        "Disco103, ours": load("ours", "episode_return", "disco103_seed*.json"),
        "Disco103, DiscoRL's code": load("reference", "avg_returns", "ref_disco_seed*.json"),
        "disco_ac, ours": load("ours", "episode_return", "disco_ac_seed*.json"),
        "actor-critic, DiscoRL's code": load("reference", "avg_returns", "ref_actor_critic_seed*.json"),
    }
    groups_runs = {k: v for k, v in groups_runs.items() if v}
    groups = {k: summary(v) for k, v in groups_runs.items()}
    lines = table(groups)
    names = list(groups)
    if "Disco103, ours" in groups and "Disco103, DiscoRL's code" in groups:
        pair = ("Disco103, ours", "Disco103, DiscoRL's code")
        lines += ["", *difference(groups[pair[0]], groups[pair[1]], pair)]
    (HERE / "compare.md").write_text("\n".join(lines) + "\n")
    plot(groups_runs, HERE / "curves.png")
    print("\n".join(lines), "\n", names)


if __name__ == "__main__":
    main()
