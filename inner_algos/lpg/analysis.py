"""What a targets rule taught the agent: LPG's analysis (Oh et al. 2020, section 5) as pure functions.

Train an LPG agent under a rule for its lifetime and, at a few points of it, collect a fresh batch of
whole trajectories and read on the same steps

  pi_hat     the rule's policy target (`update.step_targets`, as the agent would be trained on it);
  advantage  the side critic's GAE advantage, the pi_hat the A2C rule would give;
  y          the agent's prediction y(s_t) `[T, N, n]`;
  return     the Monte-Carlo discounted return from each step to the end of its episode.

Then ask two questions with the small statistics below: does pi_hat follow the advantage (binned
means, correlation), and how much of the return does y explain (a least-squares fit return ~ y with
an intercept, scored by its R^2 on held-out steps)? The fit is linear in the probabilities y, so it
measures what a linear read-out of y recovers, a lower bound on what y encodes.

The analysis batch is `rollouts` consecutive rollouts of the training length T = rollout_length:
the rule and the critic see each `[T, N]` rollout exactly as in training (the rule's backward
recurrence starts afresh at each rollout's end), and the returns are computed over the whole
`[rollouts * T, N]` batch. Returns are bootstrap-free: a step whose episode has not ended by the
end of the batch has no Monte-Carlo return and is masked out (`complete` False); a time-limit end
counts as the episode's end (the return is the one collected until then).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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


def monte_carlo_return(reward: jax.Array, done: jax.Array, gamma: float) -> tuple[jax.Array, jax.Array]:
    """Bootstrap-free discounted returns over a `[S, N]` batch in time order.

    G_t = r_t + gamma (1 - done_t) G_t+1 with G_S = 0, so the sum stops where an episode ends.
    Returns (G `[S, N]`, complete `[S, N]` bool: an episode end at or after t inside the batch; where
    False, G_t is cut by the batch end and is no Monte-Carlo return)."""

    def back(carry, xs):
        ret, ended = carry
        r, d = xs
        ret = r + gamma * (1.0 - d) * ret
        ended = (d > 0) | ended
        return (ret, ended), (ret, ended)

    start = (jnp.zeros(reward.shape[1:], reward.dtype), jnp.zeros(reward.shape[1:], bool))
    _, (ret, complete) = jax.lax.scan(back, start, (reward, done), reverse=True)
    return ret, complete


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


def advance(parts: LPGParts, meta_params: Any, state: LPGState, updates: jax.Array) -> LPGState:
    """`updates` (traced: one compile for every count) training updates of `state` under the rule."""
    return jax.lax.fori_loop(0, updates, lambda _, s: update_step(parts, meta_params, s)[0], state)


def update_points(num_updates: int, fractions) -> list[int]:
    """The updates ceil(f * num_updates) for the lifetime fractions f, ascending, without repeats."""
    bad = [f for f in fractions if not 0.0 <= f <= 1.0]
    if bad or not fractions:
        raise ValueError(f"fractions = {tuple(fractions)}: give one or more lifetime fractions in [0, 1]")
    return sorted({math.ceil(f * num_updates) for f in fractions})


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
    takes a Snapshot of `rollouts` fresh rollouts after each `update_points(fractions)`."""
    if rollouts < 1:
        raise ValueError(f"rollouts = {rollouts}: the analysis batch needs at least 1 rollout")
    parts = make_parts(config, task, rule)
    k_init, k_collect = jax.random.split(key)
    step = jax.jit(functools.partial(advance, parts))
    grab = jax.jit(functools.partial(collect, parts), static_argnums=3)
    state, done, snapshots = init_state(parts, meta_params, k_init), 0, []
    for point in update_points(config.num_updates, fractions):
        state = step(meta_params, state, point - done)
        done = point
        batch = jax.device_get(grab(meta_params, state, jax.random.fold_in(k_collect, point), rollouts))
        episode_return = float(batch.pop("episode_return"))
        snapshots.append(Snapshot(point, episode_return=episode_return, **batch))
    return snapshots


# --- statistics (numpy, on the steps of one snapshot) ---------------------------------------------


def binned_means(x: np.ndarray, y: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Means of x and of y in `bins` equal-count bins of x (the points sorted by x, then split into
    bins whose sizes differ by at most one; fewer bins if there are fewer points).
    Returns (x means `[B]`, y means `[B]`), ascending in x."""
    x, y = np.ravel(x), np.ravel(y)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"binned_means needs x and y of one non-zero size; got {x.size} and {y.size}")
    groups = np.array_split(np.argsort(x, kind="stable"), min(bins, x.size))
    return np.array([x[g].mean() for g in groups]), np.array([y[g].mean() for g in groups])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two equal-size samples; NaN if either is constant or has < 2 points."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


class HeldOutFit(NamedTuple):
    """A linear fit scored on steps it did not see: r2 `[]`, and on the held-out steps the fit's
    prediction and the actual target (`[M]` each)."""

    r2: float
    predicted: np.ndarray
    actual: np.ndarray


def heldout_r2(features: np.ndarray, target: np.ndarray, fit: np.ndarray) -> HeldOutFit:
    """Least squares target ~ features @ w + b on the points where `fit` is True, scored by
    R^2 = 1 - sum (target - prediction)^2 / sum (target - mean target)^2 on the others.

    features `[M, K]`, target `[M]`, fit `[M]` bool. lstsq takes the minimum-norm solution, so
    collinear features (y sums to 1, as the intercept) are fine. R^2 is ~0 for features unrelated
    to the target (below 0 when the fit is worse than the held-out mean) and NaN for a constant
    held-out target."""
    features, target, fit = np.asarray(features, np.float64), np.asarray(target, np.float64), np.asarray(fit)
    if fit.sum() < 1 or (~fit).sum() < 1:
        raise ValueError(
            f"heldout_r2 needs points on both sides of the split; got {fit.sum()} and {(~fit).sum()}"
        )
    design = np.concatenate([features, np.ones((len(target), 1))], axis=1)
    coef = np.linalg.lstsq(design[fit], target[fit], rcond=None)[0]
    predicted, actual = design[~fit] @ coef, target[~fit]
    total = np.sum(np.square(actual - actual.mean()))
    r2 = 1.0 - np.sum(np.square(actual - predicted)) / total if total > 0 else float("nan")
    return HeldOutFit(float(r2), predicted, actual)


def half_split(shape: tuple[int, int]) -> np.ndarray:
    """`[S, N]` bool, True on the half of the steps a fit uses: the first N // 2 envs (whole
    trajectories, so held-out steps are never neighbours of fitted ones), or the first S // 2 steps
    when there is one env."""
    steps, envs = shape
    fit = np.zeros(shape, bool)
    if envs >= 2:
        fit[:, : envs // 2] = True
    else:
        fit[: steps // 2] = True
    return fit


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
    pi_hat_curve: tuple[np.ndarray, np.ndarray]
    return_curve: tuple[np.ndarray, np.ndarray] | None


def summarize(snapshot: Snapshot, bins: int = 10) -> PointSummary:
    """The PointSummary of a snapshot; r2 NaN and no return curve when either half of the split has
    no complete step."""
    s = snapshot
    keep = s.complete
    fit = half_split(s.complete.shape)
    r2, curve = float("nan"), None
    if (keep & fit).any() and (keep & ~fit).any():
        held = heldout_r2(s.y[keep], s.mc_return[keep], fit[keep])
        r2, curve = held.r2, binned_means(held.predicted, held.actual, bins)
    return PointSummary(
        update=s.update,
        correlation=correlation(s.pi_hat, s.advantage),
        scale=float(np.std(s.pi_hat) / np.std(s.advantage)) if np.std(s.advantage) > 0 else float("nan"),
        r2=r2,
        steps=int(keep.sum()),
        episode_return=s.episode_return,
        pi_hat_curve=binned_means(s.advantage, s.pi_hat, bins),
        return_curve=curve,
    )
