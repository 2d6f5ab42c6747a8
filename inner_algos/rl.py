"""RL pieces every inner algorithm shares, written once: the episode bookkeeping of a rollout step,
the metrics of the episodes a rollout ended, and generalised advantage estimation."""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp

from inner_algos.envs import Task

Metrics = dict[str, jax.Array]


def step_record(next_state: Any, task: Task) -> dict[str, jax.Array]:
    """What a rollout keeps of one env step, from the `[N]`-batched env state after it (the env
    interface of `inner_algos.envs`), every field `[N]`:

    reward: scaled by task.reward_scale (what the learner sees); termination: a true end of the
    episode (done and not a time-limit cut); truncation: a time-limit cut (bootstrap there);
    episode_return / episode_length: the unscaled return and the length in agent steps of the
    episode that ended here (0 elsewhere); episode_done: an episode ended here.
    """
    done = next_state.done
    truncation = next_state.info["truncation"]
    episode = next_state.info["episode_metrics"]
    return dict(
        reward=next_state.reward * task.reward_scale,
        termination=done * (1.0 - truncation),
        truncation=truncation,
        episode_return=episode["sum_reward"] * done,
        episode_length=episode["length"] / task.action_repeat * done,
        episode_done=done,
    )


class EpisodeRecords(Protocol):
    """A rollout's episode fields (`step_record`), `[T, N]` each."""

    episode_return: jax.Array
    episode_length: jax.Array
    episode_done: jax.Array


def episode_metrics(traj: EpisodeRecords) -> Metrics:
    """Mean return and length `[]` of the episodes that ended in the rollout (NaN if none did)
    and their number."""
    num_episodes = traj.episode_done.sum()
    denom = jnp.maximum(num_episodes, 1.0)
    no_episode = jnp.where(num_episodes > 0, 0.0, jnp.nan)
    return dict(
        episode_return=traj.episode_return.sum() / denom + no_episode,
        episode_length=traj.episode_length.sum() / denom + no_episode,
        num_episodes=num_episodes,
    )


def gae(
    rewards: jax.Array,
    values: jax.Array,
    last_value: jax.Array,
    termination: jax.Array,
    truncation: jax.Array,
    gamma: Any,
    lam: Any,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over `[T, N]` arrays (last_value `[N]`).

    Terminations stop bootstrapping; at a time-limit truncation the TD error is zeroed (the
    next observation belongs to a new episode) and the trace is cut, as in brax's PPO.
    Returns (advantages, value targets), both `[T, N]`.
    """
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    not_term = 1.0 - termination
    not_trunc = 1.0 - truncation
    deltas = (rewards + gamma * not_term * next_values - values) * not_trunc

    def backward(carry, xs):
        delta, nt, ntr = xs
        adv = delta + gamma * lam * nt * ntr * carry
        return adv, adv

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(last_value), (deltas, not_term, not_trunc), reverse=True
    )
    return advantages, advantages + values
