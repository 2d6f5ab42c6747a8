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
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from inner_algos.config_checks import NON_NEGATIVE_INT, Interval, Noted, check_fields
from inner_algos.rules.base import Rule
from inner_algos.rules.families import register_family

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

    def apply(self, meta_params: dict, progress) -> HyperParams:
        powers = jnp.asarray(progress, jnp.float32) ** jnp.arange(self.progress_degree + 1)
        values = {
            name: (
                from_unconstrained(name, jnp.dot(meta_params[name], powers))
                if name in self.learn
                else jnp.asarray(getattr(self, name), jnp.float32)
            )
            for name in HYPERPARAMS
        }
        return HyperParams(**values)
