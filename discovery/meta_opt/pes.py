"""PES and truncated ES over persistent inner runs (`base.TruncatedStep`), with an Adam outer
update (`base.gradient_meta_optimizer`).

PES (Persistent Evolution Strategies, Vicol et al. 2021, arXiv 2112.13835, Alg. 2 antithetic):
P pairs of runs, run i unrolled with theta + eps_i and its twin with theta - eps_i (both from the
same keys), eps_i ~ N(0, sigma^2 I) fresh every segment;
    xi_i <- xi_i + eps_i,   grad = sum_i xi_i (L_i^+ - L_i^-) / (2 P sigma^2)
where xi_i, the noise accumulated over the current lifetime, is reset when the lifetime ends.
A lifetime may end inside a segment: the segment's losses are split at the reset, losses before
it weigh with xi_i + eps_i and losses after it with eps_i alone (exact, no approximation), and xi
carries on as the noise of the lifetime running at the segment's end.
Truncated ES is the same with xi always zero before the segment: it sees only the influence of
theta within the segment and is biased for horizons longer than K (the comparison of Vicol et al.).
A pair with a non-finite loss in the segment (a diverged run) is left out of the estimate, which
then averages over the P' finite pairs (divisor 2 P' sigma^2), and is counted in the metrics.

`grad` estimates the gradient of the unroll's losses (`Unrolled.losses`, minimised) summed over
the steps of a lifetime. evosax 0.3.2's PersistentES keeps one accumulator per population member
and assumes whole-population resets at fixed horizons; our runs reset at their own (staggered,
variable) times inside a segment, so PES is written here in a dozen lines instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh

from discovery.meta_opt.base import (
    Estimator,
    MetaOptimizer,
    TruncatedStep,
    gradient_meta_optimizer,
    register,
    unroll_over_devices,
)
from discovery.meta_opt.truncated import SegmentOptions, truncated_step
from inner_algos.config_checks import POSITIVE, Interval, check_fields
from meta_objectives import SEGMENT_KINDS, task_scale

FITNESS_DOC = (
    "learning-curve area of each of the 2 x num_pairs perturbed runs over this step's "
    "segment (mean over its K updates of the latest ended episodes' return), averaged "
    "over tasks, not baseline-normalised; higher is better"
)


@struct.dataclass
class PESState:
    """runs: the 2P persistent runs (first P: +eps, last P: -eps); xi `[P, D]` accumulated noise."""

    runs: Any
    xi: jax.Array


def pes_estimator(
    step: TruncatedStep,
    dim: int,
    num_pairs: int,
    sigma: float,
    persistent: bool = True,
    mesh: Mesh | None = None,
) -> Estimator:
    """PES (persistent=True) or truncated ES (persistent=False) over antithetic pairs of runs.

    step.init_runs is called with the same key for both twins; step.unroll gets one theta per run
    `[2P, D]` and must give per-step losses. estimate's metrics: the unroll's `scores` `[2P]`,
    `losses` `[K, 2P]`, `done`, and `nonfinite_pairs` (pairs left out of this estimate for a
    non-finite loss; all of them: grad 0). With a mesh of several devices the 2P runs are
    unrolled over its devices, each stepping its share (`base.unroll_over_devices`); the
    estimate is then reduced from the gathered losses `[K, 2P]` inside the same step.
    """
    unroll = unroll_over_devices(step.unroll, mesh)

    def init(theta, key):
        keys = jax.random.split(key, num_pairs)
        runs = jax.vmap(step.init_runs, in_axes=(None, 0))(theta, keys)
        runs = jax.tree.map(lambda x: jnp.concatenate([x, x]), runs)
        return PESState(runs=runs, xi=jnp.zeros((num_pairs, dim), theta.dtype))

    def estimate(theta, state: PESState, key):
        eps = sigma * jax.random.normal(key, (num_pairs, dim), theta.dtype)
        thetas = jnp.concatenate([theta + eps, theta - eps])
        runs, unrolled = unroll(thetas, state.runs)
        losses, done = unrolled.losses, unrolled.done
        diff = losses[:, :num_pairs] - losses[:, num_pairs:]  # [K, P]
        finite = jnp.all(jnp.isfinite(diff), axis=0)  # [P]
        diff = jnp.where(finite, diff, 0.0)
        ended = done[:, :num_pairs]
        # after[k]: a lifetime ended at an earlier step of this segment, so step k's lifetime
        # started inside the segment and has seen eps only
        after = jnp.cumsum(ended, axis=0) - ended > 0
        old = state.xi + eps if persistent else eps
        grad = old.T @ jnp.sum(jnp.where(after, 0.0, diff), 0) + eps.T @ jnp.sum(
            jnp.where(after, diff, 0.0), 0
        )
        grad = grad / (2 * jnp.maximum(jnp.sum(finite), 1) * sigma**2)
        if persistent:
            xi = jnp.where(ended[-1][:, None], 0.0, jnp.where(ended.any(0)[:, None], eps, old))
        else:
            xi = state.xi
        nonfinite = num_pairs - jnp.sum(finite).astype(jnp.int32)
        metrics = {"scores": unrolled.scores, "losses": losses, "done": done, "nonfinite_pairs": nonfinite}
        return grad, PESState(runs=runs, xi=xi), metrics

    return Estimator(init, estimate)


@dataclasses.dataclass(frozen=True)
class PESOptions(SegmentOptions):
    """Options of name = "pes" and "truncated_es": num_pairs antithetic pairs, noise std sigma."""

    num_pairs: int = 4
    sigma: float = 0.03

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, "meta_optimizer", num_pairs=Interval(1), sigma=POSITIVE)

    @property
    def population_size(self) -> int:
        return 2 * self.num_pairs


def check_pes(opts: PESOptions, rule, config, objective) -> None:
    """Lifetimes fit config.num_updates and the objective has a per-update loss (ValueError)."""
    del rule
    opts.schedule(config)
    if objective.kind not in SEGMENT_KINDS:
        raise ValueError(
            f"meta_objective.kind = {objective.kind!r} has no per-update form for truncated "
            f"estimators; use one of {', '.join(SEGMENT_KINDS)} (or meta_optimizer.name = 'es')"
        )


def _pes_meta_optimizer(problem, opts: PESOptions, persistent: bool) -> MetaOptimizer:
    """PES / truncated ES over segments of inner lifetimes on every task of `problem`."""
    schedule = opts.schedule(problem.inner_config)

    def make_estimator(t, algo, unravel, dim):
        step = truncated_step(
            algo, schedule, opts.unroll_length, unravel, problem.objective, task_scale(problem.baselines, t)
        )
        return pes_estimator(step, dim, opts.num_pairs, opts.sigma, persistent, problem.runs_mesh)

    # every member advances its runs by unroll_length updates
    return gradient_meta_optimizer(
        problem, opts, make_estimator, opts.population_size * opts.unroll_length, FITNESS_DOC
    )


@register("pes", PESOptions, check_pes)
def make_pes(options: PESOptions, problem) -> MetaOptimizer:
    """Factory for `[meta_optimizer] name = "pes"`."""
    return _pes_meta_optimizer(problem, options, persistent=True)


@register("truncated_es", PESOptions, check_pes)
def make_truncated_es(options: PESOptions, problem) -> MetaOptimizer:
    """Factory for `[meta_optimizer] name = "truncated_es"`."""
    return _pes_meta_optimizer(problem, options, persistent=False)
