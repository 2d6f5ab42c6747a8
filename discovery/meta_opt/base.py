"""What every meta-optimizer shares: its interface, the registry, the problems it optimises, the
truncated-step contract and the optax adapter of gradient estimators.

A `MetaOptimizer` is three pure functions plus its validated options:

  init(key) -> state                 a pytree holding everything needed to resume, RNG key included
  step(state) -> (state, metrics)    one generation / outer step; jittable (one trace for every
                                     generation); metrics: `METRIC_KEYS` plus optional ones
  params(state) -> {"mean": meta_params, "best": meta_params}

What "fitness" means, in every estimator's logs: `metrics["fitness"]` `[P]` holds one score per
member of the step's population (a perturbed meta-parameter or a persistent run), the
meta-objective's score of what this step evaluated for that member, higher is better, non-finite
kept as produced (`num_nonfinite` counts it). The estimators evaluate different things (whole
lifetimes, or the K-update segment of persistent runs), so each says which in its `fitness_doc`,
a line for the run's manifest. The other keys, `METRIC_KEYS`: `task_scores`
`[P, T]` (per-task raw score, seed mean; NaN for a task not trained this step), `num_nonfinite`,
`mean_fitness` (the current mean's score, NaN when not evaluated), `best_fitness` (best member
so far). Optional keys, `OPTIONAL_METRIC_KEYS`: `task_indices` `[K]` (tasks trained this step),
`sigma` (mean search std; ES), `grad_norm`, `grad_finite` (gradient estimators),
`nonfinite_pairs` (antithetic pairs left out of the estimate; 0 for metagrad), `hyperparams`
({name: value}; online_metagrad), `fitness_reliability` `[]` (split-half rank correlation of
the population's fitness, Spearman-Brown corrected, `meta_objectives.reliability`; ES with >= 2
seeds per member), `baseline_scores` `[T]` (the paired baseline's raw score on each task, seed
mean, NaN for a task not trained; ES with meta_objective.normalize = "paired"), `diverged`
`[P, K, S]` bool (which of the population's lifetimes diverged, `inner_algos.contract.
lifetime_diverged`; whole-lifetime ES, whose fitness scores them as a clear loss). The job logs
them under these names (metrics.jsonl; `diverged` as counts).

Estimators register a factory `make_<name>(options: OptionsDataclass, problem) -> MetaOptimizer`
with `@register("<name>", OptionsDataclass, check, whole_lifetime=..., paired_baseline=...)` (the
abilities the spec asks of a `MetaOptimizerEntry`, never its name) and add their module to the
imports in `discovery/meta_opt/__init__.py`; a run spec picks one with `[meta_optimizer] name =
"..."`, the other keys of that table being the options. Spec parsing validates them once, before
any work (`validate_options`: the options dataclass, then `check(options, rule, config,
objective)`, config the inner algorithm's (an `inner_algos.contract.InnerConfig`), which raises
ValueError for combinations the estimator cannot run, e.g. an objective it has no loss for); the
factory receives that typed object and parses nothing. A pure gradient estimator is
`<name>_estimator(...) -> Estimator`.

Truncated estimators (PES, truncated ES, metagrad, online metagrad) see their inner runs only
through one `TruncatedStep` (learned_optimization's TruncatedStep, in pure functions) and become
a `MetaOptimizer` through `gradient_meta_optimizer` (an Adam outer update on theta, the flat
vector of meta-parameters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from discovery.spec_tables import build
from inner_algos.config_checks import SpecError, did_you_mean
from meta_objectives import rank_last

RUNS_AXIS = "pop"  # the mesh axis that population members and persistent runs are laid over
METRIC_KEYS = ("fitness", "task_scores", "num_nonfinite", "mean_fitness", "best_fitness")
OPTIONAL_METRIC_KEYS = (
    "task_indices",
    "sigma",
    "grad_norm",
    "grad_finite",
    "nonfinite_pairs",
    "hyperparams",
    "fitness_reliability",
    "baseline_scores",
    "diverged",
)


class MetaOptimizer(NamedTuple):
    """See the module docstring. options: the validated options dataclass (with a
    `population_size`). env_steps_per_step: environment steps one `step` costs, counting every
    rollout (host-side constant, for progress and throughput logs).
    fitness_doc: what `metrics["fitness"]` holds for this estimator (one line, for the manifest).
    state_sharding(state) -> a pytree of `jax.sharding.NamedSharding` like state: how the job
    lays the state over the problem's mesh between steps and in checkpoints (None: replicated)."""

    init: Callable[[Any], Any]
    step: Callable[[Any], tuple[Any, dict]]
    params: Callable[[Any], dict]
    options: Any
    env_steps_per_step: int
    fitness_doc: str
    state_sharding: Callable[[Any], Any] | None = None


class LifetimeProblem(Protocol):
    """What whole-lifetime estimators (ES) need: `discovery.meta_opt.problem.Problem` is one."""

    evaluate_mean: bool  # also score the search's mean every step
    paired: bool  # the baseline rule trains beside the members every step (one more member)
    env_steps_per_member: int

    def init_meta_params(self, key: jax.Array) -> Any: ...

    def fitness(self, members: Any, key: jax.Array) -> Any:
        """The `Evaluation` (fitness `[M]`, task_scores `[M, T]`, normalised scores `[M, K, S]`,
        baseline_scores `[T]` or None) of meta-params with leading axis M."""

    def task_indices(self, key: jax.Array) -> jax.Array:
        """The tasks `[K]` that `fitness(members, key)` trains."""


class TruncatedProblem(Protocol):
    """What truncated estimators need: `discovery.meta_opt.problem.Problem` is one."""

    rule: Any
    inner_config: Any  # the inner algorithm's config (`InnerConfig`): num_updates bounds the lifetimes
    objective: Any  # MetaObjective
    baselines: jax.Array | None  # `[T]` when the objective is baseline-normalised
    algos: tuple  # one InnerAlgo per task (`inner_algos.contract`)
    mesh: Any  # jax.sharding.Mesh over every device, axis RUNS_AXIS
    runs_mesh: Any  # the Mesh the persistent runs are split over, or None (not split)

    def init_meta_params(self, key: jax.Array) -> Any: ...


# ---- the registry -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MetaOptimizerEntry:
    """A registered meta-optimizer.

    make(options, problem) -> MetaOptimizer; options: its options dataclass ([meta_optimizer]
    keys); check(options, rule, config, objective): optional compatibility check (config: the
    inner algorithm's), ValueError naming the key. Its abilities, which the spec asks instead of
    its name: whole_lifetime: it scores whole lifetimes (`Problem`), so it may sample a subset of
    the tasks per generation (truncated estimators keep persistent runs per task);
    paired_baseline: it trains the baseline beside each generation's population
    (meta_objective.normalize = "paired").
    """

    name: str
    make: Callable[[Any, Any], MetaOptimizer]
    options: type
    check: Callable | None = None
    whole_lifetime: bool = False
    paired_baseline: bool = False


META_OPTIMIZERS: dict[str, MetaOptimizerEntry] = {}


def register(
    name: str,
    options: type,
    check: Callable | None = None,
    *,
    whole_lifetime: bool = False,
    paired_baseline: bool = False,
) -> Callable:
    """Decorator adding `make_<name>(options, problem) -> MetaOptimizer` to META_OPTIMIZERS as a
    `MetaOptimizerEntry`, with its options dataclass, optional compatibility check and abilities."""

    def add(factory: Callable[[Any, Any], MetaOptimizer]) -> Callable[[Any, Any], MetaOptimizer]:
        META_OPTIMIZERS[name] = MetaOptimizerEntry(
            name, factory, options, check, whole_lifetime, paired_baseline
        )
        return factory

    return add


def meta_optimizer_entry(name: str) -> MetaOptimizerEntry:
    """The registered estimator `name`; a SpecError lists the registered ones."""
    _known(name)
    return META_OPTIMIZERS[name]


def estimators_with(ability: str) -> list[str]:
    """Names of the registered estimators with `ability` (a `MetaOptimizerEntry` flag), sorted."""
    return sorted(name for name, entry in META_OPTIMIZERS.items() if getattr(entry, ability))


def parse_options(name: str, options: dict):
    """The options dataclass of estimator `name` built from a [meta_optimizer] table (without
    `name`); a SpecError names a bad key. `validate_options` also checks the combination."""
    return build(meta_optimizer_entry(name).options, dict(options), "meta_optimizer")


def validate_options(name: str, options: dict, rule, config, objective):
    """The validated options dataclass of estimator `name` for this rule, inner algorithm config
    and meta-objective; every problem is a SpecError naming the key."""
    opts = parse_options(name, options)
    check = META_OPTIMIZERS[name].check
    if check is not None:
        try:
            check(opts, rule, config, objective)
        except ValueError as err:
            raise SpecError(str(err)) from err
    return opts


def _known(name: str) -> None:
    if name not in META_OPTIMIZERS:
        raise SpecError(
            f"meta_optimizer.name = {name!r} is unknown{did_you_mean(name, META_OPTIMIZERS)}; "
            f"valid: {', '.join(sorted(META_OPTIMIZERS))}"
        )


def make_meta_optimizer(name: str, options, problem) -> MetaOptimizer:
    """Builds the meta-optimizer registered as `name` from its validated options dataclass
    (`JobSpec.meta_optimizer_options`, or `validate_options` / `parse_options`); unknown names
    list the valid ones."""
    cls = meta_optimizer_entry(name).options
    if not isinstance(options, cls):
        raise TypeError(
            f"make_meta_optimizer({name!r}, ...) takes options of type "
            f"{cls.__name__}, got {type(options).__name__}; build them with "
            f"parse_options({name!r}, table)"
        )
    return META_OPTIMIZERS[name].make(options, problem)


def strong_types(tree):
    """Drops weak types so that init's, step's and a restored state's avals all agree (no retrace)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), tree)


# ---- the truncated-step contract --------------------------------------------------------------


class Unrolled(NamedTuple):
    """What `TruncatedStep.unroll` produced over K steps of N runs.

    losses `[K, N]`: the meta-objective's per-step losses (minimised; summed over a lifetime they
    are minus its score), None when the objective has no per-step form; done `[K, N]`: the run's
    lifetime ended with this step (it was reset after it); scores `[N]`: each run's score over
    the K steps (higher is better: what the estimators log as fitness); regulariser `[N]` or
    None: each run's term of the held-out meta-loss read off these K steps (the inner
    algorithm's `meta_regulariser`, differentiable in theta; None when it has none or no
    meta-loss is taken).
    """

    losses: jax.Array | None
    done: jax.Array
    scores: jax.Array
    regulariser: jax.Array | None = None


class TruncatedStep(NamedTuple):
    """N persistent inner runs, the one interface of every truncated estimator.

    init_runs(theta `[D]`, key) -> one run's state (vmap it over keys for N runs; the same key
      gives the same run: antithetic twins rely on it).
    unroll(theta `[D]` (shared by the runs) or `[N, D]` (one per run), runs `[N]`)
      -> (runs, Unrolled): K steps of every run, lifetimes reset inside; differentiable in theta.
    meta_loss(theta `[D]`, runs `[N]`, keys `[N, 2]`) -> `[N]`: each run's held-out meta-loss of
      its current state, for gradient estimators (None for estimators that use only the unroll's
      losses); the estimators add `Unrolled.regulariser` when the unroll gives one.
    """

    init_runs: Callable[[jax.Array, jax.Array], Any]
    unroll: Callable[[jax.Array, Any], tuple[Any, Unrolled]]
    meta_loss: Callable[[jax.Array, Any, jax.Array], jax.Array] | None


class Estimator(NamedTuple):
    """A truncated gradient estimator (learned_optimization's GradientEstimator):

    init(theta `[D]`, key) -> state                  persistent runs and accumulators
    estimate(theta `[D]`, state, key) -> (grad `[D]`, state, metrics)
      grad: of the loss (minimised); metrics: "scores" `[N]` (`Unrolled.scores`) and optionally
      "nonfinite_pairs" `[]` (antithetic pairs left out of the estimate).
    """

    init: Callable
    estimate: Callable


# ---- persistent runs over devices --------------------------------------------------------------


def pad_leading(tree, multiple: int):
    """Every leaf `[N, ...]` -> `[N + pad, ...]`, N + pad the next multiple of `multiple`, the
    padding copies of entry 0 (their results are dropped or weighted 0 by the callers)."""
    size = jax.tree.leaves(tree)[0].shape[0]
    pad = -size % multiple
    if pad == 0:
        return tree
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]), tree)


def over_devices(fn: Callable, mesh: Mesh | None, in_specs, out_specs) -> Callable:
    """`fn` under `jax.shard_map` over the mesh axis RUNS_AXIS (each device runs `fn` on its
    share of the runs); `fn` itself, unchanged, when the mesh has a single device (so that one
    device computes exactly the unsharded program)."""
    if mesh is None or mesh.size == 1:
        return fn
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)


def unroll_over_devices(unroll: Callable, mesh: Mesh | None) -> Callable:
    """`TruncatedStep.unroll` for one theta per run (thetas `[N, D]`, runs `[N]`) with the N runs
    laid over the mesh's devices (padded to a multiple of them); same outputs, gathered."""
    if mesh is None or mesh.size == 1:
        return unroll
    runs, per_step = PartitionSpec(RUNS_AXIS), PartitionSpec(None, RUNS_AXIS)
    # out_specs: a PartitionSpec per output leaf, in the shape of (runs, Unrolled)
    specs = Unrolled._make((per_step, per_step, runs, None))
    sharded = over_devices(unroll, mesh, (runs, runs), (runs, specs))

    def laid_out(thetas, state):
        size = thetas.shape[0]
        new, unrolled = sharded(*pad_leading((thetas, state), mesh.size))
        cut = Unrolled(
            None if unrolled.losses is None else unrolled.losses[:, :size],
            unrolled.done[:, :size],
            unrolled.scores[:size],
        )
        return jax.tree.map(lambda x: x[:size], new), cut

    return laid_out


@struct.dataclass
class MetaGradState:
    """The N persistent runs of a truncated meta-gradient."""

    runs: Any


def metagrad_estimator(step: TruncatedStep, num_runs: int, mesh: Mesh | None = None) -> Estimator:
    """Truncated backpropagation over `num_runs` runs sharing theta: the gradient of the mean
    over runs of `step.meta_loss(theta, runs after step.unroll(theta, runs), keys)` (plus the
    unroll's `regulariser` when it gives one); no gradient flows into the state the unroll
    starts from. metrics: the unroll's scores and "meta_loss" `[]`.

    With a mesh of several devices, each device unrolls and differentiates its share of the runs
    (padding runs weigh 0) and the gradient is summed over devices (`psum`) inside the step."""

    def init(theta, key):
        runs = jax.vmap(step.init_runs, in_axes=(None, 0))(theta, jax.random.split(key, num_runs))
        return MetaGradState(runs)

    def local(theta, runs, keys, weights):
        """(grad `[D]`, loss `[]`, runs, scores `[n]`) of n runs; weights `[n]` or None (mean)."""

        def loss(theta):
            new, unrolled = step.unroll(theta, runs)
            losses = step.meta_loss(theta, new, keys)
            if unrolled.regulariser is not None:
                losses = losses + unrolled.regulariser
            return (jnp.mean(losses) if weights is None else weights @ losses), (new, unrolled.scores)

        (value, (new, scores)), grad = jax.value_and_grad(loss, has_aux=True)(theta)
        if weights is None:
            return grad, value, new, scores
        return jax.lax.psum(grad, RUNS_AXIS), jax.lax.psum(value, RUNS_AXIS), new, scores

    def estimate(theta, state: MetaGradState, key):
        keys = jax.random.split(key, num_runs)
        if mesh is None or mesh.size == 1:
            grad, value, runs, scores = local(theta, state.runs, keys, None)
        else:
            runs_spec, shared = PartitionSpec(RUNS_AXIS), PartitionSpec()
            sharded = over_devices(
                local, mesh, (shared, runs_spec, runs_spec, runs_spec), (shared, shared, runs_spec, runs_spec)
            )
            padded = num_runs + -num_runs % mesh.size
            weights = jnp.where(jnp.arange(padded) < num_runs, 1.0 / num_runs, 0.0)
            grad, value, runs, scores = sharded(theta, *pad_leading((state.runs, keys), mesh.size), weights)
            runs, scores = jax.tree.map(lambda x: x[:num_runs], (runs, scores))
        metrics = {"scores": scores, "meta_loss": value}
        return grad, MetaGradState(jax.lax.stop_gradient(runs)), metrics

    return Estimator(init, estimate)


# ---- gradient estimators as meta-optimizers ---------------------------------------------------


@struct.dataclass
class GradientState:
    """theta `[D]` (flat meta-params), Adam state, one estimator state per task, key, best score."""

    theta: jax.Array
    opt_state: Any
    estimators: tuple
    key: jax.Array
    best_fitness: jax.Array


def gradient_meta_optimizer(
    problem: TruncatedProblem, opts, make_estimator: Callable, rollouts_per_step: int, fitness_doc: str
) -> MetaOptimizer:
    """MetaOptimizer from a per-task estimator factory and an Adam outer update.

    opts: has `init_seed` and `learning_rate`. make_estimator(t, algo, unravel, dim) -> the
    Estimator of task t. rollouts_per_step: inner updates' worth of rollouts one step costs per
    task (for the job's env-step accounting). The gradient is averaged over tasks (a non-finite
    one is not applied); metrics: `METRIC_KEYS` (fitness `[N]` = the estimators' scores averaged
    over tasks, mean_fitness NaN), `grad_norm`, `grad_finite` and `nonfinite_pairs` (summed over
    tasks; 0 for estimators without pairs).
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
    return MetaOptimizer(
        init,
        step,
        params,
        opts,
        env_steps,
        fitness_doc,
        lambda state: runs_sharding(state, problem.mesh, problem.runs_mesh is not None),
    )


def runs_sharding(state: GradientState, mesh: Mesh, split_runs: bool = True):
    """NamedShardings like `state`: every estimator's persistent runs `[N, ...]` split over
    RUNS_AXIS when split_runs and the mesh's devices divide N, everything else (theta, Adam,
    PES's noise, keys) replicated; all replicated on one device."""
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec(RUNS_AXIS))
    out = jax.tree.map(lambda _: replicated, state)
    if mesh.size == 1 or not split_runs:
        return out

    def run_leaf(x):
        return split if x.shape[0] % mesh.size == 0 else replicated

    estimators = tuple(
        sharding.replace(runs=jax.tree.map(run_leaf, est.runs))
        for sharding, est in zip(out.estimators, state.estimators)
    )
    return out.replace(estimators=estimators)
