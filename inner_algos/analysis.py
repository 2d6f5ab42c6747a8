"""What a rule taught an agent, in numbers: the lifetime loop and the statistics of the pictures
`discover inspect` draws of learned targets (after LPG's analysis, Oh et al. 2020, section 5),
shared by the agents' analysis modules (`inner_algos.lpg.analysis`, `inner_algos.disco.analysis`).

An agent is trained under a rule and, at a few points of its lifetime, a fresh batch of `[S, N]`
steps is collected (`lifetime_batches`). Two questions are then asked of each batch:

  does the rule's policy target follow an advantage?   `follow_stats`: correlation, relative
      scale and binned means of the target against the advantage on the same points;
  how much of the return does a prediction explain?    `return_fit`: a least-squares fit
      return ~ prediction with an intercept on half of the steps, scored by its R^2 on the others.

Returns are bootstrap-free Monte-Carlo returns (`monte_carlo_return`): a step whose episode has not
ended by the end of the batch has none and is left out. The fit is linear in the prediction, so
it measures what a linear read-out recovers, a lower bound on what the prediction encodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Curve = tuple[np.ndarray, np.ndarray]  # binned means (x `[B]`, y `[B]`)


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


def update_points(num_updates: int, fractions) -> list[int]:
    """The updates ceil(f * num_updates) for the lifetime fractions f, ascending, without repeats."""
    bad = [f for f in fractions if not 0.0 <= f <= 1.0]
    if bad or not fractions:
        raise ValueError(f"fractions = {tuple(fractions)}: give one or more lifetime fractions in [0, 1]")
    return sorted({math.ceil(f * num_updates) for f in fractions})


def lifetime_batches(
    update: Callable,
    collect: Callable,
    meta_params: Any,
    state: Any,
    num_updates: int,
    key: jax.Array,
    fractions,
    rollouts: int,
) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Trains one lifetime from `state` (its start) and collects a batch after each of
    `update_points(num_updates, fractions)`.

    update(meta_params, state) -> (state, metrics), one training update; collect(meta_params,
    state, key, rollouts) -> a dict of arrays (`rollouts` fresh rollouts of the agent in `state`,
    nothing learned), with jax.random.fold_in(key, update) as its key. The updates between two
    points run in one compiled loop (the count is traced). Returns [(update, the batch on the host)]."""
    if rollouts < 1:
        raise ValueError(f"rollouts = {rollouts}: the analysis batch needs at least 1 rollout")

    def advance(meta_params, state, updates):
        return jax.lax.fori_loop(0, updates, lambda _, s: update(meta_params, s)[0], state)

    step, grab = jax.jit(advance), jax.jit(collect, static_argnums=3)
    done, batches = 0, []
    for point in update_points(num_updates, fractions):
        state = step(meta_params, state, point - done)
        done = point
        batch = grab(meta_params, state, jax.random.fold_in(key, point), rollouts)
        batches.append((point, jax.device_get(batch)))
    return batches


# --- statistics (numpy, on the steps of one batch) ------------------------------------------------


def binned_means(x: np.ndarray, y: np.ndarray, bins: int = 10) -> Curve:
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


RCOND = 1e-8  # heldout_r2's cut-off of the fitted design's singular values, relative to the largest


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
    collinear features (probabilities sum to 1, as the intercept) are fine; directions of the
    fitted design whose singular value is below RCOND times the largest count as collinear (a
    prediction that barely varies along a direction on the fitted steps would otherwise get a huge
    weight there, which blows up on held-out steps that vary along it). R^2 is ~0 for features
    unrelated to the target (below 0 when the fit is worse than the held-out mean) and NaN for a
    constant held-out target."""
    features, target, fit = np.asarray(features, np.float64), np.asarray(target, np.float64), np.asarray(fit)
    if fit.sum() < 1 or (~fit).sum() < 1:
        raise ValueError(
            f"heldout_r2 needs points on both sides of the split; got {fit.sum()} and {(~fit).sum()}"
        )
    design = np.concatenate([features, np.ones((len(target), 1))], axis=1)
    coef = np.linalg.lstsq(design[fit], target[fit], rcond=RCOND)[0]
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


def top_components(features: np.ndarray, fit: np.ndarray, k: int) -> np.ndarray:
    """features `[M, K]` in their k principal directions `[M, min(k, K)]`: each point, less the mean
    of the points where `fit` is True, projected on the right singular vectors of those centred
    points' k largest singular values (the directions along which the fitted points vary most)."""
    features = np.asarray(features, np.float64)
    centred = features - features[fit].mean(axis=0)
    _, _, directions = np.linalg.svd(centred[fit], full_matrices=False)
    return centred @ directions[:k].T


class FollowStats(NamedTuple):
    """How a policy target follows an advantage: Pearson's correlation, scale (std target / std
    advantage; NaN for a constant advantage) and the binned means of the target against the
    advantage (curve)."""

    correlation: float
    scale: float
    curve: Curve


def follow_stats(target: np.ndarray, advantage: np.ndarray, bins: int = 10) -> FollowStats:
    """FollowStats of a target and an advantage of one shape (`[S, N]`, `[S, N, A]`, ...), on all points."""
    spread = np.std(advantage)
    return FollowStats(
        correlation=correlation(target, advantage),
        scale=float(np.std(target) / spread) if spread > 0 else float("nan"),
        curve=binned_means(advantage, target, bins),
    )


class ReturnFit(NamedTuple):
    """The held-out fit of the return on a prediction: r2 (NaN when either half of the split has no
    complete step), steps (the complete steps on both halves together) and the binned means of the
    actual return against the predicted one on the held-out steps (curve; None without r2)."""

    r2: float
    steps: int
    curve: Curve | None


def return_fit(
    features: np.ndarray,
    mc_return: np.ndarray,
    complete: np.ndarray,
    bins: int = 10,
    components: int | None = None,
) -> ReturnFit:
    """`heldout_r2` of mc_return `[S, N]` on features `[S, N, K]` over the complete steps
    (complete `[S, N]` bool), fitted on `half_split`'s half; with `components`, on the features'
    `top_components` of the fitted steps instead (a read-out of the directions along which the
    prediction varies most, which a K-wide prediction cannot pass by memorising states)."""
    fit = half_split(complete.shape)
    if not ((complete & fit).any() and (complete & ~fit).any()):
        return ReturnFit(float("nan"), int(complete.sum()), None)
    x, fitted = features[complete], fit[complete]
    if components is not None:
        x = top_components(x, fitted, components)
    held = heldout_r2(x, mc_return[complete], fitted)
    return ReturnFit(held.r2, int(complete.sum()), binned_means(held.predicted, held.actual, bins))
