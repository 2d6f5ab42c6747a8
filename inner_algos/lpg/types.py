"""The data the LPG agent passes around, and `LPGAlgo`, what `make_lpg` returns (the contract of
`inner_algos.contract`: PPO's function signatures and the state fields `update`, `lifetime`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax
from flax import struct

from inner_algos.envs import Task
from inner_algos.lpg.config import LPGConfig
from inner_algos.lpg.networks import Agent, ValueNet
from inner_algos.rules import Rule

Metrics = dict[str, jax.Array]


@struct.dataclass
class LPGState:
    """Everything one lifetime carries between updates (shapes fixed across steps).

    params {"agent", "critic"} and opt_state {"agent", "critic"}: the agent and its side critic
    (trained alongside for the A2C rule and the meta-objective only); env_state `[num_envs]`-batched;
    env_params the lifetime's env parameters (a grid world's object cells); update counts completed
    updates, lifetime is the run's length in updates (see `inner_algos.contract.lifetime_fraction`).
    """

    params: dict
    opt_state: dict
    env_state: Any
    env_params: dict
    key: jax.Array
    update: jax.Array
    lifetime: jax.Array


class Trajectory(NamedTuple):
    """One rollout, every field `[T, N, ...]`, in time order (whole trajectories, never shuffled).

    obs is the observation the action was chosen at; done = termination or truncation (the episode
    ended at this step; the next observation starts a new one); episode_return / episode_length are
    those of the episode that ended here (0 elsewhere), episode_done marks them
    (`inner_algos.rl.step_record`, as in PPO's Transition)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    termination: jax.Array
    truncation: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    episode_done: jax.Array


class LPGParts(NamedTuple):
    """The static pieces one LPG instance is built from (by `make_lpg`): env (unbatched), the agent
    and critic modules, the targets rule, the two optax transforms, and the evaluation runner."""

    config: LPGConfig
    task: Task
    env: Any
    agent: Agent
    critic: ValueNet
    rule: Rule
    tx: optax.GradientTransformation
    critic_tx: optax.GradientTransformation
    eval_episodes: Callable


class LPGAlgo(NamedTuple):
    """The LPG agent's inner algorithm (`inner_algos.contract.InnerAlgo`): init, step, train,
    evaluate and rollout_loss with PPO's signatures, and meta_regulariser(step_metrics) -> `[]`,
    GROOVE's regularisers of the truncated meta-loss (`inner_algos.lpg.meta_loss.regulariser`)."""

    init: Callable
    step: Callable
    train: Callable
    evaluate: Callable
    rollout_loss: Callable
    meta_regulariser: Callable
    config: LPGConfig
    task: Task
    rule: Rule

    @property
    def env_steps_per_update(self) -> int:
        return self.config.batch_size * self.task.action_repeat

    @property
    def loss_metrics(self) -> tuple[str, ...]:
        """The losses a diverged run makes non-finite: the agent's two and the side critic's."""
        return ("policy_loss", "y_loss", "value_loss")
