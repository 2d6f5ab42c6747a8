"""The data PPO passes around and the inner-loop contract every meta-optimizer relies on.

`InnerAlgo` is typed as optax types its transforms: a Protocol per function (`InitFn`, `StepFn`,
...) and a Protocol for the whole, which `PPOAlgo` (what `make_ppo` returns) satisfies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax
from flax import struct

from inner_algos.envs import Task
from inner_algos.networks import Critic, Policy, RunningStats
from inner_algos.ppo.config import PPOConfig
from inner_algos.ppo.slots import RuleSlots
from inner_algos.reward_norm import ReturnStats
from inner_algos.rules import Rule

Metrics = dict[str, jax.Array]


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


def lifetime_fraction(state: InnerState) -> jax.Array:
    """update / lifetime of this run, clipped to [0, 1], float32 `[]`: the one "progress through
    training" input (learning-rate annealing, hyperparameter schedules, learned optimizer)."""
    return jnp.clip(state.update / state.lifetime, 0.0, 1.0).astype(jnp.float32)


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


# --- the inner-loop contract ---------------------------------------------------------------


class InitFn(Protocol):
    def __call__(self, meta_params: Any, key: jax.Array) -> InnerState:
        """A fresh lifetime: new params, optimizer state, env states and env params. The state's
        shapes never depend on meta_params."""


class StepFn(Protocol):
    def __call__(self, meta_params: Any, state: InnerState) -> tuple[InnerState, Metrics]:
        """One update (rollout, GAE, num_epochs x num_minibatches SGD steps); metrics are scalars
        (keys in docs/CONTRACTS.md)."""


class TrainFn(Protocol):
    def __call__(self, meta_params: Any, key: jax.Array) -> tuple[InnerState, Metrics]:
        """A whole lifetime: `init` then `step` config.num_updates times under lax.scan; metrics
        stacked `[num_updates]`."""


class EvaluateFn(Protocol):
    def __call__(self, state: InnerState, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean return `[]`, mean episode length `[]`) of the deterministic policy over
        config.eval_envs full episodes."""


class RolloutLossFn(Protocol):
    def __call__(self, meta_params: Any, state: InnerState, key: jax.Array) -> tuple[jax.Array, Metrics]:
        """(PPO's total loss `[]`, its statistics) on a fresh rollout of the agent in `state`,
        differentiable in state.params (the meta-losses of truncated meta-gradients)."""


class InnerAlgo(Protocol):
    """The inner-loop contract shared by every meta-optimizer: pure, jittable functions,
    vmappable over meta_params and keys (population x tasks x seeds)."""

    @property
    def init(self) -> InitFn: ...

    @property
    def step(self) -> StepFn: ...

    @property
    def train(self) -> TrainFn: ...

    @property
    def evaluate(self) -> EvaluateFn: ...

    @property
    def rollout_loss(self) -> RolloutLossFn: ...

    @property
    def config(self) -> PPOConfig: ...

    @property
    def task(self) -> Task: ...

    @property
    def rule(self) -> Rule: ...

    @property
    def env_steps_per_update(self) -> int:
        """Env steps one `step` takes (action repeats included)."""


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
