"""PPO learns on gymnax tasks (slow: minutes per test; run with `python -m pytest -m slow`).

The shipped specs runs/ppo_cartpole.toml and runs/ppo_breakout_minatar.toml are the
configurations checked here.
"""

import jax
import numpy as np
import pytest

from discovery.evaluation.train import run_training
from discovery.spec import load_toml, parse_ppo, parse_task
from inner_algos.envs import random_policy_return
from inner_algos.rules import make_rule

pytestmark = pytest.mark.slow


def _train(path):
    table = load_toml(path)
    task, config = parse_task(table["task"]), parse_ppo(table["ppo"])
    _, eval_returns, _, algo = run_training(
        task, config, make_rule("ppo_clip"), {}, table["train"]["seeds"], 0
    )
    return task, config.num_updates * algo.env_steps_per_update, eval_returns


def test_cartpole_reaches_475_within_500k_steps_for_every_seed():
    _, steps, eval_returns = _train("runs/ppo_cartpole.toml")
    assert steps <= 500_000 and eval_returns.shape == (5,)
    assert np.all(eval_returns >= 475), eval_returns


def test_breakout_minatar_beats_random_actions_at_5m_steps():
    task, steps, eval_returns = _train("runs/ppo_breakout_minatar.toml")
    random_return = float(random_policy_return(task, jax.random.PRNGKey(0), 64))
    assert steps <= 5_000_000 and eval_returns.shape == (3,)
    assert np.all(eval_returns > 5 * max(random_return, 1.0)), (eval_returns, random_return)
