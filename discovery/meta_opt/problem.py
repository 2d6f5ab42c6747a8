"""The meta-learning problem: what a meta-optimizer maximises, and how a population is scored.

`Problem` bundles the rule, the tasks, the inner algorithm's name and config, one compiled-once
inner algorithm per task (`inner_algos.registry.make_inner_algo`; what is read of it:
`inner_algos.contract`),
the meta-objective, the number of inner seeds per member, per-task baselines and the device mesh.
`fitness(members, key)` scores a whole population of meta-parameters in one traced computation:

  members `[M, ...]` --pad to a multiple of the devices--> shard_map over the mesh axis "pop"
    per device: vmap (or lax.map in chunks of `population_batch`) over its members
      static Python loop over tasks (each task has its own shapes, so its own computation)
        vmap over seeds: InnerAlgo.train (whole lifetime) [+ evaluate] -> score, diverged
  scores `[M, T, S]` -> normalise per task by its baseline -> diverged lifetimes scored as a
  clear loss (`meta_objectives.penalize_diverged`) -> mean over seeds and tasks -> `[M]`

With `meta_objective.normalize = "paired"` the same jitted computation also trains the baseline
rule (outside the member sharding, replicated) on the generation's task draws and seed keys,
exactly those of the members, and each member's (task, seed) score is normalised against that
run (`meta_objectives.paired_normalize`): one more member's worth of inner runs per generation.

With `tasks_per_generation = K < T`, each generation draws K distinct task indices from its key
(the same K for every member: common random numbers) and a `lax.scan` over them runs each slot's
task behind `lax.switch` on the traced index: every task is compiled once, one program serves
every draw, and only the drawn tasks are trained.

`Problem` is what every meta-optimizer optimises: it satisfies both problem Protocols of
`discovery.meta_opt.base` (`LifetimeProblem` for whole-lifetime ES, `TruncatedProblem` for the
truncated estimators).

All members share the generation's inner seeds (common random numbers), so members differ only by
their meta-parameters; seed keys depend on the seed index only, never on the device layout, so
1 and N devices compute the same numbers.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from discovery.meta_opt.base import RUNS_AXIS
from inner_algos.contract import InnerConfig, lifetime_diverged
from inner_algos.envs import Task, random_policy_return
from inner_algos.registry import DEFAULT, make_inner_algo
from inner_algos.rules import Rule, make_rule
from meta_objectives import (
    MetaObjective,
    aggregate,
    normalize,
    paired_normalize,
    penalize_diverged,
    score,
)

POP_AXIS = RUNS_AXIS


class Evaluation(NamedTuple):
    """What `Problem.fitness` returns for M members on the generation's K of T tasks, S seeds.

    fitness `[M]`: mean over tasks and seeds of the normalised scores (higher is better);
    task_scores `[M, T]`: raw score, seed mean (NaN for tasks not drawn); scores `[M, K, S]`: the
    normalised scores the fitness averages (a diverged lifetime's penalised); baseline_scores
    `[T]`: the paired baseline's raw score, seed mean (NaN for tasks not drawn), or None when the
    objective is not paired; diverged `[M, K, S]` bool: the lifetimes that diverged
    (`inner_algos.contract.lifetime_diverged`).
    """

    fitness: jax.Array
    task_scores: jax.Array
    scores: jax.Array
    baseline_scores: jax.Array | None
    diverged: jax.Array


class Problem:
    """Static description of one meta-learning problem (see module docstring).

    Attributes: rule, tasks `(T,)`, inner (the registered inner algorithm's name), inner_config
    (its config), objective, seeds_per_member (S), baselines (`[T]` array
    of baseline scores when objective.normalize is "baseline" or "paired", else None),
    random_scores (`[T]` the random agent's scores when "paired", else None), population_batch
    (0 = vmap all local members at once), evaluate_mean (meta-optimizers also score their mean
    each step), tasks_per_generation (K tasks drawn per generation; 0 = all), algos (one
    InnerAlgo per task), mesh (1-D over all processes' devices, axis "pop"), runs_mesh (the
    mesh truncated estimators split their persistent runs over, or None: every device computes
    all runs). split_runs (default on; off only to compare layouts) sets runs_mesh.
    init_params: the meta-parameters the search starts from (a pytree like `rule.init`'s; a
    spec's [rule] init_from), None for `rule.init`.
    """

    def __init__(
        self,
        rule: Rule,
        tasks: tuple[Task, ...],
        inner_config: InnerConfig,
        objective: MetaObjective,
        seeds_per_member: int = 1,
        baselines: Any = None,
        population_batch: int = 0,
        evaluate_mean: bool = True,
        devices: list | None = None,
        tasks_per_generation: int = 0,
        random_scores: Any = None,
        split_runs: bool = True,
        inner: str = DEFAULT,
        init_params: Any = None,
    ):
        if not 0 <= tasks_per_generation <= len(tasks):
            raise ValueError(
                f"job.tasks_per_generation = {tasks_per_generation} must be in "
                f"[0, {len(tasks)}] (0 = all {len(tasks)} tasks)"
            )
        if objective.normalize == "baseline" and baselines is None:
            raise ValueError("meta_objective.normalize = 'baseline' needs per-task baselines")
        if objective.normalize == "paired" and (baselines is None or random_scores is None):
            raise ValueError(
                "meta_objective.normalize = 'paired' needs per-task baseline and "
                "random-agent scores (its scale; measured at job start)"
            )
        objective = objective.with_baseline_rule(inner)
        self.rule = rule
        self.init_params = init_params
        self.tasks = tuple(tasks)
        self.inner = inner
        self.inner_config = inner_config
        self.objective = objective
        self.seeds_per_member = seeds_per_member
        self.baselines = None if objective.normalize == "none" else jnp.asarray(baselines, jnp.float32)
        self.population_batch = population_batch
        self.evaluate_mean = evaluate_mean
        self.tasks_per_generation = tasks_per_generation or len(self.tasks)
        self.algos = tuple(make_inner_algo(inner, inner_config, task, rule) for task in self.tasks)
        self.random_scores = None
        if self.paired:
            self.random_scores = jnp.asarray(random_scores, jnp.float32)
            baseline = make_rule(objective.baseline_rule)
            self.baseline_params = baseline.init(jax.random.PRNGKey(0))  # empty: a fixed rule
            self.baseline_algos = tuple(
                make_inner_algo(inner, inner_config, task, baseline) for task in self.tasks
            )
        # every process's devices: under jax.distributed the population spans hosts
        self.mesh = Mesh(np.asarray(devices or jax.devices()), (POP_AXIS,))
        self.runs_mesh = self.mesh if split_runs else None

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    def init_meta_params(self, key: jax.Array):
        """The search's starting point: `init_params` when given (a spec's [rule] init_from),
        else the rule's own `init(key)`."""
        if self.init_params is not None:
            return jax.tree.map(jnp.asarray, self.init_params)
        return self.rule.init(key)

    @property
    def env_steps_per_member(self) -> int:
        """Env steps one member's evaluation takes (all tasks and seeds, eval included); with
        K < T tasks per generation, K times the mean over tasks (exact when all tasks' lifetimes
        have the same length)."""
        per_task = [run_env_steps(algo, self.objective) for algo in self.algos]
        return self.seeds_per_member * sum(per_task) * self.tasks_per_generation // len(per_task)

    @property
    def paired(self) -> bool:
        """The baseline trains beside the members every generation (one more member's runs)."""
        return self.objective.normalize == "paired"

    @property
    def samples_tasks(self) -> bool:
        return self.tasks_per_generation < len(self.tasks)

    def task_indices(self, key: jax.Array) -> jax.Array:
        """The generation's task indices `[K]` drawn from `key` (the one `fitness` gets), sorted;
        all `arange(T)` when every task runs every generation."""
        if not self.samples_tasks:
            return jnp.arange(len(self.tasks))
        draw = jax.random.choice(
            jax.random.fold_in(key, len(self.tasks)),
            len(self.tasks),
            (self.tasks_per_generation,),
            replace=False,
        )
        return jnp.sort(draw)

    def scores(self, members, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(raw scores, diverged) `[M, K, S]` of members (meta-param pytree with leading axis M)
        on the generation's tasks `task_indices(key)` (all T of them unless sampling); a diverged
        lifetime's raw score is NaN (`run_score`)."""
        size = jax.tree.leaves(members)[0].shape[0]
        pad = -size % self.num_devices
        padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]), members)
        seed_keys = jax.random.split(key, self.seeds_per_member)
        local = self._local_sampled_scores if self.samples_tasks else self._local_scores
        sharded = jax.shard_map(
            local,
            mesh=self.mesh,
            in_specs=(PartitionSpec(POP_AXIS), PartitionSpec(), PartitionSpec()),
            out_specs=PartitionSpec(POP_AXIS),
            check_vma=False,
        )
        out = sharded(padded, seed_keys, self.task_indices(key))
        return out[0][:size], out[1][:size]

    def _task_scores(self, t: int, members, seed_keys: jax.Array):
        """(scores, diverged) `[m, S]` of one device's members `[m, ...]` on task t; seed_keys
        `[S, 2]`."""
        algo = self.algos[t]
        keys = task_keys(seed_keys, t)

        def one_member(meta_params):
            return jax.vmap(lambda k: run_score(algo, self.objective, meta_params, k))(keys)

        if self.population_batch:
            return jax.lax.map(one_member, members, batch_size=self.population_batch)
        return jax.vmap(one_member)(members)

    def _local_scores(self, members, seed_keys: jax.Array, indices: jax.Array):
        """(scores, diverged) `[m, T, S]` on every task, one computation per task."""
        del indices  # all of them
        per_task = [self._task_scores(t, members, seed_keys) for t in range(len(self.algos))]
        return tuple(jnp.stack(parts, axis=1) for parts in zip(*per_task))

    def _local_sampled_scores(self, members, seed_keys: jax.Array, indices: jax.Array):
        """(scores, diverged) `[m, K, S]` on the tasks `indices` `[K]` (traced; module docstring)."""
        branches = [lambda m, k, t=t: self._task_scores(t, m, k) for t in range(len(self.algos))]

        def slot(carry, t):
            return carry, jax.lax.switch(t, branches, members, seed_keys)

        _, out = jax.lax.scan(slot, None, indices)
        return tuple(jnp.moveaxis(x, 0, 1) for x in out)

    def baseline_scores(self, key: jax.Array) -> jax.Array:
        """Raw scores `[K, S]` of the paired baseline rule on the tasks and seed keys that
        `scores(members, key)` trains the members on (the same task draws and seeds)."""
        seed_keys = jax.random.split(key, self.seeds_per_member)

        def one_task(t, seed_keys):
            algo, params = self.baseline_algos[t], self.baseline_params
            return jax.vmap(lambda k: run_score(algo, self.objective, params, k)[0])(task_keys(seed_keys, t))

        if not self.samples_tasks:
            return jnp.stack([one_task(t, seed_keys) for t in range(len(self.tasks))])
        branches = [lambda k, t=t: one_task(t, k) for t in range(len(self.tasks))]
        _, scores = jax.lax.scan(
            lambda c, t: (c, jax.lax.switch(t, branches, seed_keys)), None, self.task_indices(key)
        )
        return scores

    def fitness(self, members, key: jax.Array) -> Evaluation:
        """The members' `Evaluation` on the generation drawn from `key`; higher is better.

        Fitness is the mean over the generation's tasks and seeds of normalised scores (by the
        fixed baselines, or paired with the baseline's runs on the same draws and seeds), a
        diverged lifetime scoring a clear loss (`meta_objectives.penalize_diverged`, over all the
        members given); it is non-finite when any other run of the member's is (callers rank
        such members last): the paired baseline's run on a (task, seed) diverged, or no episode
        ended. Tasks not drawn this generation score NaN in the per-task outputs.
        """
        raw, diverged = self.scores(members, key)
        indices = self.task_indices(key)
        per_task = (
            jnp.full((raw.shape[0], len(self.tasks)), jnp.nan).at[:, indices].set(jnp.mean(raw, axis=-1))
        )
        if self.paired:
            base = self.baseline_scores(key)
            # both set whenever paired (__init__)
            reference = cast(jax.Array, self.baselines)[indices]
            random = cast(jax.Array, self.random_scores)[indices]
            scores = paired_normalize(raw, base, reference, random)
            # no reference where the baseline's own run failed: every member keeps NaN there
            scores = penalize_diverged(scores, diverged & jnp.isfinite(base)[None])
            base_per_task = jnp.full(len(self.tasks), jnp.nan).at[indices].set(jnp.mean(base, axis=-1))
            return Evaluation(aggregate(scores), per_task, scores, base_per_task, diverged)
        baselines = None if self.baselines is None else self.baselines[indices][None, :, None]
        scores = penalize_diverged(normalize(raw, baselines), diverged)
        return Evaluation(aggregate(scores), per_task, scores, None, diverged)


def task_keys(seed_keys: jax.Array, t: int) -> jax.Array:
    """The keys `[S, 2]` of task t's runs from the generation's seed keys `[S, 2]`: every member
    and the paired baseline train task t from these."""
    return jax.vmap(lambda k: jax.random.fold_in(k, t))(seed_keys)


def run_env_steps(algo, objective: MetaObjective) -> int:
    """Env steps of one inner lifetime of `algo` (plus its final evaluation for eval_return)."""
    steps = algo.env_steps_per_update * algo.config.num_updates
    if objective.kind == "eval_return":
        steps += algo.config.eval_envs * algo.task.episode_length * algo.task.action_repeat
    return steps


def run_score(algo, objective: MetaObjective, meta_params, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Trains one lifetime with `meta_params` from `key`: (raw score `[]`, diverged bool `[]`).

    A lifetime that diverged (`inner_algos.contract.lifetime_diverged`: its final policy
    parameters or observation statistics, or a loss in any update, non-finite) scores NaN,
    whatever its returns say (a NaN policy never terminates some tasks' episodes).
    """
    k_train, k_eval = jax.random.split(key)
    state, metrics = algo.train(meta_params, k_train)
    eval_return = algo.evaluate(state, k_eval)[0] if objective.kind == "eval_return" else None
    diverged = lifetime_diverged(algo, state, metrics)
    return jnp.where(diverged, jnp.nan, score(objective, metrics, eval_return)), diverged


def measure_random_scores(tasks, config: InnerConfig, objective: MetaObjective, key: jax.Array) -> np.ndarray:
    """Per-task scores `[T]` of the random agent (uniform random actions): the mean return of
    `baseline_seeds * config.eval_envs` episodes, the reference `discover eval` normalises by too.
    Run once at job start for normalize = "paired" (its scale: baseline minus random)."""
    episodes = objective.baseline_seeds * config.eval_envs
    return np.asarray(
        [
            float(random_policy_return(task, jax.random.fold_in(key, t), episodes))
            for t, task in enumerate(tasks)
        ],
        np.float32,
    )


def measure_baselines(
    tasks, config: InnerConfig, objective: MetaObjective, key: jax.Array, inner: str = DEFAULT
) -> np.ndarray:
    """Per-task baseline scores `[T]`: `objective.baseline_rule` trained by inner algorithm
    `inner` on `baseline_seeds` seeds.

    Run once at job start (one compile per task); non-finite baselines are an error.
    """
    rule = make_rule(objective.with_baseline_rule(inner).baseline_rule)
    meta_params = rule.init(key)
    out = []
    for t, task in enumerate(tasks):
        algo = make_inner_algo(inner, config, task, rule)
        keys = jax.random.split(jax.random.fold_in(key, t), objective.baseline_seeds)
        scores = jax.jit(jax.vmap(functools.partial(run_score, algo, objective, meta_params)))(keys)[0]
        value = float(jnp.mean(scores))
        if not np.isfinite(value) or value == 0.0:
            raise ValueError(
                f"baseline {rule.name!r} on {task.label} scored {value}; cannot "
                "normalise by it: give meta_objective.baselines in the spec"
            )
        out.append(value)
    return np.asarray(out, np.float32)
