"""A discovered rule is usable wherever a rule is named, through `resolve_source`: `discover train
--rule SOURCE`, `discover eval --baselines ...,SOURCE` and a job's `[rule] init_from = SOURCE`.
The stored study's exported rule (results/study_v3) is the discovered rule throughout."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from discovery import cli
from discovery.evaluation import train
from discovery.evaluation.runs import baseline_entries
from discovery.rule_io import load_rule
from discovery.spec import SpecError, dump_toml, parse_job_spec, parse_ppo
from inner_algos.envs import Task
from inner_algos.rules import make_rule
from tests.support import tiny_job

RUN = Path(__file__).parents[3] / "results" / "study_v3" / "study_v3_seed0"
LATEST = RUN / "rules" / "latest_mean.json"
TINY_PPO = {
    "num_envs": 8,
    "rollout_length": 8,
    "num_updates": 1,
    "num_minibatches": 2,
    "num_epochs": 4,
    "actor_hidden": [16],
    "critic_hidden": [16],
    "eval_envs": 2,
}
LOSSES = ("policy_loss", "approx_kl")


def _stored_rule():
    """The discovered rule and its meta-parameters, read straight from the exported files."""
    rule, meta_params, _ = load_rule(LATEST)
    return rule, meta_params


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_train_with_rule_uses_the_discovered_drift(tmp_path):
    """One update with `--rule latest_mean.json`: its losses are those of the stored rule's
    meta-parameters, not those of the spec's own rule (the same LPO at its PPO-like start)."""
    spec = tmp_path / "train.toml"
    table = {
        "task": {"source": "gymnax", "env_name": "CartPole-v1", "episode_length": 50},
        "ppo": TINY_PPO,
        "rule": {"name": "lpo", "hidden_size": 16, "temporal": True},
        "train": {"seeds": 1, "out": str(tmp_path / "out")},
    }
    spec.write_text(dump_toml(table))
    assert cli.main(["train", str(spec), "--rule", str(LATEST)]) == 0
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["rule"]["source"] == str(LATEST)

    task, config = Task(**table["task"]), parse_ppo(TINY_PPO)
    rule, stored = _stored_rule()
    own = make_rule("lpo", hidden_size=16, temporal=True)
    with_stored = train.run_training(task, config, rule, stored, 1, 0)[0]
    with_own = train.run_training(task, config, own, own.init(jax.random.PRNGKey(0)), 1, 0)[0]
    for key in LOSSES:
        np.testing.assert_allclose(written["curves"][key], with_stored[key], rtol=1e-5, atol=1e-7)
        assert not np.allclose(with_stored[key], with_own[key], rtol=1e-3), key  # the test can fail


@pytest.mark.fast
def test_baselines_take_sources_beside_fixed_rules():
    entries = baseline_entries(["ppo_clip", str(RUN)])
    assert [e.label for e in entries] == ["ppo_clip", str(RUN)]
    rule, stored = _stored_rule()
    assert entries[1].rule == rule and entries[1].baseline
    for name, array in stored.items():
        np.testing.assert_array_equal(entries[1].meta_params[name], array)


@pytest.mark.fast
@pytest.mark.parametrize(
    "item, message",
    [
        (
            "ppo-clip",
            r"--baselines 'ppo-clip' is neither a fixed rule nor a SOURCE \(did you mean 'ppo_clip'\?\)",
        ),
        ("lpo", r"--baselines 'lpo' cannot be a baseline by name"),
        ("a2c", r"--baselines 'a2c' cannot be a baseline by name"),  # the LPG agent's, not PPO's
        (str(RUN) + "x", r"--baselines '.*x': SOURCE .* does not exist \(did you mean '.*study_v3_seed0'"),
    ],
)
def test_bad_baselines_name_the_flag_and_the_fixed_rules_of_the_inner_algorithm(item, message):
    with pytest.raises(ValueError, match=message) as err:
        baseline_entries([item], "ppo")
    assert "rule.name" not in str(err.value)
    if "SOURCE" not in message:
        fixed = "adam, dpo, hyperparams_formula, ppo_clip, symbolic"
        assert f"fixed rules for inner algorithm 'ppo': {fixed};" in str(err.value)


def _init_from_table(run_dir, **rule) -> dict:
    table = tiny_job.table(run_dir, job={"generations": 1, "checkpoint_every": 1})
    table["rule"] = {"init_from": str(LATEST), **rule}
    return table


@pytest.mark.fast
def test_init_from_takes_the_rule_from_the_file_and_refuses_disagreeing_keys(tmp_path):
    from discovery.evaluation.sources import resolve_source

    spec = parse_job_spec(_init_from_table(tmp_path, name="lpo", temporal=True), resolve_source)
    assert spec.rule == _stored_rule()[0]
    assert spec.table["rule"]["init_from"] == str(LATEST)
    assert spec.table["rule"]["hidden_size"] == 16  # from the file
    with pytest.raises(SpecError, match=r"rule.hidden_size = 4 \(the rule in .* has 16\)"):
        parse_job_spec(_init_from_table(tmp_path, hidden_size=4), resolve_source)
    with pytest.raises(SpecError, match=r"rule.init_from = '.*nope': SOURCE .* does not exist"):
        parse_job_spec(
            {**_init_from_table(tmp_path), "rule": {"init_from": str(RUN / "nope")}}, resolve_source
        )


def _es_mean(job) -> dict:
    """The ES mean of the state `job.restore()` returns (the first generation's search centre)."""
    state = job.restore()
    job.ckpt.close()
    return jax.device_get(job.optimizer.params(state)["mean"])


def test_init_from_is_the_first_generations_es_mean_and_resume_keeps_the_checkpoints(tmp_path):
    from discovery.job.runner import Job, run_job

    run_dir = tmp_path / "run"
    table = _init_from_table(run_dir)
    job = Job(table, progress=False)
    job.build()
    _, stored = _stored_rule()
    mean = _es_mean(job)
    assert sorted(mean) == sorted(stored)
    for name, array in stored.items():
        np.testing.assert_array_equal(mean[name], array)  # exactly the loaded rule

    run_job(table, progress=False)  # one generation, checkpointed: the mean has moved
    resumed = Job({**table, "job": {**table["job"], "generations": 2}}, progress=False)
    resumed.build()  # the saved spec (init_from included) equals the resolved one
    mean = _es_mean(resumed)
    checkpointed = load_rule(run_dir / "rules" / "latest_mean")[1]  # exported with checkpoint 1
    for name in stored:
        np.testing.assert_array_equal(mean[name], checkpointed[name])  # the checkpoint, not the file
    assert any(not np.array_equal(checkpointed[name], stored[name]) for name in stored)


def test_a_resume_does_not_read_init_from_again(tmp_path):
    """The checkpoint is a resumed job's start: `discover resume` (the run's spec.toml) works after
    the init_from SOURCE has gone, and builds the rule the checkpoint holds."""
    from discovery.evaluation.sources import resolve_source
    from discovery.job.runner import start_resolver

    gone = tmp_path / "gone"
    table = {**tiny_job.table(tmp_path / "run"), "rule": {"init_from": str(gone), "name": "lpo"}}
    assert start_resolver(table) is resolve_source  # no checkpoint yet: the SOURCE is read
    saved = {**table, "rule": {"init_from": str(gone), **load_rule(LATEST)[0].options(), "name": "lpo"}}
    (tmp_path / "run" / "checkpoints" / "1").mkdir(parents=True)  # a checkpoint step directory
    assert start_resolver(saved, restart=True) is resolve_source  # --restart starts from the SOURCE
    spec = parse_job_spec(saved, start_resolver(saved))
    assert spec.rule == _stored_rule()[0] and spec.init_params is None
    with pytest.raises(SpecError, match="does not exist"):
        parse_job_spec(saved, resolve_source)  # what a resume did before: read the gone SOURCE


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_eval_against_a_source_baseline_that_is_the_same_rule_gives_zero_differences(tmp_path):
    """`--baselines ppo_clip,SOURCE` where SOURCE names the evaluated rule's own file: it is
    labelled as written, meets the same seed keys, so its curves equal the rule's and every
    paired difference is 0 (the known answer)."""
    from tests.support.builders import tiny_eval_argv

    argv = tiny_eval_argv(LATEST, "gymnax:CartPole-v1", tmp_path / "eval")
    argv[argv.index("--baselines") + 1] = f"{LATEST},ppo_clip"
    assert cli.main(argv) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["reference"] == str(LATEST)
    rules = results["tasks"]["gymnax:CartPole-v1"]["rules"]
    assert rules[str(LATEST)]["curves"] == rules["lpo gen 80 mean"]["curves"]
    assert results["rules"][str(LATEST)]["sha256"] == results["rules"]["lpo gen 80 mean"]["sha256"]
    (paired,) = [
        p
        for p in results["tasks"]["gymnax:CartPole-v1"]["paired"]
        if p["baseline"] == str(LATEST) and p["rule"] == "lpo gen 80 mean"
    ]
    assert paired["difference"]["value"] == 0.0
