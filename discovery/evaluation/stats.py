"""Evaluation statistics of `discover eval`: aggregates of returns over seeds, with percentile-bootstrap
confidence intervals.

Pure numpy (and scipy's exact binomial test). The sample axis is always axis 0: a sample is
`[n]` (e.g. final returns of n seeds) or `[n, ...]` (e.g. learning curves `[n, T]`, giving
statistics `[T]`). NaNs propagate as in numpy (a NaN in the sample makes the statistic NaN);
callers decide how to treat diverged runs (`nan_curve_stats` keeps the finite seeds per point).

IQM is the interquartile mean of Agarwal et al. 2021 ("Deep RL at the edge of the statistical
precipice", arXiv 2108.13264): the mean of the middle 50% of the sorted sample, trimming
floor(n/4) values from each end (as `scipy.stats.trim_mean(x, 0.25)`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import binomtest

Statistic = Callable[[np.ndarray], np.ndarray]  # reduces axis 0: [n, ...] -> [...]


def mean(x: np.ndarray) -> np.ndarray:
    """Mean over axis 0: `[n, ...] -> [...]`."""
    return np.mean(np.asarray(x, dtype=float), axis=0)


def median(x: np.ndarray) -> np.ndarray:
    """Median over axis 0: `[n, ...] -> [...]`."""
    return np.median(np.asarray(x, dtype=float), axis=0)


def iqm(x: np.ndarray) -> np.ndarray:
    """Interquartile mean over axis 0: sort, drop floor(n/4) values at each end, average the rest.

    `[n, ...] -> [...]`; n >= 1 (for n < 4 nothing is trimmed and it equals the mean); NaN
    where the sample holds a NaN, like mean and median.
    """
    x = np.asarray(x, dtype=float)
    cut = x.shape[0] // 4
    trimmed = np.mean(np.sort(x, axis=0)[cut : x.shape[0] - cut], axis=0)
    return np.where(np.isnan(x).any(axis=0), np.nan, trimmed)  # sort puts NaN last: keep it


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


def _strata(samples, confidence: float, caller: str, what: str) -> list[np.ndarray]:
    """`samples` as float arrays, after checking `confidence` is in (0, 1) and that there is at
    least one stratum and each is a non-empty 1-D sample (`caller` and `what` name them in the
    error)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence = {confidence!r} must be in (0, 1)")
    strata = [np.asarray(x, dtype=float) for x in samples]
    if not strata or any(x.ndim != 1 or x.size == 0 for x in strata):
        raise ValueError(f"{caller} needs non-empty 1-D {what}; got shapes {[x.shape for x in strata]}")
    return strata


def stratified_bootstrap_ci(
    samples: list[np.ndarray],
    statistic: Statistic,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap CI of `statistic` over several strata pooled, resampling within each.

    samples: one sample `[n_t]` per stratum (e.g. the runs of each task). Each resample draws
    n_t values with replacement from stratum t, for every t, and applies `statistic` to their
    concatenation `[sum n_t]` (rliable's stratified bootstrap, Agarwal et al. 2021: runs are
    resampled within each task, so the interval reflects run-to-run noise, not the spread
    between tasks). Deterministic for a given `seed`.
    """
    samples = _strata(samples, confidence, "stratified_bootstrap_ci", "samples")
    rng = np.random.default_rng(seed)
    resampled = np.concatenate(
        [x[rng.integers(0, x.size, size=(num_resamples, x.size))] for x in samples], axis=1
    )
    values = np.stack([statistic(row) for row in resampled])  # [num_resamples]
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha], axis=0)
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


def summarize_pooled(
    samples: list[np.ndarray], confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0
) -> dict[str, dict]:
    """`summarize` of the strata `samples` (one `[n_t]` per task) pooled, with stratified
    bootstrap CIs (`stratified_bootstrap_ci`); the same JSON-ready layout."""
    pooled = np.concatenate([np.asarray(x, dtype=float) for x in samples])
    out = {}
    for name, fn in STATISTICS.items():
        lo, hi = stratified_bootstrap_ci(samples, fn, confidence, num_resamples, seed)
        out[name] = {"value": float(fn(pooled)), "ci": [float(lo), float(hi)]}
    return out


# Paired comparisons. Every rule is trained on the same seed keys, so seed i of a rule and seed i
# of a baseline form a pair; the statistics below work on the paired differences
# d_i = rule_i - baseline_i `[n]`.

VERDICTS = ("better", "worse", "no difference at 95%")
MIN_PAIRS = 5  # fewer paired seeds get no verdict: the percentile bootstrap is far too narrow there


def paired_differences(rule: np.ndarray, baseline: np.ndarray) -> tuple[np.ndarray, int]:
    """Seed-by-seed differences of two samples of the same seeds, diverged seeds left out pairwise.

    rule, baseline: `[n]` (e.g. final returns; seed i of both was trained on the same key).
    Returns (d `[m]` = rule - baseline over the m seeds where both are finite, n - m left out).
    """
    rule, baseline = np.asarray(rule, dtype=float), np.asarray(baseline, dtype=float)
    if rule.ndim != 1 or rule.shape != baseline.shape:
        raise ValueError(f"paired samples need the same seeds: shapes {rule.shape} and {baseline.shape}")
    kept = np.isfinite(rule) & np.isfinite(baseline)
    return rule[kept] - baseline[kept], int(rule.size - kept.sum())


def improvement(d: np.ndarray) -> np.ndarray:
    """Per-pair indicator of improvement, ties counting one half: `[n, ...] -> [n, ...]`,
    1 where d > 0, 1/2 where d == 0, 0 where d < 0. Its mean over pairs is P(rule > baseline)."""
    d = np.asarray(d, dtype=float)
    return (d > 0) + 0.5 * (d == 0)


def probability_of_improvement(d: np.ndarray) -> np.ndarray:
    """P(rule > baseline) over paired seeds, ties counted one half: mean of `improvement(d)`
    over axis 0, `[n, ...] -> [...]`. (rliable's probability of improvement compares every run of
    one algorithm with every run of the other; here only runs on the same seed are compared.)"""
    return mean(improvement(d))


def paired_bootstrap(
    strata: list[np.ndarray], confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0
) -> dict[str, dict]:
    """Paired difference and probability of improvement with percentile-bootstrap CIs.

    strata: the paired differences d `[n_t]` of each task (one stratum for a single task). The
    statistics average over tasks, each task weighing the same: difference = mean over tasks of
    the mean of d_t; P(improvement) = mean over tasks of `probability_of_improvement(d_t)`. A
    resample draws n_t pairs with replacement within every task (the stratified bootstrap:
    whole pairs are resampled, so the pairing is kept). Deterministic for a given `seed`.
    Returns {"difference": {"value", "ci": [lo, hi]}, "p_improvement": {...}} as floats.
    """
    strata = _strata(strata, confidence, "paired_bootstrap", "differences")
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, d.size, size=(num_resamples, d.size)) for d in strata]
    alpha = (1.0 - confidence) / 2.0
    out = {}
    for name, values in (("difference", strata), ("p_improvement", [improvement(d) for d in strata])):
        resampled = np.mean([v[i].mean(axis=1) for v, i in zip(values, draws)], axis=0)  # [B]
        lo, hi = np.quantile(resampled, [alpha, 1.0 - alpha])
        out[name] = {"value": float(np.mean([v.mean() for v in values])), "ci": [float(lo), float(hi)]}
    return out


def verdict(ci: tuple[float, float]) -> str:
    """'better' when the CI of the paired difference lies above 0, 'worse' when below, else
    'no difference at 95%' (the CI holds 0)."""
    lo, hi = ci
    return VERDICTS[0] if lo > 0 else VERDICTS[1] if hi < 0 else VERDICTS[2]


def half_width(ci: tuple[float, float]) -> float:
    """Half the width of a CI: roughly the smallest true difference the run could have told
    apart from none (a difference that size puts the CI's near end at about 0)."""
    return float(ci[1] - ci[0]) / 2.0


# Divergence. A seed whose run diverged has no final return, so the paired statistics above leave
# it out; a rule that diverges on most seeds would then be judged on its few survivors. The test
# below compares how often two rules diverged on the same seeds.

DIVERGENCE_LEVEL = 0.025  # the one-sided half of the 95% intervals used elsewhere


def divergence_test(rule: np.ndarray, baseline: np.ndarray) -> dict:
    """Whether a rule diverged significantly more often than a baseline on the same seeds.

    rule, baseline: `[n]` bool, seed i diverged under each. Of the discordant seeds (exactly one
    of the two diverged), the rule's count k is tested against half by an exact one-sided
    binomial (sign) test: p = P(X >= k), X ~ Binomial(discordant, 1/2); `more` when p <
    DIVERGENCE_LEVEL. Returns {"rule": diverged under the rule, "baseline": under the baseline,
    "seeds": n, "p_more": p, "more": bool}.
    """
    rule, baseline = np.asarray(rule, dtype=bool), np.asarray(baseline, dtype=bool)
    if rule.ndim != 1 or rule.shape != baseline.shape:
        raise ValueError(f"divergence_test needs the same seeds: shapes {rule.shape} and {baseline.shape}")
    only_rule, only_baseline = int(np.sum(rule & ~baseline)), int(np.sum(baseline & ~rule))
    discordant = only_rule + only_baseline
    p = binomtest(only_rule, discordant, 0.5, alternative="greater").pvalue if discordant else 1.0
    return {
        "rule": int(rule.sum()),
        "baseline": int(baseline.sum()),
        "seeds": int(rule.size),
        "p_more": float(p),
        "more": bool(p < DIVERGENCE_LEVEL),
    }


def nan_curve_stats(
    curves: np.ndarray, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean learning curve over the seeds still finite at each point, with its bootstrap CI.

    curves: `[n, T]`, NaN where a seed had diverged. At each point t the sample is the seeds
    finite there (n_t of them): mean `[T]`, CI ends lo, hi `[T]` (percentile bootstrap over those
    seeds, `bootstrap_ci`), n_t `[T]`. NaN where no seed is finite. The mean after seeds diverge
    is over the survivors only; n_t says how many.
    """
    curves = np.asarray(curves, dtype=float)
    finite = np.isfinite(curves)
    count = finite.sum(axis=0)
    mean_, lo, hi = (np.full(curves.shape[1], np.nan) for _ in range(3))
    for t in np.flatnonzero(count):
        sample = curves[finite[:, t], t]
        mean_[t] = sample.mean()
        lo[t], hi[t] = bootstrap_ci(sample, mean, confidence, num_resamples, seed)
    return mean_, lo, hi, count
