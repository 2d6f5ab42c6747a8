"""Aggregate statistics of returns over seeds, with percentile-bootstrap confidence intervals.

Pure numpy. The sample axis is always axis 0: a sample is `[n]` (e.g. final returns of n seeds)
or `[n, ...]` (e.g. learning curves `[n, T]`, giving statistics `[T]`). NaNs propagate as in
numpy (a NaN in the sample makes the statistic NaN); callers decide how to treat diverged runs.

IQM is the interquartile mean of Agarwal et al. 2021 ("Deep RL at the edge of the statistical
precipice", arXiv 2108.13264): the mean of the middle 50% of the sorted sample, trimming
floor(n/4) values from each end (as `scipy.stats.trim_mean(x, 0.25)`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]  # reduces axis 0: [n, ...] -> [...]


def mean(x: np.ndarray) -> np.ndarray:
    """Mean over axis 0: `[n, ...] -> [...]`."""
    return np.mean(np.asarray(x, dtype=float), axis=0)


def median(x: np.ndarray) -> np.ndarray:
    """Median over axis 0: `[n, ...] -> [...]`."""
    return np.median(np.asarray(x, dtype=float), axis=0)


def iqm(x: np.ndarray) -> np.ndarray:
    """Interquartile mean over axis 0: sort, drop floor(n/4) values at each end, average the rest.

    `[n, ...] -> [...]`; n >= 1 (for n < 4 nothing is trimmed and it equals the mean).
    """
    x = np.sort(np.asarray(x, dtype=float), axis=0)
    cut = x.shape[0] // 4
    return np.mean(x[cut : x.shape[0] - cut], axis=0)


STATISTICS: dict[str, Statistic] = {"mean": mean, "median": median, "iqm": iqm}


def bootstrap_ci(
    x: np.ndarray,
    statistic: Statistic,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap confidence interval of `statistic` over the sample axis 0.

    Draws `num_resamples` resamples of the n rows with replacement (the same row indices for
    every trailing position, so a curve `[n, T]` is resampled seed-wise), applies `statistic`
    to each and returns the (1-confidence)/2 and (1+confidence)/2 quantiles, each of shape
    `statistic(x).shape`. Deterministic for a given `seed`.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence = {confidence!r} must be in (0, 1)")
    x = np.asarray(x, dtype=float)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"bootstrap_ci needs a sample along axis 0; got shape {x.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(num_resamples, x.shape[0]))
    resampled = np.stack([statistic(x[i]) for i in idx])  # [num_resamples, ...]
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(resampled, [alpha, 1.0 - alpha], axis=0)
    return lo, hi


def summarize(
    x: np.ndarray, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0
) -> dict[str, dict]:
    """Mean, median and IQM of a sample `[n]`, each with its bootstrap CI, as JSON-ready floats.

    Returns {"mean": {"value": v, "ci": [lo, hi]}, "median": {...}, "iqm": {...}}.
    """
    out = {}
    for name, fn in STATISTICS.items():
        lo, hi = bootstrap_ci(x, fn, confidence, num_resamples, seed)
        out[name] = {"value": float(fn(x)), "ci": [float(lo), float(hi)]}
    return out
