"""Rule families "hyperparams" and "optimizer": known values, PPO plumbing, differentiability."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from discovery.rule_io import load_rule, save_rule
from inner_algos.envs import Task
from inner_algos.ppo import HyperParams, make_ppo, rule_slots
from inner_algos.rules import has_meta_params, make_rule
from inner_algos.rules.learned_optimizer import OptimizerInputs
from tests.support.builders import tiny_ppo_config

CFG = tiny_ppo_config(num_updates=4, ent_coef=1e-3)
TASK = Task(episode_length=50)


def _train(rule, meta=None):
    algo = make_ppo(CFG, TASK, rule)
    meta = rule.init(jax.random.PRNGKey(3)) if meta is None else meta
    state, metrics = jax.jit(algo.train)(meta, jax.random.PRNGKey(1))
    return state, {k: np.asarray(v) for k, v in metrics.items()}


@pytest.fixture(scope="module")
def baseline():
    return _train(make_rule("ppo_clip", eps=CFG.clip_eps))


# ---- hyperparams -------------------------------------------------------------------------------


@pytest.mark.fast
def test_hyperparams_init_is_the_defaults_and_schedule_is_a_polynomial():
    rule = make_rule(
        "hyperparams",
        gamma=0.9,
        gae_lambda=0.8,
        clip_eps=0.3,
        ent_coef=0.01,
        learning_rate=1e-3,
        progress_degree=2,
    )
    meta = rule.init(jax.random.PRNGKey(0))
    assert set(meta) == set(HyperParams._fields) and meta["gamma"].shape == (3,)
    for progress in (0.0, 0.7):
        hp = rule.apply(meta, progress)
        np.testing.assert_allclose(hp, [0.9, 0.8, 0.3, 0.01, 1e-3], rtol=1e-6)
    # gamma(p) = sigmoid(c0 + c1 p + c2 p^2); learning_rate(p) = exp(...)
    meta = dict(meta, gamma=jnp.array([0.0, 1.0, 2.0]), learning_rate=jnp.array([-5.0, 0.0, 1.0]))
    hp = rule.apply(meta, 0.5)
    np.testing.assert_allclose(hp.gamma, 1 / (1 + np.exp(-(0.5 + 2 * 0.25))), rtol=1e-6)
    np.testing.assert_allclose(hp.learning_rate, np.exp(-5.0 + 0.25), rtol=1e-6)


@pytest.mark.fast
def test_hyperparams_learn_subset_and_bad_options():
    rule = make_rule("hyperparams", learn=["gamma", "gae_lambda"], clip_eps=0.1)
    meta = rule.init(jax.random.PRNGKey(0))
    assert sorted(meta) == ["gae_lambda", "gamma"]
    hp = rule.apply({"gamma": jnp.array([0.0]), "gae_lambda": jnp.array([0.0])}, 0.0)
    np.testing.assert_allclose(hp, [0.5, 0.5, 0.1, 1e-3, 3e-4], rtol=1e-6)
    assert rule.options()["learn"] == ["gamma", "gae_lambda"]
    with pytest.raises(ValueError, match="rule.learn"):
        make_rule("hyperparams", learn=["gamma", "beta"])
    with pytest.raises(ValueError, match="rule.ent_coef = 0.0 must be > 0"):
        make_rule("hyperparams", ent_coef=0.0)
    with pytest.raises(ValueError, match="rule.gamma"):
        make_rule("hyperparams", gamma=1.0)


@pytest.mark.fast
def test_hyperparams_formula_values_are_the_formulas_squashed():
    """gamma(p) = sigmoid(4 + tanh(p)), lr(p) = exp(-6.9 + p - 1.5 p^2) by hand in numpy; the
    rest the options' defaults; no meta-parameters."""
    rule = make_rule(
        "hyperparams_formula",
        clip_eps=0.1,
        formulas={"gamma": "4 + tanh(p)", "learning_rate": "-6.9 + p - 1.5*p**2"},
    )
    assert rule.init(jax.random.PRNGKey(0)) == {} and not has_meta_params(rule)
    assert rule.scheduled == ("gamma", "learning_rate")
    progress = np.linspace(0.0, 1.0, 11)
    hp = jax.vmap(lambda p: rule.apply({}, p))(jnp.asarray(progress, jnp.float32))
    np.testing.assert_allclose(hp.gamma, 1 / (1 + np.exp(-(4 + np.tanh(progress)))), rtol=1e-6)
    np.testing.assert_allclose(hp.learning_rate, np.exp(-6.9 + progress - 1.5 * progress**2), rtol=1e-5)
    np.testing.assert_allclose(hp.gae_lambda, 0.95, rtol=1e-6)
    np.testing.assert_allclose(hp.clip_eps, 0.1, rtol=1e-6)
    assert make_rule(rule.name, **rule.options()) == rule  # options round-trip (an exported header)


@pytest.mark.fast
@pytest.mark.parametrize(
    ("formulas", "reason"),
    [
        (
            {"gamma": '__import__("os").system("true")'},
            "rule.formulas\\['gamma'\\] = .* is refused: character",
        ),
        ({"gamma": "p.__class__"}, "character '.'"),
        ({"learning_rate": "r * A"}, "name 'r' .* variables: p"),
        ({"learning_rate": "p**p"}, "must be a constant"),
        ({"beta": "p"}, "each must be one of"),
        ("gamma = p", "must be a table"),
    ],
)
def test_hyperparams_formula_refuses_hostile_or_bad_formulas(tmp_path, formulas, reason):
    with pytest.raises(ValueError, match=reason):
        make_rule("hyperparams_formula", formulas=formulas)
    save_rule(tmp_path / "rule", make_rule("hyperparams_formula"), {})
    header = json.loads((tmp_path / "rule.json").read_text())
    header["options"]["formulas"] = formulas
    (tmp_path / "rule.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match="cannot be built"):  # a hostile exported header too
        load_rule(tmp_path / "rule")


def _exact_formula_of_a_teacher():
    """A hyperparams teacher and a hyperparams_formula rule writing its polynomials exactly."""
    teacher = make_rule("hyperparams", learn=["gamma", "ent_coef", "learning_rate"], progress_degree=2)
    meta = {
        "gamma": jnp.array([4.0, 0.5, 0.0]),
        "ent_coef": jnp.array([-5.0, 0.0, 0.0]),
        "learning_rate": jnp.array([-7.0, 0.5, -0.25]),
    }
    formulas = {"gamma": "4 + 0.5*p", "ent_coef": "-5", "learning_rate": "-7 + 0.5*p - 0.25*p**2"}
    return teacher, meta, make_rule("hyperparams_formula", formulas=formulas)


@pytest.mark.fast
def test_ppo_takes_a_formula_rules_hyperparameters_where_it_takes_hyperparams():
    teacher, meta, student = _exact_formula_of_a_teacher()
    slots, teacher_slots = rule_slots(CFG, student), rule_slots(CFG, teacher)
    assert slots.drift is teacher_slots.drift  # PPO-clip, as for any hyperparams rule
    for progress in (0.0, 0.25, 0.5, 0.75):
        np.testing.assert_allclose(
            slots.hyperparams({}, progress), teacher_slots.hyperparams(meta, progress), rtol=1e-6
        )


@pytest.mark.slow
def test_ppo_under_an_exact_formula_gets_the_teachers_hyperparameters():
    """PPO's numbers under the formula rule are the teacher's (learning rate at each update too)."""
    teacher, meta, student = _exact_formula_of_a_teacher()
    _, want = _train(teacher, meta)
    _, got = _train(student)
    np.testing.assert_allclose(got["learning_rate"], want["learning_rate"], rtol=1e-6)
    for key in ("policy_loss", "value_loss", "approx_kl", "grad_norm"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-7, err_msg=key)


# ---- optimizer ----------------------------------------------------------------------------------


@pytest.mark.fast
def test_learned_optimizer_starts_at_adam_and_its_outputs_act_as_documented():
    params = {"a": jnp.array([1.0, -2.0, 3.0]), "b": jnp.ones((2, 2))}
    grads = {"a": jnp.array([0.5, -0.1, 0.0]), "b": jnp.full((2, 2), -0.3)}
    adam = make_rule("adam")
    lopt = make_rule("learned_optimizer", hidden_size=4)
    meta = lopt.init(jax.random.PRNGKey(0))
    ref, _ = adam.apply({}, OptimizerInputs(grads, adam.init_state(params), 0.2))
    out, state = lopt.apply(meta, OptimizerInputs(grads, lopt.init_state(params), 0.2))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6), out, ref)
    assert state.momenta["b"].shape == (5, 2, 2)
    # momenta after one step: (1 - beta) * g
    np.testing.assert_allclose(state.momenta["a"][:, 0], (1 - np.array(lopt.betas)) * 0.5, rtol=1e-4)
    # saturated hidden units (tanh = 1) and one nonzero row of w2 give constant (d, s) = (0.1, log 2)
    meta = dict(meta, b1=jnp.full((4,), 100.0), w2=jnp.zeros((4, 2)).at[0].set(jnp.array([0.1, np.log(2.0)])))
    out, _ = lopt.apply(meta, OptimizerInputs(grads, lopt.init_state(params), 0.2))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, 2.0 * y + 0.1, rtol=1e-5), out, ref)


def test_fixed_adam_rule_gives_ppo_numbers_exactly(baseline):
    _, base = baseline
    _, metrics = _train(make_rule("adam"))
    for key in base:
        np.testing.assert_array_equal(metrics[key], base[key], err_msg=key)


@pytest.mark.slow
def test_hyperparams_and_learned_optimizer_at_init_reproduce_ppo(baseline):
    _, base = baseline
    hp_rule = make_rule(
        "hyperparams",
        gamma=CFG.gamma,
        gae_lambda=CFG.gae_lambda,
        clip_eps=CFG.clip_eps,
        ent_coef=CFG.ent_coef,
        learning_rate=CFG.learning_rate,
    )
    for rule in (hp_rule, make_rule("learned_optimizer", hidden_size=8)):
        _, metrics = _train(rule)
        for key in ("policy_loss", "value_loss", "approx_kl", "grad_norm", "learning_rate"):
            np.testing.assert_allclose(
                metrics[key], base[key], rtol=2e-3, atol=1e-6, err_msg=f"{rule.name}: {key}"
            )


def test_learned_optimizer_state_shapes_do_not_depend_on_meta_params_and_step_is_differentiable():
    rule = make_rule("learned_optimizer", hidden_size=8)
    algo = make_ppo(CFG, TASK, rule)
    meta = rule.init(jax.random.PRNGKey(0))
    state = algo.init(meta, jax.random.PRNGKey(1))
    shapes = lambda s: jax.tree.map(lambda x: (x.shape, x.dtype), s.opt_state)  # noqa: E731
    assert shapes(jax.eval_shape(algo.step, meta, state)[0]) == shapes(state)

    def actor_norm(m):
        s, _ = algo.step(m, state)
        return optax.global_norm(s.params["actor"])

    traces = []

    def counted(m):
        traces.append(1)  # runs once per trace, not per call
        return jax.value_and_grad(actor_norm)(m)

    value_and_grad = jax.jit(counted)
    value, grads = value_and_grad(meta)
    norms = {k: float(jnp.linalg.norm(v)) for k, v in grads.items()}
    assert all(np.isfinite(list(norms.values()))) and norms["w2"] > 0, norms
    moved, _ = value_and_grad(jax.tree.map(lambda x: x + 0.3, meta))
    assert moved != value and len(traces) == 1  # meta-params are traced, not baked in


def test_hyperparams_step_is_differentiable_in_every_hyperparameter_but_clip():
    rule = make_rule("hyperparams", ent_coef=0.01, clip_eps=0.02, learning_rate=3e-2)
    algo = make_ppo(CFG, TASK, rule)
    meta = rule.init(jax.random.PRNGKey(0))
    state = algo.init(meta, jax.random.PRNGKey(1))

    def params_sum(m):
        s, _ = algo.step(m, state)
        return sum(jnp.sum(jnp.sin(x)) for x in jax.tree.leaves(s.params))

    grads = jax.jit(jax.grad(params_sum))(meta)
    for name, g in grads.items():
        assert np.isfinite(g).all(), (name, g)
        # PPO-clip's gradient depends on clip_eps only through which samples are clipped
        assert (abs(float(g[0])) > 0) == (name != "clip_eps"), (name, g)
