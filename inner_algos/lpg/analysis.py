"""What a targets rule taught the LPG agent: LPG's analysis (Oh et al. 2020, section 5).

Train an LPG agent under a rule for its lifetime and, at a few points of it, collect a fresh batch of
whole trajectories and read on the same steps

  pi_hat     the rule's policy target (`update.step_targets`, as the agent would be trained on it);
  advantage  the side critic's GAE advantage, the pi_hat the A2C rule would give;
  y          the agent's prediction y(s_t) `[T, N, n]`;
  return     the Monte-Carlo discounted return from each step to the end of its episode.

Then ask two questions with the statistics of `inner_algos.analysis`: does pi_hat follow the
advantage (binned means, correlation), and how much of the return does y explain (a least-squares
fit return ~ y with an intercept, scored by its R^2 on held-out steps)?

The analysis batch is `rollouts` consecutive rollouts of the training length T = rollout_length:
the rule and the critic see each `[T, N]` rollout exactly as in training (the rule's backward
recurrence starts afresh at each rollout's end), and the returns are computed over the whole
`[rollouts * T, N]` batch. Returns are bootstrap-free: a step whose episode has not ended by the
end of the batch has no Monte-Carlo return and is masked out (`complete` False); a time-limit end
counts as the episode's end (the return is the one collected until then).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from inner_algos.analysis import Curve, follow_stats, lifetime_batches, monte_carlo_return, return_fit
from inner_algos.envs import Task
from inner_algos.lpg import acting
from inner_algos.lpg.config import LPGConfig
from inner_algos.lpg.losses import log_probs
from inner_algos.lpg.types import LPGParts, LPGState
from inner_algos.lpg.update import acting_params, init_state, make_parts, step_targets, update_step
from inner_algos.rules import Rule


class Snapshot(NamedTuple):
    """One analysis batch of `[S, N]` steps (S = rollouts x rollout_length) at a point of the lifetime.

    update: updates done before the batch; pi_hat, advantage, mc_return `[S, N]` (the return of the
    rewards the agent sees, task.reward_scale applied); y `[S, N, n]`;
    complete `[S, N]` bool, True where the step's episode ended inside the batch (mc_return is
    only meaningful there); episode_return `[]`, the mean return of the episodes that ended in the
    batch (NaN if none)."""

    update: int
    pi_hat: np.ndarray
    advantage: np.ndarray
    y: np.ndarray
    mc_return: np.ndarray
    complete: np.ndarray
    episode_return: float


def collect(parts: LPGParts, meta_params: Any, state: LPGState, key: jax.Array, rollouts: int):
    """`rollouts` consecutive rollouts of the agent in `state` (env state continued, nothing
    learned) and what the module docstring reads on them. Returns a dict of arrays: pi_hat,
    advantage, mc_return `[S, N]`, complete `[S, N]` bool, y `[S, N, n]`, episode_return `[]`."""

    def one_rollout(env_state, k):
        env_state, traj, last_obs = acting.rollout(
            parts, acting_params(state.params["agent"]), env_state, state.env_params, k
        )
        targets, adv, _ = step_targets(parts, meta_params, state, traj, last_obs)
        _, log_y = log_probs(parts.agent, state.params["agent"], traj.obs)
        return env_state, (targets.pi_hat, adv, jnp.exp(log_y), traj.reward, traj.done, traj.episode_return)

    _, chunks = jax.lax.scan(one_rollout, state.env_state, jax.random.split(key, rollouts))
    pi_hat, adv, y, reward, done, episode_return = (x.reshape((-1,) + x.shape[2:]) for x in chunks)
    mc_return, complete = monte_carlo_return(reward, done, parts.config.gamma)
    ended = done.sum()
    return {
        "pi_hat": pi_hat,
        "advantage": adv,
        "y": y,
        "mc_return": mc_return,
        "complete": complete,
        "episode_return": jnp.where(ended > 0, episode_return.sum() / jnp.maximum(ended, 1), jnp.nan),
    }


def lifetime_snapshots(
    rule: Rule,
    meta_params: Any,
    config: LPGConfig,
    task: Task,
    key: jax.Array,
    fractions=(0.25, 0.5, 1.0),
    rollouts: int = 1,
) -> list[Snapshot]:
    """Trains an LPG agent under `rule` for config.num_updates updates (`update.update_step`) and
    takes a Snapshot of `rollouts` fresh rollouts after each `analysis.update_points(fractions)`."""
    parts = make_parts(config, task, rule)
    k_init, k_collect = jax.random.split(key)
    batches = lifetime_batches(
        functools.partial(update_step, parts),
        functools.partial(collect, parts),
        meta_params,
        init_state(parts, meta_params, k_init),
        config.num_updates,
        k_collect,
        fractions,
        rollouts,
    )
    return [Snapshot(point, episode_return=float(b.pop("episode_return")), **b) for point, b in batches]


class PointSummary(NamedTuple):
    """A snapshot in numbers and curves: corr(pi_hat, advantage) on all steps and scale, std pi_hat /
    std advantage (how large the rule's targets are next to A2C's); the held-out fit of
    the return on y over the complete steps (r2, and `steps` of them on both halves together);
    binned means (x `[B]`, y `[B]`) of pi_hat against the advantage and of the actual return against
    the one predicted from y (held-out steps)."""

    update: int
    correlation: float
    scale: float
    r2: float
    steps: int
    episode_return: float
    pi_hat_curve: Curve
    return_curve: Curve | None


def summarize(snapshot: Snapshot, bins: int = 10) -> PointSummary:
    """The PointSummary of a snapshot; r2 NaN and no return curve when either half of the split has
    no complete step."""
    s = snapshot
    follow = follow_stats(s.pi_hat, s.advantage, bins)
    fit = return_fit(s.y, s.mc_return, s.complete, bins)
    return PointSummary(
        update=s.update,
        correlation=follow.correlation,
        scale=follow.scale,
        r2=fit.r2,
        steps=fit.steps,
        episode_return=s.episode_return,
        pi_hat_curve=follow.curve,
        return_curve=fit.curve,
    )
