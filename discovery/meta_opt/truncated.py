"""Truncated gradient estimators over persistent inner runs: PES and truncated ES, and the adapter
that turns any such estimator into a `MetaOptimizer` with an optax outer update.

Estimator interface (learned_optimization's GradientEstimator, in pure functions):

  init(theta `[D]`, key) -> state                     persistent inner runs and accumulators
  estimate(theta `[D]`, state, key) -> (grad `[D]`, state, metrics)

`grad` estimates the gradient of the *loss* (minimised) summed over the steps of a lifetime;
theta is the flat vector of meta-parameters (`jax.flatten_util.ravel_pytree`).

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

evosax 0.3.2's PersistentES keeps one accumulator per population member and assumes whole-
population resets at fixed horizons; our runs reset at their own (staggered, variable) times
inside a segment, so PES is written here in a dozen lines instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from discovery.meta_opt.base import MetaOptimizer, register, strong_types
from discovery.segments import SEGMENT_KINDS, TruncationSchedule, make_runs, segment_losses
from discovery.spec import build
from meta_objectives import rank_last


class Estimator(NamedTuple):
    init: Callable
    estimate: Callable


@struct.dataclass
class ESRunsState:
    """runs: the 2P persistent runs (first P: +eps, last P: -eps); xi `[P, D]` accumulated noise."""

    runs: Any
    xi: jax.Array


def make_pes(
    init_runs: Callable,
    unroll: Callable,
    dim: int,
    num_pairs: int,
    sigma: float,
    persistent: bool = True,
) -> Estimator:
    """PES (persistent=True) or truncated ES (persistent=False) over antithetic pairs of runs.

    init_runs(theta `[D]`, key) -> one run's state (called with the same key for both twins).
    unroll(thetas `[N, D]`, runs `[N]`) -> (runs, losses `[K, N]`, done `[K, N]`, metrics):
      K steps of every run; done[k, n] says run n's lifetime ended after step k (and it reset).
    estimate's metrics: `losses` `[K, 2P]`, `done`, `nonfinite_pairs` (pairs left out of this
    estimate for a non-finite loss; all of them: grad 0), plus the unroll's metrics.
    """

    def init(theta, key):
        keys = jax.random.split(key, num_pairs)
        runs = jax.vmap(init_runs, in_axes=(None, 0))(theta, keys)
        runs = jax.tree.map(lambda x: jnp.concatenate([x, x]), runs)
        return ESRunsState(runs=runs, xi=jnp.zeros((num_pairs, dim), theta.dtype))

    def estimate(theta, state: ESRunsState, key):
        eps = sigma * jax.random.normal(key, (num_pairs, dim), theta.dtype)
        thetas = jnp.concatenate([theta + eps, theta - eps])
        runs, losses, done, metrics = unroll(thetas, state.runs)
        diff = losses[:, :num_pairs] - losses[:, num_pairs:]  # [K, P]
        finite = jnp.all(jnp.isfinite(diff), axis=0)  # [P]
        diff = jnp.where(finite, diff, 0.0)
        ended = done[:, :num_pairs]
        # after[k]: a lifetime ended at an earlier step of this segment, so step k's lifetime
        # started inside the segment and has seen eps only
        after = jnp.cumsum(ended, axis=0) - ended > 0
        old = state.xi + eps if persistent else eps
        grad = old.T @ jnp.sum(jnp.where(after, 0.0, diff), 0) + eps.T @ jnp.sum(jnp.where(after, diff, 0.0), 0)
        grad = grad / (2 * jnp.maximum(jnp.sum(finite), 1) * sigma**2)
        if persistent:
            xi = jnp.where(ended[-1][:, None], 0.0, jnp.where(ended.any(0)[:, None], eps, old))
        else:
            xi = state.xi
        nonfinite = num_pairs - jnp.sum(finite).astype(jnp.int32)
        return grad, ESRunsState(runs=runs, xi=xi), dict(
            metrics, losses=losses, done=done, nonfinite_pairs=nonfinite)

    return Estimator(init, estimate)


# ---- run-spec options and the MetaOptimizer adapter -----------------------------------------------

@dataclasses.dataclass(frozen=True)
class SegmentOptions:
    """Options shared by the truncated estimators ([meta_optimizer] keys).

    unroll_length: K inner updates per outer step. truncation: "constant" (lifetimes of
    `lifetime` updates; 0 = ppo.num_updates) or "log_uniform" in [min_lifetime, max_lifetime].
    Lifetimes may not exceed ppo.num_updates: a rule is exported and evaluated with lifetimes of
    ppo.num_updates, so that is the longest lifetime it is trained for (each run's lifetime
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
        if self.unroll_length < 1:
            raise ValueError(f"meta_optimizer.unroll_length = {self.unroll_length} must be >= 1")
        if not self.learning_rate > 0:
            raise ValueError(f"meta_optimizer.learning_rate = {self.learning_rate!r} must be > 0")
        if self.lifetime < 0:
            raise ValueError(f"meta_optimizer.lifetime = {self.lifetime} must be >= 0 (0 = ppo.num_updates)")

    def schedule(self, num_updates: int) -> TruncationSchedule:
        """The truncation schedule for lifetimes of at most `num_updates` (ppo.num_updates)."""
        try:
            schedule = TruncationSchedule(self.truncation, self.lifetime or num_updates,
                                          self.min_lifetime, self.max_lifetime, self.stagger)
        except ValueError as err:
            raise ValueError(f"meta_optimizer: {err}") from err
        field, longest = (("lifetime", schedule.length) if self.truncation == "constant"
                          else ("max_lifetime", self.max_lifetime))
        if longest > num_updates:
            raise ValueError(
                f"meta_optimizer.{field} = {longest} exceeds ppo.num_updates = {num_updates}; "
                f"lifetimes may not be longer than ppo.num_updates: lower {field} or raise num_updates"
            )
        return schedule


@dataclasses.dataclass(frozen=True)
class PESOptions(SegmentOptions):
    """Options of name = "pes" and "truncated_es": num_pairs antithetic pairs, noise std sigma."""

    num_pairs: int = 4
    sigma: float = 0.03

    def __post_init__(self):
        super().__post_init__()
        if self.num_pairs < 1:
            raise ValueError(f"meta_optimizer.num_pairs = {self.num_pairs} must be >= 1")
        if not self.sigma > 0:
            raise ValueError(f"meta_optimizer.sigma = {self.sigma!r} must be > 0")

    @property
    def population_size(self) -> int:
        return 2 * self.num_pairs


@struct.dataclass
class GradientState:
    """theta `[D]` (flat meta-params), Adam state, one estimator state per task, key, best score."""

    theta: jax.Array
    opt_state: Any
    estimators: tuple
    key: jax.Array
    best_fitness: jax.Array


def task_scale(problem, t: int):
    """The loss divisor of task t: |baseline| when the objective is baseline-normalised, else 1."""
    return 1.0 if problem.baselines is None else jnp.abs(problem.baselines[t])


def gradient_meta_optimizer(problem, opts, make_estimator: Callable, rollouts_per_step: int) -> MetaOptimizer:
    """MetaOptimizer from a per-task estimator factory and an Adam outer update.

    rollouts_per_step: inner updates' worth of rollouts one step costs per task (for the job's
    env-step accounting).
    make_estimator(t, algo, unravel, dim) -> Estimator whose metrics hold "scores" `[N]` (the
    segment's learning-curve area of each of its N runs). The gradient is averaged over tasks;
    metrics follow discovery.meta_opt.base (fitness `[N]` = mean score over tasks), plus
    `nonfinite_pairs`: antithetic pairs left out of the estimates, summed over tasks (0 for
    estimators without pairs).
    """
    theta0, unravel = ravel_pytree(problem.init_meta_params(jax.random.PRNGKey(opts.init_seed)))
    estimators = [make_estimator(t, algo, unravel, theta0.size) for t, algo in enumerate(problem.algos)]
    tx = optax.adam(opts.learning_rate)

    def init(key):
        k_est, k_state = jax.random.split(key)
        states = tuple(e.init(theta0, jax.random.fold_in(k_est, t)) for t, e in enumerate(estimators))
        return strong_types(GradientState(theta0, tx.init(theta0), states, k_state, jnp.asarray(-jnp.inf)))

    def step(state: GradientState):
        key, k_est = jax.random.split(state.key)
        grads, states, scores, nonfinite_pairs = [], [], [], 0
        for est, est_state in zip(estimators, state.estimators):
            grad, est_state, metrics = est.estimate(state.theta, est_state, k_est)
            grads.append(grad)
            states.append(est_state)
            scores.append(metrics["scores"])
            nonfinite_pairs += metrics.get("nonfinite_pairs", 0)
        grad = jnp.mean(jnp.stack(grads), 0)
        finite = jnp.all(jnp.isfinite(grad))
        updates, opt_state = tx.update(jnp.where(finite, grad, 0.0), state.opt_state, state.theta)
        task_scores = jnp.stack(scores, axis=1)
        fitness = jnp.mean(task_scores, axis=1)
        ranked, num_nonfinite = rank_last(fitness)
        best = jnp.maximum(state.best_fitness, jnp.max(ranked))
        new = GradientState(optax.apply_updates(state.theta, updates), opt_state, tuple(states), key, best)
        metrics = {
            "fitness": fitness,
            "task_scores": task_scores,
            "num_nonfinite": num_nonfinite,
            "mean_fitness": jnp.asarray(jnp.nan),
            "best_fitness": best,
            "grad_norm": jnp.linalg.norm(grad),
            "grad_finite": finite,
            "nonfinite_pairs": jnp.asarray(nonfinite_pairs, jnp.int32),
        }
        return strong_types(new), metrics

    def params(state: GradientState) -> dict:
        meta = unravel(state.theta)
        return {"mean": meta, "best": meta}

    env_steps = rollouts_per_step * sum(algo.env_steps_per_update for algo in problem.algos)
    return MetaOptimizer(init, step, params, opts, env_steps)


def segment_scores(segment) -> jax.Array:
    """Per-run mean of the learning curve (`Segment.curve`) over the segment: `[K, N]` -> `[N]`."""
    return jnp.mean(segment.curve, axis=0)


def make_rl_pes(problem, opts: PESOptions, persistent: bool) -> MetaOptimizer:
    """PES / truncated ES over segments of PPO lifetimes on every task of `problem`."""
    objective = problem.objective
    schedule = opts.schedule(problem.ppo.num_updates)

    def make_estimator(t, algo, unravel, dim):
        init_one, advance = make_runs(algo, schedule)

        def init_runs(theta, key):
            return init_one(unravel(theta), key)

        def unroll(thetas, runs):
            runs, segment = advance(jax.vmap(unravel)(thetas), runs, opts.unroll_length)
            losses = segment_losses(segment, objective.kind, objective.last_k, task_scale(problem, t))
            return runs, losses, segment.done, {"scores": segment_scores(segment)}

        return make_pes(init_runs, unroll, dim, opts.num_pairs, opts.sigma, persistent)

    # every member advances its runs by unroll_length updates
    return gradient_meta_optimizer(problem, opts, make_estimator, opts.population_size * opts.unroll_length)


def check_pes(opts: PESOptions, rule, ppo, objective) -> None:
    """Lifetimes fit ppo.num_updates and the objective has a per-update loss (ValueError)."""
    del rule
    opts.schedule(ppo.num_updates)
    if objective.kind not in SEGMENT_KINDS:
        raise ValueError(
            f"meta_objective.kind = {objective.kind!r} has no per-update form for truncated "
            f"estimators; use one of {', '.join(SEGMENT_KINDS)} (or meta_optimizer.name = 'es')"
        )


@register("pes", PESOptions, check_pes)
def make_pes_optimizer(options: dict, problem) -> MetaOptimizer:
    """Factory for `[meta_optimizer] name = "pes"`; options validated as PESOptions."""
    return make_rl_pes(problem, build(PESOptions, options, "meta_optimizer"), persistent=True)


@register("truncated_es", PESOptions, check_pes)
def make_truncated_es_optimizer(options: dict, problem) -> MetaOptimizer:
    """Factory for `[meta_optimizer] name = "truncated_es"`; options validated as PESOptions."""
    return make_rl_pes(problem, build(PESOptions, options, "meta_optimizer"), persistent=False)
