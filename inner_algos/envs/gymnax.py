"""The gymnax task source: gymnax environments behind our env interface, the only module of ours
that imports gymnax.

`GymnaxEnv(task)` presents a gymnax environment exactly as `inner_algos.envs.brax.BraxEnv`
presents a brax one: `reset(key, params)` and `step(state, action, params)` on one (unbatched)
environment, observations flattened to `[observation_size]` float32 (MinAtar's `[10, 10, C]`
grids become vectors for the MLP), and a state whose `obs`, `reward`, `done`,
`info["truncation"]` and `info["episode_metrics"]` ("sum_reward", "length") read as brax's.
gymnax keeps termination and the time limit apart; so do we: `done` is either, `truncation`
only a time-limit cut that is not also a termination. Auto-reset is gymnax's own and always
on (the state after a `done` step is the first of a new episode; the evaluation runner stops
counting an episode at its first `done`). The time limit is the task's `episode_length`.

Randomised env params: `params` (from `inner_algos.envs.sample_params`) maps fields of the env's
`EnvParams` to traced values, set on the default params at every step (one compile for all
samples); fields the env derives from others (CartPole's total mass) are derived again.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata

import jax
import jax.numpy as jnp
from flax import struct

from inner_algos.envs.sources import TaskSource, register_source

CLASSIC_CONTROL = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "MountainCarContinuous-v0")
MINATAR = tuple(f"{game}-MinAtar" for game in ("Asterix", "Breakout", "Freeway", "SpaceInvaders", "Seaquest"))
# bsuite's Catch (gymnax's 10 x 5 board) and the 8 x 8 board of DiscoRL's Catch, on which its
# evaluation colab trains Disco103: gymnax's Catch class with rows = columns = 8 has exactly that
# game's dynamics (ball falls one row a step, paddle moves -1/0/+1, +-1 when the ball reaches the
# bottom row, which ends the episode); tests/inner_algos/test_gymnax.py checks transitions.
CATCH = ("Catch-bsuite", "Catch-8x8")
_BOARDS = {"Catch-8x8": ("Catch-bsuite", {"rows": 8, "columns": 8})}
ENV_NAMES = CLASSIC_CONTROL + MINATAR + CATCH

# env params some envs compute from others once, at construction: recomputed after sampling
_DERIVED = {
    "CartPole-v1": lambda p: p.replace(
        total_mass=p.masspole + p.masscart, polemass_length=p.masspole * p.length
    ),
}
_NOT_RANDOMIZABLE = {
    "max_steps_in_episode": "the time limit is the task's episode_length",
    "total_mass": "derived",
    "polemass_length": "derived",
}


def env_names() -> tuple[str, ...]:
    """The gymnax environments we support: classic control, MinAtar and Catch."""
    return ENV_NAMES


@functools.cache
def _make(env_name: str):
    """(env, default params) of a name in ENV_NAMES; our board variants (_BOARDS) are gymnax's
    env built with other constructor arguments."""
    import gymnax

    gymnax_name, board = _BOARDS.get(env_name, (env_name, {}))
    return gymnax.make(gymnax_name, **board)


def default_episode_length(env_name: str) -> int:
    """The env's own time limit (CartPole-v1: 500, Breakout-MinAtar: 1000)."""
    return int(_make(env_name)[1].max_steps_in_episode)


def randomizable_fields(env_name: str) -> dict[str, type]:
    """{field: float or int} of the env's params that a task may randomise (scalar numbers only)."""
    _, params = _make(env_name)
    out = {}
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if field.name in _NOT_RANDOMIZABLE or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[field.name] = type(value)
    return out


@struct.dataclass
class GymnaxState:
    """One environment's state in brax's reading (see module docstring); key drives gymnax's
    stochastic steps and resets, episode_return / episode_length accumulate the running episode."""

    env_state: object
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    info: dict
    key: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array


class GymnaxEnv:
    """A gymnax task behind the env interface of `inner_algos.envs`.

    Discrete action spaces take integer actions `[]` in [0, action_size); continuous (Box) ones
    take actions in [-1, 1]^action_size, clipped and mapped affinely onto the env's bounds.
    """

    def __init__(self, task, auto_reset: bool = True):
        del auto_reset  # gymnax always auto-resets (module docstring)
        env, params = _make(task.env_name)
        self._env = env
        self._env_name = task.env_name
        self._params = params.replace(max_steps_in_episode=task.episode_length)
        space = env.action_space(self._params)
        self.discrete = hasattr(space, "n")
        if self.discrete:
            self.action_size = int(space.n)
        else:
            self.action_size = int(space.shape[0]) if space.shape else 1
            self._low, self._high = space.low, space.high
        obs, _ = env.reset(jax.random.PRNGKey(0), self._params)
        self.observation_size = int(jnp.size(obs))
        self._fields = randomizable_fields(task.env_name)

    def env_params(self, params: dict):
        """gymnax EnvParams with the sampled `params` set (ints rounded) and derived fields redone."""
        if not params:
            return self._params
        values = {
            k: jnp.round(v).astype(jnp.int32) if self._fields[k] is int else v for k, v in params.items()
        }
        return _DERIVED.get(self._env_name, lambda p: p)(self._params.replace(**values))

    def _action(self, action):
        if self.discrete:
            return action
        action = jnp.clip(action, -1.0, 1.0)
        action = self._low + (action + 1.0) * 0.5 * (self._high - self._low)
        return action

    def reset(self, key, params: dict):
        key, k_reset = jax.random.split(key)
        obs, env_state = self._env.reset(k_reset, self.env_params(params))
        zero = jnp.zeros(())
        info = {"truncation": zero, "episode_metrics": {"sum_reward": zero, "length": zero}}
        return GymnaxState(env_state, _flat(obs), zero, zero, info, key, zero, zero)

    def step(self, state: GymnaxState, action, params: dict):
        key, k_step = jax.random.split(state.key)
        obs, env_state, reward, terminated, truncated, _ = self._env.step(
            k_step, state.env_state, self._action(action), self.env_params(params)
        )
        reward = jnp.asarray(reward, jnp.float32)
        terminated = jnp.asarray(terminated, jnp.float32)
        done = jnp.maximum(terminated, jnp.asarray(truncated, jnp.float32))
        ret = state.episode_return + reward
        length = state.episode_length + 1.0
        info = {
            "truncation": done * (1.0 - terminated),
            "episode_metrics": {"sum_reward": ret, "length": length},
        }
        return GymnaxState(
            env_state, _flat(obs), reward, done, info, key, ret * (1.0 - done), length * (1.0 - done)
        )


def _flat(obs) -> jax.Array:
    return jnp.ravel(obs).astype(jnp.float32)


register_source(
    TaskSource(
        name="gymnax",
        make_env=GymnaxEnv,
        env_names=env_names,
        randomizable=lambda env_name: tuple(randomizable_fields(env_name)),
        default_episode_length=default_episode_length,
        version=lambda: importlib.metadata.version("gymnax"),
    )
)
