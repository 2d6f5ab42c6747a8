"""The PPO meta-gradient through K = 2 inner updates against central finite differences.

AD differentiates the meta-loss after two PPO updates with respect to hyperparameter meta-params
while every rollout is data (`make_ppo` acts with stop_gradient(params)). Finite differences see
that same function only if the rollouts do not move with the meta-params either, so here each
rollout's acting policy is frozen at the unperturbed trajectory's (the one stop_gradient in
`inner_algos.ppo.acting` is swapped for a lookup of those params). Everything runs in float64.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import inner_algos.ppo.acting as ppo_acting
from inner_algos.envs import Task
from inner_algos.ppo import make_ppo
from inner_algos.rules import make_rule
from tests.support.builders import tiny_ppo_config

CFG = tiny_ppo_config(8, num_updates=2, eval_envs=1, max_grad_norm=100.0)
RULE = make_rule(
    "hyperparams",
    learn=["gamma", "gae_lambda", "ent_coef", "learning_rate"],
    learning_rate=3e-3,
    ent_coef=1e-2,
)


def _float64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


@pytest.mark.slow
def test_ppo_meta_gradient_through_two_updates_matches_finite_differences(monkeypatch):
    with jax.enable_x64(True):
        algo = make_ppo(CFG, Task(episode_length=50), RULE)
        theta0, unravel = ravel_pytree(_float64(RULE.init(None)))
        state0 = _float64(algo.init({}, jax.random.PRNGKey(0)))
        loss_key = jax.random.PRNGKey(1)

        def meta_loss(theta):
            meta = unravel(theta)
            state1 = algo.step(meta, state0)[0]
            state2 = algo.step(meta, state1)[0]
            return algo.rollout_loss(meta, state2, loss_key)[0], (state1.params, state2.params)

        (_, (params1, params2)), grad = jax.jit(jax.value_and_grad(meta_loss, has_aux=True))(theta0)
        grad = np.asarray(grad)
        acting = [state0.params, params1, params2]  # the rollouts' acting params at theta0

        def frozen_loss(theta, acting):
            queue = list(acting)  # consumed in trace order: rollout 1, rollout 2, meta-loss rollout
            lax = types.SimpleNamespace(
                **{n: getattr(jax.lax, n) for n in dir(jax.lax) if not n.startswith("_")}
            )
            lax.stop_gradient = lambda params: queue.pop(0)
            namespace = {n: getattr(jax, n) for n in dir(jax) if not n.startswith("_")}
            monkeypatch.setattr(ppo_acting, "jax", types.SimpleNamespace(**{**namespace, "lax": lax}))
            try:
                return meta_loss(theta)[0]
            finally:
                monkeypatch.setattr(ppo_acting, "jax", jax)

        loss = jax.jit(frozen_loss)
        h = 1e-5
        fd = np.array(
            [
                (loss(theta0 + h * e, acting) - loss(theta0 - h * e, acting)) / (2 * h)
                for e in np.eye(theta0.size)
            ]
        )
    assert np.all(np.abs(grad) > 1e-8), grad  # every meta-parameter really reaches the loss
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-9)  # measured: agree to 2e-6
