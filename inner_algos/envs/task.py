"""The task: static, hashable configuration of one MDP (or a distribution of them), its labels,
its env and its per-lifetime parameters, over any registered source (`inner_algos.envs.sources`).

A `Task` is source, name, backend, episode length, action repeat, reward scale and randomised
parameter ranges. `make_env(task)` returns a single, unbatched environment of the task's source
(each source module is the only one importing its library) with this interface; callers `vmap`
it themselves:

  observation_size, action_size: ints; discrete: bool (integer actions in [0, action_size)
      when true, else continuous actions in [-1, 1]^action_size that the env clips)
  reset(key, params) -> state          params: `sample_params(task, key)` ({} when not randomised)
  step(state, action, params) -> state  auto-resets after a finished episode
  state.obs `[observation_size]` float32, state.reward, state.done (termination or time limit),
  state.info["truncation"] (time-limit cut, not a termination: GAE bootstraps there),
  state.info["episode_metrics"]["sum_reward" | "length"] (of the episode so far, incl. this step)

Randomised tasks: `randomize = {name: (low, high)}` ranges are sampled uniformly once per
lifetime (`sample_params`) as traced scalars, so one compiled program serves every sample.
A source may draw more per lifetime (a grid world: its object cells).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

from inner_algos.config_checks import POSITIVE, POSITIVE_INT, check_fields, did_you_mean, respell
from inner_algos.envs.sources import DEFAULT_SOURCE, SOURCES, source_entry


def env_names(source: str = DEFAULT_SOURCE) -> tuple[str, ...]:
    """Environment names of the registered `source` (brax's registry, our gymnax envs, the grid worlds)."""
    return source_entry(source).env_names()


def randomizable(source: str, env_name: str) -> tuple[str, ...]:
    """Names a task of `source`/`env_name` may randomise (brax: physics scale factors; gymnax: the
    numeric fields of the env's params; a grid world: none, its layout is drawn per lifetime)."""
    return tuple(source_entry(source).randomizable(env_name))


@dataclasses.dataclass(frozen=True)
class Task:
    """One MDP to train on, or a distribution of them when `randomize` is set.

    Attributes:
      source: a registered source (`inner_algos.envs.sources`): "brax" (default), "gymnax",
        "gridworld", ...
      env_name: registry name of the source, e.g. "inverted_pendulum" or "CartPole-v1".
      backend: physics backend, for a source that has them (brax: one of its pipelines, "" ->
        "spring"); empty for the others.
      episode_length: time limit in agent steps (each `action_repeat` physics frames long);
        None -> the source's default (brax: 1000; gymnax: the env's own limit, CartPole-v1: 500;
        a grid world: the published one, dense: 500).
      action_repeat: how many times one action is applied (sources that allow it: brax).
      reward_scale: multiplies the reward seen by the learner (returns are logged unscaled).
      randomize: {name: [low, high]} ranges sampled once per lifetime (see `randomizable`);
        stored as a sorted tuple of (name, (low, high)) so that the task stays hashable.
    """

    env_name: str = "inverted_pendulum"
    backend: str = ""
    episode_length: int | None = None
    action_repeat: int = 1
    reward_scale: float = 1.0
    source: str = DEFAULT_SOURCE
    randomize: Any = ()

    OLD_SPELLINGS: ClassVar[dict] = {"randomise": "randomize"}  # read by config_checks.build

    def __post_init__(self):
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
            self, "randomize", _ranges(self.randomize, randomizable(self.source, self.env_name))
        )

    def _resolve_source_defaults(self) -> None:
        """Fills the source's default backend and episode length; refuses a backend or an
        action repeat the source does not have."""
        source = source_entry(self.source)
        if source.backends:
            backend = self.backend or source.backends[0]
            if backend not in source.backends:
                valid = ", ".join(source.backends)
                raise ValueError(f"task.backend = {self.backend!r} is unknown; valid backends: {valid}")
            object.__setattr__(self, "backend", backend)
        checks: list[tuple[str, object]] = [] if source.backends else [("backend", "")]
        checks += [] if source.action_repeat else [("action_repeat", 1)]
        for field, default in checks:
            if getattr(self, field) != default:
                raise ValueError(
                    f"task.{field} = {getattr(self, field)!r} does not apply to {self.source} tasks; "
                    f"remove it from the {self.source} task {self.env_name!r}"
                )
        if self.episode_length is None:
            object.__setattr__(self, "episode_length", source.default_episode_length(self.env_name))

    @property
    def base_label(self) -> str:
        """'hopper/spring' for brax (as before sources existed), 'gymnax:CartPole-v1' for gymnax,
        'gridworld:dense' for a grid world: the source's `label`."""
        return source_entry(self.source).base_label(self.env_name, self.backend)

    @property
    def label(self) -> str:
        """Short human-readable name: base_label, then '~name=low..high' per randomised field."""
        return self.base_label + "".join(f"~{k}={lo:g}..{hi:g}" for k, (lo, hi) in self.randomize)

    def as_table(self) -> dict:
        """The task as a spec table; `source` and `randomize` only when not the defaults, so
        that brax tasks resolve to the same table as before sources existed (runs resume)."""
        table = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        table["randomize"] = {k: list(v) for k, v in self.randomize}
        for key, default in (("source", DEFAULT_SOURCE), ("randomize", {})):
            if table[key] == default:
                del table[key]
        return table


def _ranges(value: Any, valid: tuple[str, ...]) -> tuple:
    """{name: [low, high]} (or pairs of them) -> sorted ((name, (low, high)), ...), checked."""
    items: Any = value.items() if isinstance(value, dict) else value
    if not isinstance(items, (tuple, list, type({}.items()))):
        raise ValueError(f"task.randomize = {value!r} must be a table like {{ mass_scale = [0.5, 2.0] }}")
    out = []
    for name, bounds in items:
        if name not in valid:
            raise ValueError(
                f"task.randomize.{name} is not a randomizable field; valid fields: "
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
    table {source, env_name[, backend]} (the source's `parse_label`; no prefix: brax); a '~...'
    randomisation suffix is ignored."""
    text = text.split("~", 1)[0].strip()
    source, sep, rest = text.partition(":")
    if not sep:
        source, rest = DEFAULT_SOURCE, text
    entry = source_entry(source, field=f"task {text!r}: source")
    return {"source": source, **entry.parse_label(rest)}


def canonical_label(text: str) -> str:
    """A task label as `Task.label` spells it: 'hopper' -> 'hopper/spring', 'brax:hopper/spring'
    -> 'hopper/spring', 'gymnax:CartPole-v1' unchanged; a '~...' suffix is kept."""
    table = parse_label(text)
    suffix = text.strip().partition("~")[2]
    base = SOURCES[table["source"]].base_label(table["env_name"], table.get("backend", ""))
    return base + (f"~{suffix}" if suffix else "")


def task_from_table(table: dict) -> Task:
    """The Task of a spec's task table (keys that are not Task fields, if any, are ignored;
    old spellings of renamed keys, e.g. in an older run directory, are read as the new ones)."""
    fields = {f.name for f in dataclasses.fields(Task)}
    return Task(**{k: v for k, v in respell(Task, table, "task").items() if k in fields})


@functools.cache
def make_env(task: Task, auto_reset: bool = True) -> Any:
    """Single (unbatched) env for `task` (module docstring), auto-resetting unless told not to
    (brax only: gymnax and grid worlds always auto-reset; the episode runner stops counting at
    `done`).

    Episodes end after task.episode_length agent steps; a brax state's
    `info['episode_metrics']['length']` counts physics frames (agent steps x action_repeat).

    Cached: building a brax system parses MJCF, which costs seconds.
    """
    return source_entry(task.source).make_env(task, auto_reset)


def sample_params(task: Task, key: Any) -> dict:
    """One lifetime's randomised parameters {name: scalar}, uniform in the task's ranges;
    {} for a task without ranges (the env then runs its fixed defaults). A source may draw its
    own instead (a grid world: its object cells `{"object_cells": [m]}`)."""
    import jax

    own = source_entry(task.source).sample_params
    if own is not None:
        return own(task, key)
    return {
        name: jax.random.uniform(jax.random.fold_in(key, i), (), minval=low, maxval=high)
        for i, (name, (low, high)) in enumerate(task.randomize)
    }
