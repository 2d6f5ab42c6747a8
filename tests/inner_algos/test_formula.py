"""The formula language of `symbolic` rules: what it refuses, what it computes, and that PPO's loss
under a formula drift is the loss written by hand."""

import io
import json
import tokenize
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.rule_io import load_rule, save_rule
from inner_algos.ppo import PPOConfig, rule_slots
from inner_algos.rules import DriftInputs, make_rule
from inner_algos.rules import formula as formula_module
from inner_algos.rules.formula import FormulaError, constants, evaluate, parse, to_text, with_constants
from tests.inner_algos.test_ppo_loss import _loss, _reference, _setup

pytestmark = pytest.mark.fast

VARS = ("r", "A", "p")

HOSTILE = [
    ('__import__("os").system("true")', "not allowed"),
    ("__import__", "name '__import__'"),
    ("r.__class__", "character '.'"),
    ("().__class__.__bases__[0]", "character '.'"),
    ("lambda: 0", "character ':'"),
    ("lambda r: r", "character ':'"),
    ("import os", "name 'import'"),
    ("exec('1')", 'character "\'"'),
    ("eval", "name 'eval'"),
    ("open", "name 'open'"),
    ("r[0]", "character '\\['"),
    ("r; A", "character ';'"),
    ("r if A else 0", "unexpected 'if'"),
    ("9**9**9", "exponent 3.8742e\\+08"),
    ("r**1000", "exponent 1000"),
    ("r**A", "exponent .* must be a constant"),
    ("10**15", "above 1e\\+12"),
    ("1e999", "not finite"),
    ("1" + "0" * 400, "not finite"),
    ("r + x", "name 'x'"),
    ("nan", "name 'nan'"),
    ("oo", "name 'oo'"),
    ("tanh(r, A)", "takes 1 arguments, got 2"),
    ("clip(r, 1)", "takes 3 arguments"),
    ("max(r)", "takes at least 2"),
    ("tanh r", "expected '\\('"),
    ("(" * 60 + "r" + ")" * 60, "nested deeper"),
    ("-" * 60 + "r", "nested deeper"),
    ("+".join(["r"] * 400), "more than 300 nodes"),
    ("r+" * 3000 + "r", "at most 4000"),
    ("", "empty"),
    ("r +", "at the end"),
    ("(r", "expected '\\)'"),
    ("r,A", "unexpected ','"),
    ("2**(1/0)", "divides by zero"),
]


@pytest.mark.parametrize("text, reason", HOSTILE)
def test_hostile_formulas_are_refused_with_the_reason(text, reason):
    with pytest.raises(FormulaError, match=reason):
        parse(text, VARS)
    with pytest.raises(ValueError, match="rule.expression = .* is refused"):
        make_rule("symbolic", expression=text)


def test_a_formula_that_is_not_text_is_refused():
    with pytest.raises(FormulaError, match="must be text"):
        parse(["r"], VARS)


def test_the_formula_module_calls_no_eval_exec_or_import():
    """No builtin that runs text as code appears in the module's code (docstrings and attributes
    such as re.compile aside)."""
    source = Path(formula_module.__file__).read_text()
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    names = {
        t.string for prev, t in zip(tokens, tokens[1:]) if t.type == tokenize.NAME and prev.string != "."
    }
    assert not names & {"eval", "exec", "compile", "__import__", "getattr", "globals", "locals", "sympify"}


@pytest.mark.parametrize(
    "text, want",
    [
        ("2**3**2", 512.0),
        ("-2**2", -4.0),
        ("2**-1", 0.5),
        ("8/4/2", 1.0),
        ("1 - 2 - 3", -4.0),
        ("2*3 + 4/8", 6.5),
        ("Max(0, -3) + Min(1, 2, -5) + Abs(-2)", -3.0),
        ("clip(5, 0.8, 1.2) + relu(-1) + sqrt(4) + exp(0) + log(1) + tanh(0)", 4.2),
        ("1.5e-3 * 2e3", 3.0),
    ],
)
def test_arithmetic_follows_the_usual_precedence(text, want):
    np.testing.assert_allclose(float(evaluate(parse(text, VARS), {})), want, rtol=1e-6)


def test_ppo_clip_written_as_a_formula_is_ppo_clip():
    r = jnp.array([0.5, 0.85, 1.0, 1.1, 1.5, 1.5, 0.5])
    a = jnp.array([-1.0, 2.0, 3.0, -2.0, 2.0, -1.0, 1.0])
    rule = make_rule("symbolic", expression="relu((r - clip(r, 0.8, 1.2)) * A)")
    want = [0.3, 0.0, 0.0, 0.0, 0.6, 0.0, 0.0]  # by hand: (0.5-0.8)(-1), (1.5-1.2)(2)
    np.testing.assert_allclose(rule.apply({}, DriftInputs(r, a)), want, atol=1e-6)
    assert not rule.temporal and make_rule("symbolic", expression="p*(r-1)**2").temporal


def test_ppo_loss_under_a_formula_drift_is_the_loss_by_hand():
    """A temporally-aware formula (it reads p) inside PPO's loss, against numpy."""
    params, batch, params32, batch32 = _setup(4)
    text = "relu((r - 1)*A - 0.5*tanh(2*(r - 1)*A)) + 0.3*p*log(r)**2 + Max(0, -A)*abs(r - 1)**3"
    progress = 0.7

    def by_hand(r, a):
        x = (r - 1) * a
        return (
            np.maximum(x - 0.5 * np.tanh(2 * x), 0)
            + 0.3 * progress * np.log(r) ** 2
            + np.maximum(0, -a) * np.abs(r - 1) ** 3
        )

    slot = rule_slots(PPOConfig(), make_rule("symbolic", expression=text)).drift
    total, stats = _loss(params32, batch32, slot, meta={}, progress=progress)
    want, _, _, drift = _reference(params, batch, by_hand, 0.5, False)
    assert np.mean(drift) > 1e-2  # the drift is in play
    np.testing.assert_allclose(total, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["drift_mean"], drift.mean(), rtol=1e-4, atol=1e-7)
    grad = jax.grad(lambda p: _loss(p, batch32, slot, meta={}, progress=progress)[0])(params32)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))


def test_an_exported_formula_rule_round_trips_and_a_hostile_header_is_refused(tmp_path):
    rule = make_rule("symbolic", expression="relu(log(r)*A)**2")
    stem = save_rule(tmp_path / "rule", rule, {})
    loaded, meta, header = load_rule(stem)
    assert loaded == rule and meta == {} and header["options"]["expression"] == "relu(log(r)*A)**2"
    header["options"]["expression"] = '__import__("os").system("touch pwned")'
    stem.with_suffix(".json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match="cannot be built: .*is refused: character"):
        load_rule(stem)
    assert not (Path.cwd() / "pwned").exists()


def test_a_tree_written_back_parses_to_itself_and_its_numbers_can_be_replaced():
    tree = parse("relu((r - clip(r, 0.8, 1.2)) * A) + 2*p**2 - -Max(A, 0.5)", VARS)
    assert parse(to_text(tree), VARS) == tree
    assert constants(tree) == [0.8, 1.2, 2.0, 0.5]
    changed = with_constants(tree, [0.7, 1.3, 3.0, 0.5])
    point = {"r": 1.25, "A": 1.0, "p": 1.0}
    np.testing.assert_allclose(float(evaluate(tree, point)), 0.05 + 2.0 + 1.0, rtol=1e-6)  # r above 1.2
    np.testing.assert_allclose(float(evaluate(changed, point)), 0.0 + 3.0 + 1.0, rtol=1e-6)  # inside 1.3
