"""Acting: the LPG agent in its environments (rollouts of whole `[T, N]` trajectories, greedy evaluation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from inner_algos.lpg.types import LPGParts, LPGState, Trajectory
from inner_algos.rl import step_record


def rollout(parts: LPGParts, agent_params: dict, env_state, env_params: dict, key: jax.Array):
    """config.rollout_length steps of the stochastic policy in the `[num_envs]` envs.

    Returns (env_state after the rollout, traj: a Trajectory of `[T, num_envs, ...]` arrays,
    last_obs `[num_envs, obs_size]`: the observations after the last step).
    """
    config, env = parts.config, parts.env

    def one_step(env_state, step_key):
        logits, _ = parts.agent.apply(agent_params, env_state.obs)
        action = jax.random.categorical(step_key, logits)
        next_state = jax.vmap(env.step, in_axes=(0, 0, None))(env_state, action, env_params)
        transition = Trajectory(
            obs=env_state.obs, action=action, done=next_state.done, **step_record(next_state, parts.task)
        )
        return next_state, transition

    env_state, traj = jax.lax.scan(one_step, env_state, jax.random.split(key, config.rollout_length))
    return env_state, traj, env_state.obs


def evaluate(parts: LPGParts, state: LPGState, key: jax.Array):
    """Mean return and length (`[]` each) over config.eval_envs full episodes of the most likely
    action, in the lifetime's env params."""

    def act(obs, _):
        logits, _ = parts.agent.apply(state.params["agent"], obs)
        return jnp.argmax(logits, axis=-1)

    total, length = parts.eval_episodes(act, key, state.env_params)
    return total.mean(), length.mean()
