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
