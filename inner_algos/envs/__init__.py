"""Environments: the task type and its labels (`task`), the source registry (`sources`), one
module per task source (`brax`, `gymnax`, `gridworld`: each the only importer of its library,
each registering itself), and whole episodes (`runner`: the episode runner, the random agent).

Adding a source is one module that ends with `register_source(TaskSource(...))`, one import line
below, its tests and its row in docs/tasks.md (docs/add-task-source.md).
"""

# the sources shipped with the package (each registers itself on import)
from inner_algos.envs import brax, gridworld, gymnax  # noqa: E402, F401
from inner_algos.envs.runner import episode_runner, random_actions, random_policy_return
from inner_algos.envs.sources import DEFAULT_SOURCE, SOURCES, TaskSource, register_source, source_entry
from inner_algos.envs.task import (
    Task,
    canonical_label,
    env_names,
    make_env,
    parse_label,
    randomizable,
    sample_params,
    task_from_table,
)

__all__ = [
    "DEFAULT_SOURCE",
    "SOURCES",
    "Task",
    "TaskSource",
    "canonical_label",
    "env_names",
    "episode_runner",
    "make_env",
    "parse_label",
    "random_actions",
    "random_policy_return",
    "randomizable",
    "register_source",
    "sample_params",
    "source_entry",
    "task_from_table",
]
