"""`discover inspect` on rules of the "disco" family: it trains the DiscoRL agent under the rule and
draws where pi_hat moves the policy against the q head's advantage, and the return read from y and
z beside the untrained agent's (not `fast`: a tiny lifetime compiles; Disco103's is `slow`)."""

from pathlib import Path

import jax
import numpy as np
import pytest

from discovery import cli
from discovery.evaluation import inspect
from discovery.evaluation.sources import Source, zoo_source
from inner_algos.disco import DiscoConfig, analysis, example
from inner_algos.rules import make_rule

SPEC = {
    "inner": {"name": "disco"},
    "disco": {
        "num_envs": 4,
        "rollout_length": 4,
        "num_updates": 4,
        "torso": [16],
        "model_lstm_size": 8,
        "model_head_hiddens": [8],
    },
    "tasks": [{"source": "gridworld", "env_name": "sparse", "episode_length": 16}],
}


def _tiny_source(spec: dict) -> Source:
    _, _, rule = example()
    meta = rule.init(jax.random.PRNGKey(0))
    return Source("tiny", "rule", rule, meta, {}, Path("disco.npz"), spec=spec)


def test_snapshots_read_the_targets_on_the_steps_of_the_batch():
    source = _tiny_source(SPEC)
    setting = inspect.disco_setting(source)
    snapshots = analysis.lifetime_snapshots(
        source.rule, source.meta_params, setting.config, setting.task, jax.random.PRNGKey(0), (0.5, 1.0), 8
    )
    assert [s.update for s in snapshots] == [2, 4]
    for s in snapshots:
        # 8 rollouts x 4 steps, 4 envs; the grid world's 9 actions, prediction size 8
        assert s.logit_change.shape == s.advantage.shape == (32, 4, 9)
        assert s.y.shape == s.z.shape == s.y0.shape == s.z0.shape == (32, 4, 8)
        assert s.kl.shape == s.mc_return.shape == s.complete.shape == (32, 4)
        np.testing.assert_allclose(s.logit_change.sum(-1), 0.0, atol=1e-5)  # centred over the actions
        np.testing.assert_allclose(s.y.sum(-1), 1.0, atol=1e-5)  # probabilities
        assert (s.kl >= -1e-6).all()
    assert not np.allclose(snapshots[-1].y, snapshots[-1].y0)  # trained y is not the initial one


def test_the_actor_critic_baseline_has_no_targets_to_draw():
    config = DiscoConfig(num_envs=2, rollout_length=4, num_updates=2, torso=(8,), model_lstm_size=4)
    task = inspect.disco_setting(_tiny_source(SPEC)).task
    with pytest.raises(ValueError, match="no meta-network"):
        analysis.lifetime_snapshots(make_rule("disco_ac"), {}, config, task, jax.random.PRNGKey(0))


def test_inspect_draws_a_disco_rule_and_prints_the_numbers(tmp_path, capsys):
    written = inspect.run_inspect([_tiny_source(SPEC)], tmp_path)
    text = capsys.readouterr().out
    assert written == [tmp_path / "rule_disco.png"]
    assert (tmp_path / "rule_disco.png").stat().st_size > 10_000
    assert "no picture for this family" not in text
    assert (
        "gridworld:sparse, the spec's [disco] and its first task of 1; 4 updates of 4 envs x 4 steps" in text
    )
    assert "analysis batches of 8 rollouts (32 steps x 4 envs)" in text
    for update in (1, 4):  # the fractions 0.05 and 0.25 of 4 updates are both update 1
        assert f"update {update}: corr(logit change of pi_hat, q advantage)" in text
    assert text.count("held-out R^2 of return ~ y") == 2 and "top 8 directions" in text


def test_a_zoo_entry_without_a_task_is_drawn_in_the_default_catch_setting():
    setting = inspect.disco_setting(zoo_source("zoo:disco/disco103"))
    assert setting.config == inspect.DISCO_PICTURE_CONFIG and setting.task.label == "gymnax:Catch-8x8"
    assert setting.rollouts == 125  # two of Catch's 1000-step time limits, in 16-step rollouts
    assert setting.note.startswith("gymnax:Catch-8x8, its spec names no task: the disco picture's agent")


def test_a_spec_of_another_inner_algorithm_is_refused_and_a_long_lifetime_cut():
    with pytest.raises(
        ValueError, match="inner.name = 'lpg'; the picture of its rule trains inner algorithm 'disco'"
    ):
        inspect.disco_setting(_tiny_source({**SPEC, "inner": {"name": "lpg"}}))
    spec = {**SPEC, "disco": {**SPEC["disco"], "num_updates": inspect.DISCO_MAX_UPDATES + 1}}
    setting = inspect.disco_setting(_tiny_source(spec))
    assert setting.config.num_updates == inspect.DISCO_MAX_UPDATES
    assert f"(of {inspect.DISCO_MAX_UPDATES + 1}; cut to {inspect.DISCO_MAX_UPDATES})" in setting.note


@pytest.mark.slow  # a few minutes on 2 CPU cores: Disco103's meta-network over a 200-update lifetime
def test_discover_inspect_zoo_disco103_draws_what_it_teaches_on_catch(tmp_path, capsys):
    assert cli.main(["inspect", "zoo:disco/disco103", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "rule_disco.png").stat().st_size > 10_000
    assert "disco picture of zoo:disco/disco103: gymnax:Catch-8x8, its spec names no task" in text
    assert "200 updates of 16 envs x 16 steps; analysis batches of 125 rollouts" in text
    for update in (10, 50, 200):
        assert f"  update {update}: corr(logit change of pi_hat, q advantage)" in text
