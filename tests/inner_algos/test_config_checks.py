"""The settings validator: each constraint accepts its boundary cases and names section, field
and value when it refuses one."""

import pytest

from inner_algos.config_checks import (
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    UNIT,
    UNIT_OPEN_CLOSED,
    Integer,
    Interval,
    OneOf,
    Widths,
    check_fields,
)
from inner_algos.ppo import PPOConfig

pytestmark = pytest.mark.fast  # pure functions: part of `python -m pytest -m fast`


@pytest.mark.parametrize(
    "constraint, good, bad, words",
    [
        (POSITIVE, [1e-9, 3], [0, -1.0, float("nan"), "1"], "must be > 0"),
        (NON_NEGATIVE, [0, 2.5], [-1e-9], "must be >= 0"),
        (UNIT_OPEN_CLOSED, [1, 0.5], [0, 1.0001], "must be in (0, 1]"),
        (UNIT, [0, 1], [-0.1, 1.1], "must be in [0, 1]"),
        (Interval(0, 1, low_open=True, high_open=True), [0.2], [0, 1], "must be in (0, 1)"),
        (Interval(None, 0.5, high_open=True), [-3], [0.5], "must be < 0.5"),
        (POSITIVE_INT, [1, 7], [0, 2.0, True], "must be a positive integer"),
        (Integer(0), [0], [-1], "must be an integer >= 0"),
        (OneOf(("a", "b")), ["b"], ["c"], "is unknown; valid: a, b"),
        (Widths(), [(), [1, 2]], [[0], [2, 1.5]], "must be a list of positive integers"),
    ],
)
def test_constraints_accept_and_refuse(constraint, good, bad, words):
    class Settings:
        pass

    for value in good:
        Settings.x = value
        check_fields(Settings, "sec", x=constraint)
    for value in bad:
        Settings.x = value
        with pytest.raises(ValueError) as err:
            check_fields(Settings, "sec", x=constraint)
        assert str(err.value) == f"sec.x = {value!r} {words}"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_envs", 0, "ppo.num_envs = 0 must be a positive integer"),
        ("gamma", 0.0, "ppo.gamma = 0.0 must be in (0, 1]"),
        ("clip_eps", 1.0, "ppo.clip_eps = 1.0 must be in (0, 1)"),
        ("ent_coef", -0.1, "ppo.ent_coef = -0.1 must be >= 0"),
        ("activation", "gelu2", "ppo.activation = 'gelu2' is unknown (did you mean 'elu' or 'relu'"),
    ],
)
def test_ppo_config_names_the_field(field, value, message):
    with pytest.raises(
        ValueError,
        match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]"),
    ):
        PPOConfig(**{field: value})
