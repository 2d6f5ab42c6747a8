"""The inner-algorithm contract: what the outer loop (meta-objectives, segments, evaluation,
divergence checks, memory check) reads of any inner algorithm, and `check_inner_algo`, which
checks one against it without running it (`jax.eval_shape`).

An inner algorithm is built by its registered factory (`inner_algos.registry`):
`make(config, task, rule) -> InnerAlgo`, an object with these attributes:

  init(meta_params, key) -> state                  a fresh lifetime
  step(meta_params, state) -> (state, metrics)     one update; metrics: scalars `[]`
  train(meta_params, key) -> (state, metrics)      init, then config.num_updates steps; metrics
                                                   stacked `[num_updates]`
  evaluate(state, key) -> (mean_return [], mean_length [])   the deterministic policy
  rollout_loss(meta_params, state, key) -> (loss [], stats) or None
                                                   the algorithm's loss on a fresh rollout,
                                                   differentiable in state.params (the held-out
                                                   meta-loss of metagrad / online_metagrad);
                                                   stats hold ROLLOUT_LOSS_KEYS
  meta_regulariser(step_metrics) -> [] or None     the algorithm's term of that meta-loss read off
                                                   the K updates before it (step_metrics: step's
                                                   metrics stacked `[K]`; differentiable in
                                                   meta_params through them): metagrad adds it
                                                   to the rollout_loss term (None: nothing)
  config, task, rule                               what it was built from
  env_steps_per_update: int                        env steps one `step` takes
  loss_metrics: tuple[str, ...]                    metric keys of its losses: a run with any of
                                                   them non-finite diverged

All functions are pure, jittable and vmappable over meta_params and keys. The state is a
flax `struct.dataclass` (the truncated runs call `.replace`) whose shapes never depend on
meta_params, with at least STATE_FIELDS:

  params     every parameter the agent learns (checked for finiteness: divergence)
  key        the lifetime's PRNG key (truncated runs split it to reset a lifetime)
  update     int32 `[]`: updates done in this lifetime (its age)
  lifetime   int32 `[]`: this lifetime's length in updates (config.num_updates unless a
             truncation schedule sets it); `lifetime_fraction(state)` is the progress input
             of every rule

and optionally `obs_stats` (observation statistics the policy acts through: checked with
params by `policy_leaves`). `step`'s metrics hold at least METRIC_KEYS, each a float32 `[]`:

  episode_return  mean unscaled return of the episodes that ended in the update (NaN if none)
  episode_length  their mean length in agent steps (NaN if none)
  num_episodes    how many ended

plus the algorithm's `loss_metrics`. The config (`InnerConfig`) is a frozen dataclass with at
least `num_updates` (the lifetime in updates) and `eval_envs` (episodes `evaluate` averages).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

import jax
import jax.numpy as jnp

Metrics = dict[str, jax.Array]

STATE_FIELDS = ("params", "key", "update", "lifetime")
OPTIONAL_STATE_FIELDS = ("obs_stats",)
METRIC_KEYS = ("episode_return", "episode_length", "num_episodes")
ROLLOUT_LOSS_KEYS = ("policy_loss",)  # meta_objectives.meta_losses reads it
CONFIG_FIELDS = ("num_updates", "eval_envs")
ALGO_FIELDS = (
    "init",
    "step",
    "train",
    "evaluate",
    "rollout_loss",
    "meta_regulariser",
    "config",
    "task",
    "rule",
    "env_steps_per_update",
    "loss_metrics",
)


class InnerConfig(Protocol):
    """What the outer loop reads of an inner algorithm's config (its spec section): a frozen
    dataclass (written to results with `dataclasses.asdict`) with at least these fields."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def num_updates(self) -> int:
        """Updates per lifetime (the truncated estimators bound lifetimes by it)."""

    @property
    def eval_envs(self) -> int:
        """Episodes `evaluate` averages over (and the random agent's reference)."""


class InitFn(Protocol):
    def __call__(self, meta_params: Any, key: jax.Array) -> Any:
        """A fresh lifetime's state (STATE_FIELDS); its shapes never depend on meta_params."""


class StepFn(Protocol):
    def __call__(self, meta_params: Any, state: Any) -> tuple[Any, Metrics]:
        """One update; metrics are scalars (METRIC_KEYS and the loss metrics at least)."""


class TrainFn(Protocol):
    def __call__(self, meta_params: Any, key: jax.Array) -> tuple[Any, Metrics]:
        """A whole lifetime: `init` then `step` config.num_updates times; metrics stacked
        `[num_updates]`."""


class EvaluateFn(Protocol):
    def __call__(self, state: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean return `[]`, mean episode length `[]`) of the deterministic policy over
        config.eval_envs full episodes."""


class RolloutLossFn(Protocol):
    def __call__(self, meta_params: Any, state: Any, key: jax.Array) -> tuple[jax.Array, Metrics]:
        """(total loss `[]`, its statistics, ROLLOUT_LOSS_KEYS among them) on a fresh rollout of
        the agent in `state`, differentiable in state.params."""


class MetaRegulariserFn(Protocol):
    def __call__(self, step_metrics: Metrics) -> jax.Array:
        """The algorithm's term `[]` of a truncated meta-loss from the metrics of the K updates
        before it (each stacked `[K]`); differentiable in meta_params through them."""


class InnerAlgo(Protocol):
    """The inner-loop contract (module docstring): pure, jittable functions, vmappable over
    meta_params and keys (population x tasks x seeds)."""

    @property
    def init(self) -> InitFn: ...

    @property
    def step(self) -> StepFn: ...

    @property
    def train(self) -> TrainFn: ...

    @property
    def evaluate(self) -> EvaluateFn: ...

    @property
    def rollout_loss(self) -> RolloutLossFn | None: ...

    @property
    def meta_regulariser(self) -> MetaRegulariserFn | None: ...

    @property
    def config(self) -> InnerConfig: ...

    @property
    def task(self) -> Any: ...

    @property
    def rule(self) -> Any: ...

    @property
    def env_steps_per_update(self) -> int:
        """Env steps one `step` takes (action repeats included)."""

    @property
    def loss_metrics(self) -> tuple[str, ...]:
        """Metric keys of the losses: a run with any of them non-finite diverged."""


def lifetime_fraction(state) -> jax.Array:
    """update / lifetime of this run, clipped to [0, 1], float32 `[]`: the one "progress through
    training" input (learning-rate annealing, hyperparameter schedules, learned optimizer)."""
    return jnp.clip(state.update / state.lifetime, 0.0, 1.0).astype(jnp.float32)


def policy_leaves(state) -> tuple:
    """What the agent acts through: (params,) plus obs_stats when the state has them; a run whose
    leaves are not all finite has diverged (its actions may not be finite)."""
    if hasattr(state, "obs_stats"):
        return (state.params, state.obs_stats)
    return (state.params,)


def policy_finite(state) -> jax.Array:
    """Whether every leaf of `policy_leaves(state)` (parameters, observation statistics) is
    finite: bool `[]`. Evaluation reads it at every point of a curve."""
    leaves = jax.tree.leaves(policy_leaves(state))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def lifetime_diverged(algo, state, metrics: Metrics) -> jax.Array:
    """Whether a lifetime diverged, bool `[]`: the one definition the meta-objective uses, for
    every inner algorithm. `state`: the lifetime's final state; `metrics`: its step metrics
    stacked `[U]`. It diverged when what the agent acts through is non-finite at the end
    (`policy_finite`: parameters, observation statistics) or any of its losses
    (`algo.loss_metrics`) was non-finite in any update. Returns are not read: `episode_return` is
    NaN by definition in updates that end no episode, and a NaN policy may end none at all."""
    losses = [jnp.all(jnp.isfinite(metrics[k])) for k in algo.loss_metrics]
    return ~(policy_finite(state) & jnp.all(jnp.stack([jnp.asarray(True), *losses])))


def check_inner_algo(algo, meta_params: Any = None, key: jax.Array | None = None) -> None:
    """Checks `algo` against the contract by `jax.eval_shape` (nothing runs): its attributes,
    its config's fields, init's state fields, step's and train's metric keys and shapes,
    evaluate's, rollout_loss's and meta_regulariser's outputs. meta_params: the rule's (default: `rule.init`).
    Raises ValueError listing every breach."""
    key = jax.random.PRNGKey(0) if key is None else key
    problems = [f"has no attribute {f!r}" for f in ALGO_FIELDS if not hasattr(algo, f)]
    if problems:
        raise ValueError(f"inner algorithm breaks the contract: {'; '.join(problems)}")
    if meta_params is None:
        meta_params = algo.rule.init(key)
    config = algo.config
    if not dataclasses.is_dataclass(config):
        problems.append(f"config {type(config).__name__} is not a dataclass")
    problems += [f"config has no field {f!r}" for f in CONFIG_FIELDS if not hasattr(config, f)]
    if not isinstance(algo.env_steps_per_update, int) or algo.env_steps_per_update < 1:
        problems.append(f"env_steps_per_update = {algo.env_steps_per_update!r} is not a positive int")
    state = jax.eval_shape(algo.init, meta_params, key)
    problems += [f"state has no field {f!r}" for f in STATE_FIELDS if not hasattr(state, f)]
    if not hasattr(state, "replace"):
        problems.append("state has no .replace (make it a flax struct.dataclass)")
    for f in ("update", "lifetime"):
        x = getattr(state, f, None)
        if x is not None and (x.shape != () or x.dtype != jnp.int32):
            problems.append(f"state.{f} is {x.dtype}{list(x.shape)}, not int32 []")
    keys = (*METRIC_KEYS, *algo.loss_metrics)
    _, metrics = jax.eval_shape(algo.step, meta_params, state)
    problems += _metric_problems("step", metrics, keys, ())
    _, stacked = jax.eval_shape(algo.train, meta_params, key)
    problems += _metric_problems("train", stacked, keys, (config.num_updates,))
    out = jax.eval_shape(algo.evaluate, state, key)
    if len(out) != 2 or any(x.shape != () for x in out):
        problems.append(f"evaluate returns {out}, not (mean return [], mean length [])")
    if algo.rollout_loss is not None:
        total, stats = jax.eval_shape(algo.rollout_loss, meta_params, state, key)
        if total.shape != ():
            problems.append(f"rollout_loss's loss has shape {total.shape}, not []")
        problems += [f"rollout_loss's stats lack {k!r}" for k in ROLLOUT_LOSS_KEYS if k not in stats]
    if algo.meta_regulariser is not None:
        term = jax.eval_shape(algo.meta_regulariser, stacked)
        if getattr(term, "shape", None) != ():
            problems.append(f"meta_regulariser of the step metrics gives {term}, not a scalar []")
    if problems:
        raise ValueError(f"inner algorithm breaks the contract: {'; '.join(problems)}")


def _metric_problems(where: str, metrics: dict, keys, shape: tuple) -> list[str]:
    out = []
    for k in keys:
        if k not in metrics:
            out.append(f"{where}'s metrics lack {k!r}")
        elif metrics[k].shape != shape:
            out.append(f"{where}'s metric {k!r} has shape {list(metrics[k].shape)}, not {list(shape)}")
    return out
