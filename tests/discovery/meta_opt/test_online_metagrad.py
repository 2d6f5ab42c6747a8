"""Online hyperparameter meta-gradient (Xu et al. 2018, arXiv 1805.09801) on a tiny PPO lifetime.

One compiled outer step (one inner update + one Adam meta-update each) is stepped four times; the
meta-gradient of the third update, read back from Adam's first moment, must equal central finite
differences of the look-ahead with the meta-loss batch held fixed (AD stops it by design).
"""

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from discovery.meta_opt import make_meta_optimizer, validate_options
from discovery.meta_opt.problem import Problem
from discovery.spec import SpecError
from inner_algos.envs import Task
from inner_algos.rules import make_rule
from meta_objectives import MetaObjective
from tests.support.builders import tiny_ppo_config

CFG = tiny_ppo_config(num_updates=6)
TASK = Task(episode_length=50)
META_LR = 0.05
# inner learning rate 1e-2 (not 3e-4) so that d theta'/d eta is well above float32 rounding
RULE = make_rule("hyperparams", learn=["gamma", "gae_lambda"], learning_rate=1e-2)
UNRAVEL = ravel_pytree(RULE.init(None))[1]  # flat theta [2] -> {"gae_lambda": [1], "gamma": [1]}


def _problem(rule=RULE):
    return Problem(rule, (TASK,), CFG, MetaObjective(kind="curve_area"), evaluate_mean=False)


def _optimizer(problem, **options):
    """The online_metagrad meta-optimizer with `options`, validated as a run spec's are."""
    typed = validate_options(
        "online_metagrad", options, problem.rule, problem.inner_config, problem.objective
    )
    return make_meta_optimizer("online_metagrad", typed, problem)


def _adam_gradient(before, after):
    """The gradient Adam (b1 = 0.9) was told in the step before -> after: mu' = 0.9 mu + 0.1 g."""
    mu = lambda s: s.opt_state[0].mu  # noqa: E731
    return (mu(after) - 0.9 * mu(before)) / 0.1


def _lookahead_fd(algo, unravel, state, h):
    """Central FD `[D]` (step h) of eta -> c . theta'(eta) at state.theta, where theta'(eta) are the
    params after one inner update of the lifetime with eta and c = dJ'/dtheta' is the meta-loss
    gradient at theta'(state.theta) on its batch (key as gradient_meta_optimizer and
    truncated_step derive it). The inner update's own batch comes from the params before it, so
    FD moves no rollout: by the chain rule this is the meta-gradient with tau' held fixed."""
    inner = jax.tree.map(lambda x: x[0], state.estimators[0].runs.inner)
    key = jax.random.split(jax.random.split(state.key)[1], 1)[0]

    @jax.jit
    def updated_and_c(theta):
        new = algo.step(unravel(theta), inner)[0]
        c = jax.grad(lambda p: algo.rollout_loss(unravel(theta), new.replace(params=p), key)[0])(
            new.params
        )  # the "inner_objective" meta-loss: PPO's whole loss
        return ravel_pytree(new.params)[0], ravel_pytree(c)[0]

    theta = state.theta
    _, c = updated_and_c(theta)
    c = np.asarray(c, np.float64)
    fd = []
    for e in np.eye(theta.size, dtype=np.float32):
        plus, minus = (np.asarray(updated_and_c(theta + s * h * e)[0], np.float64) for s in (1, -1))
        fd.append(c @ (plus - minus) / (2 * h))
    return np.asarray(fd)


@pytest.mark.slow
def test_online_run_compiles_once_and_its_meta_gradient_matches_finite_differences():
    problem = _problem()
    opt = _optimizer(problem, learning_rate=META_LR)
    traces = []

    def traced(state):
        traces.append(1)
        return opt.step(state)

    step = jax.jit(traced)
    states, gammas, lambdas = [jax.jit(opt.init)(jax.random.PRNGKey(0))], [], []
    for _ in range(4):
        state, metrics = step(states[-1])
        states.append(state)
        gammas.append(float(metrics["hyperparams"]["gamma"]))
        lambdas.append(float(metrics["hyperparams"]["gae_lambda"]))
    assert len(traces) == 1  # one trace (and compile) for every outer step
    assert metrics["fitness"].shape == (1,) and bool(metrics["grad_finite"])
    assert set(metrics["hyperparams"]) == {"gamma", "gae_lambda"}
    # trajectory: finite, in (0, 1), changing every update
    trajectory = np.array([gammas, lambdas])
    assert np.all(np.isfinite(trajectory)) and np.all((trajectory > 0) & (trajectory < 1))
    assert np.all(np.diff(trajectory, axis=1) != 0), trajectory
    logits = UNRAVEL(states[1].theta)
    np.testing.assert_allclose(
        np.log(trajectory[:, 0] / (1 - trajectory[:, 0])),
        [logits["gamma"][0], logits["gae_lambda"][0]],
        rtol=1e-4,
    )
    # meta-gradient of the third inner update (age 2) vs central finite differences, step 0.1 in logit
    grad = np.asarray(_adam_gradient(states[2], states[3]))
    fd = _lookahead_fd(problem.algos[0], UNRAVEL, states[2], h=0.1)
    assert np.all(np.abs(grad) > 1e-6), grad
    np.testing.assert_allclose(grad, fd, rtol=1e-2)  # measured: 0.2 %; FD error ~h^2


def test_counts_two_rollouts_per_inner_update_and_rejects_bad_input():
    opt = _optimizer(_problem(), updates_per_step=3)
    assert opt.env_steps_per_step == 3 * 2 * 16 * 8  # updates x (tau, tau') x envs x rollout length
    with pytest.raises(SpecError, match="family 'drift'"):
        _optimizer(_problem(make_rule("ppo_clip")))
    with pytest.raises(SpecError, match="'hyperparams_formula' has no meta-parameters to learn"):
        _optimizer(_problem(make_rule("hyperparams_formula", formulas={"gamma": "4"})))
    with pytest.raises(SpecError, match="updates_per_step = 0"):
        _optimizer(_problem(), updates_per_step=0)
    with pytest.raises(SpecError, match="meta_loss = 'td'"):
        _optimizer(_problem(), meta_loss="td")
