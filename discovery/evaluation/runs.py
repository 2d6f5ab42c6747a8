"""The training runs of `discover eval`: every rule on one task for N seeds, its deterministic
policy evaluated along the way (`make_lifetimes`); drift rules share one compiled function
behind a traced index (`DriftSwitch`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from inner_algos.config_checks import did_you_mean
from inner_algos.contract import InnerConfig, policy_finite
from inner_algos.envs import Task
from inner_algos.registry import DEFAULT, make_inner_algo
from inner_algos.rules import RULES, Rule, check_supported, get_family, has_meta_params, make_rule


@dataclasses.dataclass(frozen=True)
class Entry:
    """One rule to evaluate: legend label, rule, meta-params, and whether it is a baseline."""

    label: str
    rule: Rule
    meta_params: dict
    baseline: bool


@dataclasses.dataclass(frozen=True)
class DriftSwitch(Rule):
    """Several drift rules behind one traced index, so one compiled inner algorithm serves all.

    meta_params: {"index": int32 scalar, "params": (meta-params of rules[0], rules[1], ...)}.
    """

    name: ClassVar[str] = "drift_switch"
    family: ClassVar[str] = "drift"
    rules: tuple[Rule, ...] = ()

    def apply(self, meta_params, inputs):
        branches = [
            lambda params, x, i=i, rule=rule: rule.apply(params[i], x) for i, rule in enumerate(self.rules)
        ]
        return jax.lax.switch(meta_params["index"], branches, meta_params["params"], inputs)


def make_lifetimes(config: InnerConfig, task: Task, rule: Rule, points: int, inner: str = DEFAULT):
    """A jitted `run(meta_params, keys [N]) -> returns [N, P + 1]` and the updates `[P + 1]` at
    which the returns are measured: 0, then P evenly spaced ending at config.num_updates (the
    first gap takes the remainder of num_updates / P), for inner algorithm `inner` (registered).

    Returns are `InnerAlgo.evaluate`'s mean over config.eval_envs episodes of the deterministic
    policy, NaN once the run diverged (`contract.policy_finite`). One `lax.scan` over the P + 1
    measurements, each a `fori_loop` of updates then an evaluation, so the step and the
    evaluation are each compiled once.
    """
    algo = make_inner_algo(inner, config, task, rule)
    points = min(points, config.num_updates)
    every, rest = divmod(config.num_updates, points)
    gaps = np.array([0, rest + every] + [every] * (points - 1), dtype=np.int32)

    def lifetime(meta_params, key):
        k_init, k_eval = jax.random.split(key)

        def measure(state, gap_and_key):
            gap, k = gap_and_key
            state = jax.lax.fori_loop(0, gap, lambda _, s: algo.step(meta_params, s)[0], state)
            return state, jnp.where(policy_finite(state), algo.evaluate(state, k)[0], jnp.nan)

        state = algo.init(meta_params, k_init)
        _, returns = jax.lax.scan(measure, state, (jnp.asarray(gaps), jax.random.split(k_eval, points + 1)))
        return returns

    return jax.jit(jax.vmap(lifetime, in_axes=(None, 0))), np.cumsum(gaps), algo.env_steps_per_update


def run_task(
    config: InnerConfig,
    task: Task,
    entries: list[Entry],
    keys: jax.Array,
    points: int,
    inner: str = DEFAULT,
    known: dict | None = None,
):
    """Trains every entry with inner algorithm `inner` on `task` for all seed keys `[N]`: returns
    ({label: returns `[N, P+1]`}, updates `[P+1]`, env steps per update). Drift entries share
    one compiled function. Entries whose curves are `known` (`{label: [N, P+1]}`, read from
    another evaluation) are not trained (at least one entry must be: the evaluated rule); the
    drift switch still holds them, so the others are compiled, and give the same numbers, as when
    every entry is trained."""
    known = known or {}
    drift = [e for e in entries if e.rule.family == "drift"]
    curves = dict(known)
    if len(drift) > 1:
        switch = DriftSwitch(tuple(e.rule for e in drift))
        run, updates, per_update = make_lifetimes(config, task, switch, points, inner)
        params = tuple(e.meta_params for e in drift)
        for i, e in enumerate(drift):
            if e.label not in curves:
                curves[e.label] = np.asarray(run({"index": jnp.int32(i), "params": params}, keys))
    for e in entries:
        if e.label not in curves:
            run, updates, per_update = make_lifetimes(config, task, e.rule, points, inner)
            curves[e.label] = np.asarray(run(e.meta_params, keys))
    return {e.label: curves[e.label] for e in entries}, updates, per_update


def baseline_entries(items: list[str], inner: str = DEFAULT) -> list[Entry]:
    """The --baselines of an evaluation in inner algorithm `inner`, each labelled as written:
    a fixed rule by name (no meta-parameters, default options) or any SOURCE
    (`discovery.evaluation.sources.resolve_source`: an exported rule, a run directory's latest
    rule, a checkpoint step), so a discovered rule can be the reference too."""
    fixed = fixed_rules(inner)
    return [_baseline_entry(item, inner, fixed) for item in items]


def fixed_rules(inner: str) -> list[str]:
    """Registered rules without meta-parameters that inner algorithm `inner` has a slot for:
    the rules --baselines takes by name."""
    rules = [make_rule(name) for name in sorted(RULES)]
    return [r.name for r in rules if inner in get_family(r.family).inner_algos and not has_meta_params(r)]


def _baseline_entry(item: str, inner: str, fixed: list[str]) -> Entry:
    named = f"fixed rules for inner algorithm {inner!r}: {', '.join(fixed)}"
    if item in RULES:
        if item not in fixed:
            raise ValueError(
                f"--baselines {item!r} cannot be a baseline by name (it has meta-parameters to learn, "
                f"or no slot in {inner!r}); {named}; a discovered rule is given as a SOURCE (an "
                "exported rule or a run directory)"
            )
        return Entry(item, make_rule(item), {}, True)
    from discovery.evaluation.sources import resolve_source

    try:
        source = resolve_source(item)
    except ValueError as err:
        if any(c in item for c in "/\\:.") or Path(item).exists():
            raise ValueError(f"--baselines {item!r}: {err}") from err
        raise ValueError(
            f"--baselines {item!r} is neither a fixed rule nor a SOURCE{did_you_mean(item, fixed)}; "
            f"{named}; or an exported rule (stem, .json or .npz), a run directory, RUN_DIR/checkpoints/<G>"
        ) from err
    try:
        check_supported(source.rule, inner)
    except ValueError as err:
        raise ValueError(f"--baselines {item!r}: {err}") from err
    return Entry(item, source.rule, source.meta_params, True)
