"""Statistics on synthetic data with known answers."""

import itertools

import numpy as np
import pytest

from discovery.evaluation import stats

pytestmark = pytest.mark.fast  # pure functions: part of `python -m pytest -m fast`


def test_iqm_known_samples():
    # n=8: trims 2 at each end -> mean(3, 4, 5, 6)
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)
    # outliers at both ends are ignored: sorted -1000,0,1,2,3,4,5,1000 -> mean(1, 2, 3, 4)
    assert stats.iqm(np.array([1000.0, 0, 1, 2, 3, 4, 5, -1000])) == pytest.approx(2.5)
    # n=5: trims 1 at each end, order of input irrelevant -> mean(2, 3, 4)
    assert stats.iqm(np.array([5.0, 1, 4, 2, 3])) == pytest.approx(3.0)
    # n < 4: nothing trimmed
    assert stats.iqm(np.array([1.0, 2.0, 6.0])) == pytest.approx(3.0)


def test_statistics_reduce_axis_zero_of_curves():
    curves = np.stack([np.arange(4.0) + s for s in range(8)])  # [seeds=8, T=4]
    np.testing.assert_allclose(stats.mean(curves), np.arange(4.0) + 3.5)
    np.testing.assert_allclose(stats.median(curves), np.arange(4.0) + 3.5)
    np.testing.assert_allclose(stats.iqm(curves), np.arange(4.0) + 3.5)
    lo, hi = stats.bootstrap_ci(curves, stats.mean, num_resamples=200)
    assert lo.shape == hi.shape == (4,)
    # seed-wise resampling keeps the curves' offsets: the band is a shifted copy at every point
    np.testing.assert_allclose(hi - lo, (hi - lo)[0])


def test_bootstrap_of_constant_sample_is_a_point():
    lo, hi = stats.bootstrap_ci(np.full(10, 7.0), stats.iqm)
    assert lo == hi == 7.0


def test_bootstrap_is_deterministic():
    x = np.random.default_rng(1).normal(size=20)
    assert stats.bootstrap_ci(x, stats.mean, seed=3) == stats.bootstrap_ci(x, stats.mean, seed=3)


@pytest.mark.parametrize("name", ["mean", "median", "iqm"])
def test_a_nan_run_makes_statistics_and_intervals_nan(name):
    """A diverged run must show, not vanish: sorting puts NaN last, where IQM would trim it."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, np.nan])
    assert np.isnan(stats.STATISTICS[name](x))
    assert np.all(np.isnan(stats.bootstrap_ci(x, stats.STATISTICS[name], num_resamples=200)))


def test_stratified_bootstrap_matches_brute_force_enumeration():
    """2 tasks x 3 runs: all 3^3 x 3^3 equally likely stratified resamples enumerated; the
    sampled interval matches the exact quantiles, and is far narrower than the plain
    bootstrap's, which mixes the tasks' levels into the noise."""
    tasks = [np.array([0.0, 0.1, 0.4]), np.array([2.0, 2.3, 2.5])]
    draws = np.array(list(itertools.product(range(3), repeat=3)))  # [27, 3] index triples
    exact = np.array(
        [np.mean(np.concatenate([tasks[0][a], tasks[1][b]])) for a in draws for b in draws]
    )  # [729]
    exact_lo, exact_hi = np.quantile(exact, [0.025, 0.975])
    lo, hi = stats.stratified_bootstrap_ci(tasks, stats.mean, num_resamples=20000)
    assert lo == pytest.approx(exact_lo, abs=0.01) and hi == pytest.approx(exact_hi, abs=0.01)
    plain_lo, plain_hi = stats.bootstrap_ci(np.concatenate(tasks), stats.mean, num_resamples=20000)
    assert plain_hi - plain_lo > 2 * (exact_hi - exact_lo)


def test_summarize_pooled_uses_the_stratified_interval():
    tasks = [np.arange(5.0) + 10 * t for t in range(4)]
    out = stats.summarize_pooled(tasks, num_resamples=500)
    assert out["iqm"]["value"] == pytest.approx(stats.iqm(np.concatenate(tasks)))
    lo, hi = stats.stratified_bootstrap_ci(tasks, stats.iqm, num_resamples=500)
    assert out["iqm"]["ci"] == [pytest.approx(lo), pytest.approx(hi)]


@pytest.mark.parametrize("name", ["mean", "iqm"])
def test_ci_coverage_on_normal_distribution(name):
    """95% CIs of the centre of N(1, 2^2) from n=30 samples cover 1 about 95% of the time."""
    rng = np.random.default_rng(0)
    trials, n, mu, sigma = 200, 30, 1.0, 2.0
    covered, widths = 0, []
    for _ in range(trials):
        x = rng.normal(mu, sigma, size=n)
        lo, hi = stats.bootstrap_ci(
            x, stats.STATISTICS[name], num_resamples=500, seed=int(rng.integers(1 << 30))
        )
        covered += lo <= mu <= hi
        widths.append(hi - lo)
    assert 0.88 <= covered / trials <= 0.99
    if name == "mean":  # width of the normal-theory interval 2 * 1.96 * sigma / sqrt(n)
        assert np.mean(widths) == pytest.approx(2 * 1.96 * sigma / np.sqrt(n), rel=0.15)


def test_summarize_is_json_ready():
    out = stats.summarize(np.arange(1.0, 9.0), num_resamples=300)
    assert set(out) == {"mean", "median", "iqm"}
    assert out["iqm"]["value"] == pytest.approx(4.5)
    for entry in out.values():
        lo, hi = entry["ci"]
        assert isinstance(lo, float) and lo <= entry["value"] <= hi


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci(np.ones(3), stats.mean, confidence=95)
    with pytest.raises(ValueError, match="shape"):
        stats.bootstrap_ci(np.ones(0), stats.mean)


def _exact_quantiles(values: np.ndarray, qs=(0.025, 0.975)) -> list[float]:
    """Quantiles (inverse CDF: the smallest v with P(X <= v) >= q) of equally likely `values`."""
    v = np.sort(values)
    cdf = np.arange(1, v.size + 1) / v.size
    return [float(v[np.searchsorted(cdf, q - 1e-12)]) for q in qs]


def test_paired_differences_leave_diverged_seeds_out_pairwise():
    d, left_out = stats.paired_differences([1.0, np.nan, 3.0, 4.0], [0.0, 1.0, np.inf, 2.5])
    np.testing.assert_array_equal(d, [1.0, 1.5])
    assert left_out == 2
    with pytest.raises(ValueError, match="same seeds"):
        stats.paired_differences([1.0, 2.0], [1.0])


def test_probability_of_improvement_counts_ties_one_half():
    assert stats.probability_of_improvement(np.array([0.0, 0.0, 1.0, -1.0])) == 0.5
    assert stats.probability_of_improvement(np.array([2.0, 3.0, -1.0, 0.0])) == 0.625


def test_paired_bootstrap_matches_the_enumerated_resampling_distribution():
    """4 pairs: all 4^4 = 256 equally likely resamples enumerated. P(improvement) by hand: the
    resample holds k ~ Binomial(4, 3/4) of the three improving pairs, P(k = 0) = 1/256 and
    P(k <= 1) = 13/256 = 0.051, P(k = 4) = 81/256: so its 95% CI is exactly [1/4, 1]."""
    d = np.array([-1.0, 2.0, 3.5, 7.0])
    draws = np.array(list(itertools.product(range(4), repeat=4)))  # [256, 4]
    exact_lo, exact_hi = _exact_quantiles(d[draws].mean(axis=1))
    out = stats.paired_bootstrap([d], num_resamples=40000)
    assert out["difference"]["value"] == pytest.approx(2.875)
    assert out["difference"]["ci"] == pytest.approx([exact_lo, exact_hi], abs=0.01)
    assert out["p_improvement"]["value"] == 0.75
    assert out["p_improvement"]["ci"] == [0.25, 1.0]


def test_pooled_paired_bootstrap_resamples_pairs_within_each_task():
    """Tasks of 3 and 4 pairs: all 27 x 256 stratified resamples enumerated; the statistic is the
    mean over tasks of each task's statistic (tasks weigh the same whatever their seed counts)."""
    tasks = [np.array([-0.3, 0.1, 0.4]), np.array([0.2, 0.5, 1.1, 0.7])]
    resamples = [np.array(list(itertools.product(range(t.size), repeat=t.size))) for t in tasks]
    pairs = itertools.product(*(t[r].mean(axis=1) for t, r in zip(tasks, resamples)))
    exact = np.array([np.mean(p) for p in pairs])  # [27 * 256]
    wins = [stats.improvement(t)[r].mean(axis=1) for t, r in zip(tasks, resamples)]
    exact_p = np.add.outer(wins[0], wins[1]).ravel() / 2
    out = stats.paired_bootstrap(tasks, num_resamples=40000)
    assert out["difference"]["value"] == pytest.approx((0.2 / 3 + 2.5 / 4) / 2)
    assert out["difference"]["ci"] == pytest.approx(_exact_quantiles(exact), abs=0.01)
    assert out["p_improvement"]["value"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert out["p_improvement"]["ci"] == pytest.approx(_exact_quantiles(exact_p), abs=1e-9)


def test_verdict_reads_the_ci_of_the_paired_difference():
    assert stats.verdict((0.1, 2.0)) == "better"
    assert stats.verdict((-2.0, -0.1)) == "worse"
    assert stats.verdict((-0.1, 2.0)) == "no difference at 95%"
    assert stats.half_width((-0.1, 2.0)) == pytest.approx(1.05)
    with pytest.raises(ValueError, match="non-empty"):
        stats.paired_bootstrap([np.array([])])
