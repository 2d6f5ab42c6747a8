"""Randomised tasks: ranges sampled once per lifetime as traced values (one compile for all)."""

import tomllib

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.spec import SpecError, dump_toml, parse_job_spec
from inner_algos.envs import Task, episode_runner, make_env, random_actions, sample_params
from inner_algos.ppo import make_ppo
from inner_algos.rules import make_rule
from tests.support.builders import tiny_ppo_config

RANDOM_CARTPOLE = Task(
    source="gymnax", env_name="CartPole-v1", randomize={"length": [0.2, 2.0], "gravity": [5.0, 20.0]}
)


@pytest.mark.fast
def test_sampled_gymnax_params_are_the_env_params_gymnax_steps_with():
    """Our CartPole with length 1.7 is gymnax's CartPole built with length 1.7 (and the
    pole's mass x length that CartPole derives from it), transition for transition."""
    raw, params = gymnax.make("CartPole-v1")
    params = params.replace(length=1.7, polemass_length=params.masspole * 1.7)
    env = make_env(RANDOM_CARTPOLE)
    sampled = {"length": jnp.float32(1.7), "gravity": jnp.float32(params.gravity)}
    key = jax.random.PRNGKey(0)
    ours = env.reset(key, sampled)
    key, k = jax.random.split(key)
    obs, state = raw.reset(k, params)
    for action in (0, 0, 1, 0, 1, 1, 1, 0):
        ours = env.step(ours, jnp.int32(action), sampled)
        key, k = jax.random.split(key)
        obs, state, *_ = raw.step(k, state, action, params)
        np.testing.assert_allclose(ours.obs, obs, rtol=1e-6)


def test_two_lifetimes_see_different_physics_and_returns_from_one_compile():
    traces = []
    run = episode_runner(RANDOM_CARTPOLE, 16)
    env = make_env(RANDOM_CARTPOLE, auto_reset=False)

    @jax.jit
    def lifetime(key):  # the same policy and episode keys, only the sampled physics differ
        traces.append(1)
        params = sample_params(RANDOM_CARTPOLE, key)
        returns, _ = run(lambda obs, k: random_actions(env, k, obs.shape[0]), jax.random.PRNGKey(7), params)
        return params, returns.mean()

    (p1, r1), (p2, r2) = lifetime(jax.random.PRNGKey(1)), lifetime(jax.random.PRNGKey(2))
    assert len(traces) == 1
    for p in (p1, p2):
        assert 0.2 <= float(p["length"]) <= 2.0 and 5.0 <= float(p["gravity"]) <= 20.0
    assert float(p1["length"]) != float(p2["length"]) and float(r1) != float(r2)

    # PPO: each lifetime samples its own params from its key, carried in the inner state
    config = tiny_ppo_config(8, num_updates=2)
    algo = make_ppo(config, RANDOM_CARTPOLE, make_rule("ppo_clip"))
    states = jax.vmap(algo.init, in_axes=(None, 0))({}, jax.random.split(jax.random.PRNGKey(0), 2))
    lengths = np.asarray(states.env_params["length"])
    assert lengths.shape == (2,) and lengths[0] != lengths[1]


def test_brax_gravity_scale_changes_the_physics():
    """An unactuated inverted pendulum falls sooner under stronger gravity."""
    task = Task(env_name="inverted_pendulum", episode_length=300, randomize={"gravity_scale": [0.2, 3.0]})
    run = jax.jit(
        lambda g: episode_runner(task, 4)(
            lambda obs, k: jnp.zeros((obs.shape[0], 1)), jax.random.PRNGKey(0), {"gravity_scale": g}
        )[1]
    )
    weak, normal, strong = (run(jnp.float32(g)) for g in (0.2, 1.0, 3.0))
    assert np.all(weak > normal) and np.all(normal > strong)


@pytest.mark.fast
@pytest.mark.parametrize(
    "task, message",
    [
        (
            {"env_name": "hopper", "randomize": {"mass": [0.5, 2.0]}},
            r"task.randomize.mass is not a randomizable field; valid fields: mass_scale, friction_scale, "
            r"gravity_scale, actuator_scale",
        ),
        (
            {"source": "gymnax", "env_name": "CartPole-v1", "randomize": {"pole": [0.5, 2.0]}},
            r"task.randomize.pole .*valid fields: gravity, masscart, masspole, length, force_mag, tau",
        ),
        (
            {"env_name": "hopper", "randomize": {"mass_scale": [2.0, 0.5]}},
            r"task.randomize.mass_scale = \[2.0, 0.5\] has low > high; write \[0.5, 2\]",
        ),
        (
            {"env_name": "hopper", "randomize": {"mass_scale": 2.0}},
            r"task.randomize.mass_scale = 2.0 must be a range \[low, high\]",
        ),
    ],
)
def test_bad_randomize_fails_in_the_spec_naming_the_key(tmp_path, task, message):
    table = {"job": {"run_dir": str(tmp_path)}, "tasks": [task], "rule": {"name": "lpo"}}
    with pytest.raises(SpecError, match=r"\[tasks\[0\]\]: " + message):
        parse_job_spec(table)


@pytest.mark.fast
def test_randomized_spec_round_trips_through_the_resolved_toml(tmp_path):
    table = {
        "job": {"run_dir": str(tmp_path)},
        "tasks": [
            {"source": "gymnax", "env_name": "CartPole-v1", "randomize": {"length": [0.2, 2]}},
            {"env_name": "inverted_pendulum"},
        ],
        "rule": {"name": "lpo"},
    }
    spec = parse_job_spec(table)
    assert spec.table["tasks"][0]["randomize"] == {"length": [0.2, 2.0]}
    assert "randomize" not in spec.table["tasks"][1] and "source" not in spec.table["tasks"][1]
    again = parse_job_spec(tomllib.loads(dump_toml(spec.table)))
    assert again.tasks == spec.tasks and again.table == spec.table
    assert spec.tasks[0].label == "gymnax:CartPole-v1~length=0.2..2"
