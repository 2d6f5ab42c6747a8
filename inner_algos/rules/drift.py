"""Policy-objective drift rules (Mirror Learning, Kuba et al. 2022; LPO, Lu et al. 2022,
arXiv 2210.05639).

The policy loss of the inner PPO is  L = -mean(r * A - drift(r, A)),  r = pi_new / pi_old and
A the (normalized) advantage, all arrays of one shape (a minibatch, `[B]`). A valid drift is
>= 0 and zero with zero gradient at r = 1; every rule here satisfies drift(1, A) = 0.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from inner_algos.config_checks import POSITIVE, POSITIVE_INT, Interval, check_fields
from inner_algos.rules.base import Rule
from inner_algos.rules.families import register_family

register_family("drift", slot="the policy-objective drift(r, A) in the policy loss", inner_algos=("ppo",))

OPEN_UNIT = Interval(0, 1, low_open=True, high_open=True)  # (0, 1): clip ranges


class DriftInputs(NamedTuple):
    """What a drift rule sees: probability ratio r and advantage A, both `[...]` (elementwise),
    and the lifetime fraction n/N of the inner run, a scalar `[]` (see `ppo.lifetime_fraction`)."""

    ratio: jax.Array
    advantage: jax.Array
    progress: jax.Array | float = 0.0


def ppo_clip_drift(ratio: jax.Array, advantage: jax.Array, eps: float | jax.Array) -> jax.Array:
    """relu((r - clip(r, 1-eps, 1+eps)) * A): turns r*A - drift into PPO's clipped surrogate."""
    clipped = jnp.clip(ratio, 1.0 - eps, 1.0 + eps)
    return jax.nn.relu((ratio - clipped) * advantage)


@dataclasses.dataclass(frozen=True)
class PPOClipDrift(Rule):
    """PPO-clip (Schulman et al. 2017) written as a drift; no meta-parameters."""

    name: ClassVar[str] = "ppo_clip"
    family: ClassVar[str] = "drift"
    eps: float = 0.2

    def __post_init__(self):
        check_fields(self, "rule", eps=OPEN_UNIT)

    def apply(self, meta_params, inputs: DriftInputs) -> jax.Array:
        del meta_params
        return ppo_clip_drift(inputs.ratio, inputs.advantage, self.eps)


@dataclasses.dataclass(frozen=True)
class DPODrift(Rule):
    """Discovered Policy Optimisation, the closed form distilled from LPO (Lu et al. 2022, eq. 5).

    A >= 0: relu((r-1)A - alpha * tanh((r-1)A / alpha));  A < 0: relu(log(r)A - beta * tanh(log(r)A / beta)).
    """

    name: ClassVar[str] = "dpo"
    family: ClassVar[str] = "drift"
    alpha: float = 2.0
    beta: float = 0.6

    def __post_init__(self):
        check_fields(self, "rule", alpha=POSITIVE, beta=POSITIVE)

    def apply(self, meta_params, inputs: DriftInputs) -> jax.Array:
        del meta_params
        r, adv = inputs.ratio, inputs.advantage
        pos = (r - 1.0) * adv
        neg = jnp.log(r) * adv
        pos_drift = jax.nn.relu(pos - self.alpha * jnp.tanh(pos / self.alpha))
        neg_drift = jax.nn.relu(neg - self.beta * jnp.tanh(neg / self.beta))
        return jnp.where(adv >= 0, pos_drift, neg_drift)


def lpo_features(ratio: jax.Array, advantage: jax.Array) -> jax.Array:
    """LPO's 8 inputs: [r-1, (r-1)^2, log r, (log r)^2] and the same times A. `[...] -> [..., 8]`."""
    x, log_r = ratio - 1.0, jnp.log(ratio)
    base = jnp.stack([x, x * x, log_r, log_r * log_r], axis=-1)
    return jnp.concatenate([base, base * advantage[..., None]], axis=-1)


def temporal_lpo_features(ratio: jax.Array, advantage: jax.Array, progress) -> jax.Array:
    """LPO's 8 inputs and the same times the lifetime fraction p = n/N: `[...] -> [..., 16]`.

    TA-LPO (Jackson et al. 2024) adds n/N to the drift's inputs. Entering as a product keeps
    every input 0 at r = 1, so the drift stays exactly 0 there (no biases) at every n/N, while
    each hidden unit's pre-activation f.w1 + p f.w2 can change its slope and sign with n/N.
    """
    feats = lpo_features(ratio, advantage)
    return jnp.concatenate([feats, feats * jnp.asarray(progress, feats.dtype)], axis=-1)


@dataclasses.dataclass(frozen=True)
class LPODrift(Rule):
    """Learned Policy Optimisation drift: an MLP (no biases, tanh hidden) on `lpo_features`.

    With ppo_init, the net corrects PPO-clip's drift inside one relu, as in the LPO paper:
        drift = relu(ppo_clip_drift(r, A) + net(features) - offset),
    so it may also fall below PPO-clip's (DPO, the rule distilled from LPO, is in the search
    space). Without ppo_init, drift = relu(net(features) - offset). offset = 1e-4 makes a dead
    zone around r = 1 (all features vanish there and the net has no biases, so drift(1, A) = 0
    with zero gradient); it applies only where PPO-clip's drift is 0, so that zero meta-params,
    and `init`'s (random hidden layer, zero output layer), are exactly PPO-clip (exactly zero
    drift without ppo_init).

    temporal = true is temporally-aware LPO: the net also sees the lifetime fraction n/N
    (`temporal_lpo_features`), so the drift can tighten or loosen as training goes on.

    meta_params: {"hidden": [F, hidden_size], "out": [hidden_size]}, F = 8 (16 when temporal).
    """

    name: ClassVar[str] = "lpo"
    family: ClassVar[str] = "drift"
    hidden_size: int = 128
    ppo_init: bool = True
    eps: float = 0.2
    temporal: bool = False

    def __post_init__(self):
        check_fields(self, "rule", hidden_size=POSITIVE_INT, eps=OPEN_UNIT)

    def init(self, key: jax.Array) -> dict:
        inputs = 16 if self.temporal else 8
        hidden = jax.random.normal(key, (inputs, self.hidden_size)) / jnp.sqrt(float(inputs))
        return {"hidden": hidden, "out": jnp.zeros((self.hidden_size,))}

    def apply(self, meta_params: dict, inputs: DriftInputs) -> jax.Array:
        if self.temporal:
            feats = temporal_lpo_features(inputs.ratio, inputs.advantage, inputs.progress)
        else:
            feats = lpo_features(inputs.ratio, inputs.advantage)
        net = jnp.tanh(feats @ meta_params["hidden"]) @ meta_params["out"]
        if not self.ppo_init:
            return jax.nn.relu(net - 1e-4)
        base = ppo_clip_drift(inputs.ratio, inputs.advantage, self.eps)
        return jax.nn.relu(base + net - jnp.where(base > 0, 0.0, 1e-4))
