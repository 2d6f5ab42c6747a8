"""How reliable a generation's fitness ranking is: the split-half rank correlation of its members.

ES updates by the ranking (or the standardised values) of its members' fitness. That ranking is
signal only if the same members, trained on other seeds, would rank alike. `split_half_reliability`
measures it inside one generation, for free: each member's seeds are split into two halves, a
fitness is computed per half, and the Spearman rank correlation r across members between the two
halves is stepped up by Spearman-Brown to the reliability of the whole (both halves) fitness:
r_sb = 2 r / (1 + r) (Spearman 1910, Brown 1910). About 0: the ranking is seed noise; 1: every
seed ranks the members alike. Negative values (below -1 when r < -1/3) mean the halves disagree.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike


def average_ranks(x: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
    """Ranks 1..n of the valid entries of x `[M]` (ties share their average rank); 0 elsewhere.

    valid `[M]` bool; n = valid.sum(). O(M^2): populations are small.
    """
    pair = valid[None, :]
    below = jnp.sum((x[None, :] < x[:, None]) & pair, axis=1)
    equal = jnp.sum((x[None, :] == x[:, None]) & pair, axis=1)
    return jnp.where(valid, below + (equal + 1) / 2, 0.0)


def spearman(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """Spearman's rank correlation `[]` of x and y `[M]` over the members where both are finite
    (the Pearson correlation of their average ranks). NaN with fewer than 3 such members or when
    either side's ranks are all tied."""
    valid = jnp.isfinite(x) & jnp.isfinite(y)
    n = jnp.sum(valid)
    rx, ry = average_ranks(x, valid), average_ranks(y, valid)
    mean = (n + 1) / 2  # the mean rank, ties or not
    dx, dy = jnp.where(valid, rx - mean, 0.0), jnp.where(valid, ry - mean, 0.0)
    r = jnp.sum(dx * dy) / jnp.sqrt(jnp.sum(dx**2) * jnp.sum(dy**2))
    return jnp.where(n >= 3, r, jnp.nan)


def spearman_brown(r: jnp.ndarray) -> jnp.ndarray:
    """The reliability of a measurement twice as long as one whose halves correlate r: 2r/(1+r)."""
    return 2 * r / (1 + r)


def split_half_reliability(scores: jnp.ndarray) -> jnp.ndarray:
    """Split-half reliability `[]` of members' fitness from their normalised scores `[M, T, S]`
    (member, task, seed), the fitness being the mean over tasks and seeds (`objectives.aggregate`).

    Seeds [0, S//2) and [S//2, S) make the halves (every member sees the same seeds: common random
    numbers); each half's fitness `[M]` is the mean over its seeds, then tasks. Returns the
    Spearman-Brown-corrected Spearman correlation between the halves; members non-finite in
    either half are left out. Needs S >= 2.
    """
    seeds = scores.shape[-1]
    if seeds < 2:
        raise ValueError(f"split-half reliability needs >= 2 seeds per member, got {seeds}")
    half = seeds // 2
    first = jnp.mean(jnp.mean(scores[..., :half], axis=-1), axis=-1)
    second = jnp.mean(jnp.mean(scores[..., half:], axis=-1), axis=-1)
    return spearman_brown(spearman(first, second))


def pooled_reliability(reliabilities: ArrayLike) -> jnp.ndarray:
    """One reliability `[]` for a run from its generations' split-half reliabilities `[G]` (NaN
    ones, generations without a measurement, left out): the Spearman-Brown step-up of their mean
    split-half correlation.

    Averaging the stepped-up values themselves misleads: 2r/(1+r) is unbounded below (r = -0.6
    gives -3), so one unlucky generation outweighs many good ones. Each value is mapped back to
    its r = R / (2 - R) (spearman_brown's inverse), the r are averaged, and the mean is stepped up.
    """
    values = jnp.asarray(reliabilities, jnp.float32)
    r = values / (2 - values)
    return spearman_brown(jnp.nanmean(r))
