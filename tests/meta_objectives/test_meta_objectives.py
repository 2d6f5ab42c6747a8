"""Meta-objectives: known answers on hand-made learning curves, NaN handling, ranking, validation."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from discovery.meta_opt.truncated import TruncationSchedule, make_runs
from meta_objectives import (
    MetaObjective,
    aggregate,
    curve_area,
    final_return,
    normalize,
    penalize_diverged,
    rank_last,
    score,
    segment_losses,
    segment_scores,
    task_scale,
)

pytestmark = pytest.mark.fast  # pure functions: part of `python -m pytest -m fast`

NAN = float("nan")
# one run, 4 updates: no episode, 1 episode of return 10, 3 episodes averaging 20, no episode
RETURNS = jnp.array([NAN, 10.0, 20.0, NAN])
EPISODES = jnp.array([0.0, 1.0, 3.0, 0.0])


def test_scores_read_the_latest_ended_episodes_curve():
    # curve: [0 (nothing ended yet), 10, 20, 20 (latest ended episodes)]
    assert float(final_return(RETURNS, EPISODES, 3)) == pytest.approx(50 / 3)
    assert float(final_return(RETURNS, EPISODES, 2)) == pytest.approx(20.0)
    assert float(curve_area(RETURNS, EPISODES)) == pytest.approx(12.5)


def test_scores_exist_when_no_episode_ends_in_the_last_updates():
    """Time limits without terminations (brax halfcheetah): episodes end every 4th update only."""
    returns = jnp.array([NAN, NAN, NAN, -5.0, NAN, NAN, NAN, 7.0, NAN, NAN])
    episodes = jnp.array([0, 0, 0, 64, 0, 0, 0, 64, 0, 0.0])
    assert float(final_return(returns, episodes, 2)) == pytest.approx(7.0)
    assert float(curve_area(returns, episodes)) == pytest.approx((4 * -5.0 + 3 * 7.0) / 10)


def test_scores_are_nan_when_no_episode_ended_at_all():
    assert np.isnan(final_return(jnp.full(3, NAN), jnp.zeros(3), 2))
    assert np.isnan(curve_area(jnp.full(3, NAN), jnp.zeros(3)))


def test_scores_keep_leading_axes():
    returns = jnp.stack([RETURNS, RETURNS + 1.0])  # [2 runs, 4 updates]
    episodes = jnp.stack([EPISODES, EPISODES])
    np.testing.assert_allclose(final_return(returns, episodes, 3), [50 / 3, 53 / 3], rtol=1e-6)
    np.testing.assert_allclose(curve_area(returns, episodes), [12.5, 13.25])


def test_score_dispatches_on_kind():
    metrics = {"episode_return": RETURNS, "num_episodes": EPISODES}
    assert float(score(MetaObjective("final_return", last_k=3), metrics, None)) == pytest.approx(50 / 3)
    assert float(score(MetaObjective("curve_area"), metrics, None)) == pytest.approx(12.5)
    assert float(score(MetaObjective("eval_return"), metrics, jnp.asarray(42.0))) == 42.0


@struct.dataclass
class _ScriptedState:
    update: jax.Array
    lifetime: jax.Array
    key: jax.Array


class _ScriptedAlgo:
    """An inner algorithm whose update u reports episode_return[u] and num_episodes[u]."""

    def __init__(self, returns, episodes):
        self.returns, self.episodes = jnp.asarray(returns), jnp.asarray(episodes)

    def init(self, meta_params, key):
        return _ScriptedState(jnp.zeros((), jnp.int32), jnp.asarray(len(self.returns), jnp.int32), key)

    def step(self, meta_params, state):
        u = state.update
        metrics = {"episode_return": self.returns[u], "num_episodes": self.episodes[u]}
        return state.replace(update=u + 1), metrics


@pytest.mark.parametrize("kind", ["final_return", "curve_area"])
def test_truncated_losses_sum_to_the_whole_lifetime_score(kind):
    """PES / truncated ES losses over 3 segments of 3 updates = -(whole-lifetime ES score),
    updates with no ended episode included."""
    returns = [NAN, NAN, 4.0, NAN, NAN, -2.0, NAN, 9.0, NAN]
    episodes = [0, 0, 2, 0, 0, 5, 0, 1, 0.0]
    objective = MetaObjective(kind, last_k=4)
    expected = float(
        score(
            objective, {"episode_return": jnp.asarray(returns), "num_episodes": jnp.asarray(episodes)}, None
        )
    )
    init_one, advance = make_runs(
        _ScriptedAlgo(returns, episodes), TruncationSchedule("constant", len(returns), stagger=False)
    )
    runs = jax.vmap(init_one, in_axes=(None, 0))({}, jax.random.split(jax.random.PRNGKey(0), 1))
    total = 0.0
    for _ in range(3):
        runs, segment = advance({}, runs, 3, shared=True)
        total += float(jnp.sum(segment_losses(segment, kind, objective.last_k, 1.0)))
    assert total == pytest.approx(-expected, rel=1e-6)


def test_segment_scores_average_the_curve_per_run_and_tasks_scale_by_the_baseline():
    segment = SimpleNamespace(curve=jnp.array([[1.0, 4.0], [3.0, 8.0]]))  # [K = 2, N = 2]
    np.testing.assert_array_equal(segment_scores(segment), [2.0, 6.0])
    assert task_scale(None, 0) == 1.0
    assert float(task_scale(jnp.array([2.0, -4.0]), 1)) == 4.0  # |baseline|: negative returns too


def test_normalize_is_relative_improvement_over_the_baseline():
    np.testing.assert_allclose(normalize(jnp.array([150.0, 100.0]), 100.0), [0.5, 0.0])
    np.testing.assert_allclose(normalize(jnp.array([-50.0]), -100.0), [0.5])  # negative returns
    np.testing.assert_allclose(normalize(jnp.array([3.0]), None), [3.0])


def test_aggregate_means_over_seeds_then_tasks_and_propagates_nan():
    scores = jnp.array(
        [
            [[1.0, 3.0], [10.0, 20.0]],  # member 0: task means 2 and 15 -> 8.5
            [[1.0, NAN], [10.0, 20.0]],  # member 1: one diverged seed
        ]
    )
    out = aggregate(scores)
    assert float(out[0]) == pytest.approx(8.5)
    assert np.isnan(out[1])


def test_a_diverged_lifetime_scores_the_penalty_of_a_hand_computation():
    """3 members x 2 tasks x 2 seeds; member 1 diverged on task 0, seed 1 (its raw score is NaN)."""
    scores = jnp.array(
        [
            [[1.0, 3.0], [10.0, 20.0]],  # fitness 8.5
            [[1.0, NAN], [10.0, 20.0]],  # would be 8.5 on its three finished lifetimes
            [[-2.0, 0.0], [4.0, 6.0]],  # fitness 2, the worst that finished
        ]
    )
    diverged = jnp.zeros(scores.shape, bool).at[1, 0, 1].set(True)
    out = penalize_diverged(scores, diverged)
    # X_min = -2, X_max = 20, N = 4 lifetimes per member: P = -2 - 4 * (22 + max(1, 2)) = -98
    expected = np.asarray(scores).copy()
    expected[1, 0, 1] = -98.0
    np.testing.assert_array_equal(out, expected)
    fitness = aggregate(out)
    np.testing.assert_allclose(fitness, [8.5, ((1 - 98) / 2 + 15) / 2, 2.0], rtol=1e-6)
    assert float(fitness[1]) < float(fitness[2]) < float(fitness[0])  # below every finished member


def test_without_divergence_the_scores_and_fitness_are_unchanged_bit_for_bit():
    scores = jnp.array([[[1.0, 3.0], [10.0, 20.0]], [[0.1, 0.7], [-3.0, 1e4]]])
    out = penalize_diverged(scores, jnp.zeros(scores.shape, bool))
    np.testing.assert_array_equal(out, scores)
    np.testing.assert_array_equal(aggregate(out), aggregate(scores))
    assert float(aggregate(out)[0]) == 8.5  # mean over seeds, then tasks, as before


def test_members_rank_by_how_many_lifetimes_diverged_then_by_score():
    """One diverged seed of 4 ranks an otherwise-equal member below one with none, and above one
    with two; over random populations and scales (float32), fewer diverged lifetimes always rank
    higher, whatever the finished scores."""
    equal = jnp.tile(jnp.array([[[5.0, 6.0, 7.0, 8.0]]]), (3, 1, 1))  # [M=3, K=1, S=4]
    diverged = jnp.array([[[False] * 4], [[False, True, False, False]], [[True, True, False, False]]])
    fitness = aggregate(penalize_diverged(jnp.where(diverged, NAN, equal), diverged))
    assert float(fitness[0]) > float(fitness[1]) > float(fitness[2])
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 1e4):
        scores = rng.normal(size=(16, 3, 4)).astype(np.float32) * scale + rng.normal() * scale
        counts = rng.integers(0, 5, size=16)
        flags = np.zeros((16, 12), bool)
        for m, c in enumerate(counts):
            flags[m, rng.choice(12, c, replace=False)] = True
        flags = jnp.asarray(flags.reshape(16, 3, 4))
        fitness = np.asarray(aggregate(penalize_diverged(jnp.where(flags, NAN, scores), flags)))
        assert np.all(np.isfinite(fitness))
        for a in range(16):
            for b in range(16):
                if counts[a] < counts[b]:
                    assert fitness[a] > fitness[b], (scale, counts[a], counts[b])


def test_other_non_finite_scores_stay_and_all_diverged_keeps_nan():
    scores = jnp.array([[[1.0, NAN]], [[NAN, 2.0]]])  # member 0's NaN: no episode ended there
    diverged = jnp.array([[[False, False]], [[True, False]]])
    out = penalize_diverged(scores, diverged)
    assert np.isnan(out[0, 0, 1]) and np.isfinite(out[1, 0, 0])
    everything = penalize_diverged(jnp.full((2, 1, 2), NAN), jnp.ones((2, 1, 2), bool))
    assert np.all(np.isnan(everything))  # no finished lifetime to measure a loss against


def test_rank_last_sends_non_finite_to_the_bottom_and_counts_them():
    fitness, count = rank_last(jnp.array([1.0, NAN, jnp.inf, -2.0, -jnp.inf]))
    np.testing.assert_array_equal(fitness, [1.0, -jnp.inf, -jnp.inf, -2.0, -jnp.inf])
    assert int(count) == 3
    assert int(jnp.argmax(fitness)) == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "median"}, "meta_objective.kind = 'median'"),
        ({"normalize": "zscore"}, "valid: none, baseline"),
        ({"last_k": 0}, "meta_objective.last_k = 0"),
        ({"baselines": (1.0, 0.0)}, "may not contain 0"),
        ({"baseline_rule": "ppo"}, "baseline_rule = 'ppo' is unknown"),
    ],
)
def test_bad_objective_names_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MetaObjective(**kwargs)
