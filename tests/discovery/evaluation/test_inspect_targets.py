"""`discover inspect` on rules of the "targets" family: it trains a tiny LPG agent under each rule
and draws pi_hat against the advantage and the return read from y (not `fast`: two tiny lifetimes
compile)."""

import dataclasses
from pathlib import Path

import jax
import numpy as np

from discovery.evaluation import inspect
from discovery.evaluation.sources import Source
from inner_algos.envs import Task
from inner_algos.lpg import LPGConfig, analysis, example
from inner_algos.rules import make_rule

CONFIG = LPGConfig(num_envs=4, rollout_length=4, num_updates=4, y_size=4, eval_envs=1)
TASK = Task(source="gridworld", env_name="sparse", episode_length=16)
SPEC = {
    "inner": {"name": "lpg"},
    "lpg": {"num_envs": 4, "rollout_length": 4, "num_updates": 4, "y_size": 4},
    "tasks": [{"source": "gridworld", "env_name": "sparse", "episode_length": 16}],
}


def _source(rule, meta_params, spec):
    return Source("tiny", "rule", rule, meta_params, {}, Path(f"{rule.name}.npz"), spec=spec)


def test_snapshots_of_the_a2c_rule_hold_its_advantage_as_pi_hat():
    snapshots = analysis.lifetime_snapshots(
        make_rule("a2c"), {}, CONFIG, TASK, jax.random.PRNGKey(0), fractions=(0.5, 1.0), rollouts=8
    )
    assert [s.update for s in snapshots] == [2, 4]
    for s in snapshots:
        assert s.pi_hat.shape == s.mc_return.shape == s.complete.shape == (32, 4)
        assert s.y.shape == (32, 4, 4)
        np.testing.assert_array_equal(s.pi_hat, s.advantage)  # A2C: pi_hat = A on the same steps
        np.testing.assert_allclose(s.y, 0.25)  # A2C leaves y at its uniform start


def test_inspect_draws_a_targets_rule_and_prints_the_numbers(tmp_path, capsys):
    rule = make_rule("lpg", y_size=4, embed_width=4, hidden=4)
    written = inspect.run_inspect([_source(rule, rule.init(jax.random.PRNGKey(0)), SPEC)], tmp_path)
    text = capsys.readouterr().out
    assert written == [tmp_path / "rule_targets.png"]
    assert (tmp_path / "rule_targets.png").stat().st_size > 10_000
    assert "no picture for this family" not in text
    assert "gridworld:sparse, the spec's [lpg] and its first task of 1; 4 updates of 4 envs x 4 steps" in text
    assert "analysis batches of 8 rollouts (32 steps x 4 envs)" in text  # two 16-step episodes
    for update in (1, 2, 4):
        assert f"update {update}: corr(pi_hat, advantage)" in text
    assert text.count("held-out R^2 of return ~ y") == 3


def test_a_targets_rule_without_a_spec_is_drawn_in_the_lpg_example_setting():
    config, task, _ = example()
    setting = inspect.targets_setting(_source(make_rule("lpg", y_size=3), {}, {}))
    assert setting.config == dataclasses.replace(config, y_size=3) and setting.task == task
    assert setting.rollouts == 8  # 2 x 16-step episodes in 4-step rollouts
    assert setting.note.startswith("gridworld:sparse, no spec with this source: the LPG example's")


def test_a_long_lifetime_is_cut_and_says_so():
    spec = {**SPEC, "lpg": {**SPEC["lpg"], "num_updates": inspect.TARGETS_MAX_UPDATES + 1}}
    setting = inspect.targets_setting(_source(make_rule("a2c"), {}, spec))
    assert setting.config.num_updates == inspect.TARGETS_MAX_UPDATES
    assert f"(of {inspect.TARGETS_MAX_UPDATES + 1}; cut to {inspect.TARGETS_MAX_UPDATES})" in setting.note
