"""Small things the tests build again and again: a tiny PPO config, the same config as `--set`
arguments and a whole tiny `discover eval` command line, a `Problem` from a parsed job spec, and
one task's eval statistics over two evaluation points."""

import numpy as np

from discovery.evaluation import results as eval_results
from discovery.meta_opt.problem import Problem
from inner_algos.envs import Task
from inner_algos.ppo import PPOConfig

# a tiny eval: conftest's tiny_ppo widths and batch, on 30-step episodes
TINY_SET_ARGS = [
    arg
    for setting in (
        "ppo.num_envs=16",
        "ppo.rollout_length=8",
        "ppo.num_minibatches=2",
        "ppo.num_epochs=1",
        "ppo.actor_hidden=[16]",
        "ppo.critic_hidden=[16]",
        "ppo.eval_envs=2",
        "task.episode_length=30",
    )
    for arg in ("--set", setting)
]


def tiny_eval_argv(source, tasks: str, out) -> list[str]:
    """`discover eval` arguments: `source` on `tasks` with 2 seeds, a budget of 256 env steps and 2
    evaluation points, against ppo_clip, into `out`, with the tiny PPO of TINY_SET_ARGS."""
    return [
        "eval",
        str(source),
        "--tasks",
        tasks,
        "--seeds",
        "2",
        "--budget",
        "256",
        "--points",
        "2",
        "--baselines",
        "ppo_clip",
        "--out",
        str(out),
        *TINY_SET_ARGS,
    ]


def tiny_ppo_config(width: int = 16, **overrides) -> PPOConfig:
    """A PPO config that compiles and runs in seconds on a CPU: `width` envs and hidden units,
    8-step rollouts, 3 updates of one epoch of 2 minibatches, 2 eval envs; `overrides` on top."""
    fields = dict(
        num_envs=width,
        rollout_length=8,
        num_updates=3,
        num_minibatches=2,
        num_epochs=1,
        actor_hidden=(width,),
        critic_hidden=(width,),
        eval_envs=2,
    )
    return PPOConfig(**{**fields, **overrides})


def spec_problem(spec, baselines=None, **options) -> Problem:
    """The `Problem` of a parsed job spec (its rule, tasks, inner algorithm, meta-objective and job
    settings), with `baselines` and the further keyword `options` as given."""
    return Problem(
        spec.rule,
        spec.tasks,
        spec.inner_config,
        spec.meta_objective,
        spec.job.seeds_per_member,
        baselines,
        spec.job.population_batch,
        spec.job.evaluate_mean,
        inner=spec.inner,
        **options,
    )


def two_point_results(
    curves: dict[str, np.ndarray],
    in_training: bool | None,
    random_return: float = 5.0,
    reference: str | None = "ppo_clip",
):
    """`task_results` of curves `{label: [N, 2]}` evaluated at updates 0 and 4 (128 env steps an
    update) under the default PPO config and task, normalised by `reference`."""
    return eval_results.task_results(
        curves, np.array([0, 4]), 128, in_training, PPOConfig(), Task(), random_return, reference
    )
