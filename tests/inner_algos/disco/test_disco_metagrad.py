"""The DiscoRL agent's meta-gradient (`rollout_loss` and `meta_regulariser`, what `metagrad`
differentiates) through K = 2 updates against central finite differences, in float64 on a tiny grid
world; and `metagrad` accepting inner algorithm "disco".

AD differentiates the meta-loss with what `update.as_data` marks as data held constant (the params
each rollout acts with, the agent's and target network's outputs the rule reads, Adam's second
moment). Finite differences see that same function only if those do not move with the meta-params
either, so for them `as_data` replays the values it took at the unperturbed meta-params (recorded in
trace order). The aux-policy and value terms are switched off: their targets are the agent's own
outputs under stop_gradient inside its loss (semi-gradient targets, as in the harness), whose
dependence on the params no order of AD sees; finite differences would. max_abs_update is large:
Adam's first step is +-1 less a hair, which a perturbation would push across a clip at 1.

With the agent's loss taking the targets as data (`agent_loss(..., backprop=False)` in `learn`) the
test fails: AD then gives 1.6e-4 where finite differences give 13.1.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import inner_algos.disco.update as disco_update
from discovery.meta_opt import validate_options
from inner_algos.disco import DiscoConfig, DiscoRule, MetaNetSettings
from inner_algos.disco.meta_loss import REGULARISED, MetaLossCoefs, regulariser
from inner_algos.envs import Task
from inner_algos.registry import make_inner_algo
from inner_algos.rules import make_rule
from inner_algos.rules.disco import DiscoHyperparams
from meta_objectives import MetaObjective

CONFIG = DiscoConfig(
    num_envs=2, rollout_length=4, num_updates=10, torso=(8,), model_lstm_size=4, model_head_hiddens=(4,),
    learning_rate=0.1, max_abs_update=100.0, eval_envs=1,
)  # fmt: skip
NET = MetaNetSettings(prediction_size=4, hidden_size=4, lifetime_hidden_size=4)
RULE = DiscoRule(
    net=NET, hyperparams=DiscoHyperparams(aux_policy_cost=0.0, value_cost=0.0), num_bins=11, max_abs_value=5.0
)
COEFS = MetaLossCoefs(entropy=0.3, prediction_entropy=0.2, output_l2=0.1, target_kl=0.4)  # all visible
TASK = Task(source="gridworld", env_name="sparse", episode_length=8)


def _f64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _meta_loss(parts, meta, state0, key):
    """The meta-loss `[]` after two updates from state0: the fresh rollout's terms plus the
    regulariser of the two updates' metrics (COEFS)."""
    state1, m1 = disco_update.update_step(parts, meta, state0)
    state2, m2 = disco_update.update_step(parts, meta, state1)
    held_out, _ = disco_update.rollout_loss(parts, meta, state2, key, COEFS)
    metrics = {k: jnp.stack([m1[k], m2[k]]) for k in REGULARISED}
    return held_out + regulariser(metrics, COEFS)


@pytest.mark.slow  # 1-3 min under load (two float64 compiles of two updates and their gradient)
def test_meta_gradient_through_two_updates_matches_finite_differences(monkeypatch):
    with jax.enable_x64(True):
        parts = disco_update.make_parts(CONFIG, TASK, RULE)
        meta0 = _f64(RULE.init(jax.random.PRNGKey(0)))
        theta0, unravel = ravel_pytree(meta0)
        state0 = disco_update.init_state(parts, meta0, jax.random.PRNGKey(1))
        floats = ("params", "target_params", "opt_state", "meta_state")
        state0 = state0.replace(**{f: _f64(getattr(state0, f)) for f in floats})
        key = jax.random.PRNGKey(3)

        recorded = []

        def record(x):
            recorded.append(x)
            return jax.lax.stop_gradient(x)

        def loss(theta):
            return _meta_loss(parts, unravel(theta), state0, key), recorded

        monkeypatch.setattr(disco_update, "as_data", record)
        (value, held), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(theta0)
        monkeypatch.undo()

        def frozen(theta):
            queue = list(held)
            monkeypatch.setattr(disco_update, "as_data", lambda x: queue.pop(0))
            try:
                return _meta_loss(parts, unravel(theta), state0, key)
            finally:
                monkeypatch.undo()

        frozen_loss = jax.jit(frozen)
        np.testing.assert_allclose(float(frozen_loss(theta0)), float(value), rtol=1e-12)
        h = 1e-6  # the third derivative is large (Adam's small denominators): FD's error ~ h^2
        directions = np.random.default_rng(0).normal(size=(3, theta0.size))
        for v in directions / np.linalg.norm(directions, axis=1, keepdims=True):
            fd = (frozen_loss(theta0 + h * v) - frozen_loss(theta0 - h * v)) / (2 * h)
            np.testing.assert_allclose(float(grad @ v), float(fd), rtol=1e-6, atol=1e-10)
    blocks = unravel(grad)
    for name in ("trajectory", "lifetime"):  # the lifetime LSTM reaches the loss through update 2
        assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(blocks[name])) > 1e-8, name


@pytest.mark.fast
def test_the_registered_regulariser_is_the_documented_sum():
    """What metagrad adds to rollout_loss's policy_loss: the module docstring's sum over the K
    updates' metrics with the colab's coefficients (1e-3 on the targets' squared means, 1e-2 on
    the target KL); none for the actor-critic baseline, which has no targets."""
    algo = make_inner_algo("disco", CONFIG, TASK, RULE)
    metrics = {
        "pi_hat_mean": jnp.array([0.5, -1.0]),
        "y_hat_mean": jnp.array([2.0, 0.0]),
        "z_hat_mean": jnp.array([0.0, 3.0]),
        "target_kl": jnp.array([0.2, 0.4]),
    }
    expected = 1e-3 * ((0.25 + 1.0) / 2 + 4.0 / 2 + 9.0 / 2) + 1e-2 * 0.3
    np.testing.assert_allclose(float(algo.meta_regulariser(metrics)), expected, rtol=1e-6)
    baseline = make_inner_algo("disco", CONFIG, TASK, make_rule("disco_ac", prediction_size=4, num_bins=11))
    assert baseline.meta_regulariser is None and baseline.rollout_loss is not None


@pytest.mark.fast
def test_metagrad_accepts_the_disco_agent():
    from inner_algos.disco import example

    config, _, rule = example()
    validate_options("metagrad", {"num_runs": 1, "unroll_length": 2}, rule, config, MetaObjective())
