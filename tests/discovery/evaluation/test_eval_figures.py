"""What the evaluation figures draw when seeds diverge (NaN-aware curves with the seeds per point,
diverged counts on summary.png), and the layouts that keep them readable at README width."""

import matplotlib.image
import numpy as np
import pytest
from matplotlib.axes import Axes

from discovery.evaluation import plots, report, stats

pytestmark = pytest.mark.fast  # small figures


def test_curve_statistics_keep_the_seeds_finite_at_each_point():
    """Seed 1 diverges after point 0, seed 2 after point 1, all by point 3."""
    curves = np.array([[1.0, 2.0, 3.0, np.nan], [3.0, np.nan, np.nan, np.nan], [5.0, 6.0, np.nan, np.nan]])
    mean, lo, hi, count = stats.nan_curve_stats(curves, num_resamples=200)
    np.testing.assert_allclose(mean[:3], [3.0, 4.0, 3.0])
    np.testing.assert_array_equal(count, [3, 2, 1, 0])
    assert np.isnan(mean[3]) and np.isnan(lo[3]) and np.isnan(hi[3])
    assert lo[0] >= 1.0 and hi[0] <= 5.0 and lo[1] >= 2.0 and hi[1] <= 6.0 and lo[2] == hi[2] == 3.0


def test_a_curve_goes_on_after_a_seed_diverges_and_the_legend_counts_the_seeds(tmp_path, monkeypatch):
    drawn = {}
    plot = Axes.plot
    monkeypatch.setattr(
        Axes,
        "plot",
        lambda self, x, y, *a, **k: drawn.setdefault(k.get("label"), y) is None or plot(self, x, y, *a, **k),
    )
    curves = {
        "rule": np.array([[0.0, 2.0, 4.0], [0.0, np.nan, np.nan], [0.0, 4.0, 8.0]]),
        "base": np.zeros((3, 3)),
    }
    plots.learning_curves_figure(tmp_path / "c.png", "t", np.array([0, 10, 20]), curves, "return")
    np.testing.assert_allclose(drawn["rule (3 seeds, 2 at the end)"], [0.0, 3.0, 6.0])
    assert "base (3 seeds)" in drawn


def _task(diverged: int, seeds: int = 40) -> dict:
    """A normalised task's result (as results.json stores it) where the rule diverged on
    `diverged` seeds and ppo_clip on none."""
    rules = {}
    for label, k in (("rule", diverged), ("ppo_clip", 0)):
        iqm = {"value": 1.0, "ci": [0.9, 1.1]}
        rules[label] = {
            "diverged": k,
            "final_returns": [None] * k + [1.0] * (seeds - k),
            "normalized": {"iqm": iqm},
        }
    return {"in_training_set": False, "rules": rules, "normalized": True, "paired": []}


def test_summary_marks_the_diverged_seeds_per_task_and_pooled(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "scores_figure", lambda path, scores, *a: drawn.update(scores))
    results = {
        "tasks": {"hopper/spring": _task(37), "gymnax:Breakout-MinAtar": _task(0)},
        "reference": "ppo_clip",
        "pooled_normalized": {
            label: {"iqm": {"value": 1.0, "ci": [0.9, 1.1]}} for label in ("rule", "ppo_clip")
        },
        "pooled_paired": [],
    }
    report.summary_figures(tmp_path, "rule", results)
    assert drawn["hopper/spring\n(held-out)"]["rule"]["note"] == "diverged 37/40"
    assert drawn["hopper/spring\n(held-out)"]["ppo_clip"]["note"] is None
    assert drawn["gymnax:\nBreakout-\nMinAtar\n(held-out)"]["rule"]["note"] is None
    assert drawn["all tasks\n(pooled)"]["rule"]["note"] == "diverged 37/80"


def test_task_labels_wrap_at_their_separators():
    assert plots.wrap_label("gymnax:SpaceInvaders-MinAtar") == "gymnax:\nSpaceInvaders-\nMinAtar"
    assert plots.wrap_label("inverted_double_pendulum/spring") == "inverted_\ndouble_\npendulum/\nspring"
    assert plots.wrap_label("hopper/spring") == "hopper/spring"


def test_eleven_heatmaps_wrap_to_lines_of_three(tmp_path):
    """Three temporally-aware rules at three lifetime fractions and two baselines: 11 panels per
    quantity, 4 lines of 3 (one empty); the picture is taller than wide, under 1100 px wide."""
    z = np.zeros((5, 5))
    columns = [(f"c{i}", {"drift": z, "weight": z + i}) for i in range(11)]
    rows = [("drift", "drift", "sequential"), ("weight", "weight", "diverging")]
    x = np.linspace(0.5, 1.5, 5)
    path = plots.heatmaps_figure(tmp_path / "h.png", x, x, columns, rows, "r", "A", "t")
    height, width, _ = matplotlib.image.imread(path).shape
    assert width < 1100 and height > width
