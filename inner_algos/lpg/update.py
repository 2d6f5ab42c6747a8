"""The LPG agent's training: one update, a whole lifetime, the meta-objective's rollout loss, and
`make_lpg` that wires them.

`make_lpg(config, task, rule)` returns an `LPGAlgo` of pure functions with PPO's signatures:

  init(meta_params, key) -> LPGState
  step(meta_params, state) -> (state, metrics)   one rollout of `[T, N]` trajectories, one agent
                                                 step on the rule's targets, one side-critic step
  train(meta_params, key) -> (state, metrics)    lax.scan of `step`; metrics stacked `[num_updates]`
  evaluate(state, key) -> (return, length)       greedy policy, full episodes
  rollout_loss(meta_params, state, key) -> (loss, stats)   -mean log pi A on a fresh rollout
  meta_regulariser(step_metrics) -> []           GROOVE's regularisers of the K steps (meta_loss.py)

The rule (family "targets", `inner_algos.rules.targets`) is the learned meta-network ("lpg") or the A2C
baseline ("a2c"). Rollouts act with `acting_params(params)` = stop_gradient(params): env dynamics,
actions and rewards are data, so meta-params reach the agent's new params only through the update.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, cast

import jax
import jax.numpy as jnp
import optax

from inner_algos.contract import lifetime_fraction
from inner_algos.envs import SOURCES, Task, episode_runner, make_env, sample_params, source_entry
from inner_algos.lpg import acting
from inner_algos.lpg.config import LPGConfig
from inner_algos.lpg.losses import (
    agent_loss,
    entropy,
    log_probs,
    policy_gradient_loss,
    rule_targets,
    value_loss,
)
from inner_algos.lpg.meta_loss import regulariser
from inner_algos.lpg.networks import Agent, ValueNet
from inner_algos.lpg.types import LPGAlgo, LPGParts, LPGState, Metrics, Trajectory
from inner_algos.rl import episode_metrics, gae
from inner_algos.rules import Rule, check_supported


def acting_params(params: dict) -> dict:
    """The params rollouts act with: stop_gradient(params), the one place gradients are cut."""
    return jax.lax.stop_gradient(params)


def init_state(parts: LPGParts, meta_params: Any, key: jax.Array) -> LPGState:
    """A fresh lifetime: agent and critic params, optimizer states, `[num_envs]` envs reset in the
    lifetime's env params (sampled once per lifetime)."""
    del meta_params  # the state's shapes never depend on the rule
    config, env = parts.config, parts.env
    k_agent, k_critic, k_env, k_state = jax.random.split(key, 4)
    dummy = jnp.zeros((env.observation_size,))
    params = {"agent": parts.agent.init(k_agent, dummy), "critic": parts.critic.init(k_critic, dummy)}
    env_params = sample_params(parts.task, jax.random.fold_in(key, 1))
    env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, config.num_envs), env_params)
    return LPGState(
        params=params,
        opt_state={"agent": parts.tx.init(params["agent"]), "critic": parts.critic_tx.init(params["critic"])},
        env_state=env_state,
        env_params=env_params,
        key=k_state,
        update=jnp.zeros((), jnp.int32),
        lifetime=jnp.asarray(config.num_updates, jnp.int32),
    )


def advantages(parts: LPGParts, critic_params: dict, traj: Trajectory, last_obs: jax.Array):
    """The side critic's GAE (advantage, value target), both `[T, N]`, at the config's gamma and
    lambda; data (no gradient)."""
    critic_params = jax.lax.stop_gradient(critic_params)
    values = cast(jax.Array, parts.critic.apply(critic_params, traj.obs))
    last_value = cast(jax.Array, parts.critic.apply(critic_params, last_obs))
    config = parts.config
    return gae(
        traj.reward, values, last_value, traj.termination, traj.truncation, config.gamma, config.gae_lambda
    )


def step_targets(parts: LPGParts, meta_params: Any, state: LPGState, traj: Trajectory, last_obs: jax.Array):
    """What the agent in `state` is trained towards on the rollout `traj` (`[T, N, ...]`):
    (the rule's Targets, the side critic's advantage `[T, N]`, its value target `[T, N]`)."""
    adv, target = advantages(parts, state.params["critic"], traj, last_obs)
    targets = rule_targets(
        state.params["agent"],
        meta_params,
        traj,
        last_obs,
        adv,
        lifetime_fraction(state),
        jnp.log(state.lifetime.astype(jnp.float32)),
        agent=parts.agent,
        rule=parts.rule,
        gamma=parts.config.gamma,
    )
    return targets, adv, target


def learn(parts: LPGParts, meta_params: Any, state: LPGState, traj: Trajectory, last_obs: jax.Array):
    """One agent step on the rule's targets and one side-critic step, on the rollout `traj`.

    Returns (params, opt_state, stats): the agent loss's stats, the updated agent's mean policy
    and y entropies on the rollout's states (entropy, y_entropy: the meta-objective's regularisers),
    the critic's value_loss, and the agent gradient's norm."""
    config = parts.config
    targets, _, target = step_targets(parts, meta_params, state, traj, last_obs)
    grads, stats = jax.grad(agent_loss, has_aux=True)(
        state.params["agent"], targets, traj, agent=parts.agent, y_coef=config.y_coef
    )
    updates, agent_opt = parts.tx.update(grads, state.opt_state["agent"], state.params["agent"])
    agent_params = optax.apply_updates(state.params["agent"], updates)
    critic_loss, critic_grads = jax.value_and_grad(value_loss)(
        state.params["critic"], traj.obs, target, critic=parts.critic
    )
    updates, critic_opt = parts.critic_tx.update(
        critic_grads, state.opt_state["critic"], state.params["critic"]
    )
    critic_params = optax.apply_updates(state.params["critic"], updates)
    log_pi, log_y = log_probs(parts.agent, agent_params, traj.obs)
    stats.update(
        entropy=entropy(log_pi),
        y_entropy=entropy(log_y),
        value_loss=critic_loss,
        grad_norm=optax.global_norm(grads),
    )
    params = {"agent": agent_params, "critic": critic_params}
    return params, {"agent": agent_opt, "critic": critic_opt}, stats


def update_step(parts: LPGParts, meta_params: Any, state: LPGState) -> tuple[LPGState, Metrics]:
    """One update: a rollout of whole trajectories, then `learn`. Metrics are scalars: learn's
    stats, PPO's episode metrics (episode_return NaN when no episode ended) and learning_rate."""
    key, k_roll = jax.random.split(state.key)
    env_state, traj, last_obs = acting.rollout(
        parts, acting_params(state.params["agent"]), state.env_state, state.env_params, k_roll
    )
    params, opt_state, metrics = learn(parts, meta_params, state, traj, last_obs)
    metrics.update(episode_metrics(traj), learning_rate=jnp.asarray(parts.config.learning_rate, jnp.float32))
    new_state = dataclasses.replace(
        state, params=params, opt_state=opt_state, env_state=env_state, key=key, update=state.update + 1
    )
    return new_state, metrics


def train(parts: LPGParts, meta_params: Any, key: jax.Array) -> tuple[LPGState, Metrics]:
    """A whole lifetime: init, then config.num_updates steps under lax.scan (metrics `[num_updates]`)."""
    state = init_state(parts, meta_params, key)
    return jax.lax.scan(
        lambda s, _: update_step(parts, meta_params, s), state, None, length=parts.config.num_updates
    )


def rollout_loss(parts: LPGParts, meta_params: Any, state: LPGState, key: jax.Array):
    """(-mean log pi(a|s) A `[]`, {"policy_loss"}) on a fresh rollout of the agent in `state`, A the
    side critic's advantage (data; standardised over the batch with
    config.normalize_meta_advantages): LPG's meta-objective before its regularisers (`meta_loss`).
    Differentiable in state.params["agent"] only."""
    del meta_params
    _, traj, last_obs = acting.rollout(
        parts, acting_params(state.params["agent"]), state.env_state, state.env_params, key
    )
    adv, _ = advantages(parts, state.params["critic"], traj, last_obs)
    loss = policy_gradient_loss(
        state.params["agent"], traj, adv, agent=parts.agent, normalize=parts.config.normalize_meta_advantages
    )
    return loss, {"policy_loss": loss}


def optimizer(name: str, learning_rate: float, max_grad_norm: float) -> optax.GradientTransformation:
    """Clip the global norm, then SGD or Adam. Adam's eps_root keeps sqrt(v) differentiable where a
    gradient is 0 (a tabular agent's unvisited states), so meta-gradients through it stay finite."""
    step = optax.sgd(learning_rate) if name == "sgd" else optax.adam(learning_rate, eps_root=1e-8)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), step)


def check_agent(config: LPGConfig, task: Task, observation_size: int) -> None:
    """Refuses the tabular agent on a task whose observations are not one-hot states: its tables
    would silently become a linear policy of the raw features (MinAtar's grids, CartPole's
    coordinates), which is not the tabular agent the config asks for."""
    if config.agent == "tabular" and not source_entry(task.source).one_hot_observations:
        one_hot = ", ".join(name for name, entry in SOURCES.items() if entry.one_hot_observations)
        raise ValueError(
            f"lpg.agent = 'tabular' needs one-hot observations (sources: {one_hot}); "
            f'task {task.label!r} observes {observation_size} features: set lpg.agent = "mlp" '
            "(e.g. --set lpg.agent=mlp --set lpg.optimizer=adam --set lpg.learning_rate=0.001 "
            "--set lpg.critic_learning_rate=0.001)"
        )


def make_parts(config: LPGConfig, task: Task, rule: Rule) -> LPGParts:
    """The static pieces of the LPG agent for `task` (a discrete-action env) trained by `rule`
    (family "targets"), checked: the rule's family and y_size, the action space, the agent kind
    against the observations. The agent's input and output sizes are the env's observation_size
    (flattened: MinAtar's `[10, 10, C]` grid is 100 C features) and action_size."""
    check_supported(rule, "lpg")
    rule_y = getattr(rule, "y_size", config.y_size)
    if rule_y != config.y_size:
        raise ValueError(
            f"rule.y_size = {rule_y} differs from lpg.y_size = {config.y_size}; set both to the same n"
        )
    env = make_env(task)
    if not env.discrete:
        raise ValueError(
            f"task {task.label!r} has continuous actions; the LPG agent needs a discrete action space"
        )
    check_agent(config, task, env.observation_size)
    tabular = config.agent == "tabular"
    return LPGParts(
        config=config,
        task=task,
        env=env,
        agent=Agent(env.action_size, config.y_size, tabular, config.hidden, config.activation),
        critic=ValueNet(tabular, config.hidden, config.activation),
        rule=rule,
        tx=optimizer(config.optimizer, config.learning_rate, config.max_grad_norm),
        critic_tx=optimizer(config.optimizer, config.critic_learning_rate, config.max_grad_norm),
        eval_episodes=episode_runner(task, config.eval_envs),
    )


def make_lpg(config: LPGConfig, task: Task, rule: Rule) -> LPGAlgo:
    """Builds the LPG agent for `task` (a discrete-action env) trained by `rule` (family "targets")."""
    parts = make_parts(config, task, rule)
    return LPGAlgo(
        init=functools.partial(init_state, parts),
        step=functools.partial(update_step, parts),
        train=functools.partial(train, parts),
        evaluate=functools.partial(acting.evaluate, parts),
        rollout_loss=functools.partial(rollout_loss, parts),
        meta_regulariser=regulariser,
        config=config,
        task=task,
        rule=rule,
    )
