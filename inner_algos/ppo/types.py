"""The data PPO passes around, and `PPOAlgo` (what `make_ppo` returns), PPO's `InnerAlgo`.

The contract (`InnerAlgo` and a Protocol per function: `InitFn`, `StepFn`, ...) lives in
`inner_algos.contract`, shared by every inner algorithm; its names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax
from flax import struct

from inner_algos.contract import (
    EvaluateFn,
    InitFn,
    InnerAlgo,
    Metrics,
    RolloutLossFn,
    StepFn,
    TrainFn,
    lifetime_fraction,
)
from inner_algos.envs import Task
from inner_algos.networks import Critic, Policy, RunningStats
from inner_algos.ppo.config import PPOConfig
from inner_algos.ppo.slots import RuleSlots
from inner_algos.reward_norm import ReturnStats
from inner_algos.rules import Rule

__all__ = [
    "Batch",
    "EvaluateFn",
    "InitFn",
    "InnerAlgo",
    "InnerState",
    "Metrics",
    "Networks",
    "PPOAlgo",
    "PPOParts",
    "RolloutLossFn",
    "StepFn",
    "TrainFn",
    "Transition",
    "lifetime_fraction",
]


@struct.dataclass
class InnerState:
    """Everything one PPO lifetime carries between updates (shapes fixed across steps).

    env_state holds `[num_envs]`-batched env states; env_params the lifetime's randomised env
    parameters ({} for a fixed task); update counts completed updates; lifetime is this run's
    length in updates (config.num_updates unless a truncation schedule sets it): progress
    through training is `lifetime_fraction(state)`.
    """

    params: dict
    opt_state: Any
    obs_stats: RunningStats
    return_stats: ReturnStats
    env_state: Any
    env_params: dict
    key: jax.Array
    update: jax.Array
    lifetime: jax.Array


class Transition(NamedTuple):
    """One rollout step for all envs; every field `[num_envs, ...]` (stacked `[T, num_envs, ...]`)."""

    obs: jax.Array  # raw observation the action was chosen at
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array  # scaled by task.reward_scale
    termination: jax.Array  # true end of episode (not a time-limit cut)
    truncation: jax.Array  # time-limit cut: bootstrap instead of zeroing the value
    episode_return: jax.Array  # unscaled return of the episode that ended here (0 elsewhere)
    episode_length: jax.Array  # in agent steps
    episode_done: jax.Array


class Batch(NamedTuple):
    """PPO's training data, every field `[B, ...]` (B = T x num_envs for a whole rollout, B / M
    for a minibatch): obs normalised as when acting (`[B, obs_size]`), action (`[B, A]`
    continuous, `[B]` discrete), the behaviour policy's log_prob and value, the advantage and
    the value target (all `[B]`)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


class Networks(NamedTuple):
    """The actor (a stochastic policy over the env's actions) and the critic (`[..., obs] -> [...]`)."""

    policy: Policy
    critic: Critic


class PPOParts(NamedTuple):
    """The static pieces one PPO instance is built from (by `make_ppo`), passed to the module-level
    functions of acting and update: env (the task's batched-by-vmap env), tx the optax chain
    clip_by_global_norm -> slots.direction, eval_episodes `episode_runner(task, config.eval_envs)`."""

    config: PPOConfig
    task: Task
    env: Any
    networks: Networks
    slots: RuleSlots
    tx: optax.GradientTransformationExtraArgs
    eval_episodes: Callable


# --- PPO's InnerAlgo (the contract: `inner_algos.contract`) ---------------------------------


class PPOAlgo(NamedTuple):
    """PPO's `InnerAlgo` (built by `make_ppo`)."""

    init: InitFn
    step: StepFn
    train: TrainFn
    evaluate: EvaluateFn
    config: PPOConfig
    task: Task
    rule: Rule
    rollout_loss: RolloutLossFn

    @property
    def env_steps_per_update(self) -> int:
        return self.config.batch_size * self.task.action_repeat

    @property
    def loss_metrics(self) -> tuple[str, ...]:
        """The losses a diverged run makes non-finite."""
        return ("policy_loss", "value_loss")

    @property
    def meta_regulariser(self) -> None:
        """PPO adds nothing to a truncated meta-loss beyond its rollout_loss."""
        return None
