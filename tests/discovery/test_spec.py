"""Spec parsing: unknown keys, wrong types and out-of-range values name the key; overrides apply."""

import re

import pytest

from discovery.spec import SpecError, apply_overrides, parse_ppo, parse_rule, parse_task


@pytest.mark.fast
def test_overrides_are_parsed_as_toml_values():
    table = apply_overrides(
        {"ppo": {"num_envs": 8}},
        ["ppo.num_envs=32", "ppo.actor_hidden=[8, 8]", "rule.name=dpo", "ppo.anneal_lr=true"],
    )
    assert table == {
        "ppo": {"num_envs": 32, "actor_hidden": [8, 8], "anneal_lr": True},
        "rule": {"name": "dpo"},
    }
    config = parse_ppo({"num_envs": 32, "actor_hidden": [8, 8], "learning_rate": 1})
    assert config.actor_hidden == (8, 8) and config.learning_rate == 1.0


@pytest.mark.fast
@pytest.mark.parametrize(
    "parse, table, message",
    [
        (parse_ppo, {"num_env": 8}, r"ppo.num_env \(did you mean 'num_envs'\?\); allowed keys in .*num_envs"),
        (parse_ppo, {"num_envs": "many"}, r"ppo.num_envs = 'many' has the wrong type; expected int"),
        (parse_ppo, {"anneal_lr": 1}, r"ppo.anneal_lr = 1 has the wrong type; expected bool"),
        (parse_ppo, {"learning_rate": -0.1}, r"ppo.learning_rate = -0.1 must be > 0"),
        (parse_task, {"env_name": "walker"}, r"valid names: .*walker2d"),
        (parse_rule, {"name": "lpo", "hidden": 4}, r"rule.hidden \(did you mean 'hidden_size'"),
        (
            parse_rule,
            {"name": "nope"},
            r"rule.name = 'nope' is unknown (\(did you mean .*\))?; valid rules: .*dpo",
        ),
        (parse_rule, {"eps": 0.1}, r"needs a `name` key"),
    ],
)
def test_bad_values_name_the_key(parse, table, message):
    with pytest.raises(SpecError, match=message):
        parse(table)


@pytest.mark.fast
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


@pytest.mark.fast
@pytest.mark.parametrize(
    "meta_optimizer, sections, message",
    [
        ({"name": "pes", "num_pairs": 0}, {}, r"meta_optimizer.num_pairs = 0 must be >= 1"),
        (
            {"name": "truncated_es"},
            {"meta_objective": {"kind": "eval_return"}},
            r"meta_objective.kind = 'eval_return' has no per-update form for truncated estimators",
        ),
        ({"name": "pes", "lifetime": 8}, {}, r"meta_optimizer.lifetime = 8 exceeds ppo.num_updates = 4"),
        (
            {"name": "metagrad", "truncation": "log_uniform", "min_lifetime": 2, "max_lifetime": 9},
            {},
            r"meta_optimizer.max_lifetime = 9 exceeds ppo.num_updates = 4",
        ),
        ({"name": "online_metagrad"}, {}, r"online_metagrad' meta-learns hyperparameters: rule.name = 'lpo'"),
        (
            {"name": "es", "strategy": "snes", "fitness_shaping": "z_score"},
            {},
            r"fitness_shaping = 'z_score'",
        ),
        ({"name": "gradient_descent"}, {}, r"meta_optimizer.name = 'gradient_descent' is unknown; valid: es"),
    ],
)
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


@pytest.mark.fast
def test_resolved_spec_holds_every_estimator_option():
    from discovery.spec import parse_job_spec

    spec = parse_job_spec(_job_table("/tmp/unused", {"name": "pes", "num_pairs": 2}))
    assert spec.table["meta_optimizer"]["num_pairs"] == 2
    assert spec.table["meta_optimizer"]["sigma"] == 0.03  # the default, filled in


@pytest.mark.fast
def test_an_override_under_an_array_of_tables_sets_every_entry():
    table = apply_overrides(
        {"tasks": [{"env_name": "ant"}, {"env_name": "hopper"}]}, ["tasks.episode_length=16"]
    )
    assert table == {
        "tasks": [{"env_name": "ant", "episode_length": 16}, {"env_name": "hopper", "episode_length": 16}]
    }


def test_a_run_directory_with_a_spec_but_no_checkpoint_is_a_fresh_start(tmp_path, monkeypatch):
    """A start that failed after writing spec.toml (no checkpoint yet) does not block the
    corrected rerun: it starts afresh and its own spec replaces the stale one."""
    from discovery.job import checkpoint
    from discovery.job.runner import run_job
    from discovery.spec import dump_toml, load_toml, parse_job_spec
    from tests.support import tiny_job

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


def _spelled(table: dict, randomize: str, normalize: str) -> dict:
    """`table` (a `_job_table`) with a randomised task and the objective's normalisation given
    under the key names `randomize` and `normalize`."""
    table["tasks"][0][randomize] = {"mass_scale": [0.5, 2.0]}
    table["meta_objective"] = {"kind": "final_return", normalize: "baseline"}
    return table


@pytest.fixture
def fresh_notes(monkeypatch):
    """Forget which old spellings this process has noted (each is noted once per process)."""
    from inner_algos import config_checks

    monkeypatch.setattr(config_checks, "_NOTED", set())


@pytest.mark.fast
def test_old_key_spellings_are_read_as_the_new_ones_with_one_note_each(fresh_notes):
    from discovery.spec import parse_job_spec
    from inner_algos.config_checks import OldSpelling

    with pytest.warns(OldSpelling) as notes:
        old = parse_job_spec(_spelled(_job_table("/tmp/unused", {}), "randomise", "normalise"))
        parse_job_spec(_spelled(_job_table("/tmp/unused", {}), "randomise", "normalise"))
    notes = [str(n.message) for n in notes if n.category is OldSpelling]
    assert sorted(n.split("`")[1] for n in notes) == ["normalise", "randomise"]  # once, not per parse
    assert any("`normalise` is the old spelling of `normalize`" in n for n in notes)
    new = parse_job_spec(_spelled(_job_table("/tmp/unused", {}), "randomize", "normalize"))
    assert old == new  # same typed sections, same resolved table (in the new spelling)
    assert new.meta_objective.normalize == "baseline"
    assert new.tasks[0].randomize == (("mass_scale", (0.5, 2.0)),)
    assert new.table["tasks"][0]["randomize"] == {"mass_scale": [0.5, 2.0]}


@pytest.mark.fast
def test_the_new_key_spellings_give_no_note(fresh_notes):
    import warnings

    from discovery.spec import parse_job_spec

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_job_spec(_spelled(_job_table("/tmp/unused", {}), "randomize", "normalize"))


@pytest.mark.fast
@pytest.mark.parametrize(
    "section, old, new",
    [("meta_objective", "normalise", "normalize"), ("tasks[0]", "randomise", "randomize")],
)
def test_a_key_in_both_spellings_is_refused(fresh_notes, section, old, new):
    from discovery.spec import parse_job_spec

    table = _spelled(_job_table("/tmp/unused", {}), "randomize", "normalize")
    entry = table["meta_objective"] if section == "meta_objective" else table["tasks"][0]
    entry[old] = entry[new]
    with pytest.raises(
        SpecError,
        match=re.escape(
            f"{section}.{old} and {section}.{new} are one key in two spellings; keep only {section}.{new}"
        ),
    ):
        parse_job_spec(table)


@pytest.mark.fast
def test_a_run_directory_spec_in_the_old_spelling_matches_its_resolved_spec(fresh_notes, tmp_path):
    """spec.toml and a checkpoint's spec written before the rename compare equal to the same
    spec resolved today, so the run resumes."""
    from discovery.job import files as job_files
    from discovery.spec import dump_toml, load_toml, parse_job_spec
    from inner_algos.config_checks import OldSpelling

    resolved = parse_job_spec(_spelled(_job_table(tmp_path, {}), "randomize", "normalize")).table
    text = dump_toml(resolved)
    old_text = re.sub(r"\brandomize\b", "randomise", re.sub(r"\bnormalize\b", "normalise", text))
    assert "normalise = " in old_text and "randomise = " in old_text and "normalize_obs" in old_text
    (tmp_path / "spec.toml").write_text(old_text)
    saved = load_toml(tmp_path / "spec.toml")
    with pytest.warns(OldSpelling):
        job_files.check_resumed_spec(tmp_path, saved, resolved)
    job_files.check_checkpoint_spec(tmp_path, {"spec": saved, "step": 1}, resolved)
    with pytest.raises(SpecError, match=r"meta_objective.normalize: 'baseline' -> 'none'"):
        job_files.check_resumed_spec(
            tmp_path,
            saved,
            {**resolved, "meta_objective": {**resolved["meta_objective"], "normalize": "none"}},
        )


@pytest.mark.fast
def test_a_task_table_of_an_older_run_directory_keeps_its_ranges(fresh_notes):
    """Evaluation reads a run directory's task tables as they are (`task_from_table`): an old
    `randomise` key still gives the randomised task it trained on."""
    from inner_algos.config_checks import OldSpelling
    from inner_algos.envs import task_from_table

    old = {"source": "gymnax", "env_name": "CartPole-v1", "randomise": {"length": [0.2, 2.0]}}
    with pytest.warns(OldSpelling, match="`randomise` is the old spelling of `randomize`"):
        task = task_from_table(old)
    assert task.label == "gymnax:CartPole-v1~length=0.2..2"
