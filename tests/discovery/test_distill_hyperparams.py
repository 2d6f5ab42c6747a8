"""`discover distill` for the hyperparams family: a planted schedule (a degree-2 learning-rate
schedule, a constant gamma) recovered by both targets, the fidelity against values by hand, the
family's options, and the folder written being a SOURCE that inspect reads. Small budgets, fixed
seeds."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from discovery.cli import main as cli_main
from discovery.distill import hyperparams, symbolic
from discovery.evaluation.inspect import run_inspect
from discovery.evaluation.sources import resolve_source
from discovery.rule_io import save_rule
from inner_algos.rules import make_rule

LR_COEFFICIENTS = (float(np.log(1e-3)), 1.0, -1.5)  # log lr(p) = log 1e-3 + p - 1.5 p^2
GAMMA_LOGIT = 4.0  # a constant gamma = sigmoid(4)


def _planted():
    teacher = make_rule("hyperparams", learn=["learning_rate", "gamma"], progress_degree=2)
    meta = {
        "learning_rate": jnp.asarray(LR_COEFFICIENTS, jnp.float32),
        "gamma": jnp.asarray([GAMMA_LOGIT, 0.0, 0.0], jnp.float32),
    }
    return teacher, meta


def _lr_by_hand(p):
    c0, c1, c2 = LR_COEFFICIENTS
    return np.exp(c0 + c1 * p + c2 * p**2)


def _samples():
    teacher, meta = _planted()
    train = hyperparams.tabulate(teacher, meta, np.linspace(0.0, 1.0, hyperparams.GRID))
    held_out = hyperparams.tabulate(teacher, meta, np.random.default_rng(1).uniform(0.0, 1.0, 500))
    return teacher, train, held_out


def test_the_samples_are_the_planted_schedule():
    _, train, held_out = _samples()
    assert set(train.values) == {"learning_rate", "gamma"}
    np.testing.assert_allclose(train.values["learning_rate"], _lr_by_hand(train.progress), rtol=1e-5)
    np.testing.assert_allclose(held_out.unconstrained["gamma"], GAMMA_LOGIT)
    np.testing.assert_allclose(held_out.values["gamma"], 1 / (1 + np.exp(-GAMMA_LOGIT)), rtol=1e-6)


def test_fidelity_measures_against_values_by_hand():
    """A student whose log lr is off by 0.1 everywhere: R^2 and max error by hand; a constant
    teacher's R^2 is undefined (None) and its max error 0 for an exact student."""
    teacher = make_rule("hyperparams_formula", formulas={"learning_rate": "p", "gamma": "2"})
    student = make_rule("hyperparams_formula", formulas={"learning_rate": "p + 0.1", "gamma": "2"})
    progress = np.array([0.0, 0.25, 0.5, 1.0])
    f = hyperparams.fidelity(student, {}, hyperparams.tabulate(teacher, {}, progress))
    target, error = np.exp(progress), np.exp(progress) * (np.exp(0.1) - 1)
    assert f["learning_rate_r2"] == pytest.approx(1 - np.mean(error**2) / np.var(target), rel=1e-5)
    assert f["learning_rate_max_error"] == pytest.approx(error.max(), rel=1e-5)
    assert f["gamma_r2"] is None and f["gamma_max_error"] == 0.0 and f["finite"]


def test_the_polynomial_student_recovers_a_planted_schedule():
    teacher, train, held_out = _samples()
    student, meta = hyperparams.fit_polynomial(teacher, train, hyperparams.PolynomialOptions(degree=2))
    assert student.name == "hyperparams" and student.progress_degree == 2
    assert set(student.learn) == {"learning_rate", "gamma"}
    np.testing.assert_allclose(meta["learning_rate"], LR_COEFFICIENTS, atol=1e-4)
    f = hyperparams.fidelity(student, meta, held_out)
    assert f["learning_rate_r2"] >= 0.9999 and f["gamma_max_error"] == 0.0, f
    line, line_meta = hyperparams.fit_polynomial(teacher, train, hyperparams.PolynomialOptions(degree=1))
    assert hyperparams.fidelity(line, line_meta, held_out)["learning_rate_r2"] < 0.99  # a line is not enough


def test_the_formula_search_recovers_a_planted_schedule():
    teacher, train, held_out = _samples()
    options = symbolic.SearchOptions(population=300, generations=5)
    student, meta = hyperparams.fit_symbolic(teacher, train, options)
    assert student.name == "hyperparams_formula" and meta == {}
    formulas = student.options()["formulas"]
    assert formulas["gamma"] == "4.0"  # a constant schedule is written as its number
    f = hyperparams.fidelity(student, meta, held_out)
    assert f["learning_rate_r2"] >= 0.99 and f["gamma_max_error"] == 0.0, (formulas, f)


@pytest.mark.slow
def test_the_formula_search_finds_the_planted_polynomial_with_its_default_budget():
    teacher, train, held_out = _samples()
    student, meta = hyperparams.fit_symbolic(teacher, train, symbolic.SearchOptions())
    f = hyperparams.fidelity(student, meta, held_out)
    assert f["learning_rate_r2"] >= 0.99999 and f["learning_rate_max_error"] < 1e-7, (student.formulas, f)


def _export_planted(tmp_path):
    teacher, meta = _planted()
    return save_rule(tmp_path / "planted", teacher, meta)


def test_distill_command_writes_a_source_that_inspect_reads(tmp_path, capsys):
    out = tmp_path / "hp_sym"
    argv = ["distill", str(_export_planted(tmp_path)), "--to", "symbolic", "--out", str(out)]
    assert cli_main(argv + ["--population", "100", "--generations", "2"]) == 0
    printed = capsys.readouterr().out
    assert "formula: learning_rate(p) = exp(" in printed and "formula: gamma(p) = sigmoid(4.0)" in printed
    assert "fidelity (held-out): learning_rate R^2" in printed and "gamma R^2 n/a (constant)" in printed
    source = resolve_source(str(out))
    assert source.rule.name == "hyperparams_formula" and source.header["teacher_rule"] == "teacher"
    report = json.loads((out / "distill.json").read_text())
    assert report["to"] == "symbolic" and report["fidelity_held_out"]["gamma_max_error"] == 0.0
    assert report["fidelity_held_out"] == source.header["distilled"]["fidelity_held_out"]
    written = run_inspect([source], tmp_path / "inspect")
    printed = capsys.readouterr().out
    assert "formula: learning_rate(p) = exp(" in printed and "held-out learning_rate R^2" in printed
    assert any(p.name == "rule_hyperparams.png" for p in written)


def test_distill_to_a_smaller_polynomial(tmp_path, capsys):
    out = tmp_path / "hp_poly"
    argv = ["distill", str(_export_planted(tmp_path)), "--to", "mlp", "--degree", "1", "--out", str(out)]
    assert cli_main(argv) == 0
    assert "polynomial: hyperparams rule of progress_degree 1" in capsys.readouterr().out
    source = resolve_source(str(out))
    assert source.rule.name == "hyperparams" and source.rule.progress_degree == 1
    assert source.meta_params["learning_rate"].shape == (2,)


@pytest.mark.parametrize(
    ("source", "flag"),
    [
        ("planted", ["--grad-weight", "0.5"]),
        ("planted", ["--no-collect"]),
        ("planted", ["--hidden-size", "8"]),
        ("dpo", ["--degree", "1"]),
    ],
)
def test_options_of_another_family_are_refused(tmp_path, capsys, source, flag):
    source = str(_export_planted(tmp_path)) if source == "planted" else source
    argv = ["distill", source, "--to", "mlp", "--out", str(tmp_path / "x"), *flag]
    assert cli_main(argv) == 2
    family = "hyperparams" if flag[0] == "--degree" else "drift"
    assert f"{flag[0]} applies to the {family} family only" in capsys.readouterr().err


def test_a_rule_scheduling_nothing_is_refused(tmp_path, capsys):
    assert cli_main(["distill", "hyperparams_formula", "--to", "mlp", "--out", str(tmp_path / "x")]) == 2
    assert "schedules no hyperparameter" in capsys.readouterr().err
