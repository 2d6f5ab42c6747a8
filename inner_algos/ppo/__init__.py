"""Proximal policy optimisation in pure JAX over brax or gymnax, with slots for learned rules.

Split as brax's `training/agents/ppo`:
  config.py   PPOConfig, the static settings
  types.py    InnerState, Transition, Batch, Networks, the `InnerAlgo` contract (Protocols) and
              `PPOAlgo`, what `make_ppo` returns
  slots.py    RuleSlots: what fills the drift, hyperparameter and update-direction slots
  losses.py   ppo_loss, a pure function of explicit arguments (GAE: `inner_algos.rl`)
  acting.py   observation normalisation, rollout, collect (rollout + GAE -> batch), evaluate
  update.py   the SGD step, the update step, train, rollout_loss, and make_ppo wiring them

`inner_algos.registry` registers PPO as inner algorithm "ppo" (its config in the spec's [ppo]
section) with `example` and `size_note` from here.
"""

from inner_algos.ppo.config import PPOConfig
from inner_algos.ppo.losses import ppo_loss
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
from inner_algos.rl import gae
from inner_algos.rules.hyperparams import HyperParams


def example():
    """A PPO that compiles in seconds: CartPole, 2 envs x 4 steps, 2 updates, width-4 networks."""
    from inner_algos.envs import Task
    from inner_algos.rules import make_rule

    config = PPOConfig(
        num_envs=2,
        rollout_length=4,
        num_updates=2,
        num_epochs=1,
        num_minibatches=1,
        actor_hidden=(4,),
        critic_hidden=(4,),
        eval_envs=1,
    )
    return config, Task(source="gymnax", env_name="CartPole-v1", episode_length=16), make_rule("ppo_clip")


def size_note(config: PPOConfig) -> str:
    """What sets one PPO run's size, for the memory check's message."""
    return (
        f"ppo.num_envs = {config.num_envs:,} environments x ppo.rollout_length = "
        f"{config.rollout_length} steps"
    )


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
    "example",
    "rule_slots",
    "size_note",
]
