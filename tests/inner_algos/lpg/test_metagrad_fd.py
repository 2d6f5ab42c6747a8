"""The meta-gradient of LPG's regularised meta-loss through K = 2 agent updates against central
finite differences, in float64 on a tiny grid world.

AD differentiates the meta-loss with every rollout as data (rollouts act with
`update.acting_params` = stop_gradient). Finite differences see that same function only if the
rollouts do not move with the meta-params either, so for them each rollout acts with the params
of the unperturbed run (`acting_params` swapped for a lookup, in trace order). The two steps are
unrolled here (as `meta_loss`'s scan, whose value is checked to be the same) so that the lookup
sees each rollout once.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import inner_algos.lpg.update as lpg_update
from inner_algos.envs import Task
from inner_algos.lpg import LearnedTargets, LPGConfig, MetaLossCoefs, make_lpg, meta_loss
from inner_algos.lpg.meta_loss import regularised

CONFIG = LPGConfig(
    num_envs=2, rollout_length=5, num_updates=10, y_size=3, learning_rate=3.0, critic_learning_rate=1.0,
    max_grad_norm=1e6,
)  # fmt: skip
RULE = LearnedTargets(y_size=3, embed_width=4, hidden=5, lifetime_inputs=True, init_scale=1.0)
COEFS = MetaLossCoefs(policy_entropy=0.3, y_entropy=0.2, pi_hat_l2=0.1, y_hat_l2=0.4)  # all terms visible


def _f64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def test_meta_gradient_through_two_updates_matches_finite_differences(monkeypatch):
    with jax.enable_x64(True):
        algo = make_lpg(CONFIG, Task(source="gridworld", env_name="sparse"), RULE)
        theta0, unravel = ravel_pytree(_f64(RULE.init(jax.random.PRNGKey(0))))
        state0 = algo.init({}, jax.random.PRNGKey(1))
        critic = jax.tree.map(
            lambda x: jax.random.normal(jax.random.PRNGKey(2), x.shape), state0.params["critic"]
        )
        state0 = state0.replace(
            params=_f64({**state0.params, "critic": critic}), opt_state=_f64(state0.opt_state)
        )
        key = jax.random.PRNGKey(3)

        def unrolled(theta):
            meta = unravel(theta)
            state1, m1 = algo.step(meta, state0)
            state2, m2 = algo.step(meta, state1)
            pg, _ = algo.rollout_loss(meta, state2, key)
            metrics = {k: jnp.stack([m1[k], m2[k]]) for k in m1}
            return regularised(pg, metrics, COEFS), (state1.params["agent"], state2.params["agent"])

        (value, (agent1, agent2)), grad = jax.jit(jax.value_and_grad(unrolled, has_aux=True))(theta0)
        scanned = jax.jit(lambda t: meta_loss(algo, unravel(t), state0, key, 2, COEFS)[0])(theta0)
        np.testing.assert_allclose(float(scanned), float(value), rtol=1e-12)

        acting = [state0.params["agent"], agent1, agent2]  # what each rollout acted with at theta0

        def frozen(theta):
            queue = list(acting)
            monkeypatch.setattr(lpg_update, "acting_params", lambda params: queue.pop(0))
            try:
                return unrolled(theta)[0]
            finally:
                monkeypatch.undo()

        loss = jax.jit(frozen)
        h = 1e-5
        directions = np.random.default_rng(0).normal(size=(3, theta0.size))
        for v in directions / np.linalg.norm(directions, axis=1, keepdims=True):
            fd = (loss(theta0 + h * v) - loss(theta0 - h * v)) / (2 * h)
            np.testing.assert_allclose(float(grad @ v), float(fd), rtol=1e-6, atol=1e-10)
    blocks = unravel(grad)
    for name in ("embed", "gru", "pi_head", "y_head"):  # every part of the rule reaches the meta-loss
        assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(blocks[name])) > 1e-8, name
