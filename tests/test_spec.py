"""Spec parsing: unknown keys, wrong types and out-of-range values name the key; overrides apply."""

import pytest

from discovery.spec import SpecError, apply_overrides, parse_ppo, parse_rule, parse_task


def test_overrides_are_parsed_as_toml_values():
    table = apply_overrides({"ppo": {"num_envs": 8}}, ["ppo.num_envs=32", "ppo.actor_hidden=[8, 8]",
                                                       "rule.name=dpo", "ppo.anneal_lr=true"])
    assert table == {"ppo": {"num_envs": 32, "actor_hidden": [8, 8], "anneal_lr": True},
                     "rule": {"name": "dpo"}}
    config = parse_ppo({"num_envs": 32, "actor_hidden": [8, 8], "learning_rate": 1})
    assert config.actor_hidden == (8, 8) and config.learning_rate == 1.0


@pytest.mark.parametrize(
    "parse, table, message",
    [
        (parse_ppo, {"num_env": 8}, r"unknown key\(s\) ppo.num_env; allowed keys in \[ppo\]: .*num_envs"),
        (parse_ppo, {"num_envs": "many"}, r"ppo.num_envs = 'many' has the wrong type; expected int"),
        (parse_ppo, {"anneal_lr": 1}, r"ppo.anneal_lr = 1 has the wrong type; expected bool"),
        (parse_ppo, {"learning_rate": -0.1}, r"ppo.learning_rate = -0.1 must be > 0"),
        (parse_task, {"env_name": "walker"}, r"valid names: .*walker2d"),
        (parse_rule, {"name": "lpo", "hidden": 4}, r"unknown key\(s\) rule.hidden; .*hidden_size"),
        (parse_rule, {"name": "nope"}, r"rule.name = 'nope' is unknown; valid rules: .*dpo"),
        (parse_rule, {"eps": 0.1}, r"needs a `name` key"),
    ],
)
def test_bad_values_name_the_key(parse, table, message):
    with pytest.raises(SpecError, match=message):
        parse(table)


def test_malformed_override_is_rejected():
    with pytest.raises(SpecError, match="section.key=value"):
        apply_overrides({}, ["ppo.num_envs"])


def _job_table(run_dir, meta_optimizer: dict, **sections) -> dict:
    """A tiny discovery spec with a PPO-clip-normalised objective (a job would measure baselines)."""
    table = {
        "job": {"name": "bad", "run_dir": str(run_dir)},
        "tasks": [{"env_name": "inverted_pendulum", "episode_length": 16}],
        "rule": {"name": "lpo", "hidden_size": 4},
        "ppo": {"num_envs": 4, "rollout_length": 4, "num_updates": 4, "num_minibatches": 1},
        "meta_objective": {"kind": "final_return", "normalize": "baseline"},
        "meta_optimizer": meta_optimizer,
    }
    for name, values in sections.items():
        table[name] = {**table[name], **values}
    return table


@pytest.mark.parametrize("meta_optimizer, sections, message", [
    ({"name": "pes", "num_pairs": 0}, {}, r"meta_optimizer.num_pairs = 0 must be >= 1"),
    ({"name": "truncated_es"}, {"meta_objective": {"kind": "eval_return"}},
     r"meta_objective.kind = 'eval_return' has no per-update form for truncated estimators"),
    ({"name": "pes", "lifetime": 8}, {}, r"meta_optimizer.lifetime = 8 exceeds ppo.num_updates = 4"),
    ({"name": "metagrad", "truncation": "log_uniform", "min_lifetime": 2, "max_lifetime": 9}, {},
     r"meta_optimizer.max_lifetime = 9 exceeds ppo.num_updates = 4"),
    ({"name": "online_metagrad"}, {}, r"online_metagrad' meta-learns hyperparameters: rule.name = 'lpo'"),
    ({"name": "es", "strategy": "snes", "fitness_shaping": "z_score"}, {}, r"fitness_shaping = 'z_score'"),
    ({"name": "gradient_descent"}, {}, r"meta_optimizer.name = 'gradient_descent' is unknown; valid: es"),
])
def test_a_rejected_spec_leaves_nothing_on_disk(tmp_path, meta_optimizer, sections, message):
    """Estimator options and estimator x objective x rule combinations are refused in parsing:
    `discover run` fails at once, before measuring baselines or writing the run directory."""
    from discovery.job.runner import run_job
    from discovery.spec import parse_job_spec

    table = _job_table(tmp_path / "run", meta_optimizer, **sections)
    with pytest.raises(SpecError, match=message):
        parse_job_spec(table)
    with pytest.raises(SpecError, match=message):
        run_job(table, progress=False)
    assert not (tmp_path / "run").exists()


def test_resolved_spec_holds_every_estimator_option():
    from discovery.spec import parse_job_spec

    spec = parse_job_spec(_job_table("/tmp/unused", {"name": "pes", "num_pairs": 2}))
    assert spec.table["meta_optimizer"]["num_pairs"] == 2
    assert spec.table["meta_optimizer"]["sigma"] == 0.03  # the default, filled in


def test_an_override_under_an_array_of_tables_sets_every_entry():
    table = apply_overrides({"tasks": [{"env_name": "ant"}, {"env_name": "hopper"}]},
                            ["tasks.episode_length=16"])
    assert table == {"tasks": [{"env_name": "ant", "episode_length": 16},
                               {"env_name": "hopper", "episode_length": 16}]}


def test_a_run_directory_with_a_spec_but_no_checkpoint_is_a_fresh_start(tmp_path, monkeypatch):
    """A start that failed after writing spec.toml (no checkpoint yet) does not block the
    corrected rerun: it starts afresh and its own spec replaces the stale one."""
    import tiny_job
    from discovery.job import checkpoint
    from discovery.job.runner import run_job
    from discovery.spec import dump_toml, load_toml, parse_job_spec

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = parse_job_spec(tiny_job.table(run_dir, ppo={"learning_rate": 0.5})).table
    (run_dir / "spec.toml").write_text(dump_toml(stale))

    class Started(Exception):
        """The job got past its start-up checks (raised instead of restoring a checkpoint)."""

    def started(*args, **kwargs):
        raise Started

    monkeypatch.setattr(checkpoint, "Checkpointer", started)
    with pytest.raises(Started):
        run_job(tiny_job.table(run_dir), progress=False)
    assert load_toml(run_dir / "spec.toml")["ppo"]["learning_rate"] == tiny_job.TABLE["ppo"]["learning_rate"]
