"""`discover eval`: settings, the drift switch, statistics of known curves, one tiny end-to-end run."""

import argparse
import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.evaluation import evaluate, plots, report, stats, task_store
from discovery.evaluation import results as eval_results
from discovery.evaluation import runs as eval_runs
from discovery.evaluation.sources import resolve_source, rule_hash
from discovery.rule_io import save_rule
from inner_algos.envs import Task, random_policy_return
from inner_algos.ppo import PPOConfig
from inner_algos.registry import make_inner_algo
from inner_algos.rules import DriftInputs, make_rule
from tests.support import tiny_job
from tests.support.builders import TINY_SET_ARGS, tiny_eval_argv, two_point_results
from tests.support.fabricate import make_run_dir


def _cli(*argv):
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    args = parser.parse_args(["eval", *argv])
    return args.func(args)


@pytest.mark.fast
def test_parse_tasks_defaults_the_backend():
    assert evaluate.parse_tasks("hopper, inverted_pendulum/positional,") == [
        "hopper/spring",
        "inverted_pendulum/positional",
    ]


@pytest.mark.fast
def test_settings_take_the_run_spec_then_overrides_then_budget(tmp_path):
    source = resolve_source(str(make_run_dir(tmp_path)))
    (cfg, trained), (_, other) = evaluate.eval_settings(
        source,
        ["inverted_pendulum/spring", "hopper/spring"],
        ["ppo.num_envs=32", "task.action_repeat=2"],
        budget=1000,
    )
    assert cfg.rollout_length == 8 and cfg.num_envs == 32 and cfg.actor_hidden == (16,)
    assert cfg.num_updates == 1000 // (32 * 8 * 2)  # budget in env steps, action repeat included
    assert trained.episode_length == 100 and other.episode_length == 1000  # spec task vs defaults
    assert trained.action_repeat == other.action_repeat == 2
    exported = resolve_source(str(source.rule_path))  # no run spec: PPOConfig defaults
    ((cfg, _),) = evaluate.eval_settings(exported, ["hopper/spring"], [], None)
    assert cfg == PPOConfig()


@pytest.mark.fast
def test_default_baselines_follow_the_inner_algorithm(tmp_path):
    """A PPO run compares with ppo_clip then dpo; a run whose spec says [inner] name = "lpg", or an
    exported targets rule without a spec (evaluated in LPG), with a2c."""
    ppo_run = resolve_source(str(make_run_dir(tmp_path)))
    assert evaluate.default_baselines(ppo_run) == ["ppo_clip", "dpo"]
    lpg_run = dataclasses.replace(
        ppo_run, rule=make_rule("lpg"), spec={**ppo_run.spec, "inner": {"name": "lpg"}}
    )
    assert evaluate.default_baselines(lpg_run) == ["a2c"]
    exported = dataclasses.replace(ppo_run, rule=make_rule("lpg"), spec={})
    assert evaluate.default_baselines(exported) == ["a2c"]


@pytest.mark.fast
@pytest.mark.parametrize(
    "argv, baselines",
    [
        ([], ["ppo_clip", "dpo"]),
        (["--baselines", "dpo, ppo_clip"], ["dpo", "ppo_clip"]),
        (["--baselines", ""], []),
    ],
)
def test_the_baselines_option_defaults_to_the_inner_algorithms_and_a_given_list_wins(
    tmp_path, monkeypatch, argv, baselines
):
    got = []
    monkeypatch.setattr(evaluate, "run_eval", lambda source, labels, baselines, *rest: got.append(baselines))
    assert _cli(str(make_run_dir(tmp_path)), *argv) == 0
    assert got == [baselines]


@pytest.mark.fast
def test_a_task_budget_after_at_overrides_the_global_budget(tmp_path):
    source = resolve_source(str(make_run_dir(tmp_path)))
    labels = evaluate.parse_tasks("inverted_pendulum@4096, gymnax:CartPole-v1")
    assert labels == ["inverted_pendulum/spring@4096", "gymnax:CartPole-v1"]
    (own, task), (other, _) = evaluate.eval_settings(source, labels, ["ppo.num_envs=32"], budget=1000)
    assert task.label == "inverted_pendulum/spring"
    assert own.num_updates == 4096 // (32 * 8) and other.num_updates == 1000 // (32 * 8)
    with pytest.raises(ValueError, match="budget after '@'"):
        evaluate.eval_settings(source, ["inverted_pendulum/spring@ten"], [], None)


@pytest.mark.fast
@pytest.mark.parametrize(
    "sets, match",
    [
        (["rule.eps=0.3"], "allowed: ppo.KEY, task.KEY"),
        (["ppo.num_envs=0"], "num_envs"),
        (["ppo.widths=3"], "ppo.widths"),
        (["task.episode_length=-1"], "episode_length"),
    ],
)
def test_bad_settings_name_the_field(tmp_path, sets, match):
    source = resolve_source(str(make_run_dir(tmp_path)))
    with pytest.raises(ValueError, match=match):
        evaluate.eval_settings(source, ["inverted_pendulum/spring"], sets, None)


@pytest.mark.fast
@pytest.mark.parametrize(
    "name, match", [("lpo", "cannot be a baseline by name"), ("nope", "fixed rules for inner algorithm")]
)
def test_bad_baselines_are_named(name, match):
    with pytest.raises(ValueError, match=match):
        eval_runs.baseline_entries([name])


@pytest.mark.fast
def test_drift_switch_is_each_rule_in_value_and_gradient():
    lpo = make_rule("lpo", hidden_size=8)
    lpo_params = dict(lpo.init(jax.random.PRNGKey(0)), out=jnp.ones(8))
    rules, params = (lpo, make_rule("ppo_clip"), make_rule("dpo")), (lpo_params, {}, {})
    switch = eval_runs.DriftSwitch(rules)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    ratio, adv = jnp.exp(0.3 * jax.random.normal(k1, (64,))), jax.random.normal(k2, (64,))
    for i, (rule, p) in enumerate(zip(rules, params)):
        meta = {"index": jnp.int32(i), "params": params}
        np.testing.assert_allclose(
            switch.apply(meta, DriftInputs(ratio, adv)),
            rule.apply(p, DriftInputs(ratio, adv)),
            rtol=1e-5,
            atol=1e-7,
        )
        grad = jax.grad(lambda r, m, f: f(m, DriftInputs(r, adv)).sum(), argnums=0)
        np.testing.assert_allclose(
            grad(ratio, meta, switch.apply), grad(ratio, p, rule.apply), rtol=1e-5, atol=1e-7
        )


@pytest.mark.fast
def test_task_results_normalize_between_random_and_ppo_clip_with_known_answers():
    # 3 seeds, 2 points: every run starts at 10; random actions score 5; ppo_clip ends at
    # 20, 30, 40 (mean 30, so 1 = 30 and 0 = 5)
    ppo = np.array([[10.0, 20.0], [10.0, 30.0], [10.0, 40.0]])
    rule = np.array([[10.0, 30.0], [10.0, 55.0], [10.0, 80.0]])
    result = two_point_results({"lpo": rule, "ppo_clip": ppo}, False)
    assert result["held_out"] is True and result["in_training_set"] is False
    assert result["initial_return"] == 10.0 and result["reference_final_return"] == 30.0
    assert result["reference"] == "ppo_clip"
    assert result["random_return"] == 5.0
    assert result["env_steps"] == [0, 512]
    np.testing.assert_allclose(result["rules"]["lpo"]["normalized_scores"], [1.0, 2.0, 3.0])
    assert result["rules"]["ppo_clip"]["normalized"]["mean"]["value"] == pytest.approx(1.0)
    assert result["rules"]["lpo"]["final"]["iqm"]["value"] == pytest.approx(55.0)
    pooled = eval_results.pooled({"a": result, "b": result})
    assert pooled["lpo"]["mean"]["value"] == pytest.approx(2.0)
    flat = two_point_results({"lpo": rule, "ppo_clip": np.full((3, 2), 5.0)}, None)
    assert flat["normalized"] is False and "normalized" not in flat["rules"]["lpo"]
    assert flat["held_out"] is None
    worse = two_point_results(
        {"lpo": rule, "ppo_clip": np.array([[10.0, 0.0], [10.0, 5.0], [10.0, 8.0]])}, None
    )  # ppo_clip ends below R0 = 5 on average
    assert worse["normalized"] is False


def _finals_result(finals: dict[str, list[float]], random_return: float, reference: str = "ppo_clip") -> dict:
    """`task_results` of final returns given per rule (2 points: a start at 0, then the finals),
    normalised by `reference`."""
    curves = {k: np.stack([np.zeros(len(v)), np.asarray(v, float)], axis=1) for k, v in finals.items()}
    return eval_results.json_ready(two_point_results(curves, True, random_return, reference))


@pytest.mark.fast
def test_scores_are_normalized_by_the_reference_not_by_ppo_clip():
    """Reference a2c, random actions 2: a2c ends at 4..8 (mean 6), so 1 = 6 and 0 = 2, scale 4;
    the rule's 6, 9, 10, 11, 14 are (R - 2) / 4 = 1, 1.75, 2, 2.25, 3, whatever ppo_clip (here a
    rule that is not the reference) scored. Paired with a2c: d = 2, 4, 4, 4, 6, mean 4 = 1 a2c unit."""
    result = _finals_result(
        {
            "lpg": [6.0, 9.0, 10.0, 11.0, 14.0],
            "a2c": [4.0, 5.0, 6.0, 7.0, 8.0],
            "ppo_clip": [102.0, 202.0, 302.0, 402.0, 502.0],
        },
        random_return=2.0,
        reference="a2c",
    )
    assert result["reference"] == "a2c" and result["reference_final_return"] == 6.0
    assert result["normalized"] is True
    np.testing.assert_allclose(result["rules"]["lpg"]["normalized_scores"], [1.0, 1.75, 2.0, 2.25, 3.0])
    np.testing.assert_allclose(result["rules"]["a2c"]["normalized_scores"], [0.5, 0.75, 1.0, 1.25, 1.5])
    np.testing.assert_allclose(
        result["rules"]["ppo_clip"]["normalized_scores"], [25.0, 50.0, 75.0, 100.0, 125.0]
    )
    (entry,) = eval_results.paired_task(result, [("lpg", "a2c")])
    result["paired"] = [entry]
    assert entry["difference"]["value"] == pytest.approx(4.0)
    assert entry["normalized_difference"]["value"] == pytest.approx(1.0)
    assert entry["verdict"] == "better"
    (pooled,) = eval_results.paired_pooled({"t": result}, [("lpg", "a2c")])
    assert pooled["normalized_difference"]["value"] == pytest.approx(1.0)
    np.testing.assert_allclose(
        np.array(eval_results.score_matrix({"t": result})["scores"]["lpg"])[:, 0], [1.0, 1.75, 2.0, 2.25, 3.0]
    )
    assert eval_results.pooled({"t": result})["lpg"]["mean"]["value"] == pytest.approx(2.0)


@pytest.mark.fast
def test_a_reference_that_does_not_beat_random_actions_is_named(tmp_path, capsys):
    """a2c ends at 1..3 (mean 2), random actions score 2: no normalised scores, and no verdict
    against a2c, both naming it."""
    result = _finals_result(
        {"lpg": [6.0, 9.0, 10.0, 11.0, 14.0], "a2c": [1.0, 1.5, 2.0, 2.5, 3.0]}, 2.0, reference="a2c"
    )
    assert result["normalized"] is False and result["reference_final_return"] == 2.0
    assert "normalized_scores" not in result["rules"]["lpg"]
    (entry,) = eval_results.paired_task(result, [("lpg", "a2c")])
    result["paired"] = [entry]
    assert entry["verdict"] is None
    assert entry["no_verdict"].startswith("a2c does not beat the random agent (mean final return 2 <= 2)")
    report.report_task(tmp_path, "t", result, 1.0)
    assert "no normalised scores on t: needs the reference baseline a2c" in capsys.readouterr().out


@pytest.mark.fast
def test_without_baselines_there_is_no_reference_and_no_normalized_scores(tmp_path, capsys):
    result = _finals_result({"lpg": [6.0, 9.0]}, 2.0, reference=None)
    assert result["reference"] is None and result["normalized"] is False
    assert "normalized_scores" not in result["rules"]["lpg"]
    result["paired"] = []
    report.report_task(tmp_path, "t", result, 1.0)
    out = capsys.readouterr().out
    assert "no normalised scores" not in out and "paired:" not in out  # said once, by run_eval
    assert "no normalised scores" in eval_results.normalization(None)


@pytest.mark.fast
def test_a_stored_task_with_another_reference_is_refused(tmp_path):
    """Normalised scores depend on the reference: `--baselines dpo,ppo_clip` may not continue an
    --out made with `--baselines ppo_clip,dpo` (the same rules, another first)."""
    rules = {"lpo": {"sha256": "a"}, "ppo_clip": {"sha256": "b"}, "dpo": {"sha256": "c"}}
    path = tmp_path / task_store.TASKS_DIR / "t.json"
    path.parent.mkdir()
    stored = task_store.task_key(rules, "ppo_clip", 2, 0, 2, PPOConfig(), Task())
    eval_results.write_json(path, {"key": stored, "result": {}, "seconds": 1.0})
    assert task_store.finished_task(path, stored) == {"result": {}, "seconds": 1.0}
    with pytest.raises(ValueError, match=r"reference: 'ppo_clip' -> 'dpo'"):
        task_store.finished_task(path, task_store.task_key(rules, "dpo", 2, 0, 2, PPOConfig(), Task()))


@pytest.mark.fast
def test_the_normalization_text_names_the_reference():
    assert eval_results.normalization("a2c") == (
        "(R - R0) / (R_a2c - R0); R0 mean return of uniform random actions, "
        "R_a2c mean final return of a2c (the reference: the first baseline) on the same task"
    )


def test_paired_task_compares_seed_by_seed_with_a_verdict():
    """ppo_clip 10..50 (mean 30), random 10: the rule gains 1..5 on the same seeds (better, though
    the unpaired spreads overlap); dpo loses on every seed but one, which diverged."""
    ppo = [10.0, 20.0, 30.0, 40.0, 50.0]
    result = _finals_result(
        {"rule": [11.0, 22.0, 33.0, 44.0, 55.0], "ppo_clip": ppo, "dpo": [9.0, 19.0, np.nan, 38.0, 45.0]},
        random_return=10.0,
    )
    pairs = eval_results.comparisons(["rule", "ppo_clip", "dpo"], [False, True, True])
    assert pairs == [("rule", "ppo_clip"), ("rule", "dpo"), ("dpo", "ppo_clip")]
    rule, rule_dpo, dpo = eval_results.paired_task(result, pairs)
    assert rule["verdict"] == "better" and rule["no_verdict"] is None
    assert rule["difference"]["value"] == pytest.approx(3.0)
    assert rule["p_improvement"] == {"value": 1.0, "ci": [1.0, 1.0]}
    assert rule["normalized_difference"]["ci"] == pytest.approx(np.array(rule["difference"]["ci"]) / 20.0)
    assert rule["detectable"] == pytest.approx(stats.half_width(rule["difference"]["ci"]))
    assert (dpo["pairs"], dpo["left_out"]) == (4, 1)
    assert dpo["verdict"] is None and "a verdict needs 5" in dpo["no_verdict"]
    assert rule_dpo["pairs"] == 4 and rule_dpo["verdict"] is None


def test_no_verdict_where_the_baseline_does_not_beat_random_actions():
    result = _finals_result(
        {"rule": [11.0, 12.0, 13.0, 14.0, 15.0], "ppo_clip": [1.0, 2.0, 3.0, 4.0, 5.0]}, random_return=10.0
    )
    (entry,) = eval_results.paired_task(result, [("rule", "ppo_clip")])
    assert entry["verdict"] is None and "does not beat the random agent" in entry["no_verdict"]
    assert entry["difference"]["value"] == pytest.approx(10.0) and "normalized_difference" not in entry
    result["paired"] = [entry]
    (pooled,) = eval_results.paired_pooled({"t": result}, [("rule", "ppo_clip")])
    assert pooled["verdict"] is None and pooled["tasks"] == []


def test_pooled_comparison_and_score_matrix_over_tasks():
    """Two tasks, the rule +0.5 PPO-clip units on every seed of one, -0.25 on the other; a
    diverged seed is NaN in the [seeds x tasks] score matrix."""
    ppo = [10.0, 20.0, 30.0, 40.0, 50.0]  # mean 30 -> scale 20 over random 10
    a = _finals_result({"rule": [20.0, 30.0, 40.0, 50.0, 60.0], "ppo_clip": ppo}, 10.0)
    b = _finals_result({"rule": [5.0, 15.0, 25.0, 35.0, np.nan], "ppo_clip": ppo}, 10.0)
    tasks = {"a": a, "b": b}
    for r in tasks.values():
        r["paired"] = eval_results.paired_task(r, [("rule", "ppo_clip")])
    (pooled,) = eval_results.paired_pooled(tasks, [("rule", "ppo_clip")])
    assert pooled["tasks"] == ["a"]  # b has 4 paired seeds: no verdict, not pooled
    assert pooled["normalized_difference"]["value"] == pytest.approx(0.5)
    matrix = eval_results.score_matrix(tasks)
    assert matrix["tasks"] == ["a", "b"]
    scores = np.array(matrix["scores"]["rule"], dtype=float)
    assert scores.shape == (5, 2)
    np.testing.assert_allclose(scores[:, 0], [0.5, 1.0, 1.5, 2.0, 2.5])
    assert np.isnan(scores[4, 1])
    np.testing.assert_allclose(np.array(matrix["scores"]["ppo_clip"])[:, 1], [0.0, 0.5, 1.0, 1.5, 2.0])


def test_paired_figure(tmp_path):
    entry = {
        "rule": "lpo",
        "baseline": "ppo_clip",
        "verdict": "worse",
        "normalized_difference": {"value": -0.2, "ci": [-0.3, -0.1]},
        "p_improvement": {"value": 0.1, "ci": [0.0, 0.3]},
    }
    plots.paired_figure(
        tmp_path / "p.png", {"hopper": [entry], "pooled": [entry, dict(entry, verdict=None)]}, "t", "ppo_clip"
    )
    assert (tmp_path / "p.png").stat().st_size > 5_000


def test_random_policy_return_is_the_return_of_random_actions():
    """inverted_pendulum pays 1 per step until the pole falls: random actions drop it in ~tens of
    steps, far from the 1000-step limit; the value is deterministic in the key."""
    task = Task(env_name="inverted_pendulum", episode_length=1000)
    value = float(random_policy_return(task, jax.random.PRNGKey(0), 8))
    assert 3.0 < value < 100.0
    assert value == float(random_policy_return(task, jax.random.PRNGKey(0), 8))


@pytest.mark.fast
def test_summary_figure_and_strict_json(tmp_path):
    scores = {
        "hopper/spring\n(held-out)": {
            "lpo": {"value": 1.2, "ci": [0.9, 1.5]},
            "ppo_clip": {"value": 1.0, "ci": [0.8, 1.1]},
        }
    }
    plots.scores_figure(tmp_path / "s.png", scores, "score", "title")
    assert (tmp_path / "s.png").stat().st_size > 5_000
    eval_results.write_json(tmp_path / "r.json", {"x": np.float32(np.nan), "y": [np.float64(1.5)]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": None, "y": [1.5]}


@pytest.mark.fast
def test_drift_switch_dispatches_to_the_indexed_rule():
    rules = (make_rule("ppo_clip"), make_rule("dpo"))
    switch = eval_runs.DriftSwitch(rules)
    inputs = DriftInputs(jnp.array([0.5, 1.3, 1.6]), jnp.array([-1.0, 2.0, 1.0]))
    for i, rule in enumerate(rules):
        drift = jax.jit(switch.apply)({"index": jnp.int32(i), "params": ({}, {})}, inputs)
        np.testing.assert_allclose(drift, rule.apply({}, inputs), rtol=1e-6)
    assert not np.allclose(rules[0].apply({}, inputs), rules[1].apply({}, inputs))


def test_eval_end_to_end_lpo_at_init_equals_ppo_clip(tmp_path, monkeypatch):
    """LPO at its initial meta-params is PPO-clip: same seeds give the same curves; one compile."""
    rule = make_rule("lpo", hidden_size=8)
    params = rule.init(jax.random.PRNGKey(0))
    save_rule(tmp_path / "lpo", rule, params, train_tasks=["inverted_pendulum/spring"])
    built = []
    monkeypatch.setattr(eval_runs, "make_inner_algo", lambda *a: built.append(a) or make_inner_algo(*a))
    out = tmp_path / "eval"
    assert (
        _cli(
            str(tmp_path / "lpo.json"),
            "--seeds",
            "2",
            "--budget",
            "384",
            "--points",
            "3",
            "--out",
            str(out),
            *TINY_SET_ARGS,
        )
        == 0
    )
    assert len(built) == 1  # one compiled PPO for the three drift rules
    results = json.loads((out / "results.json").read_text())
    task = results["tasks"]["inverted_pendulum/spring"]
    assert task["in_training_set"] is True and task["held_out"] is False
    assert task["updates"] == [0, 1, 2, 3] and task["env_steps"] == [0, 128, 256, 384]
    curves = {k: np.asarray(v["curves"]) for k, v in task["rules"].items()}
    assert set(curves) == {"lpo (lpo)", "ppo_clip", "dpo"}  # PPO's default baselines
    assert results["reference"] == task["reference"] == "ppo_clip"
    assert all(c.shape == (2, 4) for c in curves.values())
    np.testing.assert_allclose(curves["lpo (lpo)"], curves["ppo_clip"], rtol=1e-5)
    assert (out / "curves_inverted_pendulum_spring.png").stat().st_size > 10_000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rule"]["sha256"] == rule_hash(rule, params)
    assert manifest["versions"]["jax"] == jax.__version__
    assert manifest["evaluation"]["ppo"]["inverted_pendulum/spring"]["num_updates"] == 3
    assert manifest["evaluation"]["budget"] == 384


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_a_killed_evaluation_continues_where_it_stopped(tmp_path, monkeypatch):
    """4 tiny tasks, SIGKILLed in the third (DISCOVER_FAULT=eval_task:3, after it ran, before its
    result was written), then the same command again: only tasks 3 and 4 run, and results.json
    equals an uninterrupted run's but for wall-clock times. Other settings in the same --out are
    refused, naming the difference."""
    rule = make_rule("lpo", hidden_size=8)
    save_rule(tmp_path / "lpo", rule, rule.init(jax.random.PRNGKey(0)), train_tasks=["gymnax:CartPole-v1"])
    tasks = "gymnax:CartPole-v1,gymnax:Acrobot-v1,gymnax:MountainCar-v0,gymnax:Pendulum-v1"

    def evaluate_into(out, fault="", *extra):
        args = [*tiny_eval_argv(tmp_path / "lpo.json", tasks, out), *extra]
        monkeypatch.setenv("DISCOVER_FAULT", fault)
        proc = tiny_job.discover([str(a) for a in args])
        log = proc.communicate(timeout=600)[0]
        return proc.returncode, log

    def untimed(out):
        results = json.loads((out / "results.json").read_text())
        del results["wall_seconds"]
        return results

    code, log = evaluate_into(tmp_path / "whole")
    assert code == 0, log
    code, log = evaluate_into(tmp_path / "killed", "eval_task:3")
    assert code == -9, log
    assert sorted(p.name for p in (tmp_path / "killed" / "tasks").iterdir()) == [
        "gymnax_Acrobot-v1.json",
        "gymnax_CartPole-v1.json",
    ]
    code, log = evaluate_into(tmp_path / "killed")
    assert code == 0, log
    assert re.findall(r"^(\S+): done earlier", log, re.MULTILINE) == [
        "gymnax:CartPole-v1",
        "gymnax:Acrobot-v1",
    ]
    assert re.findall(r"^(\S+): 2 rules x", log, re.MULTILINE) == [
        "gymnax:MountainCar-v0",
        "gymnax:Pendulum-v1",
    ]
    assert untimed(tmp_path / "killed") == untimed(tmp_path / "whole")
    code, log = evaluate_into(tmp_path / "killed", "", "--seeds", "3")
    assert code != 0 and "seeds: 2 -> 3" in log and "Use another --out" in log


def test_reused_baselines_give_the_numbers_of_training_them(tmp_path, capfd):
    """Rule B evaluated with --reuse-baselines pointing at rule A's evaluation (same settings)
    trains only B, and its results equal B's evaluation that trained PPO-clip itself (but for
    wall-clock times); an evaluation with other seeds is refused, naming the difference."""
    rule = make_rule("lpo", hidden_size=8)
    for name, seed in (("a", 1), ("b", 2)):
        params = jax.tree.map(lambda x: x + 0.3, rule.init(jax.random.PRNGKey(seed)))
        save_rule(tmp_path / name, rule, params, train_tasks=["gymnax:CartPole-v1"])
    tasks = "gymnax:CartPole-v1,gymnax:Acrobot-v1"

    def evaluate_into(name, out, *extra):
        argv = tiny_eval_argv(tmp_path / f"{name}.json", tasks, tmp_path / out)[1:]
        assert _cli(*argv, *extra) == 0
        results = json.loads((tmp_path / out / "results.json").read_text())
        del results["wall_seconds"]
        return results

    evaluate_into("a", "a")
    trained = evaluate_into("b", "b_trained")
    capfd.readouterr()
    reused = evaluate_into("b", "b_reused", "--reuse-baselines", str(tmp_path / "a"))
    log = capfd.readouterr().out
    assert log.count("(ppo_clip read from --reuse-baselines)") == 2
    assert reused == trained
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    assert (
        reused["tasks"]["gymnax:Acrobot-v1"]["rules"]["ppo_clip"]
        == a["tasks"]["gymnax:Acrobot-v1"]["rules"]["ppo_clip"]
    )
    with pytest.raises(ValueError, match=r"seeds: 2 -> 3"):
        evaluate_into("b", "b_other", "--seeds", "3", "--reuse-baselines", str(tmp_path / "a"))
    with pytest.raises(ValueError, match="no tasks/ folder"):
        evaluate_into("b", "b_none", "--reuse-baselines", str(tmp_path / "nowhere"))
