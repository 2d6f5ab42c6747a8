"""Acting: PPO's agent in its environments (observation normalisation, rollouts, the training
batch, deterministic evaluation).

Rollouts run on stop_gradient(params) (in `collect`, the one stop_gradient of PPO): the env
dynamics, sampled actions, behaviour log-probs, values and rewards are data, so meta-params reach
the new params only through the update (see `make_ppo`).
"""

from __future__ import annotations

import jax

from inner_algos.networks import RunningStats
from inner_algos.ppo.config import PPOConfig
from inner_algos.ppo.types import Batch, InnerState, PPOParts, Transition
from inner_algos.rl import gae, step_record
from inner_algos.rules.hyperparams import HyperParams


def normalize(config: PPOConfig, stats: RunningStats, obs: jax.Array) -> jax.Array:
    """obs `[..., obs_size]` normalised by the running statistics when config.normalize_obs."""
    return stats.normalize(obs) if config.normalize_obs else obs


def rollout(parts: PPOParts, params: dict, stats: RunningStats, env_state, env_params, key):
    """config.rollout_length steps of the stochastic policy in the `[num_envs]` envs.

    Returns (env_state after the rollout, traj: a Transition of `[T, num_envs, ...]` arrays,
    last_value `[num_envs]`: the critic at the final observations, for bootstrapping).
    """
    config, env, networks = parts.config, parts.env, parts.networks

    def one_step(env_state, step_key):
        obs = normalize(config, stats, env_state.obs)
        dist = networks.policy.distribution(params["actor"], obs)
        action = dist.sample(seed=step_key)
        value = networks.critic.apply(params["critic"], obs)
        next_state = jax.vmap(env.step, in_axes=(0, 0, None))(env_state, action, env_params)
        transition = Transition(
            obs=env_state.obs,
            action=action,
            log_prob=dist.log_prob(action),
            value=value,
            **step_record(next_state, parts.task),
        )
        return next_state, transition

    keys = jax.random.split(key, config.rollout_length)
    env_state, traj = jax.lax.scan(one_step, env_state, keys)
    last_value = networks.critic.apply(params["critic"], normalize(config, stats, env_state.obs))
    return env_state, traj, last_value


def collect(parts: PPOParts, state: InnerState, key: jax.Array, hp: HyperParams):
    """Rollout of the agent in `state` (as data: params stop-gradiented) plus GAE.

    Returns (env_state, return_stats, traj `[T, N, ...]`, batch): batch is a `Batch` flattened to
    `[T * N, ...]`, obs normalised with the statistics used for acting; with normalize_rewards,
    GAE sees the rewards divided by the return statistics updated with this rollout.
    """
    config = parts.config
    env_state, traj, last_value = rollout(
        parts,
        jax.lax.stop_gradient(state.params),
        state.obs_stats,
        state.env_state,
        state.env_params,
        key,
    )
    return_stats, rewards = state.return_stats, traj.reward
    if config.normalize_rewards:  # config.gamma: a learned gamma must not move the reward scale
        return_stats = return_stats.update(rewards, traj.episode_done, config.gamma)
        rewards = return_stats.normalize(rewards)
    adv, target = gae(
        rewards,
        traj.value,
        last_value,
        traj.termination,
        traj.truncation,
        hp.gamma,
        hp.gae_lambda,
    )
    batch = jax.tree.map(
        lambda x: x.reshape((-1,) + x.shape[2:]),
        Batch(
            normalize(config, state.obs_stats, traj.obs), traj.action, traj.log_prob, traj.value, adv, target
        ),
    )
    return env_state, return_stats, traj, batch


def evaluate(parts: PPOParts, state: InnerState, key: jax.Array):
    """Mean return and length (`[]` each) over config.eval_envs full episodes of the deterministic
    action (Gaussian mean, most likely category), in the lifetime's env params."""

    def act(obs, _):
        return parts.networks.policy.mode(
            state.params["actor"], normalize(parts.config, state.obs_stats, obs)
        )

    total, length = parts.eval_episodes(act, key, state.env_params)
    return total.mean(), length.mean()
