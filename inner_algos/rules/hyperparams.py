"""Meta-learned PPO hyperparameters (family "hyperparams").

gamma, gae_lambda and clip_eps live in (0, 1) and are stored as logits; ent_coef and
learning_rate are positive and stored as logs (Xu et al. 2018, arXiv 1805.09801, meta-learn gamma
and lambda this way). Each learned hyperparameter h is a polynomial in the lifetime fraction
p = update / lifetime of the run (`inner_algos.ppo.lifetime_fraction`), in unconstrained form:

    h(p) = squash(c_0 + c_1 p + ... + c_d p^d),   d = progress_degree

(d = 0: a constant; d >= 1: a schedule, in the spirit of temporally-aware LPO, Jackson et al. 2024,
arXiv 2402.05828). `init` sets c_0 to the unconstrained default and the rest to zero, so the
initial rule is exactly the defaults. Hyperparameters not listed in `learn` stay at their defaults
and have no meta-parameters.

`hyperparams_formula` (`FormulaHyperparams`) writes each scheduled hyperparameter's unconstrained
value as a formula in p instead (`inner_algos.rules.formula`), e.g. a schedule distilled by
`discover distill`; it has no meta-parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from inner_algos.config_checks import NON_NEGATIVE_INT, Interval, Noted, check_fields
from inner_algos.rules.base import Rule
from inner_algos.rules.families import register_family
from inner_algos.rules.formula import FormulaError, evaluate, parse, short

register_family(
    "hyperparams",
    slot="the hyperparameters (gamma, lambda, clip, entropy, lr) at each update",
    inner_algos=("ppo",),
)


class HyperParams(NamedTuple):
    """Scalar hyperparameters of one PPO update (traced, so a rule may meta-learn them)."""

    gamma: jax.Array
    gae_lambda: jax.Array
    clip_eps: jax.Array
    ent_coef: jax.Array
    learning_rate: jax.Array


UNIT_INTERVAL = ("gamma", "gae_lambda", "clip_eps")  # logit form
POSITIVE = ("ent_coef", "learning_rate")  # log form
IN_LOGIT_FORM = Noted(Interval(0, 1, low_open=True, high_open=True), "(logit form)")
IN_LOG_FORM = Noted(Interval(0, None, low_open=True), "(log form)")
HYPERPARAMS = HyperParams._fields


def to_unconstrained(name: str, value):
    """logit for (0, 1) hyperparameters, log for positive ones."""
    value = jnp.asarray(value, jnp.float32)
    return jnp.log(value) - jnp.log1p(-value) if name in UNIT_INTERVAL else jnp.log(value)


def from_unconstrained(name: str, z):
    """Inverse of `to_unconstrained`: sigmoid or exp."""
    return jax.nn.sigmoid(z) if name in UNIT_INTERVAL else jnp.exp(z)


@dataclasses.dataclass(frozen=True)
class LearnedHyperparams(Rule):
    """PPO's five scalar hyperparameters as meta-parameters, optionally scheduled in progress.

    Options are the defaults (PPO's usual values; they replace PPOConfig's gamma, gae_lambda,
    clip_eps, ent_coef, learning_rate when this rule fills the slot), `learn` (which of them
    are meta-learned) and `progress_degree` d.
    ent_coef must be > 0 (log form), hence its small default 1e-3 instead of PPO's 0.

    meta_params: {name: [d + 1] polynomial coefficients} for each name in `learn`.
    apply(meta_params, progress: scalar in [0, 1]) -> HyperParams of scalars.
    """

    name: ClassVar[str] = "hyperparams"
    family: ClassVar[str] = "hyperparams"
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 1e-3
    learning_rate: float = 3e-4
    learn: tuple[str, ...] = HYPERPARAMS
    progress_degree: int = 0

    def __post_init__(self):
        object.__setattr__(self, "learn", tuple(self.learn))
        check_fields(
            self,
            "rule",
            **{name: IN_LOGIT_FORM for name in UNIT_INTERVAL},
            **{name: IN_LOG_FORM for name in POSITIVE},
        )
        unknown = [n for n in self.learn if n not in HYPERPARAMS]
        if unknown or len(set(self.learn)) != len(self.learn):
            raise ValueError(
                f"rule.learn = {list(self.learn)!r} must list distinct names from {list(HYPERPARAMS)}"
            )
        check_fields(self, "rule", progress_degree=NON_NEGATIVE_INT)

    def init(self, key: jax.Array) -> dict:
        del key
        zeros = jnp.zeros((self.progress_degree,))
        return {
            name: jnp.concatenate([to_unconstrained(name, getattr(self, name))[None], zeros])
            for name in self.learn
        }

    @property
    def scheduled(self) -> tuple[str, ...]:
        """The hyperparameters that are not their defaults: the learned ones."""
        return self.learn

    def unconstrained(self, meta_params: dict, progress) -> dict[str, jax.Array]:
        """{name: c_0 + c_1 p + ... + c_d p^d `[]`} for each learned name (before the squash)."""
        powers = jnp.asarray(progress, jnp.float32) ** jnp.arange(self.progress_degree + 1)
        return {name: jnp.dot(meta_params[name], powers) for name in self.learn}

    def apply(self, meta_params: dict, progress) -> HyperParams:
        return squashed(self, self.unconstrained(meta_params, progress))


def squashed(rule: Any, unconstrained: Mapping[str, jax.Array]) -> HyperParams:
    """HyperParams: the squash of `unconstrained`'s values, the rule's defaults for the rest."""
    return HyperParams(
        **{
            name: (
                from_unconstrained(name, unconstrained[name])
                if name in unconstrained
                else jnp.asarray(getattr(rule, name), jnp.float32)
            )
            for name in HYPERPARAMS
        }
    )


@dataclasses.dataclass(frozen=True)
class FormulaHyperparams(Rule):
    """PPO's five scalar hyperparameters, those named in `formulas` scheduled by a formula in the
    lifetime fraction p; no meta-parameters.

    Options: the defaults (as `hyperparams`'s, for the hyperparameters without a formula) and
    `formulas`, {name: formula in p}, each formula giving the hyperparameter's unconstrained value
    (logit for gamma, gae_lambda, clip_eps; log for ent_coef, learning_rate): the rule applies
    sigmoid or exp, so whatever a formula computes, the hyperparameter stays in its range. A
    formula is parsed from the whitelist of `inner_algos.rules.formula` (variable p), never
    evaluated as code. E.g. {"learning_rate": "-8.1 + 0.5*p"} is lr(p) = exp(-8.1 + 0.5 p).

    apply({}, progress: scalar in [0, 1]) -> HyperParams of scalars.
    """

    name: ClassVar[str] = "hyperparams_formula"
    family: ClassVar[str] = "hyperparams"
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 1e-3
    learning_rate: float = 3e-4
    formulas: Any = ()  # given as {name: text}; held as sorted (name, text) pairs, hashable
    _trees: ClassVar[dict[str, tuple]]  # the parsed formulas, set by __post_init__ (not an option)

    def __post_init__(self):
        check_fields(
            self,
            "rule",
            **{name: IN_LOGIT_FORM for name in UNIT_INTERVAL},
            **{name: IN_LOG_FORM for name in POSITIVE},
        )
        pairs = self.formulas.items() if isinstance(self.formulas, Mapping) else self.formulas
        try:
            pairs = tuple(sorted((name, text) for name, text in pairs))
        except (TypeError, ValueError):
            raise ValueError(
                f"rule.formulas = {short(self.formulas)} must be a table {{name: formula}}"
            ) from None
        unknown = [name for name, _ in pairs if name not in HYPERPARAMS]
        if unknown or len({name for name, _ in pairs}) != len(pairs):
            raise ValueError(
                f"rule.formulas names {[name for name, _ in pairs]!r}: each must be one of "
                f"{list(HYPERPARAMS)}, at most once"
            )
        trees = {}
        for name, text in pairs:
            try:
                trees[name] = parse(text, FORMULA_VARIABLES)
            except FormulaError as err:
                raise ValueError(f"rule.formulas[{name!r}] = {short(text)} is refused: {err}") from None
        object.__setattr__(self, "formulas", pairs)
        object.__setattr__(self, "_trees", trees)

    @property
    def scheduled(self) -> tuple[str, ...]:
        """The hyperparameters with a formula, in HyperParams' order."""
        return tuple(name for name in HYPERPARAMS if name in self._trees)

    def unconstrained(self, meta_params, progress) -> dict[str, jax.Array]:
        """{name: its formula at p = progress `[]`} for each name with a formula (before the squash)."""
        del meta_params
        p = jnp.asarray(progress, jnp.float32)
        return {
            name: jnp.broadcast_to(evaluate(self._trees[name], {"p": p}), p.shape).astype(jnp.float32)
            for name in self.scheduled
        }

    def apply(self, meta_params, progress) -> HyperParams:
        return squashed(self, self.unconstrained(meta_params, progress))

    def options(self) -> dict:
        return {**super().options(), "formulas": dict(self.formulas)}


FORMULA_VARIABLES = ("p",)  # the lifetime fraction, the only input of a hyperparameter's formula
