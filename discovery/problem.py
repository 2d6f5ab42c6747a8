"""The meta-learning problem: what a meta-optimizer maximises, and how a population is scored.

`Problem` bundles the rule, the tasks, the PPO config, one compiled-once inner algorithm per task,
the meta-objective, the number of inner seeds per member, per-task baselines and the device mesh.
`fitness(members, key)` scores a whole population of meta-parameters in one traced computation:

  members `[M, ...]` --pad to a multiple of the devices--> shard_map over the mesh axis "pop"
    per device: vmap (or lax.map in chunks of `population_batch`) over its members
      static Python loop over tasks (each task has its own shapes, so its own computation)
        vmap over seeds: InnerAlgo.train (whole lifetime) [+ evaluate] -> score
  scores `[M, T, S]` -> normalise per task by its baseline -> mean over seeds and tasks -> `[M]`

All members share the generation's inner seeds (common random numbers), so members differ only by
their meta-parameters; seed keys depend on the seed index only, never on the device layout, so
1 and N devices compute the same numbers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from inner_algos.envs import Task
from inner_algos.ppo import PPOConfig, make_ppo
from inner_algos.rules import Rule, make_rule
from meta_objectives import MetaObjective, aggregate, normalise, score

POP_AXIS = "pop"


class Problem:
    """Static description of one meta-learning problem (see module docstring).

    Attributes: rule, tasks `(T,)`, ppo, objective, seeds_per_member (S), baselines (`[T]` array
    of baseline scores when objective.normalise == "baseline", else None), population_batch
    (0 = vmap all local members at once), evaluate_mean (meta-optimizers also score their mean
    each step), algos (one InnerAlgo per task), mesh (1-D over all processes' devices, axis "pop").
    """

    def __init__(
        self,
        rule: Rule,
        tasks: tuple[Task, ...],
        ppo: PPOConfig,
        objective: MetaObjective,
        seeds_per_member: int = 1,
        baselines: Any = None,
        population_batch: int = 0,
        evaluate_mean: bool = True,
        devices: list | None = None,
    ):
        if objective.normalise == "baseline" and baselines is None:
            raise ValueError("meta_objective.normalise = 'baseline' needs per-task baselines")
        self.rule = rule
        self.tasks = tuple(tasks)
        self.ppo = ppo
        self.objective = objective
        self.seeds_per_member = seeds_per_member
        self.baselines = None if objective.normalise == "none" else jnp.asarray(baselines, jnp.float32)
        self.population_batch = population_batch
        self.evaluate_mean = evaluate_mean
        self.algos = tuple(make_ppo(ppo, task, rule) for task in self.tasks)
        # every process's devices: under jax.distributed the population spans hosts
        self.mesh = Mesh(np.asarray(devices or jax.devices()), (POP_AXIS,))

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    def init_meta_params(self, key: jax.Array):
        """The rule's initial meta-parameters (the search's starting point)."""
        return self.rule.init(key)

    @property
    def env_steps_per_member(self) -> int:
        """Environment steps one member's evaluation takes (all tasks and seeds, eval included)."""
        return self.seeds_per_member * sum(run_env_steps(algo, self.objective) for algo in self.algos)

    def scores(self, members, key: jax.Array) -> jax.Array:
        """Raw scores `[M, T, S]` of members (meta-param pytree with leading axis M)."""
        size = jax.tree.leaves(members)[0].shape[0]
        pad = -size % self.num_devices
        padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]), members)
        seed_keys = jax.random.split(key, self.seeds_per_member)
        sharded = jax.shard_map(
            self._local_scores,
            mesh=self.mesh,
            in_specs=(PartitionSpec(POP_AXIS), PartitionSpec()),
            out_specs=PartitionSpec(POP_AXIS),
            check_vma=False,
        )
        return sharded(padded, seed_keys)[:size]

    def _local_scores(self, members, seed_keys: jax.Array) -> jax.Array:
        """Scores `[m, T, S]` of one device's members `[m, ...]`; seed_keys `[S, 2]`."""
        per_task = []
        for t, algo in enumerate(self.algos):
            keys = jax.vmap(lambda k: jax.random.fold_in(k, t))(seed_keys)

            def one_member(meta_params, algo=algo, keys=keys):
                return jax.vmap(lambda k: run_score(algo, self.objective, meta_params, k))(keys)

            if self.population_batch:
                per_task.append(jax.lax.map(one_member, members, batch_size=self.population_batch))
            else:
                per_task.append(jax.vmap(one_member)(members))
        return jnp.stack(per_task, axis=1)

    def fitness(self, members, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(fitness `[M]`, per-task score averaged over seeds `[M, T]`), higher is better.

        Fitness is the mean over tasks and seeds of baseline-normalised scores; it is non-finite
        when any of the member's runs is (callers rank such members last).
        """
        raw = self.scores(members, key)
        baselines = None if self.baselines is None else self.baselines[None, :, None]
        return aggregate(normalise(raw, baselines)), jnp.mean(raw, axis=-1)


def run_env_steps(algo, objective: MetaObjective) -> int:
    """Env steps of one inner lifetime of `algo` (plus its final evaluation for eval_return)."""
    steps = algo.env_steps_per_update * algo.config.num_updates
    if objective.kind == "eval_return":
        steps += algo.config.eval_envs * algo.task.episode_length * algo.task.action_repeat
    return steps


def run_score(algo, objective: MetaObjective, meta_params, key: jax.Array) -> jax.Array:
    """Trains one lifetime with `meta_params` from `key` and returns its raw score `[]`.

    A run whose final network parameters or per-update losses are non-finite scores NaN: it
    diverged, whatever its returns say (a NaN policy never terminates some tasks' episodes).
    """
    k_train, k_eval = jax.random.split(key)
    state, metrics = algo.train(meta_params, k_train)
    eval_return = algo.evaluate(state, k_eval)[0] if objective.kind == "eval_return" else None
    checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state.params)]
    checks += [jnp.all(jnp.isfinite(metrics[k])) for k in ("policy_loss", "value_loss")]
    return jnp.where(jnp.all(jnp.stack(checks)), score(objective, metrics, eval_return), jnp.nan)


def measure_baselines(tasks, ppo: PPOConfig, objective: MetaObjective, key: jax.Array) -> np.ndarray:
    """Per-task baseline scores `[T]`: `objective.baseline_rule` trained on `baseline_seeds` seeds.

    Run once at job start (one compile per task); non-finite baselines are an error.
    """
    rule = make_rule(objective.baseline_rule)
    meta_params = rule.init(key)
    out = []
    for t, task in enumerate(tasks):
        algo = make_ppo(ppo, task, rule)
        keys = jax.random.split(jax.random.fold_in(key, t), objective.baseline_seeds)
        scores = jax.jit(jax.vmap(lambda k: run_score(algo, objective, meta_params, k)))(keys)
        value = float(jnp.mean(scores))
        if not np.isfinite(value) or value == 0.0:
            raise ValueError(
                f"baseline {objective.baseline_rule!r} on {task.label} scored {value}; cannot "
                "normalise by it: give meta_objective.baselines in the spec"
            )
        out.append(value)
    return np.asarray(out, np.float32)
