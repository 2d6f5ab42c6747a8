"""`discover distill`: known answers (a planted formula, DPO, PPO-clip's clipping), the data it
collects, and the folder it writes being a SOURCE like any other. Small budgets, fixed seeds."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from discovery.cli import main as cli_main
from discovery.distill import data, drift, symbolic
from discovery.evaluation.inspect import run_inspect
from discovery.evaluation.sources import resolve_source
from inner_algos.rules import DriftInputs, make_rule
from tests.support.fabricate import make_run_dir


def _distil_symbolic(teacher, options):
    train, held_out = data.grid(teacher, {}), data.held_out(teacher, {}, seed=0)
    student, meta = drift.fit_symbolic(teacher, train, options)
    return student, drift.fidelity(student, meta, held_out)


def test_fidelity_measures_against_values_by_hand():
    """A student off by exactly 0.1 where the teacher is 0 elsewhere: R^2 and max errors by hand."""
    teacher = make_rule("symbolic", expression="relu(r - 1)")
    student = make_rule("symbolic", expression="relu(r - 1) + 0.1*relu(A)")
    samples = data.labelled(
        teacher, {}, np.array([1.2, 0.8, 1.4, 1.0]), np.array([1.0, -1.0, -2.0, 2.0]), None
    )
    f = drift.fidelity(student, {}, samples)
    target = np.array([0.2, 0.0, 0.4, 0.0])
    error = np.array([0.1, 0.0, 0.0, 0.2])
    np.testing.assert_allclose(f["drift_r2"], 1 - np.mean(error**2) / np.var(target), rtol=1e-5)
    np.testing.assert_allclose(f["drift_max_error"], 0.2, rtol=1e-5)
    np.testing.assert_allclose(f["loss_grad_max_error"], 0.0, atol=1e-6)  # d/dr of 0.1 relu(A) is 0
    assert f["loss_grad_r2"] == pytest.approx(1.0)


@pytest.mark.slow
def test_the_search_recovers_a_planted_formula():
    teacher = make_rule("symbolic", expression="relu((r - 1)*A - 0.25*abs(log(r)))")
    options = symbolic.SearchOptions(population=2000, generations=20, parsimony=1e-3)
    student, f = _distil_symbolic(teacher, options)
    assert f["drift_r2"] >= 0.99 and f["loss_grad_r2"] >= 0.99, (student.expression, f)


def test_a_distilled_formula_is_zero_at_ratio_one_and_never_negative():
    teacher = make_rule("dpo")
    student, _ = _distil_symbolic(teacher, symbolic.SearchOptions(population=200, generations=3))
    a = jnp.linspace(-5.0, 5.0, 101)
    for p in (0.0, 1.0):
        np.testing.assert_array_equal(student.apply({}, DriftInputs(jnp.ones_like(a), a, p)), 0.0)
    r, a = (x.ravel() for x in jnp.meshgrid(jnp.linspace(0.1, 3.0, 60), jnp.linspace(-5.0, 5.0, 60)))
    assert float(student.apply({}, DriftInputs(r, a)).min()) >= 0.0


@pytest.mark.slow
def test_distilling_dpo_recovers_its_drift_and_gradient():
    student, f = _distil_symbolic(make_rule("dpo"), symbolic.SearchOptions(population=1000, generations=15))
    assert f["drift_r2"] >= 0.99 and f["loss_grad_r2"] >= 0.99, (student.expression, f)


@pytest.mark.slow
def test_distilling_ppo_clip_recovers_clipping():
    """A clipped region: exactly zero drift (no correction of r A) near r = 1 whatever A, and
    PPO-clip's drift elsewhere (R^2)."""
    options = symbolic.SearchOptions(population=2000, generations=20)
    student, f = _distil_symbolic(make_rule("ppo_clip"), options)
    assert f["drift_r2"] >= 0.97, (student.expression, f)
    r, a = (x.ravel() for x in jnp.meshgrid(jnp.linspace(0.95, 1.05, 11), jnp.linspace(-2.0, 2.0, 21)))
    np.testing.assert_array_equal(student.apply({}, DriftInputs(r, a)), 0.0, err_msg=student.expression)


def test_the_mlp_student_fits_dpo():
    teacher = make_rule("dpo")
    train, held_out = data.grid(teacher, {}), data.held_out(teacher, {}, seed=0)
    student, meta = drift.fit_mlp(teacher, train, drift.MLPOptions(hidden_size=16, steps=1500))
    f = drift.fidelity(student, meta, held_out)
    assert student.name == "lpo" and student.hidden_size == 16
    assert f["drift_r2"] >= 0.98 and f["loss_grad_r2"] >= 0.98, f


def test_inputs_are_collected_from_inner_runs_under_the_rule(tmp_path):
    run = make_run_dir(tmp_path)
    source = resolve_source(str(run))
    samples, notes = data.collect(source.rule, source.meta_params, source.spec, seed=0)
    # 4 updates x 1 epoch x 2 minibatches loss calls, PER_CALL samples each
    assert len(samples.ratio) == 4 * 2 * data.PER_CALL and len(notes) == 1
    assert np.any(np.abs(samples.ratio - 1.0) > 1e-4)  # the policy moved between minibatches
    assert np.all(np.abs(samples.advantage.mean()) < 1.0)  # normalised advantages
    inputs = DriftInputs(
        jnp.asarray(samples.ratio, jnp.float32), jnp.asarray(samples.advantage, jnp.float32), 0.0
    )
    want = source.rule.apply(source.meta_params, inputs)  # the rule itself, batched: not the sampler's path
    np.testing.assert_allclose(samples.drift, want, rtol=1e-5, atol=1e-7)


def test_distill_command_writes_a_source_that_eval_and_inspect_read(tmp_path, capsys):
    out = tmp_path / "dpo_sym"
    code = cli_main(
        ["distill", "dpo", "--to", "symbolic", "--out", str(out), "--population", "100", "--generations", "2"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "formula: drift(r, A) = " in printed and "held-out): drift R^2" in printed
    source = resolve_source(str(out))
    assert source.rule.name == "symbolic" and source.header["teacher_rule"] == "teacher"
    report = json.loads((out / "distill.json").read_text())
    assert report["teacher"]["source"] == "dpo" and report["to"] == "symbolic"
    written = run_inspect([source], tmp_path / "inspect")
    printed = capsys.readouterr().out
    assert f"formula: drift = {source.rule.expression}" in printed and "distilled from dpo" in printed
    assert any(p.name == "rule_drift.png" for p in written)


def test_distill_refuses_a_builtin_with_meta_params_and_an_unknown_family(tmp_path, capsys):
    assert cli_main(["distill", "lpo", "--to", "mlp", "--out", str(tmp_path / "x")]) == 2
    assert "built-in rule with meta-parameters" in capsys.readouterr().err
    assert cli_main(["distill", "adam", "--to", "mlp", "--out", str(tmp_path / "y")]) == 2
    assert "family 'optimizer' cannot be distilled" in capsys.readouterr().err


def test_a_distillate_of_a_run_is_evaluated_with_the_teachers_inner_settings(tmp_path):
    run = make_run_dir(tmp_path)
    out = tmp_path / "sym"
    args = ["distill", str(run), "--to", "symbolic", "--out", str(out), "--no-collect"]
    assert cli_main(args + ["--population", "60", "--generations", "1"]) == 0
    teacher, student = resolve_source(str(run)), resolve_source(str(out))
    assert student.spec["ppo"] == teacher.spec["ppo"] and student.spec["ppo"]  # not PPO's defaults
    assert student.train_tasks == teacher.train_tasks
