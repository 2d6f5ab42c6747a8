"""Meta-objectives: known answers on hand-made learning curves, NaN handling, ranking, validation."""

import jax.numpy as jnp
import numpy as np
import pytest

from meta_objectives import (
    MetaObjective,
    aggregate,
    curve_area,
    final_return,
    normalise,
    rank_last,
    score,
)

NAN = float("nan")
# one run, 4 updates: no episode, 1 episode of return 10, 3 episodes averaging 20, no episode
RETURNS = jnp.array([NAN, 10.0, 20.0, NAN])
EPISODES = jnp.array([0.0, 1.0, 3.0, 0.0])


def test_final_return_weights_updates_by_episode_count():
    assert float(final_return(RETURNS, EPISODES, 3)) == pytest.approx((10 * 1 + 20 * 3) / 4)
    assert float(final_return(RETURNS, EPISODES, 2)) == pytest.approx(20.0)


def test_final_return_is_nan_when_no_episode_ended_in_the_window():
    assert np.isnan(final_return(RETURNS, EPISODES, 1))


def test_curve_area_averages_updates_that_ended_an_episode():
    assert float(curve_area(RETURNS, EPISODES)) == pytest.approx(15.0)
    assert np.isnan(curve_area(jnp.full(3, NAN), jnp.zeros(3)))


def test_scores_keep_leading_axes():
    returns = jnp.stack([RETURNS, RETURNS + 1.0])  # [2 runs, 4 updates]
    episodes = jnp.stack([EPISODES, EPISODES])
    np.testing.assert_allclose(final_return(returns, episodes, 3), [17.5, 18.5])
    np.testing.assert_allclose(curve_area(returns, episodes), [15.0, 16.0])


def test_score_dispatches_on_kind():
    metrics = {"episode_return": RETURNS, "num_episodes": EPISODES}
    assert float(score(MetaObjective("final_return", last_k=3), metrics, None)) == pytest.approx(17.5)
    assert float(score(MetaObjective("curve_area"), metrics, None)) == pytest.approx(15.0)
    assert float(score(MetaObjective("eval_return"), metrics, jnp.asarray(42.0))) == 42.0


def test_normalise_is_relative_improvement_over_the_baseline():
    np.testing.assert_allclose(normalise(jnp.array([150.0, 100.0]), 100.0), [0.5, 0.0])
    np.testing.assert_allclose(normalise(jnp.array([-50.0]), -100.0), [0.5])  # negative returns
    np.testing.assert_allclose(normalise(jnp.array([3.0]), None), [3.0])


def test_aggregate_means_over_seeds_then_tasks_and_propagates_nan():
    scores = jnp.array([
        [[1.0, 3.0], [10.0, 20.0]],  # member 0: task means 2 and 15 -> 8.5
        [[1.0, NAN], [10.0, 20.0]],  # member 1: one diverged seed
    ])
    out = aggregate(scores)
    assert float(out[0]) == pytest.approx(8.5)
    assert np.isnan(out[1])


def test_rank_last_sends_non_finite_to_the_bottom_and_counts_them():
    fitness, count = rank_last(jnp.array([1.0, NAN, jnp.inf, -2.0, -jnp.inf]))
    np.testing.assert_array_equal(fitness, [1.0, -jnp.inf, -jnp.inf, -2.0, -jnp.inf])
    assert int(count) == 3
    assert int(jnp.argmax(fitness)) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "median"}, "meta_objective.kind = 'median'"),
    ({"normalise": "zscore"}, "valid: none, baseline"),
    ({"last_k": 0}, "meta_objective.last_k = 0"),
    ({"baselines": (1.0, 0.0)}, "may not contain 0"),
    ({"baseline_rule": "ppo"}, "baseline_rule = 'ppo' is unknown"),
])
def test_bad_objective_names_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MetaObjective(**kwargs)
