"""PPO inner loop: determinism, vmapping, compile-once, equivalence of LPO(ppo_init) and PPO-clip."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos.envs import Task
from inner_algos.ppo import PPOConfig, gae, make_ppo
from inner_algos.rules import make_rule

METRICS = {
    "episode_return",
    "episode_length",
    "num_episodes",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "ratio_mean",
    "ratio_std",
    "grad_norm",
    "learning_rate",
}


def test_same_key_same_numbers_and_lpo_init_equals_ppo_clip(tiny_task, tiny_ppo):
    ppo = make_ppo(tiny_ppo, tiny_task, make_rule("ppo_clip"))
    lpo_rule = make_rule("lpo", ppo_init=True)
    lpo = make_ppo(tiny_ppo, tiny_task, lpo_rule)
    key = jax.random.PRNGKey(3)
    _, m1 = jax.jit(ppo.train)({}, key)
    _, m2 = jax.jit(ppo.train)({}, key)
    _, m3 = jax.jit(lpo.train)(lpo_rule.init(jax.random.PRNGKey(9)), key)
    assert METRICS <= set(m1)
    assert m1["policy_loss"].shape == (tiny_ppo.num_updates,)
    for name in m1:
        np.testing.assert_array_equal(m1[name], m2[name], err_msg=name)
    for name in ("policy_loss", "value_loss", "approx_kl", "grad_norm"):
        np.testing.assert_allclose(m1[name], m3[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert np.all(np.isfinite(m1["policy_loss"]))


def test_vmap_over_keys_and_meta_params_compiles_once(tiny_task, tiny_ppo):
    rule = make_rule("lpo")
    algo = make_ppo(tiny_ppo, tiny_task, rule)
    traces = []

    def train(meta, key):
        traces.append(1)  # runs only while tracing
        _, metrics = algo.train(meta, key)
        return metrics["policy_loss"][-1]

    metas = jax.vmap(rule.init)(jax.random.split(jax.random.PRNGKey(0), 2))
    metas = jax.tree.map(lambda x: x.at[1].add(0.3), metas)  # the second meta-params differ
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    grid = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    out1 = grid(metas, keys)
    out2 = grid(jax.tree.map(lambda x: x * 1.1, metas), jax.random.split(jax.random.PRNGKey(2), 3))
    assert out1.shape == out2.shape == (2, 3)
    assert len(traces) == 1
    assert not np.allclose(out1[0], out1[1])  # different meta-params -> different runs


def test_evaluate_runs_full_episodes(tiny_task, tiny_ppo):
    algo = make_ppo(tiny_ppo, tiny_task, make_rule("ppo_clip"))
    state = algo.init({}, jax.random.PRNGKey(0))
    ret, length = jax.jit(algo.evaluate)(state, jax.random.PRNGKey(1))
    # inverted_pendulum pays 1 per step alive, so return equals episode length
    assert 0 < float(length) <= tiny_task.episode_length
    np.testing.assert_allclose(ret, length)


@pytest.mark.fast
def test_gae_matches_a_hand_computed_example():
    """5 steps, gamma 0.9, lambda 0.5; the episode terminates at t = 1 (no bootstrap, trace cut)
    and is cut by the time limit at t = 3 (TD error zeroed, trace cut, as brax's PPO)."""
    rewards = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])[:, None]
    values = jnp.array([0.5, 1.0, 1.5, 2.0, 2.5])[:, None]
    term = jnp.array([0.0, 1.0, 0.0, 0.0, 0.0])[:, None]
    trunc = jnp.array([0.0, 0.0, 0.0, 1.0, 0.0])[:, None]
    adv, target = gae(rewards, values, jnp.array([3.0]), term, trunc, gamma=0.9, lam=0.5)
    # t=4: 5 + 0.9*3 - 2.5 = 5.2; t=3: truncated -> 0; t=2: 3 + 0.9*2 - 1.5 = 3.3 (+ 0.45*0);
    # t=1: terminal, 2 - 1 = 1; t=0: 1 + 0.9*1 - 0.5 = 1.4, + 0.45*1 = 1.85
    np.testing.assert_allclose(adv[:, 0], [1.85, 1.0, 3.3, 0.0, 5.2], rtol=1e-6)
    np.testing.assert_allclose(target[:, 0], [2.35, 2.0, 4.8, 2.0, 7.7], rtol=1e-6)


@pytest.mark.fast
@pytest.mark.parametrize(
    "change, field",
    [
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"num_minibatches": 3}, "num_minibatches"),
        ({"gamma": 1.5}, "gamma"),
        ({"num_envs": 0}, "num_envs"),
        ({"activation": "sigmoid"}, "activation"),
    ],
)
def test_bad_config_names_the_field(change, field):
    with pytest.raises(ValueError, match=f"ppo.{field}"):
        dataclasses.replace(PPOConfig(num_envs=16, rollout_length=8), **change)


@pytest.mark.fast
def test_unknown_environment_and_backend_list_valid_names():
    with pytest.raises(ValueError, match="valid names: .*hopper"):
        Task(env_name="cartpole")
    with pytest.raises(ValueError, match="valid backends: spring"):
        Task(backend="mujoco")
