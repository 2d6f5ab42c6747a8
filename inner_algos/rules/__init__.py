"""Rules by name: `make_rule("lpo", ppo_init=True)`; see `base.Rule` for the interface and
`families` for the registry of rule families (each rule module registers its family)."""

from __future__ import annotations

import dataclasses

import jax

from inner_algos.config_checks import did_you_mean
from inner_algos.rules.base import Rule
from inner_algos.rules.disco import DiscoActorCritic, DiscoRule
from inner_algos.rules.drift import DPODrift, DriftInputs, LPODrift, PPOClipDrift
from inner_algos.rules.families import FAMILIES, Family, check_supported, get_family, register_family
from inner_algos.rules.formula import SymbolicDrift
from inner_algos.rules.hyperparams import FormulaHyperparams, LearnedHyperparams
from inner_algos.rules.learned_optimizer import Adam, LearnedOptimizer
from inner_algos.rules.open_optimizer import Open
from inner_algos.rules.targets import A2CTargets, LearnedTargets

RULES: dict[str, type[Rule]] = {
    cls.name: cls
    for cls in (
        PPOClipDrift,
        DPODrift,
        LPODrift,
        SymbolicDrift,
        LearnedHyperparams,
        FormulaHyperparams,
        Adam,
        LearnedOptimizer,
        Open,
        LearnedTargets,
        A2CTargets,
        DiscoRule,
        DiscoActorCritic,
    )
}


def make_rule(name: str, **options) -> Rule:
    """Builds the rule registered as `name` with its options; clear errors for bad input."""
    if name not in RULES:
        raise ValueError(
            f"rule.name = {name!r} is unknown{did_you_mean(name, RULES)}; "
            f"valid rules: {', '.join(sorted(RULES))}"
        )
    cls = RULES[name]
    try:
        return cls(**options)
    except TypeError as err:
        allowed = [f.name for f in dataclasses.fields(cls)]
        raise ValueError(
            f"bad options for rule {name!r}: {sorted(options)}; allowed options: {allowed}"
        ) from err


def has_meta_params(rule: Rule) -> bool:
    """Whether `rule.init` returns meta-parameters (shapes only: nothing is computed); a rule
    without them is fixed, a baseline by name."""
    return bool(jax.tree.leaves(jax.eval_shape(rule.init, jax.random.PRNGKey(0))))


__all__ = [
    "FAMILIES",
    "RULES",
    "has_meta_params",
    "DPODrift",
    "DriftInputs",
    "Family",
    "LPODrift",
    "PPOClipDrift",
    "Rule",
    "SymbolicDrift",
    "check_supported",
    "get_family",
    "make_rule",
    "register_family",
]
