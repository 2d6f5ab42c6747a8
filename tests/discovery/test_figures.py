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
    """Six series per source (four raw, two running means), two sources: twelve lines."""
    drawn = []
    plot = Axes.plot
    monkeypatch.setattr(
        Axes, "plot", lambda self, *a, **k: drawn.append(k.get("label")) or plot(self, *a, **k)
    )
    series = figures.fitness_series(_history(400))
    figures.fitness_figure(tmp_path / "f.png", {"a": series, "b": series})
    assert sorted(drawn) == sorted(f"{run}: {name}" for run in "ab" for name in series) and len(drawn) == 12
