"""PPO learns (slow: minutes per test; run with `python -m pytest -m slow`).

The shipped specs in runs/ are the configurations checked here, so a change that breaks
learning at the README's settings fails these tests.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.spec import load_toml, parse_ppo, parse_task
from discovery.train import run_training
from inner_algos.envs import make_env
from inner_algos.rules import make_rule

pytestmark = pytest.mark.slow


def _spec(path):
    table = load_toml(path)
    return parse_task(table["task"]), parse_ppo(table["ppo"]), table["train"]["seeds"]


def random_policy_return(task, key, episodes=16):
    """Mean return of uniform random actions over full episodes (no training)."""
    env = make_env(task, auto_reset=False)
    state = jax.vmap(env.reset)(jax.random.split(key, episodes))

    def body(carry, k):
        state, total, alive = carry
        action = jax.random.uniform(k, (episodes, env.action_size), minval=-1, maxval=1)
        state = jax.vmap(env.step)(state, action)
        return (state, total + alive * state.reward, alive * (1 - state.done)), None

    init = (state, jnp.zeros(episodes), jnp.ones(episodes))
    (_, total, _), _ = jax.lax.scan(body, init, jax.random.split(key, task.episode_length))
    return float(total.mean())


@pytest.mark.parametrize("rule_name", ["ppo_clip", "dpo"])
def test_inverted_pendulum_reaches_900_in_2m_steps(rule_name):
    task, config, seeds = _spec("runs/ppo_inverted_pendulum.toml")
    _, eval_returns, _, algo = run_training(task, config, make_rule(rule_name), {}, seeds, 0)
    assert config.num_updates * algo.env_steps_per_update <= 2_000_000
    assert np.sum(eval_returns >= 900) >= 4, eval_returns


def test_hopper_beats_random_policy_at_5m_steps():
    task, config, seeds = _spec("runs/ppo_hopper.toml")
    _, eval_returns, _, _ = run_training(task, config, make_rule("ppo_clip"), {}, seeds, 0)
    random_return = random_policy_return(task, jax.random.PRNGKey(0))
    assert np.all(eval_returns > 3 * random_return), (eval_returns, random_return)
