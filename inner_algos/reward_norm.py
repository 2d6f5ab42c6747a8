"""Running reward normalisation by the standard deviation of the discounted return.

Each environment accumulates the discounted return of its current episode,
G_t = r_t + gamma * G_{t-1}, with G reset to 0 after the step that ends an episode (a termination or
a time-limit cut: the next reward belongs to a new episode). The variance of G is pooled over
environments and time into one running estimate per lifetime, and rewards are divided by its
square root and clipped to [-REWARD_CLIP, REWARD_CLIP] (as Stable-Baselines3's VecNormalize and
gymnasium's NormalizeReward do). Dividing by the return's scale rather than the reward's keeps value
targets O(1) for any reward scale and discount. The mean is not subtracted: a shift would change
the task (a per-step alive bonus would become a penalty).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from inner_algos.networks import RunningStats

REWARD_CLIP = 10.0  # bound on a normalised reward, whatever the statistics
VAR_EPS = 1e-8  # added to the variance: an all-zero reward stream stays 0, never 0 / 0


@struct.dataclass
class ReturnStats:
    """Discounted-return statistics of one lifetime.

    returns `[N]`: each environment's discounted return so far in its current episode;
    stats: running mean and variance (`RunningStats` of size 1) of every G_t seen.
    """

    returns: jax.Array
    stats: RunningStats

    @classmethod
    def create(cls, num_envs: int) -> ReturnStats:
        return cls(returns=jnp.zeros((num_envs,)), stats=RunningStats.create(1))

    def update(self, rewards: jax.Array, dones: jax.Array, gamma: float) -> ReturnStats:
        """Merges a rollout: rewards and dones (1.0 where an episode ended) `[T, N]`."""

        def accumulate(returns, step):
            reward, done = step
            returns = gamma * returns + reward
            return returns * (1.0 - done), returns

        last, returns = jax.lax.scan(accumulate, self.returns, (rewards, dones))
        return ReturnStats(returns=last, stats=self.stats.update(returns[..., None]))

    @property
    def std(self) -> jax.Array:
        """Current standard deviation of the discounted return, `[]`, at least sqrt(VAR_EPS)."""
        return jnp.sqrt(self.stats.var[0] + VAR_EPS)

    def normalize(self, rewards: jax.Array) -> jax.Array:
        """rewards / std, clipped; any shape."""
        return jnp.clip(rewards / self.std, -REWARD_CLIP, REWARD_CLIP)
