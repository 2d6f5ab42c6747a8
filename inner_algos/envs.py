"""Tasks and the one environment interface the learners see, over three sources: brax, gymnax and
gridworld (LPG's tabular grid worlds, `inner_algos.gridworld_envs`).

A `Task` is static, hashable configuration (source, name, backend, episode length, action
repeat, reward scale, randomised parameter ranges). `make_env(task)` returns a single,
unbatched environment of any source (`inner_algos.brax_envs`, `inner_algos.gymnax_envs`, the
only modules importing those libraries, and `inner_algos.gridworld_envs`) with this interface;
callers `vmap` it themselves:

  observation_size, action_size: ints; discrete: bool (integer actions in [0, action_size)
      when true, else continuous actions in [-1, 1]^action_size that the env clips)
  reset(key, params) -> state          params: `sample_params(task, key)` ({} when not randomised)
  step(state, action, params) -> state  auto-resets after a finished episode
  state.obs `[observation_size]` float32, state.reward, state.done (termination or time limit),
  state.info["truncation"] (time-limit cut, not a termination: GAE bootstraps there),
  state.info["episode_metrics"]["sum_reward" | "length"] (of the episode so far, incl. this step)

Randomised tasks: `randomize = {name: (low, high)}` ranges are sampled uniformly once per
lifetime (`sample_params`) as traced scalars, so one compiled program serves every sample.
A grid world's lifetime parameters are its object cells, always drawn per lifetime.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

from inner_algos import brax_envs, gridworld_envs, gymnax_envs
from inner_algos.config_checks import POSITIVE, POSITIVE_INT, check_fields, did_you_mean, respell

SOURCES = ("brax", "gymnax", "gridworld")
BACKENDS = brax_envs.BACKENDS


def env_names(source: str = "brax") -> tuple[str, ...]:
    """Environment names of `source`: brax's registry, the gymnax envs we support, or the grid worlds."""
    if source == "gridworld":
        return gridworld_envs.env_names()
    return brax_envs.env_names() if source == "brax" else gymnax_envs.env_names()


def randomisable(source: str, env_name: str) -> tuple[str, ...]:
    """Names a task of `source`/`env_name` may randomise: brax physics scale factors, or the
    numeric fields of the gymnax env's params; none for a grid world (its layout is drawn per lifetime)."""
    if source == "brax":
        return tuple(brax_envs.PHYSICS_FIELDS)
    if source == "gridworld":
        return ()
    return tuple(gymnax_envs.randomisable_fields(env_name))


@dataclasses.dataclass(frozen=True)
class Task:
    """One MDP to train on, or a distribution of them when `randomize` is set.

    Attributes:
      source: "brax" (default), "gymnax" or "gridworld".
      env_name: registry name of the source, e.g. "inverted_pendulum" or "CartPole-v1".
      backend: brax physics pipeline, one of BACKENDS ("" -> "spring"); empty for gymnax.
      episode_length: time limit in agent steps (each `action_repeat` physics frames long);
        None -> 1000 for brax, the env's own limit for gymnax (CartPole-v1: 500) and the published
        one for a grid world (dense: 500).
      action_repeat: how many times one action is applied (brax only).
      reward_scale: multiplies the reward seen by the learner (returns are logged unscaled).
      randomize: {name: [low, high]} ranges sampled once per lifetime (see `randomisable`);
        stored as a sorted tuple of (name, (low, high)) so that the task stays hashable.
    """

    env_name: str = "inverted_pendulum"
    backend: str = ""
    episode_length: int | None = None
    action_repeat: int = 1
    reward_scale: float = 1.0
    source: str = "brax"
    randomize: Any = ()

    OLD_SPELLINGS: ClassVar[dict] = {"randomise": "randomize"}  # read by config_checks.build

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(
                f"task.source = {self.source!r} is unknown{did_you_mean(self.source, SOURCES)}; "
                f"valid sources: {', '.join(SOURCES)}"
            )
        names = env_names(self.source)
        if self.env_name not in names:
            raise ValueError(
                f"task.env_name = {self.env_name!r} is not a {self.source} environment"
                f"{did_you_mean(self.env_name, names)}; valid names: {', '.join(names)}"
            )
        self._resolve_source_defaults()
        check_fields(
            self, "task", episode_length=POSITIVE_INT, action_repeat=POSITIVE_INT, reward_scale=POSITIVE
        )
        object.__setattr__(
            self, "randomize", _ranges(self.randomize, randomisable(self.source, self.env_name))
        )

    def _resolve_source_defaults(self):
        if self.source == "brax":
            backend = self.backend or "spring"
            if backend not in BACKENDS:
                raise ValueError(
                    f"task.backend = {self.backend!r} is unknown; valid backends: {', '.join(BACKENDS)}"
                )
            object.__setattr__(self, "backend", backend)
            if self.episode_length is None:
                object.__setattr__(self, "episode_length", 1000)
            return
        for field, default in (("backend", ""), ("action_repeat", 1)):
            if getattr(self, field) != default:
                raise ValueError(
                    f"task.{field} = {getattr(self, field)!r} applies to brax tasks only; "
                    f"remove it from the {self.source} task {self.env_name!r}"
                )
        if self.episode_length is None:
            source = gridworld_envs if self.source == "gridworld" else gymnax_envs
            object.__setattr__(self, "episode_length", source.default_episode_length(self.env_name))

    @property
    def base_label(self) -> str:
        """'hopper/spring' for brax (as before sources existed), 'gymnax:CartPole-v1' for gymnax,
        'gridworld:dense' for a grid world."""
        if self.source == "brax":
            return f"{self.env_name}/{self.backend}"
        return f"{self.source}:{self.env_name}"

    @property
    def label(self) -> str:
        """Short human-readable name: base_label, then '~name=low..high' per randomised field."""
        return self.base_label + "".join(f"~{k}={lo:g}..{hi:g}" for k, (lo, hi) in self.randomize)

    def as_table(self) -> dict:
        """The task as a spec table; `source` and `randomize` only when not the defaults, so
        that brax tasks resolve to the same table as before sources existed (runs resume)."""
        table = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        table["randomize"] = {k: list(v) for k, v in self.randomize}
        for key, default in (("source", "brax"), ("randomize", {})):
            if table[key] == default:
                del table[key]
        return table


def _ranges(value: Any, valid: tuple[str, ...]) -> tuple:
    """{name: [low, high]} (or pairs of them) -> sorted ((name, (low, high)), ...), checked."""
    items = value.items() if isinstance(value, dict) else value
    if not isinstance(items, (tuple, list, type({}.items()))):
        raise ValueError(f"task.randomize = {value!r} must be a table like {{ mass_scale = [0.5, 2.0] }}")
    out = []
    for item in items:
        name, bounds = item
        if name not in valid:
            raise ValueError(
                f"task.randomize.{name} is not a randomisable field; valid fields: "
                f"{', '.join(valid) or 'none for this env'}"
            )
        if (
            not isinstance(bounds, (list, tuple))
            or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
        ):
            raise ValueError(f"task.randomize.{name} = {bounds!r} must be a range [low, high] of two numbers")
        low, high = float(bounds[0]), float(bounds[1])
        if low > high:
            raise ValueError(
                f"task.randomize.{name} = {list(bounds)!r} has low > high; write [{high:g}, {low:g}]"
            )
        out.append((name, (low, high)))
    return tuple(sorted(out))


def parse_label(text: str) -> dict:
    """'gymnax:Breakout-MinAtar', 'brax:hopper/spring', 'hopper/spring' or 'hopper' -> the task
    table {source, env_name[, backend]}; a '~...' randomisation suffix is ignored."""
    text = text.split("~", 1)[0].strip()
    source, sep, rest = text.partition(":")
    if not sep:
        source, rest = "brax", text
    if source not in SOURCES:
        raise ValueError(
            f"task {text!r}: source {source!r} is unknown{did_you_mean(source, SOURCES)}; "
            f"valid sources: {', '.join(SOURCES)}"
        )
    if source in ("gymnax", "gridworld"):
        return {"source": source, "env_name": rest}
    env, _, backend = rest.partition("/")
    return {"source": "brax", "env_name": env, "backend": backend or "spring"}


def canonical_label(text: str) -> str:
    """A task label as `Task.label` spells it: 'hopper' -> 'hopper/spring', 'brax:hopper/spring'
    -> 'hopper/spring', 'gymnax:CartPole-v1' unchanged; a '~...' suffix is kept."""
    table = parse_label(text)
    suffix = text.strip().partition("~")[2]
    base = (
        f"{table['env_name']}/{table['backend']}"
        if table["source"] == "brax"
        else f"{table['source']}:{table['env_name']}"
    )
    return base + (f"~{suffix}" if suffix else "")


def task_from_table(table: dict) -> Task:
    """The Task of a spec's task table (keys that are not Task fields, if any, are ignored;
    old spellings of renamed keys, e.g. in an older run directory, are read as the new ones)."""
    fields = {f.name for f in dataclasses.fields(Task)}
    return Task(**{k: v for k, v in respell(Task, table, "task").items() if k in fields})


@functools.cache
def make_env(task: Task, auto_reset: bool = True):
    """Single (unbatched) env for `task` (module docstring), auto-resetting unless told not to
    (brax only: gymnax always auto-resets; the episode runner stops counting at `done`).

    Episodes end after task.episode_length agent steps; a brax state's
    `info['episode_metrics']['length']` counts physics frames (agent steps x action_repeat).

    Cached: building a brax system parses MJCF, which costs seconds.
    """
    if task.source == "brax":
        return brax_envs.BraxEnv(task, auto_reset)
    if task.source == "gridworld":
        return gridworld_envs.GridworldEnv(task)
    return gymnax_envs.GymnaxEnv(task)


def sample_params(task: Task, key) -> dict:
    """One lifetime's randomised parameters {name: scalar}, uniform in the task's ranges;
    {} for a task without ranges (the env then runs its fixed defaults). A grid world's are its
    object cells `{"object_cells": [m]}` (`gridworld_envs.sample_layout`)."""
    import jax

    if task.source == "gridworld":
        return gridworld_envs.sample_layout(task.env_name, key)
    return {
        name: jax.random.uniform(jax.random.fold_in(key, i), (), minval=low, maxval=high)
        for i, (name, (low, high)) in enumerate(task.randomize)
    }


def episode_runner(task: Task, episodes: int):
    """`run(act, key, params) -> (returns, lengths)`, each `[episodes]`: plays `episodes` full
    episodes of `task` with env params `params` (length in agent steps; env steps are
    action_repeat times more).

    act(obs `[episodes, obs_size]`, key) -> actions `[episodes, ...]` of the env's action space.
    Resets use `key`, the per-step action keys `fold_in(key, 1)`. Episodes that end stop
    counting (the env keeps stepping, masked). The env is built here, outside any trace (brax
    builds arrays); `run` is pure and jittable.
    """
    import jax
    import jax.numpy as jnp

    env = make_env(task, auto_reset=False)

    def run(act, key, params):
        state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, episodes), params)
        step = jax.vmap(env.step, in_axes=(0, 0, None))

        def one_step(carry, k):
            state, total, length, alive = carry
            state = step(state, act(state.obs, k), params)
            total = total + alive * state.reward
            length = length + alive
            return (state, total, length, alive * (1.0 - state.done)), None

        zeros = jnp.zeros(episodes)
        step_keys = jax.random.split(jax.random.fold_in(key, 1), task.episode_length)
        carry = (state, zeros, zeros, jnp.ones(episodes))
        (_, total, length, _), _ = jax.lax.scan(one_step, carry, step_keys)
        return total, length

    return run


def random_actions(env, key, batch: int):
    """Uniform random actions `[batch, ...]` of `env`'s action space."""
    import jax

    if env.discrete:
        return jax.random.randint(key, (batch,), 0, env.action_size)
    return jax.random.uniform(key, (batch, env.action_size), minval=-1.0, maxval=1.0)


def random_policy_return(task: Task, key, episodes: int):
    """Mean return of uniform random actions over `episodes` full episodes: a scalar array,
    computed by one jitted rollout. A randomised task's episodes each sample their own params
    (the return is over the task distribution).

    The "random agent" reference of normalised scores (0 = random, as in Atari's human-normalised
    score).
    """
    import jax

    env = make_env(task, auto_reset=False)

    def act(obs, k):
        return random_actions(env, k, obs.shape[0])

    if not task.randomize:
        run = episode_runner(task, episodes)
        return jax.jit(lambda k: run(act, k, {})[0].mean())(key)
    run_one = episode_runner(task, 1)

    def one_episode(k):
        return run_one(act, k, sample_params(task, jax.random.fold_in(k, 2)))[0][0]

    return jax.jit(lambda k: jax.vmap(one_episode)(jax.random.split(k, episodes)).mean())(key)
