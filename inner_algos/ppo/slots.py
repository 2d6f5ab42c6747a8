"""PPO's rule slots: which computation fills the drift, hyperparameter and update-direction slots.

A rule fills the slot of its family (see `inner_algos.rules.base`); the other slots keep PPO's
hand-designed defaults: PPO-clip with hp.clip_eps, the config's hyperparameters, the given
optimizer or Adam.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax

from inner_algos.ppo.config import PPOConfig
from inner_algos.rules import DriftInputs, Rule, check_supported
from inner_algos.rules.drift import ppo_clip_drift
from inner_algos.rules.hyperparams import HyperParams
from inner_algos.rules.learned_optimizer import OptimizerInputs


class DriftFn(Protocol):
    def __call__(self, meta_params: Any, inputs: DriftInputs, hp: HyperParams) -> jax.Array:
        """The drift `[B]` of each sample (ratio and advantage `[B]` in inputs)."""


class HyperparamsFn(Protocol):
    def __call__(self, meta_params: Any, progress: jax.Array) -> HyperParams:
        """The hyperparameters (each `[]`) at `progress` (lifetime fraction `[]`)."""


class RuleSlots(NamedTuple):
    """What fills each of PPO's slots.

    drift: DriftFn; hyperparams: HyperparamsFn; direction: an optax transform whose `update`
    takes the extra keyword arguments meta_params and progress (PPO clips the gradient before
    it and scales its output by -learning_rate). owns_update: the direction is the whole update
    (an optimizer rule with `owns_update`, e.g. OPEN's): the learning rate is 1, never annealed,
    and `update` also takes context (`OptimizerContext`).
    """

    drift: DriftFn
    hyperparams: HyperparamsFn
    direction: optax.GradientTransformationExtraArgs
    owns_update: bool = False


def config_hyperparams(config: PPOConfig, meta_params: Any, progress: jax.Array) -> HyperParams:
    """The config's fixed hyperparameters (the slot's default)."""
    del meta_params, progress
    return HyperParams(
        gamma=jnp.asarray(config.gamma),
        gae_lambda=jnp.asarray(config.gae_lambda),
        clip_eps=jnp.asarray(config.clip_eps),
        ent_coef=jnp.asarray(config.ent_coef),
        learning_rate=jnp.asarray(config.learning_rate),
    )


def ppo_clip_slot(meta_params: Any, inputs: DriftInputs, hp: HyperParams) -> jax.Array:
    """PPO-clip's drift at hp.clip_eps (the slot's default; it has no meta-params)."""
    del meta_params
    return ppo_clip_drift(inputs.ratio, inputs.advantage, hp.clip_eps)


def rule_drift_slot(rule: Rule, meta_params: Any, inputs: DriftInputs, hp: HyperParams) -> jax.Array:
    """A drift rule's drift (a drift rule sets its own clip range, so hp is not its input)."""
    del hp
    return rule.apply(meta_params, inputs)


def rule_direction(rule: Any) -> optax.GradientTransformationExtraArgs:
    """An optimizer rule as an optax transform (its state from `rule.init_state(params)`)."""

    def update(updates, state, params=None, *, meta_params, progress, context=None):
        del params
        return rule.apply(meta_params, OptimizerInputs(updates, state, progress, context))

    return optax.GradientTransformationExtraArgs(rule.init_state, update)


def _drift_slots(config, rule, hyperparams, direction) -> RuleSlots:
    return RuleSlots(functools.partial(rule_drift_slot, rule), hyperparams, direction)


def _hyperparams_slots(config, rule, hyperparams, direction) -> RuleSlots:
    return RuleSlots(ppo_clip_slot, rule.apply, direction)


def _optimizer_slots(config, rule, hyperparams, direction) -> RuleSlots:
    if not rule.owns_update:
        return RuleSlots(ppo_clip_slot, hyperparams, rule_direction(rule))

    def unit_step(meta_params, progress):  # the rule's direction is the whole update
        return hyperparams(meta_params, progress)._replace(learning_rate=jnp.asarray(1.0))

    return RuleSlots(ppo_clip_slot, unit_step, rule_direction(rule), owns_update=True)


# How PPO fills the slot of each rule family registered with inner_algos=("ppo",) (which families
# PPO takes is declared there, once): family -> (config, rule, default hyperparams slot, default
# direction) -> RuleSlots
SLOTS = {"drift": _drift_slots, "hyperparams": _hyperparams_slots, "optimizer": _optimizer_slots}


def rule_slots(
    config: PPOConfig, rule: Rule, optimizer: optax.GradientTransformation | None = None
) -> RuleSlots:
    """The slots for `rule`, by its family (`SLOTS`); raises ValueError for a family PPO has no
    slot for (`inner_algos.rules.check_supported`), or an optimizer rule together with an explicit
    `optimizer`."""
    check_supported(rule, "ppo")
    if rule.family == "optimizer" and optimizer is not None:
        raise ValueError(
            f"rule {rule.name!r} of family 'optimizer' supplies the optimizer; "
            "do not also pass make_ppo(optimizer=...)"
        )
    default_hyperparams = functools.partial(config_hyperparams, config)
    default_direction = optimizer if optimizer is not None else optax.scale_by_adam(eps=1e-5)
    return SLOTS[rule.family](config, rule, default_hyperparams, default_direction)
