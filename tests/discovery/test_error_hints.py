"""Errors that show the fix: `--set KEY VALUE` without '=', and "did you mean" (difflib) for a
misspelt spec key, section, rule, inner algorithm, task, source and rule SOURCE."""

import pytest

from discovery import cli
from discovery.evaluation.sources import resolve_source
from discovery.spec import SpecError, parse_job_spec
from inner_algos.config_checks import did_you_mean
from inner_algos.envs import parse_label, task_from_table
from tests.support import tiny_job

pytestmark = pytest.mark.fast


def test_set_without_equals_names_the_fix(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "runs/quickstart.toml", "--set", "job.generations", "80"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --set: 'job.generations' has no '='" in err
    assert "--set job.generations=VALUE" in err
    assert "unrecognized arguments" not in err


def test_did_you_mean_picks_close_names_only():
    assert did_you_mean("ppo-clip", ["dpo", "ppo_clip", "adam"]) == " (did you mean 'ppo_clip'?)"
    assert did_you_mean("zzz", ["dpo", "ppo_clip"]) == ""


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"ppo": {"learning_rat": 0.1}},
            r"ppo.learning_rat \(did you mean 'learning_rate'",
        ),
        (
            {"meta_optimiser": {}},
            r"\[meta_optimiser\] \(did you mean 'meta_optimizer'",
        ),
        ({"rule": {"name": "lpp"}}, r"rule.name = 'lpp' is unknown \(did you mean 'lpo'"),
        ({"inner": {"name": "pp"}}, r"inner.name = 'pp' is unknown \(did you mean 'ppo'\?\)"),
        (
            {"tasks": [{"env_name": "hoper"}]},
            r"'hoper' is not a brax environment \(did you mean 'hopper'",
        ),
        (
            {"tasks": [{"source": "gymax", "env_name": "x"}]},
            r"'gymax' is unknown \(did you mean 'gymnax'",
        ),
    ],
)
def test_unknown_names_in_a_spec_suggest_the_close_ones(tmp_path, change, message):
    table = {**tiny_job.table(tmp_path), **change}
    if "ppo" in change:
        table["ppo"] = {**tiny_job.TABLE["ppo"], **change["ppo"]}
    with pytest.raises(SpecError, match=message):
        parse_job_spec(table)


def test_unknown_task_labels_and_sources_suggest_the_close_ones():
    with pytest.raises(ValueError, match=r"source = 'gymax' is unknown \(did you mean 'gymnax'\?\)"):
        parse_label("gymax:CartPole-v1")
    with pytest.raises(ValueError, match=r"not a gymnax environment \(did you mean 'CartPole-v1'\?\)"):
        task_from_table(parse_label("gymnax:CartPol-v1"))
    with pytest.raises(ValueError, match=r"study_v3_sed0 does not exist \(did you mean '.*study_v3_seed0'"):
        resolve_source("results/study_v3/study_v3_sed0")
