"""Segmented inner runs: a persistent batch of inner lifetimes advanced K updates per outer step,
and `truncated_step`, the `base.TruncatedStep` over them that every truncated estimator uses. It
runs any registered inner algorithm through the contract of `inner_algos.contract`: init, step,
rollout_loss; the state's update, lifetime and key; the metrics' num_episodes and episode_return.

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
`InnerState.lifetime`: the lifetime fraction (`inner_algos.contract.lifetime_fraction`) is this run's
update / length, whatever the inner algorithm's num_updates (e.g. ppo.num_updates) says.

Runs are independent: run n's randomness (rollouts, resets, lengths) derives from its own key
only, so two runs initialised from the same key stay identical under identical meta-params
(the antithetic pairs of PES rely on this: common random numbers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from discovery.meta_opt.base import TruncatedStep, Unrolled
from inner_algos.config_checks import (
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    Noted,
    OneOf,
    check_fields,
)
from inner_algos.registry import config_section
from meta_objectives import SEGMENT_KINDS, segment_losses, segment_scores
from meta_objectives.meta_losses import meta_loss as select_meta_loss

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
        check_fields(
            self,
            "truncation",
            kind=OneOf(SCHEDULES),
            length=POSITIVE_INT,
            min_length=POSITIVE_INT,
            max_length=POSITIVE_INT,
        )
        if self.min_length > self.max_length:
            raise ValueError(
                f"truncation.min_length = {self.min_length} must be <= max_length = {self.max_length}"
            )

    def sample(self, key: jax.Array) -> jax.Array:
        """One lifetime length, int32 `[]`."""
        if self.kind == "constant":
            return jnp.asarray(self.length, jnp.int32)
        u = jax.random.uniform(key, minval=jnp.log(self.min_length), maxval=jnp.log(self.max_length + 1))
        return jnp.clip(jnp.floor(jnp.exp(u)), self.min_length, self.max_length).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class SegmentOptions:
    """Options shared by the truncated estimators ([meta_optimizer] keys).

    unroll_length: K inner updates per outer step. truncation: "constant" (lifetimes of
    `lifetime` updates; 0 = the inner algorithm's num_updates, e.g. ppo.num_updates) or
    "log_uniform" in [min_lifetime, max_lifetime]. Lifetimes may not exceed num_updates: a rule is
    exported and evaluated with lifetimes of num_updates, so that is the longest lifetime it is
    trained for (each run's lifetime
    fraction is update / its own length). stagger: random first ages. learning_rate: Adam step
    on the meta-parameters.
    init_seed: key for the rule's initial meta-parameters.
    """

    unroll_length: int = 4
    truncation: str = "constant"
    lifetime: int = 0
    min_lifetime: int = 10
    max_lifetime: int = 100
    stagger: bool = True
    learning_rate: float = 0.01
    init_seed: int = 0

    def __post_init__(self):
        check_fields(
            self,
            "meta_optimizer",
            unroll_length=POSITIVE_INT,
            learning_rate=POSITIVE,
            truncation=OneOf(SCHEDULES),
            min_lifetime=POSITIVE_INT,
            max_lifetime=POSITIVE_INT,
            lifetime=Noted(NON_NEGATIVE_INT, "(0 = the inner algorithm's num_updates)"),
        )
        if self.min_lifetime > self.max_lifetime:
            raise ValueError(
                f"meta_optimizer.min_lifetime = {self.min_lifetime} must be <= "
                f"max_lifetime = {self.max_lifetime}"
            )

    def schedule(self, config: Any) -> TruncationSchedule:
        """The truncation schedule for lifetimes of at most the inner algorithm's
        `config.num_updates`; ValueError naming the field and the inner algorithm's key (e.g.
        lpg.num_updates) when a lifetime would be longer."""
        num_updates = config.num_updates
        key = f"{config_section(config)}.num_updates"
        schedule = TruncationSchedule(
            self.truncation, self.lifetime or num_updates, self.min_lifetime, self.max_lifetime, self.stagger
        )
        field, longest = (
            ("lifetime", schedule.length)
            if self.truncation == "constant"
            else ("max_lifetime", self.max_lifetime)
        )
        if longest > num_updates:
            raise ValueError(
                f"meta_optimizer.{field} = {longest} exceeds {key} = {num_updates}; "
                f"lifetimes may not be longer than {key}: lower {field} or raise num_updates"
            )
        return schedule


def check_segments(opts: SegmentOptions, rule: Any, config: Any, objective: Any) -> None:
    """Lifetimes of the truncation schedule fit config.num_updates (ValueError otherwise)."""
    del rule, objective
    opts.schedule(config)


@struct.dataclass
class Runs:
    """N persistent lifetimes: inner `InnerState` with leading axis `[N]` (its `lifetime` is each
    run's current lifetime length, int32 `[N]`); latest `[N]`: mean return of the latest episodes
    that ended in the current lifetime, seen `[N]` bool: one has (see `Segment.curve`)."""

    inner: Any
    latest: jax.Array
    seen: jax.Array

    @property
    def length(self) -> jax.Array:
        return self.inner.lifetime


class Segment(NamedTuple):
    """What one outer step's K updates produced; every field `[K, N]`.

    metrics: the inner algorithm's per-update metrics; age: the update's age in its lifetime
    (0-based); length: that lifetime's length; done: the lifetime ended with this update (the
    run was reset after it); curve: the lifetime's learning curve as whole-lifetime scores read
    it (`meta_objectives.latest_returns`: the latest ended episodes' mean return, 0 before the
    first), carried across segments.
    """

    metrics: dict
    age: jax.Array
    length: jax.Array
    done: jax.Array
    curve: jax.Array


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
        return Runs(inner=inner, latest=jnp.zeros(()), seen=jnp.zeros((), bool))

    def step_one(meta_params, runs: Runs):
        inner, metrics = algo.step(meta_params, runs.inner)
        age = runs.inner.update
        done = inner.update >= runs.length
        ended = metrics["num_episodes"] > 0
        latest = jnp.where(ended, metrics["episode_return"], runs.latest)
        seen = runs.seen | ended
        curve = jnp.where(seen, latest, 0.0)
        k_next, k_reset, k_len = jax.random.split(inner.key, 3)
        fresh = algo.init(meta_params, k_reset).replace(lifetime=schedule.sample(k_len))
        inner = inner.replace(key=k_next)
        inner = jax.tree.map(lambda f, o: jnp.where(done, f, o), fresh, inner)
        runs_next = Runs(inner=inner, latest=jnp.where(done, 0.0, latest), seen=seen & ~done)
        return runs_next, Segment(metrics, age, runs.length, done, curve)

    def advance(meta_params, runs: Runs, num_steps: int, shared: bool = False, remat: bool = False):
        one = jax.vmap(step_one, in_axes=(None if shared else 0, 0))
        if remat:
            one = jax.checkpoint(one)
        return jax.lax.scan(lambda r, _: one(meta_params, r), runs, None, length=num_steps)

    return init_one, advance


def truncated_step(
    algo,
    schedule: TruncationSchedule,
    unroll_length: int,
    unravel: Callable,
    objective,
    scale=1.0,
    meta_loss: str | None = None,
    remat: bool = False,
) -> TruncatedStep:
    """The `base.TruncatedStep` of the lifetimes of `algo` (any `InnerAlgo`) cut into segments of
    `unroll_length`.

    unravel: flat theta `[D]` -> the rule's meta-params. objective (`MetaObjective`) and scale
    (`meta_objectives.task_scale`) give the unroll's per-update losses (`segment_losses`; None
    for kinds without a per-update form) and its scores (`segment_scores`). meta_loss: the kind
    (`meta_objectives.meta_losses`) of the held-out loss on a fresh rollout of each run
    (None: no meta_loss, e.g. PES); with one, an algorithm's `meta_regulariser` of each run's
    K steps is the unroll's `regulariser` (LPG's entropy and target regularisers). remat: each
    inner update under jax.checkpoint (reverse-mode memory of one InnerState per update).
    """
    if meta_loss is not None and algo.rollout_loss is None:
        raise ValueError(
            f"meta-loss {meta_loss!r} reads the inner algorithm's rollout_loss, which "
            f"{type(algo).__name__} does not provide; use an estimator without a meta-loss (es, pes)"
        )
    init_one, advance = make_runs(algo, schedule)

    def init_runs(theta, key):
        return init_one(unravel(theta), key)

    def unroll(theta, runs):
        shared = theta.ndim == 1
        meta = unravel(theta) if shared else jax.vmap(unravel)(theta)
        runs, segment = advance(meta, runs, unroll_length, shared=shared, remat=remat)
        losses = (
            segment_losses(segment, objective.kind, objective.last_k, scale)
            if objective.kind in SEGMENT_KINDS
            else None
        )
        regulariser = None
        if meta_loss is not None and algo.meta_regulariser is not None:
            regulariser = jax.vmap(algo.meta_regulariser, in_axes=1)(segment.metrics)
        return runs, Unrolled(losses, segment.done, segment_scores(segment), regulariser)

    def held_out_losses(theta, runs, keys):
        return jax.vmap(
            lambda meta, inner, k: select_meta_loss(meta_loss, *algo.rollout_loss(meta, inner, k)),
            in_axes=(None, 0, 0),
        )(unravel(theta), runs.inner, keys)

    return TruncatedStep(init_runs, unroll, None if meta_loss is None else held_out_losses)
