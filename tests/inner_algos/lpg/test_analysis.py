"""The statistics of LPG's analysis on hand-computed cases: equal-count binned means, Pearson's
correlation, the held-out R^2 of a linear fit, the bootstrap-free Monte-Carlo return with an
episode end inside the batch, the fit/held-out split and the lifetime points."""

import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos.lpg import analysis

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
