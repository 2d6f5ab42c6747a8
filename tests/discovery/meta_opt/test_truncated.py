"""Truncated estimators: PES is unbiased and truncated ES biased on a toy unrolled system with a
known full-horizon gradient; meta-gradients match analytic values and central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from discovery.meta_opt.base import TruncatedStep, Unrolled, metagrad_estimator
from discovery.meta_opt.pes import pes_estimator
from discovery.meta_opt.truncated import TruncationSchedule, make_runs, truncated_step
from inner_algos.envs import Task
from inner_algos.ppo import make_ppo
from inner_algos.rules import make_rule
from meta_objectives import MetaObjective
from tests.support.builders import tiny_ppo_config

# ---- toy linear system: s_{t+1} = a s_t + theta_0, loss_t = (s_{t+1} - theta_1)^2, lifetime T ----
A, T, K = 0.9, 10, 3  # K does not divide T: lifetimes end inside segments


def _full_loss(theta):
    def f(s, _):
        s = A * s + theta[0]
        return s, (s - theta[1]) ** 2

    return jax.lax.scan(f, 0.0, None, length=T)[1].sum()


def _toy_unroll(thetas, runs):
    def f(runs, _):
        s, age = runs
        s = A * s + thetas[:, 0]
        age = age + 1
        done = age >= T
        return (jnp.where(done, 0.0, s), jnp.where(done, 0, age)), ((s - thetas[:, 1]) ** 2, done)

    runs, (losses, done) = jax.lax.scan(f, runs, None, length=K)
    return runs, Unrolled(losses, done, -losses.mean(0))


def _lifetime_gradient(persistent, num_pairs, theta):
    """Sum of 10 segment estimates (30 steps = 3 lifetimes) / 3: estimates d/dtheta sum_t loss_t."""
    step = TruncatedStep(lambda th, k: (jnp.zeros(()), jnp.zeros((), jnp.int32)), _toy_unroll, None)
    est = pes_estimator(step, 2, num_pairs, sigma=0.01, persistent=persistent)

    def body(state, key):
        grad, state, _ = est.estimate(theta, state, key)
        return state, grad

    key = jax.random.PRNGKey(0)
    _, grads = jax.lax.scan(body, est.init(theta, key), jax.random.split(key, 10))
    return grads.sum(0) / 3


@pytest.mark.fast
def test_pes_is_unbiased_and_truncated_es_is_biased():
    theta = jnp.array([0.5, 2.0])
    exact = jax.grad(_full_loss)(theta)  # [36.58, -1.38]
    rel = lambda g: float(jnp.linalg.norm(g - exact) / jnp.linalg.norm(exact))  # noqa: E731
    pes = [rel(_lifetime_gradient(True, p, theta)) for p in (16, 4096)]
    tes = [rel(_lifetime_gradient(False, p, theta)) for p in (16, 4096)]
    assert pes[1] < 0.05 and pes[1] < pes[0] / 5, pes  # error shrinks with samples: unbiased
    assert tes[1] > 0.5, tes  # sees only the influence within K steps: biased


# ---- analytic quadratic inner loop for the meta-gradient ----------------------------------------
LR, STEPS = 0.1, 5


@pytest.mark.fast
def test_metagrad_matches_the_closed_form_and_finite_differences():
    """Inner: w <- w - LR exp(theta_1) (w - theta_0) for STEPS steps from w = 0 (per run);
    meta-loss mean_n (w_n - 1)^2. Closed form: w = theta_0 (1 - (1 - LR exp(theta_1))^STEPS)."""

    def unroll(theta, runs):
        w = runs
        for _ in range(STEPS):
            w = w - LR * jnp.exp(theta[1]) * (w - theta[0])
        return w, Unrolled(None, jnp.zeros((1, 3), bool), w)

    step = TruncatedStep(lambda th, k: jnp.zeros(()), unroll, lambda th, w, keys: (w - 1.0) ** 2)
    est = metagrad_estimator(step, num_runs=3)
    theta = jnp.array([0.7, 0.3])
    grad, state, metrics = est.estimate(theta, est.init(theta, jax.random.PRNGKey(0)), jax.random.PRNGKey(1))

    def closed(th):
        w = th[0] * (1 - (1 - LR * np.exp(th[1])) ** STEPS)
        return (w - 1.0) ** 2

    th = np.array([0.7, 0.3], np.float64)
    h = 1e-5
    fd = np.array([(closed(th + h * e) - closed(th - h * e)) / (2 * h) for e in np.eye(2)])
    np.testing.assert_allclose(grad, fd, rtol=1e-4)  # float32 gradient vs float64 FD
    np.testing.assert_allclose(metrics["meta_loss"], closed(th), rtol=1e-5)
    assert state.runs.shape == (3,)


CFG = tiny_ppo_config(num_updates=4)
TASK = Task(episode_length=50)


@pytest.mark.slow
def test_ppo_metagrad_is_finite_and_remat_does_not_change_it():
    """Two PPO updates of hyperparams meta-params, then the inner objective on a fresh batch.

    Central finite differences of this loss also move the rollouts (env dynamics), which the
    meta-gradient stops by design, so here AD with and without remat must agree instead; the
    finite-difference check is on the analytic inner loop above."""
    rule = make_rule(
        "hyperparams",
        learn=["gamma", "gae_lambda", "ent_coef", "learning_rate"],
        learning_rate=1e-2,
        ent_coef=1e-2,
    )
    algo = make_ppo(CFG, TASK, rule)
    theta, unravel = ravel_pytree(rule.init(jax.random.PRNGKey(0)))
    grads = []
    for remat in (True, False):
        step = truncated_step(
            algo,
            TruncationSchedule("constant", CFG.num_updates, stagger=False),
            2,
            unravel,
            MetaObjective(),
            meta_loss="inner_objective",
            remat=remat,
        )
        est = metagrad_estimator(step, num_runs=2)
        state = est.init(theta, jax.random.PRNGKey(1))
        grads.append(jax.jit(est.estimate)(theta, state, jax.random.PRNGKey(2))[0])
    assert np.all(np.isfinite(grads[0])) and np.all(np.abs(grads[0]) > 0), grads[0]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_segments_reset_lifetimes_inside_the_step_with_staggered_ages():
    schedule = TruncationSchedule("constant", length=3, stagger=True)
    algo = make_ppo(CFG, TASK, make_rule("ppo_clip"))
    init_one, advance = make_runs(algo, schedule)
    runs = jax.vmap(init_one, in_axes=(None, 0))({}, jax.random.split(jax.random.PRNGKey(0), 4))
    runs, seg = jax.jit(lambda r: advance({}, r, 4, shared=True))(runs)
    age = np.asarray(seg.age)  # [K, N]
    assert len(set(age[0])) > 1  # staggered
    np.testing.assert_array_equal(seg.done, age == 2)
    np.testing.assert_array_equal(age[1:], np.where(age[:-1] == 2, 0, age[:-1] + 1))
    lengths = [
        int(TruncationSchedule("log_uniform", min_length=2, max_length=50).sample(k))
        for k in jax.random.split(jax.random.PRNGKey(0), 200)
    ]
    assert min(lengths) >= 2 and max(lengths) <= 50 and np.median(lengths) < 15  # log-uniform


@pytest.mark.fast
def test_a_nonfinite_pair_is_left_out_of_the_estimate():
    """1 pair of 64 with a NaN loss: the gradient is the 63 finite pairs' estimate, by hand."""
    pairs, dim, sigma, bad = 64, 3, 0.1, 17
    target = jnp.array([1.0, -2.0, 0.5])

    def unroll(thetas, runs):
        losses = jnp.sum((thetas - target) ** 2, axis=1)  # [2P]
        losses = losses.at[bad].set(jnp.nan)  # run `bad` (+eps twin of pair `bad`) diverged
        losses = jnp.stack([losses, 0.5 * losses])  # K = 2 steps
        return runs, Unrolled(losses, jnp.zeros((2, 2 * pairs), bool), -losses.mean(0))

    est = pes_estimator(
        TruncatedStep(lambda th, k: jnp.zeros(()), unroll, None), dim, pairs, sigma, persistent=False
    )
    theta, key = jnp.array([0.3, 0.1, -0.2]), jax.random.PRNGKey(4)
    grad, _, metrics = est.estimate(theta, est.init(theta, key), key)
    eps = np.asarray(sigma * jax.random.normal(key, (pairs, dim)), np.float64)  # the estimator's noise
    th, tg = np.asarray(theta, np.float64), np.asarray(target, np.float64)
    expected = np.zeros(dim)
    for i in range(pairs):
        if i != bad:
            diff = 1.5 * (np.sum((th + eps[i] - tg) ** 2) - np.sum((th - eps[i] - tg) ** 2))
            expected += eps[i] * diff
    expected /= 2 * (pairs - 1) * sigma**2
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, expected, rtol=1e-4)
    assert int(metrics["nonfinite_pairs"]) == 1


@pytest.mark.fast
@pytest.mark.parametrize("section", ["ppo", "lpg"])
def test_a_lifetime_too_long_names_the_inner_algorithms_own_key(section):
    """The truncated runs serve every inner algorithm: the message names the run's own section."""
    from discovery.meta_opt.truncated import SegmentOptions
    from inner_algos.registry import INNER_ALGOS

    config = INNER_ALGOS[section].config_cls(num_updates=4)
    with pytest.raises(ValueError, match=rf"meta_optimizer.lifetime = 5 exceeds {section}.num_updates = 4"):
        SegmentOptions(lifetime=5).schedule(config)
    assert SegmentOptions(lifetime=4).schedule(config).length == 4
