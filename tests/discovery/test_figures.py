"""The fitness figure's running mean: the trailing mean computed by hand, and when it is drawn."""

import numpy as np
import pytest
from matplotlib.axes import Axes

from discovery import figures

pytestmark = pytest.mark.fast


def test_running_mean_is_the_trailing_mean_of_the_finite_values():
    y = np.array([1.0, 2.0, np.nan, 4.0, 6.0, np.nan, np.nan])
    # window 2: [1], [1, 2], [2, nan], [nan, 4], [4, 6], [6, nan], [nan, nan]
    expected = [1.0, 1.5, 2.0, 4.0, 5.0, 6.0, np.nan]
    np.testing.assert_allclose(figures.running_mean(y, 2), expected)
    np.testing.assert_allclose(figures.running_mean(y, 10)[-1], (1 + 2 + 4 + 6) / 4)


def _history(g: int) -> list[dict]:
    return [
        {
            "generation": i + 1,
            "fitness_mean": float(i % 3),
            "fitness_max": 3.0,
            "mean_fitness": float(i % 4),
            "best_so_far": 3.0,
        }
        for i in range(g)
    ]


def test_a_long_run_gets_running_means_of_the_population_and_es_means_and_a_short_one_does_not(tmp_path):
    assert not any(k.startswith("running mean") for k in figures.fitness_series(_history(39)))
    series = figures.fitness_series(_history(400))
    names = sorted(k for k in series if k.startswith("running mean"))
    assert names == ["running mean of the ES mean (10 gen.)", "running mean of the population mean (10 gen.)"]
    _, smooth = series["running mean of the population mean (10 gen.)"]
    assert smooth[-1] == pytest.approx(np.mean([i % 3 for i in range(390, 400)]))
    _, smooth = series["running mean of the ES mean (10 gen.)"]
    assert smooth[-1] == pytest.approx(np.mean([i % 4 for i in range(390, 400)]))
    assert figures.fitness_figure(tmp_path / "f.png", {"run": series}).is_file()


def test_every_series_of_every_source_is_drawn(tmp_path, monkeypatch):
    """Six series per source (four raw, two running means), two sources: twelve lines, six in
    each source's colour."""
    drawn = []
    plot = Axes.plot
    monkeypatch.setattr(
        Axes, "plot", lambda self, *a, **k: drawn.append(k.get("color")) or plot(self, *a, **k)
    )
    series = figures.fitness_series(_history(400))
    figures.fitness_figure(tmp_path / "f.png", {"a": series, "b": series})
    assert len(series) == 6 and sorted(drawn) == ["C0"] * 6 + ["C1"] * 6


def test_split_half_undoes_the_spearman_brown_step_up():
    """R = 2r / (1 + r): r = 0.5 -> R = 2/3; r = -0.6 -> R = -3; the study's R = -2.4 -> r = -6/11."""
    np.testing.assert_allclose(
        figures.split_half(np.array([2 / 3, -3.0, -2.4, 1.0])), [0.5, -0.6, -6 / 11, 1.0]
    )


def test_the_reliability_panel_draws_the_raw_correlation_and_the_title_the_pooled_reliability(tmp_path):
    """R = 0.6, 1/3 and -2.4 are r = 3/7, 1/5 and -6/11 (in [-1, 1]); their mean r = 0.02771 steps
    up to 2r/(1+r) = 0.0539; the floor R = 0.2 is r = 1/9."""
    series = {"ES mean": (np.arange(3), np.zeros(3))}
    reliability = {"run": (np.arange(3), np.array([0.6, 1 / 3, -2.4]))}
    fig_axes = []
    close = figures.plt.close
    figures.plt.close = lambda fig: fig_axes.extend(fig.axes)
    try:
        figures.fitness_figure(tmp_path / "f.png", {"run": series}, reliability, 0.2, "fitness: paired score")
    finally:
        figures.plt.close = close
    top, low = fig_axes[:2]
    np.testing.assert_allclose(low.lines[0].get_ydata(), [3 / 7, 1 / 5, -6 / 11])
    assert low.get_ylim() == (-1.05, 1.05)
    assert low.get_title().endswith(": 0.05")
    assert [line.get_ydata()[0] for line in low.lines[1:]] == [pytest.approx(1 / 9), 0.0]
    assert top.get_ylabel() == "fitness: paired score"


def test_the_fitness_unit_comes_from_the_meta_objective():
    table = {"kind": "final_return", "last_k": 8, "normalize": "paired", "baseline_rule": "ppo_clip"}
    assert figures.fitness_unit(table) == (
        "fitness: paired score of the final return (last 8 updates)\n"
        "(0 = ppo_clip, 1 = ppo_clip's gain over random)"
    )
    assert figures.fitness_unit({}) == "fitness: final return (last 5 updates)"
    assert figures.fitness_unit({"kind": "curve_area", "normalize": "baseline", "baseline_rule": "dpo"}) == (
        "fitness: learning-curve area per update relative to dpo\n(0 = dpo, 1 = twice dpo's)"
    )
