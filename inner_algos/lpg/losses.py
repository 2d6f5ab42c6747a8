"""The LPG agent's losses as pure functions of explicit arguments.

Agent (LPG, Oh et al. 2020, eq. 2; GROOVE's weights): on one `[T, N]` batch,

  L(theta) = -mean_t,i[ log pi(a_t|s_t) pi_hat_t ] + y_coef mean_t,i[ KL(y_hat_t || y(s_t)) ]
             - entropy_coef mean_t,i[ H(pi(.|s_t)) ]

with (pi_hat, y_hat, entropy_coef) the targets rule's output on the trajectory (`rule_targets`).
The agent's gradient holds the targets fixed, so grad_theta L is LPG's update
grad log pi pi_hat - y_coef grad KL; the targets keep their dependence on the meta-params (and,
through the agent's earlier updates, on them again), so a meta-gradient flows through the agent's
update into the rule.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from inner_algos.lpg.networks import Agent, ValueNet
from inner_algos.lpg.types import Metrics, Trajectory
from inner_algos.rules import Rule
from inner_algos.rules.targets import TargetInputs, Targets


def log_probs(agent: Agent, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(log pi `[..., A]`, log y `[..., n]`) of the agent at observations `[..., obs_size]`."""
    logits, y_logits = cast(tuple[jax.Array, jax.Array], agent.apply(params, obs))
    return jax.nn.log_softmax(logits), jax.nn.log_softmax(y_logits)


def entropy(log_p: jax.Array) -> jax.Array:
    """Mean entropy of the distributions `[..., K]` given as log-probabilities."""
    return -jnp.mean(jnp.sum(jnp.exp(log_p) * log_p, axis=-1))


def taken(log_pi: jax.Array, action: jax.Array) -> jax.Array:
    """log pi(a|s) `[...]` of the actions `[...]` from log pi `[..., A]`."""
    return jnp.take_along_axis(log_pi, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def rule_targets(
    params: dict,
    meta_params: Any,
    traj: Trajectory,
    last_obs: jax.Array,
    advantage: jax.Array,
    progress: jax.Array,
    log_lifetime: jax.Array,
    *,
    agent: Agent,
    rule: Rule,
    gamma: float,
) -> Targets:
    """The rule's targets on `traj` (`[T, N, ...]`) for the agent at `params`; last_obs
    `[N, obs_size]` is the observation after the rollout (for y(s_T)); advantage `[T, N]` is the
    side critic's (data), read only by the A2C rule.

    No stop_gradient on the agent's outputs here: the agent's own gradient treats the targets as
    given (they are an argument of `agent_loss`), and a meta-gradient follows them back through the
    agent's earlier updates as well as into the rule."""
    all_obs = jnp.concatenate([traj.obs, last_obs[None]], axis=0)
    log_pi, log_y = log_probs(agent, params, all_obs)
    inputs = TargetInputs(
        reward=traj.reward,
        done=traj.done,
        discount=jnp.asarray(gamma, traj.reward.dtype),
        pi_taken=jnp.exp(taken(log_pi[:-1], traj.action)),
        y=jnp.exp(log_y[:-1]),
        y_next=jnp.exp(log_y[1:]),
        advantage=jax.lax.stop_gradient(advantage),
        progress=progress,
        log_lifetime=log_lifetime,
    )
    return rule.apply(meta_params, inputs)


def agent_loss(
    params: dict, targets: Targets, traj: Trajectory, *, agent: Agent, y_coef: float
) -> tuple[jax.Array, Metrics]:
    """The agent's loss L(theta) of the module docstring on `traj` (`[T, N, ...]`) for given
    targets. Returns (L `[]`, stats: policy_loss, y_loss, pi_hat_mean, pi_hat_l2 = mean pi_hat^2,
    y_hat_l2 = mean |y_hat|^2)."""
    log_pi, log_y = log_probs(agent, params, traj.obs)
    policy_loss = -jnp.mean(taken(log_pi, traj.action) * targets.pi_hat)
    y_loss = jnp.mean(jnp.sum(xlogy(targets.y_hat, targets.y_hat) - targets.y_hat * log_y, axis=-1))
    total = policy_loss + y_coef * y_loss - targets.entropy_coef * entropy(log_pi)
    stats = {
        "policy_loss": policy_loss,
        "y_loss": y_loss,
        "pi_hat_mean": jnp.mean(targets.pi_hat),
        "pi_hat_l2": jnp.mean(jnp.square(targets.pi_hat)),
        "y_hat_l2": jnp.mean(jnp.sum(jnp.square(targets.y_hat), axis=-1)),
    }
    return total, stats


def value_loss(params: dict, obs: jax.Array, target: jax.Array, *, critic: ValueNet) -> jax.Array:
    """The side critic's 0.5 mean (V(s) - target)^2 over `[T, N]`."""
    return 0.5 * jnp.mean(jnp.square(cast(jax.Array, critic.apply(params, obs)) - target))


def policy_gradient_loss(
    params: dict, traj: Trajectory, advantage: jax.Array, *, agent: Agent, normalize: bool = False
) -> jax.Array:
    """-mean log pi(a_t|s_t) A_t over `[T, N]` (advantages are data): the meta-objective's main term
    (LPG, eq. 3), differentiable in the agent's params. normalize: A standardised over the batch,
    (A - mean A) / (std A + 1e-8)."""
    advantage = jax.lax.stop_gradient(advantage)
    if normalize:
        advantage = (advantage - jnp.mean(advantage)) / (jnp.std(advantage) + 1e-8)
    log_pi, _ = log_probs(agent, params, traj.obs)
    return -jnp.mean(taken(log_pi, traj.action) * advantage)
