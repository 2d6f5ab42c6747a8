"""Reward normalisation by the running std of the discounted return: statistics against a hand
computation, scale invariance, the zero-reward limit, and its place in PPO (inner state, unscaled
logs, persistence across segments, reset with the lifetime)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.meta_opt.truncated import TruncationSchedule, make_runs
from inner_algos.envs import Task
from inner_algos.ppo import make_ppo
from inner_algos.reward_norm import REWARD_CLIP, VAR_EPS, ReturnStats
from inner_algos.rules import make_rule

# Two envs, two rollouts of 4 steps, gamma = 0.5; G_t = r_t + 0.5 G_{t-1}, reset after a done.
REWARDS = np.array([[1, 0], [2, 0], [4, 3], [8, -1], [1, 2], [1, 0], [0, 0], [2, 4]], np.float32)
DONES = np.array([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0], [0, 0], [1, 0], [0, 0]], np.float32)
# Worked by hand: env 0: 1, 0.5+2, (new episode) 4, 2+8, 5+1, 3+1, 2+0, (new episode) 2
#                 env 1: 0, 0, 3, 1.5-1, (new episode) 2, 1, 0.5, 0.25+4
RETURNS = np.array([[1, 0], [2.5, 0], [4, 3], [10, 0.5], [6, 2], [4, 1], [2, 0.5], [2, 4.25]])


@pytest.mark.fast
def test_statistics_equal_the_discounted_return_variance_of_a_hand_made_sequence():
    stats = ReturnStats.create(2).update(jnp.asarray(REWARDS[:4]), jnp.asarray(DONES[:4]), 0.5)
    np.testing.assert_allclose(stats.returns, [10.0, 0.0])  # env 1's episode ended at step 3
    np.testing.assert_allclose(stats.stats.var, [np.var(RETURNS[:4])], rtol=1e-6)

    stats = stats.update(jnp.asarray(REWARDS[4:]), jnp.asarray(DONES[4:]), 0.5)
    assert float(stats.stats.count) == 16
    np.testing.assert_allclose(stats.stats.mean, [np.mean(RETURNS)], rtol=1e-6)
    np.testing.assert_allclose(stats.stats.var, [np.var(RETURNS)], rtol=1e-6)
    np.testing.assert_allclose(
        stats.normalize(jnp.asarray(REWARDS)), REWARDS / np.sqrt(np.var(RETURNS)), rtol=1e-5
    )


def _stream(key, scale, rollouts=3, steps=32, envs=16):
    k_r, k_d = jax.random.split(key)
    rewards = scale * (1.0 + jax.random.normal(k_r, (rollouts, steps, envs)))
    dones = (jax.random.uniform(k_d, (rollouts, steps, envs)) < 0.05).astype(jnp.float32)
    return rewards, dones


@pytest.mark.fast
def test_rewards_scaled_by_1000_give_the_same_normalized_rewards_after_warm_up():
    normalized = {}
    for scale in (1.0, 1000.0):
        rewards, dones = _stream(jax.random.PRNGKey(0), scale)
        stats, out = ReturnStats.create(16), []
        for r, d in zip(rewards, dones):
            stats = stats.update(r, d, 0.99)
            out.append(stats.normalize(r))
        normalized[scale] = np.asarray(out)
    # the first rollout is the warm-up: the statistics then hold its returns only
    np.testing.assert_allclose(normalized[1000.0], normalized[1.0], rtol=1e-5, atol=1e-6)
    assert 0.05 < np.std(normalized[1.0]) < 1.0  # discounted returns vary more than rewards


@pytest.mark.fast
def test_zero_rewards_stay_zero_and_a_lone_reward_is_clipped():
    stats = ReturnStats.create(4)
    zeros = jnp.zeros((64, 4))
    stats = stats.update(zeros, zeros, 0.99)
    assert np.all(np.asarray(stats.normalize(zeros)) == 0.0)
    # one return x among n = 256 has std x sqrt(255) / 256: x = 1 normalises to ~16, clipped to 10
    end = zeros.at[3, 1].set(1.0)
    out = np.asarray(ReturnStats.create(4).update(end, end, 0.99).normalize(end))
    assert out.max() == REWARD_CLIP and out.min() == 0.0
    # a tiny x = 1e-6 (std 6e-8) meets the variance floor: x / sqrt(VAR_EPS) = 0.01, not 16
    tiny = 1e-6 * end
    out = np.asarray(ReturnStats.create(4).update(tiny, end, 0.99).normalize(tiny))
    np.testing.assert_allclose(out.max(), 1e-6 / np.sqrt(VAR_EPS), rtol=1e-3)


def _one_update(config, task, key):
    algo = make_ppo(config, task, make_rule("ppo_clip"))
    return jax.jit(algo.step)({}, algo.init({}, key))


def test_ppo_learns_the_same_at_any_reward_scale_and_logs_unscaled_returns(tiny_ppo):
    task = Task(episode_length=8)  # every episode ends within the first rollout of 8 steps
    config = dataclasses.replace(tiny_ppo, normalize_rewards=True)
    key = jax.random.PRNGKey(3)
    s1, m1 = _one_update(config, task, key)
    s1000, m1000 = _one_update(config, dataclasses.replace(task, reward_scale=1000.0), key)
    assert float(m1["num_episodes"]) == 16
    assert float(m1["episode_return"]) == float(m1000["episode_return"])  # logged unscaled
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s1000.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(s1000.return_stats.stats.var, 1e6 * s1.return_stats.stats.var, rtol=1e-4)
    assert float(s1.return_stats.stats.count) == config.num_envs * config.rollout_length


def test_statistics_persist_across_segments_and_reset_with_the_lifetime(tiny_ppo, tiny_task):
    config = dataclasses.replace(tiny_ppo, normalize_rewards=True)
    algo = make_ppo(config, tiny_task, make_rule("ppo_clip"))
    init, advance = make_runs(algo, TruncationSchedule(length=2, stagger=False))
    runs = jax.vmap(init, in_axes=(None, 0))({}, jax.random.split(jax.random.PRNGKey(0), 3))
    segment = jax.jit(lambda r: advance({}, r, 1, shared=True)[0])
    per_update = config.num_envs * config.rollout_length
    counts = []
    for _ in range(3):  # lifetimes of 2 updates: the second segment ends them
        runs = segment(runs)
        counts.append(np.asarray(runs.inner.return_stats.stats.count))
    np.testing.assert_array_equal(counts, [[per_update] * 3, [0] * 3, [per_update] * 3])
    # inverted_pendulum pays 1 per step and no episode ends in a new lifetime's first 8 steps
    discounted = np.cumsum(0.99 ** np.arange(config.rollout_length))
    np.testing.assert_allclose(runs.inner.return_stats.stats.var[:, 0], np.var(discounted), rtol=1e-5)
