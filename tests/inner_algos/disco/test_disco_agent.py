"""The DiscoRL agent as inner algorithm "disco": a few updates on a tiny grid world with Disco103,
with a fresh meta-network and with the actor-critic baseline; the agent's network has the heads
the rule reads, and the target network moves by the rule's coefficient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.zoo.disco import load_disco103
from inner_algos.disco import DiscoConfig, example
from inner_algos.disco.networks import DiscoAgentNet
from inner_algos.envs import Task
from inner_algos.registry import make_inner_algo
from inner_algos.rules import make_rule

TASK = Task(source="gridworld", env_name="sparse", episode_length=16)


def test_network_heads_have_the_rules_shapes():
    net = DiscoAgentNet(num_actions=3, prediction_size=600, num_bins=601, torso=(32, 32))
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((5,)))
    out = net.apply(params, jnp.zeros((7, 4, 5)))
    assert out.logits.shape == (7, 4, 3) and out.y.shape == (7, 4, 600)
    assert (
        out.z.shape == (7, 4, 3, 600) and out.q.shape == (7, 4, 3, 601) and out.aux_pi.shape == (7, 4, 3, 3)
    )
    # The colab's heads start small: a near-uniform policy.
    assert float(jnp.abs(out.logits).max()) < 0.5


def _run(config, rule, meta_params, updates=3):
    algo = make_inner_algo("disco", config, TASK, rule)
    state = algo.init(meta_params, jax.random.PRNGKey(1))
    step = jax.jit(algo.step)
    first = state
    for _ in range(updates):
        state, metrics = step(meta_params, state)
    return algo, first, state, metrics


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_disco103_trains_the_colab_agent_a_few_updates():
    rule, meta_params = load_disco103()
    config = DiscoConfig(num_envs=2, rollout_length=6, num_updates=3, torso=(64, 64), eval_envs=2)
    algo, first, state, metrics = _run(config, rule, meta_params)
    assert int(state.update) == 3
    for key in algo.loss_metrics:
        assert np.isfinite(metrics[key]), key
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), first.params, state.params)
    assert max(jax.tree.leaves(moved)) > 0.0
    # The lifetime LSTM has read three batches; the moving averages three.
    assert float(jnp.abs(state.meta_state.lstm.hidden).max()) > 0.0
    assert float(state.meta_state.adv_ema.decay_product) == pytest.approx(0.99**3, rel=1e-6)
    ret, length = jax.jit(algo.evaluate)(state, jax.random.PRNGKey(2))
    assert np.isfinite(ret) and 1 <= float(length) <= 16


def test_target_network_follows_the_params_it_acted_with():
    config, _, rule = example()
    algo = make_inner_algo("disco", config, TASK, rule)
    meta = rule.init(jax.random.PRNGKey(0))
    state = algo.init(meta, jax.random.PRNGKey(1))
    new, _ = jax.jit(algo.step)(meta, state)
    c = rule.hyperparams.target_params_coeff
    want = jax.tree.map(lambda t, p: c * t + (1 - c) * p, state.target_params, state.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), new.target_params, want)


def test_actor_critic_baseline_runs_in_the_same_agent():
    config, _, _ = example()
    rule = make_rule("disco_ac", num_bins=11, prediction_size=8, max_abs_value=5.0)
    algo, _, state, metrics = _run(config, rule, {})
    assert int(state.update) == 3 and np.isfinite(metrics["loss"])


def test_a_rule_of_another_family_is_refused():
    config, _, _ = example()
    with pytest.raises(ValueError, match="inner algorithm 'disco' has no slot"):
        make_inner_algo("disco", config, TASK, make_rule("lpg"))
