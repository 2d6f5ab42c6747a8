"""Proximal policy optimisation in pure JAX over brax or gymnax, with slots for learned rules.

Split as brax's `training/agents/ppo`:
  config.py   PPOConfig, the static settings
  types.py    InnerState, Transition, Batch, Networks, the `InnerAlgo` contract (Protocols) and
              `PPOAlgo`, what `make_ppo` returns
  slots.py    RuleSlots: what fills the drift, hyperparameter and update-direction slots
  losses.py   gae and ppo_loss, pure functions of explicit arguments
  acting.py   observation normalisation, rollout, collect (rollout + GAE -> batch), evaluate
  update.py   the SGD step, the update step, train, rollout_loss, and make_ppo wiring them
"""

from inner_algos.ppo.config import PPOConfig
from inner_algos.ppo.losses import gae, ppo_loss
from inner_algos.ppo.slots import RuleSlots, rule_slots
from inner_algos.ppo.types import (
    Batch,
    InnerAlgo,
    InnerState,
    Networks,
    PPOAlgo,
    Transition,
    lifetime_fraction,
)
from inner_algos.ppo.update import make_ppo
from inner_algos.rules.hyperparams import HyperParams

__all__ = [
    "Batch",
    "HyperParams",
    "InnerAlgo",
    "InnerState",
    "Networks",
    "PPOAlgo",
    "PPOConfig",
    "RuleSlots",
    "Transition",
    "gae",
    "lifetime_fraction",
    "make_ppo",
    "ppo_loss",
    "rule_slots",
]
