"""A jitted LPG lifetime on a tiny grid world: runs for both rules and both agents, compiles once
across seeds and meta-params, emits PPO's episode metrics; bad settings fail with clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos.envs import Task
from inner_algos.lpg import A2CTargets, LearnedTargets, LPGConfig, make_lpg
from inner_algos.rules import make_rule

SPARSE = Task(source="gridworld", env_name="sparse")
EPISODE_KEYS = {"episode_return", "episode_length", "num_episodes"}  # what meta_objectives read


@pytest.mark.parametrize(
    "agent, rule",
    [("tabular", LearnedTargets(y_size=4, hidden=8)), ("mlp", A2CTargets())],
    ids=["lpg", "a2c"],
)
def test_train_runs_and_compiles_once(agent, rule):
    adam = (
        {"optimizer": "adam", "learning_rate": 1e-3, "critic_learning_rate": 1e-3} if agent == "mlp" else {}
    )
    config = LPGConfig(
        num_envs=4, rollout_length=16, num_updates=4, y_size=4, agent=agent, hidden=(8,), eval_envs=2, **adam
    )
    algo = make_lpg(config, SPARSE, rule)
    traces = []

    def train(meta_params, key):
        traces.append(1)  # runs only while tracing
        return algo.train(meta_params, key)

    train = jax.jit(train)
    meta = rule.init(jax.random.PRNGKey(0))
    state, metrics = train(meta, jax.random.PRNGKey(1))
    _, again = train(jax.tree.map(lambda x: x + 0.1, meta), jax.random.PRNGKey(2))
    assert len(traces) == 1
    assert EPISODE_KEYS <= set(metrics)
    assert all(v.shape == (4,) for v in metrics.values())
    assert int(state.update) == 4
    assert metrics["num_episodes"].sum() > 0  # 64 steps of 50-step episodes: some end
    ended = np.asarray(metrics["num_episodes"]) > 0
    assert np.all(np.isfinite(np.asarray(metrics["episode_return"])[ended]))
    for name in ("policy_loss", "y_loss", "value_loss", "entropy", "y_entropy", "pi_hat_l2", "y_hat_l2"):
        assert np.all(np.isfinite(np.asarray(metrics[name]))), name
    ret, length = jax.jit(algo.evaluate)(state, jax.random.PRNGKey(3))
    assert 1.0 <= float(length) <= 50.0 and -1.0 <= float(ret) <= 1.0
    loss, _ = algo.rollout_loss(meta, state, jax.random.PRNGKey(4))
    assert jnp.isfinite(loss)


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="lpg.agent = 'cnn' is unknown; valid: tabular, mlp"):
        LPGConfig(agent="cnn")
    with pytest.raises(ValueError, match="rule.y_size = 4 differs from lpg.y_size = 8"):
        make_lpg(LPGConfig(), SPARSE, LearnedTargets(y_size=4))
    with pytest.raises(
        ValueError,
        match="family 'drift' .* inner algorithm 'lpg' has no slot for; .*'lpg' takes the families targets",
    ):
        make_lpg(LPGConfig(), SPARSE, make_rule("ppo_clip"))
    with pytest.raises(ValueError, match="has continuous actions"):
        make_lpg(LPGConfig(), Task(source="gymnax", env_name="Pendulum-v1"), A2CTargets())
