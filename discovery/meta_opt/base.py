"""The one interface every meta-optimizer (ES, PES, truncated ES, meta-gradients) follows.

A `MetaOptimizer` is three pure functions plus its validated options:

  init(key) -> state                 a pytree holding everything needed to resume, RNG key included
  step(state) -> (state, metrics)    one generation / outer step; jittable; metrics is a dict of
                                     arrays: scalars plus `fitness` `[pop]` (higher is better,
                                     non-finite kept as produced), `num_nonfinite`, `mean_fitness`
                                     (score of the current mean, NaN when not evaluated),
                                     `best_fitness` (best member so far), `task_scores` `[pop, T]`
                                     (per-task raw score, seed mean); optional scalars (`sigma`)
  params(state) -> {"mean": meta_params, "best": meta_params}

Estimators register a factory `factory(options: dict, problem) -> MetaOptimizer` under a name with
`@register("name", OptionsDataclass, check)` and add their module to the imports in
`discovery/meta_opt/__init__.py`; a run spec picks one with `[meta_optimizer] name = "..."`, the
other keys of that table being the options. Spec parsing validates them before any work
(`validate_options`: the options dataclass, then `check(options, rule, ppo, objective)`, which
raises ValueError for combinations the estimator cannot run, e.g. an objective it has no loss for). `problem` is a `discovery.problem.Problem` (rule, tasks, PPO config, inner
algorithms, meta-objective, seeds, devices).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from discovery.spec import SpecError


class MetaOptimizer(NamedTuple):
    """See the module docstring. options: the validated options dataclass (with a
    `population_size`). env_steps_per_step: environment steps one `step` costs (host-side constant,
    for progress and throughput logs); None means whole lifetimes of `population_size` members."""

    init: Callable[[Any], Any]
    step: Callable[[Any], tuple[Any, dict]]
    params: Callable[[Any], dict]
    options: Any
    env_steps_per_step: int | None = None


META_OPTIMIZERS: dict[str, Callable[[dict, Any], MetaOptimizer]] = {}
_OPTIONS: dict[str, tuple[type, Callable | None]] = {}  # name -> (options dataclass, check)


def register(name: str, options: type, check: Callable | None = None):
    """Decorator adding `factory(options, problem) -> MetaOptimizer` to META_OPTIMIZERS, with
    its options dataclass and optional compatibility `check(options, rule, ppo, objective)`."""

    def add(factory):
        META_OPTIMIZERS[name] = factory
        _OPTIONS[name] = (options, check)
        return factory

    return add


def validate_options(name: str, options: dict, rule, ppo, objective):
    """The validated options dataclass of estimator `name` for this rule, PPO config and
    meta-objective; every problem is a SpecError naming the key."""
    from discovery.spec import build

    _known(name)
    cls, check = _OPTIONS[name]
    opts = build(cls, dict(options), "meta_optimizer")
    if check is not None:
        try:
            check(opts, rule, ppo, objective)
        except ValueError as err:
            raise SpecError(str(err)) from err
    return opts


def _known(name: str) -> None:
    if name not in META_OPTIMIZERS:
        raise SpecError(
            f"meta_optimizer.name = {name!r} is unknown; valid: {', '.join(sorted(META_OPTIMIZERS))}"
        )


def make_meta_optimizer(name: str, options: dict, problem) -> MetaOptimizer:
    """Builds the meta-optimizer registered as `name`; unknown names list the valid ones."""
    _known(name)
    return META_OPTIMIZERS[name](dict(options), problem)


def strong_types(tree):
    """Drops weak types so that init's, step's and a restored state's avals all agree (no retrace)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), tree)
