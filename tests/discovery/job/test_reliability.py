"""Reliability of the pieces a job is made of, in-process and fast: diverged rules and runs are
never scored, write failures and signals during a save are clean, a corrupt checkpoint gives one
short warning. The end-to-end kills, resumes and corrupted run directories: test_faults.py."""

import json
import os
import signal
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.evaluation import results as eval_results
from discovery.evaluation import runs as eval_runs
from discovery.job import checkpoint
from discovery.job import files as job_files
from discovery.job import records as job_records
from discovery.job import signals as job_signals
from discovery.meta_opt.es import _to_evosax
from discovery.meta_opt.problem import run_score
from discovery.rule_io import load_rule, save_rule
from inner_algos.envs import Task
from inner_algos.lpg import LPGConfig
from inner_algos.ppo import PPOConfig, make_ppo
from inner_algos.rules import make_rule
from meta_objectives import MetaObjective
from tests.support.builders import two_point_results


def _nan_lpo():
    rule = make_rule("lpo", hidden_size=4)
    return rule, jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), rule.init(jax.random.PRNGKey(0)))


NAN_TASK = Task(env_name="inverted_pendulum", episode_length=50)


@pytest.mark.slow  # 40 s of compiling; test_diverged_seeds_... checks the bookkeeping by default
def test_a_nan_rule_is_diverged_in_evaluation(tiny_ppo):
    """PPO with an all-NaN LPO rule on inverted_pendulum: the NaN policy never trips the
    pendulum's termination, so its deterministic evaluation collects the maximum return
    (episode_length = 50). `discover eval` must see NaN (diverged) instead."""
    rule, params = _nan_lpo()
    run, updates, _ = eval_runs.make_lifetimes(tiny_ppo, NAN_TASK, rule, points=1)
    returns = run(params, jax.random.split(jax.random.PRNGKey(0), 2))  # [2 seeds, update 0 and 3]
    assert list(updates) == [0, 3]
    assert np.all(np.isfinite(returns[:, 0]))  # untrained: the rule has not acted yet
    assert np.all(np.isnan(returns[:, 1]))


@pytest.mark.slow
def test_a_nan_rule_ranks_last_in_training_with_an_eval_return_objective(tiny_ppo):
    """The same run as a meta-training member scored by eval_return (LPO's setting): it is
    flagged diverged and its raw score is NaN (the fitness then scores it as a clear loss:
    tests/discovery/meta_opt/test_diverged_fitness.py); a NaN ES sees ranks below every finite
    member."""
    rule, params = _nan_lpo()
    algo = make_ppo(tiny_ppo, NAN_TASK, rule)
    fitness, diverged = jax.jit(lambda p, k: run_score(algo, MetaObjective(kind="eval_return"), p, k))(
        params, jax.random.PRNGKey(1)
    )
    assert np.isnan(fitness) and bool(diverged)
    evosax_side = _to_evosax(jnp.array([1.0, fitness, -5.0]))  # minimised
    assert np.argmax(evosax_side) == 1


@pytest.mark.fast
def test_diverged_seeds_are_counted_and_left_out_of_the_statistics(capsys):
    # 3 seeds, 2 points; random actions score 5; lpo's seed 1 diverged, ppo_clip's did not
    ppo = np.array([[10.0, 20.0], [10.0, 30.0], [10.0, 40.0]])  # mean 30: normalised 1
    lpo = np.array([[10.0, 30.0], [10.0, np.nan], [10.0, 80.0]])
    nan = np.full((3, 2), np.nan)
    result = two_point_results({"lpo": lpo, "ppo_clip": ppo, "nan": nan}, False)
    entry = result["rules"]["lpo"]
    assert entry["diverged"] == 1 and result["rules"]["ppo_clip"]["diverged"] == 0
    assert entry["final"]["mean"]["value"] == pytest.approx(55.0)  # (30 + 80) / 2
    np.testing.assert_allclose(entry["normalized_scores"], [1.0, 3.0])  # (R - 5) / 25
    assert result["rules"]["nan"]["diverged"] == 3 and result["rules"]["nan"]["final"] is None
    assert "normalized_scores" not in result["rules"]["nan"]
    assert eval_results.pooled({"a": result})["lpo"]["mean"]["value"] == pytest.approx(2.0)
    eval_results.print_task(result, 1.0)
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["lpo"].endswith(" 1/3") and lines["ppo_clip"].endswith(" 0/3")
    assert "diverged on every seed: no score" in lines["nan"] and lines["nan"].endswith(" 3/3")


@pytest.mark.fast
def test_loading_a_rule_with_non_finite_meta_params_names_the_file(tmp_path):
    rule, params = _nan_lpo()
    save_rule(tmp_path / "nan", rule, params)
    with pytest.raises(ValueError, match=rf"{tmp_path}/nan.npz: meta-parameters .* non-finite"):
        load_rule(tmp_path / "nan.json")
    finite = rule.init(jax.random.PRNGKey(0))
    save_rule(tmp_path / "inf", rule, dict(finite, out=finite["out"].at[0].set(jnp.inf)))
    with pytest.raises(ValueError, match=r"inf.npz: meta-parameters \['out'\] hold non-finite"):
        load_rule(tmp_path / "inf")


@pytest.mark.fast
@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h.pop("rule"),
        lambda h: h.update(rule=3),
        lambda h: h.update(options="hidden_size=4"),
        lambda h: h.update(options={"hidden_sise": 4}),
    ],
)
def test_a_header_without_a_usable_rule_names_the_file(tmp_path, edit):
    rule = make_rule("lpo", hidden_size=4)
    save_rule(tmp_path / "r", rule, rule.init(jax.random.PRNGKey(0)))
    header = json.loads((tmp_path / "r.json").read_text())
    edit(header)
    (tmp_path / "r.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match=rf"{tmp_path}/r.json"):
        load_rule(tmp_path / "r")


@pytest.mark.fast
def test_a_second_signal_during_a_save_waits_for_it(capsys):
    stop = job_signals.StopFlag()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.raised and stop.signum == signal.SIGTERM
        with stop.saving():
            os.kill(os.getpid(), signal.SIGINT)  # not cut short
            os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # outside a save: stop now
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        stop.restore()
    err = capsys.readouterr().err
    assert err.count("received SIGINT while saving: the save finishes first") == 2


def _record(generation, fitness_max):
    return {"generation": generation, "fitness_max": fitness_max}


def _reliability(generation):
    return {"generation": generation, "fitness_reliability": 0.0}


PPO = PPOConfig()


@pytest.mark.fast
def test_a_job_stops_after_n_generations_without_a_finite_member():
    history = [_record(1, 2.0), _record(2, None), _record(3, 1.0)] + [_record(g, None) for g in (4, 5, 6)]
    assert job_records.diverged(history, 4, PPO) is None  # 3 in a row
    message = job_records.diverged(history, 3, PPO)
    assert "non-finite in the last 3 generations (4-6)" in message
    for cause in ("ppo.learning_rate", "sigma_init", "reward_scale", "ppo.normalize_rewards"):
        assert cause in message
    assert job_records.diverged(history, 0, PPO) is None  # off
    # an LPG run's advice names LPG's keys (it has no reward normalisation)
    message = job_records.diverged(history, 3, LPGConfig())
    assert "lpg.learning_rate" in message and "ppo." not in message and "normalize_rewards" not in message
    assert "lpg.num_updates" in job_records.unreliable([_reliability(g) for g in range(1, 9)], "lpg")


def _state(value: float) -> dict:
    return {"w": jnp.full((3,), value), "b": jnp.full((2, 2), value), "key": jax.random.PRNGKey(0)}


INFO = {"spec": {}, "versions": {}, "fitness_history": [], "wall_time": 0.0, "env_steps": 0}


@pytest.mark.fast
def test_a_full_disk_during_a_checkpoint_write_is_one_error_and_keeps_the_older_step(tmp_path, monkeypatch):
    ckpt = checkpoint.Checkpointer(tmp_path)
    ckpt.save(1, _state(1.0), {**INFO, "generation": 1})
    monkeypatch.setenv("DISCOVER_FAULT", "checkpoint_write:2:enospc")
    with pytest.raises(
        checkpoint.CheckpointWriteError,
        match=rf"cannot write checkpoint {tmp_path}/checkpoints/2: \[Errno 28\] No space",
    ):
        ckpt.save(2, _state(2.0), {**INFO, "generation": 2})
    assert checkpoint.available_steps(tmp_path) == [1]
    state, info = ckpt.restore_latest(_state(0.0))
    assert info["generation"] == 1 and float(state["w"][0]) == 1.0
    ckpt.close()


@pytest.mark.fast
def test_a_corrupt_checkpoint_gives_one_short_warning(tmp_path):
    """A truncated tensorstore manifest: orbax's error is kilobytes of JSON spec, and the reads
    it abandons report 'Event loop is closed' through sys.unraisablehook."""
    ckpt = checkpoint.Checkpointer(tmp_path)
    for step in (1, 2):
        ckpt.save(step, _state(float(step)), {**INFO, "generation": step})
    for manifest in (tmp_path / "checkpoints" / "2" / "state").rglob("manifest.ocdbt"):
        manifest.write_bytes(manifest.read_bytes()[:30])
    unraisable = []
    previous, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            state, info = ckpt.restore_latest(_state(0.0))
    finally:
        sys.unraisablehook = previous
    assert info["generation"] == 1 and float(state["w"][0]) == 1.0
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and len(messages[0]) < 400, messages
    assert f"{tmp_path}/checkpoints/2 cannot be restored" in messages[0]
    assert "manifest.ocdbt" in messages[0] and "tensorstore_spec" not in messages[0]
    assert not unraisable
    ckpt.close()


@pytest.mark.fast
def test_exported_means_every_rule_of_the_generation_is_in_place(tmp_path):
    rule = make_rule("lpo", hidden_size=4)
    params = rule.init(jax.random.PRNGKey(0))
    rules = tmp_path / "rules"
    for stem in ("gen_000002_mean", "gen_000002_best", "latest_mean", "latest_best"):
        save_rule(rules / stem, rule, params, generation=2)
    assert job_files.exported(tmp_path, 2) and not job_files.exported(tmp_path, 3)
    save_rule(rules / "latest_best", rule, params, generation=1)  # the previous generation's
    assert not job_files.exported(tmp_path, 2)
    save_rule(rules / "latest_best", rule, params, generation=2)
    (rules / "gen_000002_mean.json").unlink()
    assert not job_files.exported(tmp_path, 2)
