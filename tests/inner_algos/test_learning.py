"""PPO learns (slow: minutes per test; run with `python -m pytest -m slow`).

The shipped specs in runs/ are the configurations checked here, so a change that breaks
learning at the README's settings fails these tests.
"""

import dataclasses

import jax
import numpy as np
import pytest

from discovery.evaluation.train import run_training
from discovery.spec import load_toml, parse_ppo, parse_task
from inner_algos.envs import random_policy_return
from inner_algos.rules import make_rule

pytestmark = pytest.mark.slow


def _spec(path):
    table = load_toml(path)
    return parse_task(table["task"]), parse_ppo(table["ppo"]), table["train"]["seeds"]


@pytest.mark.parametrize("rule_name", ["ppo_clip", "dpo"])
def test_inverted_pendulum_reaches_900_in_2m_steps(rule_name):
    task, config, seeds = _spec("runs/ppo_inverted_pendulum.toml")
    _, eval_returns, _, algo = run_training(task, config, make_rule(rule_name), {}, seeds, 0)
    assert config.num_updates * algo.env_steps_per_update <= 2_000_000
    assert np.sum(eval_returns >= 900) >= 4, eval_returns


def test_inverted_pendulum_with_reward_normalization_at_reward_scale_1_reaches_900():
    task, config, seeds = _spec("runs/ppo_inverted_pendulum.toml")
    task = dataclasses.replace(task, reward_scale=1.0)
    config = dataclasses.replace(config, normalize_rewards=True)
    _, eval_returns, _, algo = run_training(task, config, make_rule("ppo_clip"), {}, seeds, 0)
    assert seeds == 5 and config.num_updates * algo.env_steps_per_update <= 2_000_000
    assert np.sum(eval_returns >= 900) >= 4, eval_returns


def test_hopper_beats_random_policy_at_5m_steps():
    task, config, seeds = _spec("runs/ppo_hopper.toml")
    _, eval_returns, _, _ = run_training(task, config, make_rule("ppo_clip"), {}, seeds, 0)
    random_return = float(random_policy_return(task, jax.random.PRNGKey(0), 16))
    assert np.all(eval_returns > 3 * random_return), (eval_returns, random_return)
