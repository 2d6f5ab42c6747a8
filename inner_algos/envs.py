"""Brax environments by name: the only module of ours that imports brax.

A `Task` is static, hashable configuration (name, physics backend, episode length,
action repeat, reward scale). `make_env(task)` returns a single-environment brax `Env`
wrapped with brax's `EpisodeWrapper` (time limit, action repeat, per-episode return and
length in `state.info['episode_metrics']`) and `AutoResetWrapper`; callers `vmap` it over
environments themselves, so the batch axis is ours to compose with populations and seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import warnings

BACKENDS = ("spring", "positional", "generalized", "mjx")


def _brax_envs():
    # brax and mujoco print notices for optional GPU extras (warp: a bare print at import) and
    # a maintenance warning at every model load; keep them out of the user's log.
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Brax System, piplines and environments")
    with contextlib.redirect_stdout(io.StringIO()):
        from brax import envs

    return envs


def env_names() -> tuple[str, ...]:
    """All environment names brax registers (e.g. 'ant', 'hopper', 'inverted_pendulum')."""
    return tuple(sorted(_brax_envs()._envs.keys()))


@dataclasses.dataclass(frozen=True)
class Task:
    """One MDP to train on.

    Attributes:
      env_name: brax registry name, e.g. "inverted_pendulum".
      backend: brax physics pipeline, one of BACKENDS.
      episode_length: time limit in agent steps (each `action_repeat` physics frames long).
      action_repeat: how many times one action is applied.
      reward_scale: multiplies the reward seen by the learner (returns are logged unscaled).
    """

    env_name: str = "inverted_pendulum"
    backend: str = "spring"
    episode_length: int = 1000
    action_repeat: int = 1
    reward_scale: float = 1.0

    def __post_init__(self):
        names = env_names()
        if self.env_name not in names:
            raise ValueError(
                f"task.env_name = {self.env_name!r} is not a brax environment; "
                f"valid names: {', '.join(names)}"
            )
        if self.backend not in BACKENDS:
            raise ValueError(
                f"task.backend = {self.backend!r} is unknown; valid backends: {', '.join(BACKENDS)}"
            )
        for field in ("episode_length", "action_repeat"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"task.{field} = {value!r} must be a positive integer")
        if not self.reward_scale > 0:
            raise ValueError(f"task.reward_scale = {self.reward_scale!r} must be > 0")

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. 'hopper/spring'."""
        return f"{self.env_name}/{self.backend}"


@functools.lru_cache(maxsize=None)
def make_env(task: Task, auto_reset: bool = True):
    """Single (unbatched) brax env for `task`, with episode bookkeeping and optional auto-reset.

    Episodes end after task.episode_length agent steps; `state.info['episode_metrics']['length']`
    counts physics frames (agent steps x action_repeat), as brax does.

    Cached: building a brax system parses MJCF, which costs seconds.
    """
    envs = _brax_envs()
    from brax.envs.wrappers import training as wrappers

    env = envs.get_environment(task.env_name, backend=task.backend)
    # brax's EpisodeWrapper counts physics frames (action_repeat per agent step)
    env = wrappers.EpisodeWrapper(env, task.episode_length * task.action_repeat, task.action_repeat)
    if auto_reset:
        env = wrappers.AutoResetWrapper(env)
    return env


def episode_runner(task: Task, episodes: int):
    """`run(act, key) -> (returns, lengths)`, each `[episodes]`: plays `episodes` full episodes
    of `task` without auto-reset (length in agent steps; env steps are action_repeat times more).

    act(obs `[episodes, obs_size]`, key) -> actions `[episodes, action_size]`, clipped to [-1, 1]
    here. Resets use `key`, the per-step action keys `fold_in(key, 1)`. Episodes that end stop
    counting (the env keeps stepping, masked). The env is built here, outside any trace (brax
    builds arrays); `run` is pure and jittable.
    """
    import jax
    import jax.numpy as jnp

    env = make_env(task, auto_reset=False)

    def run(act, key):
        state = jax.vmap(env.reset)(jax.random.split(key, episodes))

        def one_step(carry, k):
            state, total, length, alive = carry
            state = jax.vmap(env.step)(state, jnp.clip(act(state.obs, k), -1.0, 1.0))
            total = total + alive * state.reward
            length = length + alive
            return (state, total, length, alive * (1.0 - state.done)), None

        zeros = jnp.zeros(episodes)
        step_keys = jax.random.split(jax.random.fold_in(key, 1), task.episode_length)
        carry = (state, zeros, zeros, jnp.ones(episodes))
        (_, total, length, _), _ = jax.lax.scan(one_step, carry, step_keys)
        return total, length

    return run


def random_policy_return(task: Task, key, episodes: int):
    """Mean return of uniform random actions in [-1, 1] over `episodes` full episodes: a scalar
    array, computed by one jitted rollout.

    The "random agent" reference of normalised scores (0 = random, as in Atari's human-normalised
    score).
    """
    import jax

    run = episode_runner(task, episodes)
    action_size = make_env(task, auto_reset=False).action_size

    def act(obs, k):
        return jax.random.uniform(k, (obs.shape[0], action_size), minval=-1.0, maxval=1.0)

    return jax.jit(lambda k: run(act, k)[0].mean())(key)
