"""Segmented inner runs: a persistent batch of PPO lifetimes advanced K updates per outer step.

Truncated meta-optimizers (PES, truncated ES, truncated meta-gradients) never train a lifetime in
one go. They keep N inner states and advance each by K updates per outer step; a run whose
lifetime is over is reset inside the step (a fresh `InnerAlgo.init` selected with a mask), so
the shapes never change and the whole outer step stays one jitted computation.

Lifetime lengths come from a truncation schedule ("constant": `length`; "log_uniform": an
integer in [min_length, max_length] with log-uniform density, redrawn at every reset, as in
learned_optimization's LogUniformLengthSchedule). Start ages are staggered: run n's first
lifetime starts at a random age in [0, length), i.e. it is cut short, so that lifetimes end at
different outer steps and segment gradients are not all taken at the same age (learned_
optimization's random initial iteration offset). The age is `InnerState.update` and the length
`InnerState.lifetime`: PPO's lifetime fraction (`inner_algos.ppo.lifetime_fraction`) is this run's
update / length, whatever ppo.num_updates says.

Runs are independent: run n's randomness (rollouts, resets, lengths) derives from its own key
only, so two runs initialised from the same key stay identical under identical meta-params
(the antithetic pairs of PES rely on this: common random numbers).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

SCHEDULES = ("constant", "log_uniform")


@dataclasses.dataclass(frozen=True)
class TruncationSchedule:
    """Lifetime lengths in inner updates (see module docstring). `stagger`: random first ages."""

    kind: str = "constant"
    length: int = 50
    min_length: int = 10
    max_length: int = 100
    stagger: bool = True

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"truncation kind = {self.kind!r} is unknown; valid: {', '.join(SCHEDULES)}")
        for field in ("length", "min_length", "max_length"):
            if getattr(self, field) < 1:
                raise ValueError(f"truncation {field} = {getattr(self, field)!r} must be >= 1")
        if self.min_length > self.max_length:
            raise ValueError(
                f"truncation min_length = {self.min_length} must be <= max_length = {self.max_length}"
            )

    def sample(self, key: jax.Array) -> jax.Array:
        """One lifetime length, int32 `[]`."""
        if self.kind == "constant":
            return jnp.asarray(self.length, jnp.int32)
        u = jax.random.uniform(key, minval=jnp.log(self.min_length), maxval=jnp.log(self.max_length + 1))
        return jnp.clip(jnp.floor(jnp.exp(u)), self.min_length, self.max_length).astype(jnp.int32)


@struct.dataclass
class Runs:
    """N persistent lifetimes: inner `InnerState` with leading axis `[N]` (its `lifetime` is each
    run's current lifetime length, int32 `[N]`)."""

    inner: Any

    @property
    def length(self) -> jax.Array:
        return self.inner.lifetime


class Segment(NamedTuple):
    """What one outer step's K updates produced; every field `[K, N]`.

    metrics: the inner algorithm's per-update metrics; age: the update's age in its lifetime
    (0-based); length: that lifetime's length; done: the lifetime ended with this update (the
    run was reset after it).
    """

    metrics: dict
    age: jax.Array
    length: jax.Array
    done: jax.Array


def make_runs(algo, schedule: TruncationSchedule) -> tuple[Callable, Callable]:
    """(init, advance) over a batch of runs of `algo` (an `InnerAlgo`).

    init(meta_params, key) -> Runs of one lifetime (vmap it over keys for N runs)
    advance(meta_params `[N, ...]` or shared, runs, num_steps K, shared: bool, remat: bool)
        -> (runs, Segment)    K updates of every run, resets inside; `remat` wraps each update
        in jax.checkpoint so that reverse-mode memory grows with K by one InnerState per update.
    """

    def init_one(meta_params, key):
        k_inner, k_len, k_age = jax.random.split(key, 3)
        length = schedule.sample(k_len)
        inner = algo.init(meta_params, k_inner).replace(lifetime=length)
        if schedule.stagger:
            inner = inner.replace(update=jax.random.randint(k_age, (), 0, length).astype(jnp.int32))
        return Runs(inner=inner)

    def step_one(meta_params, runs: Runs):
        inner, metrics = algo.step(meta_params, runs.inner)
        age = runs.inner.update
        done = inner.update >= runs.length
        k_next, k_reset, k_len = jax.random.split(inner.key, 3)
        fresh = algo.init(meta_params, k_reset).replace(lifetime=schedule.sample(k_len))
        inner = inner.replace(key=k_next)
        inner = jax.tree.map(lambda f, o: jnp.where(done, f, o), fresh, inner)
        return Runs(inner=inner), Segment(metrics, age, runs.length, done)

    def advance(meta_params, runs: Runs, num_steps: int, shared: bool = False, remat: bool = False):
        one = jax.vmap(step_one, in_axes=(None if shared else 0, 0))
        if remat:
            one = jax.checkpoint(one)
        return jax.lax.scan(lambda r, _: one(meta_params, r), runs, None, length=num_steps)

    return init_one, advance


def segment_losses(segment: Segment, kind: str, last_k: int, scale) -> jax.Array:
    """Per-update losses `[K, N]` whose sum over a lifetime is -(meta-objective) / scale.

    kind "curve_area": -return_k / length (updates with no finished episode count 0, so this is
    the learning-curve area when every update ends an episode); "final_return": -return_k / last_k
    over the last `last_k` updates of the lifetime, 0 before. `scale`: e.g. |baseline| of the task.
    """
    metrics = segment.metrics
    returns = jnp.where(metrics["num_episodes"] > 0, metrics["episode_return"], 0.0)
    if kind == "curve_area":
        return -returns / segment.length / scale
    if kind == "final_return":
        return -returns * (segment.age >= segment.length - last_k) / last_k / scale
    raise ValueError(
        f"meta_objective.kind = {kind!r} has no per-update form for truncated estimators; "
        "use curve_area or final_return"
    )
