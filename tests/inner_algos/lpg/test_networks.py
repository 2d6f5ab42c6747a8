"""The meta-network's backward recurrence with episode resets, and the whole meta-network, against
plain numpy loops (`tests.support.lpg_reference`); the tabular agent as a table lookup."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos.lpg import LearnedTargets
from inner_algos.lpg.networks import Agent
from inner_algos.rules.targets import TargetInputs, backward_gru, meta_network
from tests.support import lpg_reference

pytestmark = pytest.mark.fast

T, N, Y = 6, 3, 4
DONE = np.zeros((T, N))
DONE[1, 0] = DONE[4, 0] = 1.0  # env 0: episodes end at t = 1 and t = 4
DONE[5, 1] = 1.0  # env 1: at the last step; env 2: never


def _params(lifetime_inputs: bool):
    rule = LearnedTargets(y_size=Y, embed_width=5, hidden=7, lifetime_inputs=lifetime_inputs, init_scale=1.0)
    return jax.tree.map(lambda x: np.asarray(x, np.float64), rule.init(jax.random.PRNGKey(3)))


def test_backward_gru_resets_at_episode_ends_as_a_python_loop():
    params = _params(False)
    x = np.random.default_rng(0).normal(size=(T, N, 6))
    with jax.enable_x64(True):
        got = np.asarray(backward_gru(params["gru"], jnp.asarray(x), jnp.asarray(DONE)))
    want = lpg_reference.backward_gru(params["gru"], x, DONE)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # the reset really cuts: t = 1 of env 0 sees nothing of t >= 2, so changing x there leaves it
    x2 = x.copy()
    x2[2:, 0] += 1.0
    again = lpg_reference.backward_gru(params["gru"], x2, DONE)
    np.testing.assert_array_equal(again[:2, 0], want[:2, 0])
    assert not np.allclose(again[2, 0], want[2, 0])


@pytest.mark.parametrize("lifetime_inputs", [False, True])
def test_meta_network_matches_numpy(lifetime_inputs):
    params = _params(lifetime_inputs)
    rng = np.random.default_rng(1)
    reward = rng.choice([-1.0, 0.0, 1.0], size=(T, N))
    pi_taken = rng.uniform(0.05, 1.0, size=(T, N))
    y = lpg_reference.softmax(rng.normal(size=(T, N, Y)))
    y_next = lpg_reference.softmax(rng.normal(size=(T, N, Y)))
    progress, log_lifetime = 0.25, np.log(40.0)
    with jax.enable_x64(True):
        inputs = TargetInputs(
            *(jnp.asarray(a) for a in (reward, DONE, 0.9, pi_taken, y, y_next, np.zeros((T, N)))),
            progress=jnp.asarray(progress),
            log_lifetime=jnp.asarray(log_lifetime),
        )
        pi_hat, y_hat = meta_network(params, inputs, lifetime_inputs)
    extra = (progress, log_lifetime) if lifetime_inputs else (None, None)
    want_pi, want_y = lpg_reference.meta_network(params, reward, DONE, 0.9, pi_taken, y, y_next, *extra)
    np.testing.assert_allclose(np.asarray(pi_hat), want_pi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(y_hat), want_y, rtol=1e-10, atol=1e-12)


def test_initial_rule_is_small():
    """init_scale 0.01: pi_hat near 0 and y_hat near uniform, so the first updates barely move the agent."""
    rule = LearnedTargets(y_size=8)
    inputs = TargetInputs(
        jnp.ones((T, N)), jnp.asarray(DONE), 0.99, jnp.full((T, N), 0.5),
        jnp.full((T, N, 8), 1 / 8), jnp.full((T, N, 8), 1 / 8), jnp.zeros((T, N)), 0.0, 0.0,
    )  # fmt: skip
    targets = rule.apply(rule.init(jax.random.PRNGKey(0)), inputs)
    assert float(jnp.abs(targets.pi_hat).max()) < 0.05
    assert float(jnp.abs(targets.y_hat - 1 / 8).max()) < 0.01


def test_tabular_agent_reads_its_tables():
    agent = Agent(num_actions=3, y_size=2, tabular=True)
    params = agent.init(jax.random.PRNGKey(0), jnp.zeros(5))
    assert not any(np.any(np.asarray(x)) for x in jax.tree.leaves(params))  # uniform start
    pi_table = np.arange(15.0).reshape(5, 3)
    y_table = -np.arange(10.0).reshape(5, 2)
    params = {"params": {"policy": {"kernel": pi_table}, "y": {"kernel": y_table}}}
    logits, y_logits = agent.apply(params, jax.nn.one_hot(jnp.array([4, 1]), 5))
    np.testing.assert_array_equal(np.asarray(logits), pi_table[[4, 1]])
    np.testing.assert_array_equal(np.asarray(y_logits), y_table[[4, 1]])
