"""The registry of task sources: what a task's `source` (and a label's `source:` prefix) selects.

A source registers once, at the bottom of its own module (as brax registers environments with
`register_environment`):

    register_source(TaskSource(
        name="gymnax", make_env=GymnaxEnv, env_names=env_names, randomizable=randomizable_fields,
        default_episode_length=default_episode_length, version=lambda: _version("gymnax")))

and `inner_algos/envs/__init__.py` imports the module (one line). A test or a user's script may
call `register_source` itself: nothing else needs to change. Everything that depends on a task's
source (its labels, environments, defaults, env and per-lifetime parameters) asks its entry
through `source_entry(name)`, which refuses an unknown name listing the registered ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from inner_algos.config_checks import did_you_mean

DEFAULT_SOURCE = "brax"  # the source of a task (and a label) that names none


def _plain_label(source: str) -> Callable[[str, str], str]:
    return lambda env_name, backend: f"{source}:{env_name}"


def _plain_parse(rest: str) -> dict[str, Any]:
    return {"env_name": rest}


@dataclasses.dataclass(frozen=True)
class TaskSource:
    """A registered task source.

    name: what a task's `source` says, and a label's prefix ('gymnax:CartPole-v1').
    make_env(task, auto_reset) -> env: one unbatched env behind the interface of `inner_algos.envs`.
    env_names() -> names of its environments (a task's env_name must be one).
    randomizable(env_name) -> names a task of that env may put in `randomize` (ranges sampled
      uniformly per lifetime).
    default_episode_length(env_name) -> the time limit when the task gives none.
    version() -> the version of what the envs come from (the library, or ours).
    backends: the physics backends a task may name, the first the default; () when the source
      has none (a task must then leave `backend` empty).
    action_repeat: whether a task may repeat an action (else it must leave action_repeat at 1).
    label(env_name, backend) -> the task's base label (default 'name:env_name').
    parse_label(rest) -> the task table {env_name[, backend]} of a label's text after 'name:'.
    sample_params(task, key) -> {name: value}: one lifetime's env parameters, when the source
      draws more than the task's `randomize` ranges (a grid world's object cells); None -> the
      uniform draw of the ranges.
    one_hot_observations: whether observations are one-hot states (a tabular agent can read them).
    """

    name: str
    make_env: Callable[..., Any]
    env_names: Callable[[], tuple[str, ...]]
    randomizable: Callable[[str], tuple[str, ...]]
    default_episode_length: Callable[[str], int]
    version: Callable[[], str]
    backends: tuple[str, ...] = ()
    action_repeat: bool = False
    label: Callable[[str, str], str] | None = None
    parse_label: Callable[[str], dict[str, Any]] = _plain_parse
    sample_params: Callable[[Any, Any], dict] | None = None
    one_hot_observations: bool = False

    def base_label(self, env_name: str, backend: str) -> str:
        """The label of an env of this source without its randomisation suffix."""
        return (self.label or _plain_label(self.name))(env_name, backend)


SOURCES: dict[str, TaskSource] = {}


def register_source(source: TaskSource) -> TaskSource:
    """Adds `source` to SOURCES (registering the same name again replaces it: a module reloaded)."""
    if not source.name or ":" in source.name or "/" in source.name or "~" in source.name:
        raise ValueError(f"task source name {source.name!r} must be non-empty without ':', '/' or '~'")
    SOURCES[source.name] = source
    return source


def source_entry(name: str, field: str = "task.source") -> TaskSource:
    """The registered source `name`; ValueError naming `field` and the registered sources."""
    if name not in SOURCES:
        raise ValueError(
            f"{field} = {name!r} is unknown{did_you_mean(name, SOURCES)}; "
            f"valid sources: {', '.join(sorted(SOURCES))}"
        )
    return SOURCES[name]


def source_versions() -> dict[str, str]:
    """{source: version} of every registered source."""
    return {name: entry.version() for name, entry in SOURCES.items()}
