"""Whole-lifetime evolution strategies through evosax 0.3.2: the only module importing evosax.

Each generation: ask the strategy for a population of meta-parameters `[P, ...]`, score every
member by full inner lifetimes (`Problem.fitness`; the ES mean rides along as one extra member
when `problem.evaluate_mean`), and tell the strategy. evosax minimises; we maximise, so `_to_evosax`
is the one place where fitness is negated, after non-finite fitness is mapped to the worst value.
A lifetime that diverged already scores a finite clear loss in the fitness
(`meta_objectives.penalize_diverged`): members rank by how many of their lifetimes diverged, then
by their score; the step's `diverged` metric says which lifetimes did.

Strategies by name: "open_es" (OpenAI-ES, Salimans et al. 2017: antithetic sampling, Adam on the
mean, decaying sigma and learning rate), "cma_es", "sep_cma_es", "snes" and "pgpe" (evosax defaults
apart from sigma_init, and learning_rate for pgpe's ClipUp). open_es and pgpe shape fitness by
`fitness_shaping`: "centered_rank" (ranks in [-0.5, 0.5], OpenAI-ES's and evosax's default) or
"z_score" (standardised fitness, what LPO, Lu et al. 2022, used with OpenAI-ES).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from discovery.meta_opt.base import LifetimeProblem, MetaOptimizer, register, strong_types
from inner_algos.config_checks import (
    NON_NEGATIVE,
    POSITIVE,
    UNIT_OPEN_CLOSED,
    Interval,
    OneOf,
    check_fields,
)
from meta_objectives import rank_last, split_half_reliability, z_score_shaping

STRATEGIES = ("open_es", "cma_es", "sep_cma_es", "snes", "pgpe")
_EVEN_POPULATION = ("open_es", "pgpe")
FITNESS_SHAPINGS = ("centered_rank", "z_score")
# the values each ESOptions field may take (checked by check_fields, errors name the field)
_ALLOWED = {
    "strategy": OneOf(STRATEGIES),
    "population_size": Interval(2),
    "fitness_shaping": OneOf(FITNESS_SHAPINGS),
    "sigma_init": POSITIVE,
    "learning_rate": POSITIVE,
    "sigma_decay": UNIT_OPEN_CLOSED,
    "lr_decay": UNIT_OPEN_CLOSED,
    "sigma_limit": NON_NEGATIVE,
    "lr_limit": NON_NEGATIVE,
}
_SHAPED = ("open_es", "pgpe")  # strategies whose update takes a fitness-shaping function
FITNESS_DOC = (
    "meta-objective score of each population member over whole lifetimes: mean over "
    "the generation's tasks and seeds of its (baseline-normalised, when so configured) "
    "score, a diverged lifetime scoring a clear loss; higher is better"
)
PAIRED_FITNESS_DOC = (
    "each population member's improvement over the baseline rule trained on the "
    "same task draws and seeds in the same generation, per task in units of the "
    "baseline's gain over the random agent, mean over tasks and seeds (a diverged "
    "lifetime scoring a clear loss): 0 = as good as the baseline, > 0 better; higher is better"
)


@dataclasses.dataclass(frozen=True)
class ESOptions:
    """[meta_optimizer] options of name = "es".

    strategy: one of STRATEGIES. population_size: members per generation (even for open_es and
    pgpe). sigma_init: initial search std. sigma_decay / sigma_limit: open_es multiplies sigma by
    sigma_decay each generation, never below sigma_limit. learning_rate, lr_decay, lr_limit: the
    same for open_es's Adam step size (learning_rate is also pgpe's ClipUp step). antithetic:
    open_es mirrored sampling (z, -z). fitness_shaping: one of FITNESS_SHAPINGS (open_es and
    pgpe only; see the module docstring). init_seed: key for the rule's initial meta-parameters.
    """

    strategy: str = "open_es"
    population_size: int = 16
    sigma_init: float = 0.03
    sigma_decay: float = 1.0
    sigma_limit: float = 0.0
    learning_rate: float = 0.01
    lr_decay: float = 1.0
    lr_limit: float = 0.0
    antithetic: bool = True
    fitness_shaping: str = "centered_rank"
    init_seed: int = 0

    def __post_init__(self):
        check_fields(self, "meta_optimizer", **_ALLOWED)
        if self.strategy in _EVEN_POPULATION and self.population_size % 2:
            raise ValueError(
                f"meta_optimizer.population_size = {self.population_size} must be even for "
                f"strategy {self.strategy!r}"
            )
        if self.fitness_shaping != "centered_rank" and self.strategy not in _SHAPED:
            raise ValueError(
                f"meta_optimizer.fitness_shaping = {self.fitness_shaping!r} applies to strategies "
                f"{', '.join(_SHAPED)}; strategy {self.strategy!r} weights members by rank itself"
            )


@struct.dataclass
class ESState:
    """evosax strategy state (mean, std, optimizer state, best member, generation) and our key."""

    es: Any
    key: jax.Array


def _decay(init: float, rate: float, limit: float) -> optax.Schedule:
    """g -> max(init * rate**g, limit) (a constant when rate == 1)."""
    if rate == 1.0:
        return optax.constant_schedule(init)
    return optax.exponential_decay(init, transition_steps=1, decay_rate=rate, end_value=limit)


def _z_score(population, fitness: jax.Array, state, params) -> jax.Array:
    """evosax's fitness-shaping signature over `meta_objectives.z_score_shaping` (evosax-side
    fitness `[P]`: minimised, failures +inf)."""
    del population, state, params
    return z_score_shaping(fitness)


def _strategy(opts: ESOptions, solution):
    """(evosax strategy, its params) for the options; `solution` is a meta-param pytree template."""
    # Imported here, not at the top: importing evosax.algorithms runs JAX computations, which
    # start the XLA backend, and a multi-process job must call jax.distributed.initialize before
    # that, after the spec (which imports this module to validate options) has been read.
    from evosax.algorithms import CMA_ES, PGPE, SNES, Open_ES, Sep_CMA_ES
    from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn
    from evosax.core.optimizer import clipup

    pop = opts.population_size
    shaping = _z_score if opts.fitness_shaping == "z_score" else centered_rank_fitness_shaping_fn
    if opts.strategy == "open_es":
        es = Open_ES(
            pop,
            solution,
            use_antithetic_sampling=opts.antithetic,
            optimizer=optax.adam(_decay(opts.learning_rate, opts.lr_decay, opts.lr_limit)),
            std_schedule=_decay(opts.sigma_init, opts.sigma_decay, opts.sigma_limit),
            fitness_shaping_fn=shaping,
        )
        return es, es.default_params
    if opts.strategy == "pgpe":
        es = PGPE(
            pop,
            solution,
            optimizer=clipup(opts.learning_rate, 2 * opts.learning_rate),
            fitness_shaping_fn=shaping,
        )
    else:
        es = {"cma_es": CMA_ES, "sep_cma_es": Sep_CMA_ES, "snes": SNES}[opts.strategy](pop, solution)
    return es, es.default_params.replace(std_init=jnp.asarray(opts.sigma_init))


def _to_evosax(fitness: jax.Array) -> jax.Array:
    """Our fitness `[P]` (maximised, maybe non-finite) -> evosax's (minimised; failures worst)."""
    return -rank_last(fitness)[0]


def _es_meta_optimizer(opts: ESOptions, problem: LifetimeProblem) -> MetaOptimizer:
    """ES over the rule's meta-parameters, maximising `problem.fitness`."""
    template = problem.init_meta_params(jax.random.PRNGKey(opts.init_seed))
    es, es_params = _strategy(opts, template)
    pop = opts.population_size

    def init(key):
        k_es, k_state = jax.random.split(key)
        return strong_types(ESState(es=es.init(k_es, template, es_params), key=k_state))

    def step(state: ESState):
        key, k_ask, k_eval, k_tell = jax.random.split(state.key, 4)
        population, es_state = es.ask(k_ask, state.es, es_params)
        members = population
        if problem.evaluate_mean:
            mean = es.get_mean(state.es)
            members = jax.tree.map(lambda p, m: jnp.concatenate([p, m[None]]), population, mean)
        evaluation = problem.fitness(members, k_eval)
        fitness, per_task = evaluation.fitness, evaluation.task_scores
        pop_fitness = fitness[:pop]
        es_state, _ = es.tell(k_tell, population, _to_evosax(pop_fitness), es_state, es_params)
        metrics = {
            "fitness": pop_fitness,
            "task_scores": per_task[:pop],
            "task_indices": problem.task_indices(k_eval),
            "num_nonfinite": rank_last(pop_fitness)[1],
            "mean_fitness": fitness[pop] if problem.evaluate_mean else jnp.asarray(jnp.nan),
            "best_fitness": -es_state.best_fitness,
            "sigma": jnp.mean(es_state.std),
            "diverged": evaluation.diverged[:pop],
            **_signal_metrics(evaluation, pop),
        }
        return strong_types(ESState(es=es_state, key=key)), metrics

    def params(state: ESState) -> dict:
        best = jnp.where(jnp.isfinite(state.es.best_fitness), state.es.best_solution, state.es.mean)
        return {"mean": es.get_mean(state.es), "best": es._unravel_solution(best)}

    members = pop + int(problem.evaluate_mean) + int(problem.paired)  # the paired baseline too
    doc = PAIRED_FITNESS_DOC if problem.paired else FITNESS_DOC
    return MetaOptimizer(init, step, params, opts, members * problem.env_steps_per_member, doc)


def _signal_metrics(evaluation, pop: int) -> dict:
    """The optional metrics on how much signal the generation's fitness holds: the population's
    split-half `fitness_reliability` (with >= 2 seeds per member) and the paired baseline's raw
    `baseline_scores` `[T]` (normalize = "paired")."""
    metrics = {}
    if evaluation.scores.shape[-1] >= 2:
        metrics["fitness_reliability"] = split_half_reliability(evaluation.scores[:pop])
    if evaluation.baseline_scores is not None:
        metrics["baseline_scores"] = evaluation.baseline_scores
    return metrics


@register("es", ESOptions, whole_lifetime=True, paired_baseline=True)
def make_es(options: ESOptions, problem) -> MetaOptimizer:
    """Factory for `[meta_optimizer] name = "es"`."""
    return _es_meta_optimizer(options, problem)
