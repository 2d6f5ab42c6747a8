"""The LPG agent with the MLP torso on gymnax tasks: a tiny jitted lifetime on Breakout-MinAtar under
both rules of the family, parameter shapes from the flattened observation and the env's action
count worked out by hand, and the tabular agent refused on non-one-hot observations."""

import jax
import numpy as np
import pytest

from inner_algos.contract import METRIC_KEYS
from inner_algos.envs import Task
from inner_algos.lpg import A2CTargets, LearnedTargets, LPGConfig, make_lpg

# 8-step episodes: each of the 2 envs takes 8 steps over the lifetime, so at least one episode ends
BREAKOUT = Task(source="gymnax", env_name="Breakout-MinAtar", episode_length=8)
CARTPOLE = Task(source="gymnax", env_name="CartPole-v1", episode_length=8)
Y_SIZE = 8


def _mlp_config(**overrides) -> LPGConfig:
    settings = dict(
        num_envs=2,
        rollout_length=4,
        num_updates=2,
        agent="mlp",
        hidden=(16,),
        y_size=Y_SIZE,
        optimizer="adam",
        learning_rate=1e-3,
        critic_learning_rate=1e-3,
        eval_envs=1,
    )
    return LPGConfig(**{**settings, **overrides})


@pytest.mark.parametrize(
    "rule", [A2CTargets(), LearnedTargets(y_size=Y_SIZE, embed_width=4, hidden=4)], ids=["a2c", "lpg"]
)
def test_mlp_agent_trains_on_breakout(rule):
    algo = make_lpg(_mlp_config(), BREAKOUT, rule)
    state, metrics = jax.jit(algo.train)(rule.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    assert {*METRIC_KEYS, *algo.loss_metrics} <= set(metrics)
    assert all(v.shape == (2,) for v in metrics.values())
    assert int(state.update) == 2
    for name in (*algo.loss_metrics, "entropy", "y_entropy", "pi_hat_l2", "y_hat_l2", "grad_norm"):
        assert np.all(np.isfinite(np.asarray(metrics[name]))), name
    assert float(metrics["num_episodes"].sum()) >= 1.0
    ended = np.asarray(metrics["num_episodes"]) > 0
    returns = np.asarray(metrics["episode_return"])[ended]
    assert np.all(np.isfinite(returns)) and np.all(returns >= 0.0)  # Breakout pays 0 or +1 per step
    assert np.all(np.asarray(metrics["episode_length"])[ended] <= 8.0)
    # the heads start near uniform and 2 Adam steps at 1e-3 barely move them: the entropies are those
    # of uniform distributions over Breakout's 3 actions and the y_size outcomes
    np.testing.assert_allclose(np.asarray(metrics["entropy"]), np.log(3.0), atol=1e-3)
    np.testing.assert_allclose(np.asarray(metrics["y_entropy"]), np.log(Y_SIZE), atol=1e-3)
    ret, length = jax.jit(algo.evaluate)(state, jax.random.PRNGKey(2))
    assert 1.0 <= float(length) <= 8.0 and 0.0 <= float(ret) <= 8.0


# observation features (Breakout: a 10 x 10 grid of 4 channels, flattened; CartPole: x, x_dot,
# theta, theta_dot) and actions (Breakout: no-op, left, right; CartPole: left, right)
@pytest.mark.fast
@pytest.mark.parametrize("task, obs_size, actions", [(BREAKOUT, 10 * 10 * 4, 3), (CARTPOLE, 4, 2)])
def test_mlp_parameter_shapes_follow_obs_size_and_action_count(task, obs_size, actions):
    rule = A2CTargets()
    algo = make_lpg(_mlp_config(), task, rule)
    state = jax.eval_shape(algo.init, rule.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    shapes = jax.tree.map(lambda x: x.shape, state.params)
    assert shapes["agent"]["params"] == {
        "Dense_0": {"kernel": (obs_size, 16), "bias": (16,)},
        "policy": {"kernel": (16, actions), "bias": (actions,)},
        "y": {"kernel": (16, Y_SIZE), "bias": (Y_SIZE,)},
    }
    assert shapes["critic"]["params"] == {
        "MLP_0": {
            "Dense_0": {"kernel": (obs_size, 16), "bias": (16,)},
            "Dense_1": {"kernel": (16, 1), "bias": (1,)},
        }
    }
    count = sum(
        int(np.prod(s)) for s in jax.tree.leaves(shapes["agent"], is_leaf=lambda x: isinstance(x, tuple))
    )
    assert count == (obs_size + 1) * 16 + (16 + 1) * actions + (16 + 1) * Y_SIZE  # Breakout: 6603


@pytest.mark.fast
@pytest.mark.parametrize("task, features", [(BREAKOUT, 400), (CARTPOLE, 4)])
def test_tabular_agent_on_non_one_hot_observations_names_the_field(task, features):
    message = (
        f"lpg.agent = 'tabular' needs one-hot observations .* task '{task.label}' observes "
        f'{features} features: set lpg.agent = "mlp"'
    )
    with pytest.raises(ValueError, match=message):
        make_lpg(LPGConfig(num_envs=2, rollout_length=4, num_updates=2), task, A2CTargets())
