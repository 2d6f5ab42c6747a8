"""The task source registry: a source registered here, in this test module alone (no other file
knows it), is a task like any other: labels, a discovery job and a transfer evaluation run on it.

The toy source "toy" has one environment, "coin": every step pays `pay` (1 unless randomised)
whatever the action, so every episode's return is `pay x episode_length`, known by hand."""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import pytest
from flax import struct

from inner_algos.envs import (
    SOURCES,
    Task,
    TaskSource,
    canonical_label,
    make_env,
    parse_label,
    random_policy_return,
    register_source,
    sample_params,
    source_entry,
)
from tests.support.builders import tiny_eval_argv


@struct.dataclass
class CoinState:
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    info: dict
    time: jax.Array
    episode_return: jax.Array


class CoinEnv:
    """Two discrete actions, a 3-number observation (1, time / limit, 0), reward `pay` per step,
    episodes of exactly `episode_length` steps (a time limit: truncation), auto-reset."""

    discrete = True
    action_size = 2
    observation_size = 3

    def __init__(self, task: Task, auto_reset: bool = True):
        self.limit = task.episode_length

    def _obs(self, time: jax.Array) -> jax.Array:
        return jnp.stack([1.0, time / self.limit, 0.0]).astype(jnp.float32)

    def reset(self, key: jax.Array, params: dict) -> CoinState:
        zero = jnp.zeros((), jnp.float32)
        info = {"truncation": zero, "episode_metrics": {"sum_reward": zero, "length": zero}}
        return CoinState(self._obs(zero), zero, zero, info, zero, zero)

    def step(self, state: CoinState, action: jax.Array, params: dict) -> CoinState:
        reward = jnp.asarray(params.get("pay", 1.0), jnp.float32)
        time, total = state.time + 1.0, state.episode_return + reward
        done = (time >= self.limit).astype(jnp.float32)
        info = {"truncation": done, "episode_metrics": {"sum_reward": total, "length": time}}
        time = time * (1.0 - done)
        return CoinState(self._obs(time), reward, done, info, time, total * (1.0 - done))


TOY = TaskSource(
    name="toy",
    make_env=CoinEnv,
    env_names=lambda: ("coin",),
    randomizable=lambda env_name: ("pay",),
    default_episode_length=lambda env_name: 8,
    version=lambda: "0.1",
)


@pytest.fixture
def toy():
    """The toy source, registered for one test and removed after it."""
    register_source(TOY)
    yield TOY
    del SOURCES["toy"]


@pytest.mark.fast
def test_a_registered_source_is_a_task_source(toy):
    task = Task(source="toy", env_name="coin")
    assert task.episode_length == 8 and task.label == "toy:coin"
    assert parse_label("toy:coin~pay=1..2") == {"source": "toy", "env_name": "coin"}
    assert canonical_label("toy:coin~pay=1..2") == "toy:coin~pay=1..2"
    assert Task(source="toy", env_name="coin", randomize={"pay": [2, 3]}).label == "toy:coin~pay=2..3"
    with pytest.raises(ValueError, match=r"task.backend = 'spring' does not apply to toy tasks"):
        Task(source="toy", env_name="coin", backend="spring")
    with pytest.raises(ValueError, match=r"task.randomize.mass_scale is not a randomizable field; .*: pay"):
        Task(source="toy", env_name="coin", randomize={"mass_scale": [1, 2]})
    with pytest.raises(
        ValueError, match=r"'coin2' is not a toy environment \(did you mean 'coin'\?\); valid names: coin"
    ):
        Task(source="toy", env_name="coin2")


@pytest.mark.fast
def test_an_unknown_source_is_refused_naming_the_registered_ones():
    with pytest.raises(
        ValueError, match=r"task.source = 'toy' is unknown; valid sources: brax, gridworld, gymnax"
    ):
        Task(source="toy", env_name="coin")
    with pytest.raises(
        ValueError, match=r"source = 'toy' is unknown; valid sources: brax, gridworld, gymnax"
    ):
        parse_label("toy:coin")
    assert source_entry("gridworld").one_hot_observations and not source_entry("brax").one_hot_observations


@pytest.mark.fast
def test_the_registered_sources_version_and_names():
    import importlib.metadata

    assert source_entry("brax").version() == importlib.metadata.version("brax")
    assert source_entry("gymnax").version() == importlib.metadata.version("gymnax")
    assert "dense" in source_entry("gridworld").env_names()


def test_episodes_and_random_agent_of_a_registered_source(toy):
    """Every episode returns pay x 8: 8 with the default pay, and within [2 x 8, 3 x 8] for a
    pay drawn per lifetime in [2, 3]."""
    assert float(random_policy_return(Task(source="toy", env_name="coin"), jax.random.PRNGKey(0), 4)) == 8.0
    task = Task(source="toy", env_name="coin", randomize={"pay": [2, 3]})
    params = sample_params(task, jax.random.PRNGKey(1))
    assert 2.0 <= float(params["pay"]) <= 3.0
    assert 16.0 <= float(random_policy_return(task, jax.random.PRNGKey(0), 4)) <= 24.0
    env = make_env(task)
    state = env.step(env.reset(jax.random.PRNGKey(0), params), jnp.int32(0), params)
    assert float(state.reward) == pytest.approx(float(params["pay"]))


def test_a_job_and_an_evaluation_run_on_a_registered_source(toy, tmp_path):
    """The whole path: a discovery job whose fitness (the return of ended episodes) is 8 for every
    member, then `discover eval` of its rule on the toy task (random agent's return: 30, the
    eval's 30-step episodes)."""
    from discovery.evaluation import evaluate
    from discovery.job.runner import run_job
    from tests.support import tiny_job

    table = tiny_job.table(
        tmp_path / "run",
        job={"generations": 1},
        ppo={"num_updates": 2},
        meta_optimizer={"population_size": 2},
    )
    table["tasks"] = [{"source": "toy", "env_name": "coin", "episode_length": 8}]
    result = run_job(table, progress=False)
    assert [(r["fitness_min"], r["fitness_max"]) for r in result.history] == [(8.0, 8.0)]

    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    out = tmp_path / "eval"
    args = parser.parse_args(tiny_eval_argv(tmp_path / "run", "toy:coin", out))
    assert args.func(args) == 0
    task = json.loads((out / "results.json").read_text())["tasks"]["toy:coin"]
    assert task["task"]["source"] == "toy" and task["random_return"] == 30.0
