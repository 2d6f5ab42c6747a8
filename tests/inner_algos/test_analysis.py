"""The statistics of the rule pictures (`inner_algos.analysis`) on hand-computed cases:
equal-count binned means, Pearson's correlation, the held-out R^2 of a linear fit, the
bootstrap-free Monte-Carlo return with an episode end inside the batch, the fit/held-out split,
the lifetime points, a target's binned following of an advantage and the return read from a
planted prediction."""

import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos import analysis

pytestmark = pytest.mark.fast


def test_binned_means_split_sorted_points_into_equal_count_bins():
    x = np.array([3.0, 0.0, 5.0, 1.0, 4.0, 2.0])
    xm, ym = analysis.binned_means(x, 10 * x, bins=3)  # bins {0, 1}, {2, 3}, {4, 5}
    np.testing.assert_allclose(xm, [0.5, 2.5, 4.5])
    np.testing.assert_allclose(ym, [5.0, 25.0, 45.0])
    # 7 points in 3 bins: sizes 3, 2, 2 -> {0, 1, 2}, {3, 4}, {5, 6}; y = x^2
    x = np.array([6.0, 2.0, 0.0, 4.0, 1.0, 5.0, 3.0])
    xm, ym = analysis.binned_means(x, x**2, bins=3)
    np.testing.assert_allclose(xm, [1.0, 3.5, 5.5])
    np.testing.assert_allclose(ym, [5 / 3, 12.5, 30.5])
    xm, ym = analysis.binned_means(x[:2], x[:2], bins=10)  # fewer points than bins
    np.testing.assert_allclose(xm, [2.0, 6.0])


def test_binned_means_refuses_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="one non-zero size"):
        analysis.binned_means(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="one non-zero size"):
        analysis.binned_means(np.zeros(0), np.zeros(0))


def test_correlation_by_hand_and_nan_when_constant():
    # deviations a: -1, 0, 1; b: -7/3, -1/3, 8/3 -> r = 5 / sqrt(2 * 114/9)
    assert analysis.correlation([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]) == pytest.approx(5 / np.sqrt(228 / 9))
    assert np.isnan(analysis.correlation([1.0, 1.0, 1.0], [2.0, 4.0, 7.0]))


def test_heldout_r2_is_one_on_an_exactly_linear_target_with_an_intercept():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 5))
    target = features @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 3.0
    fit = np.arange(400) < 200
    held = analysis.heldout_r2(features, target, fit)
    assert held.r2 == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(held.predicted, target[200:], atol=1e-9)
    np.testing.assert_allclose(held.actual, target[200:])


def test_heldout_r2_is_near_zero_on_independent_noise():
    rng = np.random.default_rng(1)
    features = rng.dirichlet(np.ones(8), size=4000)  # probabilities, as y: collinear with the intercept
    target = rng.normal(size=4000)
    held = analysis.heldout_r2(features, target, np.arange(4000) % 2 == 0)
    assert abs(held.r2) < 0.02


def test_heldout_r2_scores_the_points_it_did_not_fit():
    """9 fitted points and 9 parameters: the fit is exact in-sample (R^2 = 1 there), not held out."""
    rng = np.random.default_rng(2)
    features, target = rng.normal(size=(500, 8)), rng.normal(size=500)
    held = analysis.heldout_r2(features, target, np.arange(500) < 9)
    assert held.r2 < 0.0 and held.predicted.shape == (491,)
    with pytest.raises(ValueError, match="both sides"):
        analysis.heldout_r2(features, target, np.ones(500, bool))


def test_monte_carlo_return_stops_at_the_episode_end_and_marks_the_cut_steps():
    reward = jnp.array([[1.0], [2.0], [3.0], [4.0], [5.0]])
    done = jnp.array([[0.0], [1.0], [0.0], [0.0], [0.0]])
    ret, complete = analysis.monte_carlo_return(reward, done, gamma=0.5)
    # episode 1: G1 = 2, G0 = 1 + 0.5 * 2; episode 2 is cut by the batch end: G4 = 5, G3 = 4 + 2.5,
    # G2 = 3 + 0.5 * 6.5 (no Monte-Carlo returns: not complete)
    np.testing.assert_allclose(np.asarray(ret)[:, 0], [2.0, 2.0, 6.25, 6.5, 5.0])
    np.testing.assert_array_equal(np.asarray(complete)[:, 0], [True, True, False, False, False])


def test_half_split_by_env_or_by_time():
    by_env = analysis.half_split((3, 4))
    np.testing.assert_array_equal(by_env[0], [True, True, False, False])
    assert by_env.all(axis=0).sum() == 2
    np.testing.assert_array_equal(analysis.half_split((4, 1))[:, 0], [True, True, False, False])


def test_update_points():
    assert analysis.update_points(250, (0.25, 0.5, 1.0)) == [63, 125, 250]
    assert analysis.update_points(2, (0.25, 0.5, 1.0)) == [1, 2]
    with pytest.raises(ValueError, match="fractions"):
        analysis.update_points(10, (0.5, 1.5))


def test_heldout_r2_ignores_directions_the_fitted_points_barely_vary_along():
    """Column 2 varies by 1e-12 on the fitted points and by 1 on the held-out ones: with every
    singular value kept, its weight (~1e12 x the noise it happens to fit) would ruin the held-out
    fit; below RCOND it counts as collinear and the fit is column 1's exact one."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    tiny = np.where(np.arange(200) < 100, 1e-12 * rng.normal(size=200), rng.normal(size=200))
    held = analysis.heldout_r2(
        np.stack([x, tiny], axis=1), 2.0 * x + 1e-9 * rng.normal(size=200), np.arange(200) < 100
    )
    assert held.r2 == pytest.approx(1.0, abs=1e-6)


def test_top_components_projects_on_the_directions_of_largest_spread():
    # fitted points spread 2 along e1 and 0.2 along e2 (mean 0): the first direction is e1
    features = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 0.2], [0.0, -0.2], [5.0, 7.0]])
    fit = np.array([True, True, True, True, False])
    top = analysis.top_components(features, fit, 1)
    np.testing.assert_allclose(np.abs(top[:, 0]), [2.0, 2.0, 0.0, 0.0, 5.0], atol=1e-12)
    assert analysis.top_components(features, fit, 5).shape == (5, 2)  # at most K directions


def test_return_fit_reads_a_planted_return_wide_and_narrow():
    """The return is the entry along which the prediction varies most: both read-outs recover it.
    Planted along a direction of tiny spread instead, only the wide read-out finds it."""
    rng = np.random.default_rng(4)
    complete = np.ones((400, 4), bool)
    complete[-3:] = False  # steps cut by the batch end are left out
    big, small = rng.normal(size=(400, 4)), 1e-3 * rng.normal(size=(400, 4))
    features = np.stack([big, small, 1e-4 * rng.normal(size=(400, 4))], axis=-1)  # [S, N, 3]
    on_big = analysis.return_fit(features, 3.0 * big, complete, components=1)
    assert on_big.r2 == pytest.approx(1.0, abs=1e-9) and on_big.steps == 397 * 4
    assert analysis.return_fit(features, small, complete).r2 == pytest.approx(1.0, abs=1e-6)
    assert abs(analysis.return_fit(features, small, complete, components=1).r2) < 0.05
    none = analysis.return_fit(features, big, np.zeros((400, 4), bool))
    assert np.isnan(none.r2) and none.curve is None


def test_follow_stats_of_a_target_proportional_to_the_advantage():
    advantage = np.array([[-2.0, -1.0], [0.0, 1.0], [2.0, 3.0]])
    follow = analysis.follow_stats(0.5 * advantage, advantage, bins=3)
    assert follow.correlation == pytest.approx(1.0) and follow.scale == pytest.approx(0.5)
    np.testing.assert_allclose(follow.curve[0], [-1.5, 0.5, 2.5])  # bins {-2, -1}, {0, 1}, {2, 3}
    np.testing.assert_allclose(follow.curve[1], [-0.75, 0.25, 1.25])
    assert np.isnan(analysis.follow_stats(advantage, np.ones((3, 2))).scale)
