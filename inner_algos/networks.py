"""Actor and critic MLPs (flax.linen), the Gaussian policy (distrax) and running observation
normalisation.

Policy: a diagonal Gaussian over pre-clip actions, mean from an MLP and a state-independent
learned log-std. The environment receives `clip(action, -1, 1)`; log-probabilities and entropy
are of the unclipped Gaussian (as in CleanRL / purejaxrl continuous PPO). Clipping rather than
tanh-squashing keeps log-probabilities exact and cheap.
"""

from __future__ import annotations

from typing import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}


class MLP(nn.Module):
    """Orthogonally initialised MLP: `[..., in] -> [..., out_size]`."""

    hidden: Sequence[int]
    out_size: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=nn.initializers.orthogonal(jnp.sqrt(2.0)))(x))
        return nn.Dense(self.out_size, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)


class Actor(nn.Module):
    """Gaussian policy head: returns (mean `[..., A]`, log_std `[A]`)."""

    hidden: Sequence[int]
    action_size: int
    activation: str = "tanh"
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, obs):
        mean = MLP(self.hidden, self.action_size, self.activation, out_scale=0.01)(obs)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_size,)
        )
        return mean, log_std


class Critic(nn.Module):
    """State-value function: `[..., obs] -> [...]`."""

    hidden: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden, 1, self.activation, out_scale=1.0)(obs)[..., 0]


def policy_distribution(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
    """Diagonal Gaussian with batch shape `mean.shape[:-1]` and event shape `[A]`."""
    return distrax.MultivariateNormalDiag(mean, jnp.broadcast_to(jnp.exp(log_std), mean.shape))


@struct.dataclass
class RunningStats:
    """Running mean and variance of observations (parallel Welford), all `[obs_size]` but count."""

    count: jax.Array
    mean: jax.Array
    var: jax.Array

    @classmethod
    def create(cls, size: int) -> "RunningStats":
        return cls(count=jnp.zeros(()), mean=jnp.zeros((size,)), var=jnp.ones((size,)))

    def update(self, batch: jax.Array) -> "RunningStats":
        """Merges a batch `[..., obs_size]` into the statistics."""
        batch = batch.reshape(-1, batch.shape[-1])
        n = batch.shape[0]
        b_mean = batch.mean(0)
        b_var = batch.var(0)
        total = self.count + n
        delta = b_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / total
        return RunningStats(count=total, mean=mean, var=m2 / total)

    def normalize(self, obs: jax.Array) -> jax.Array:
        return jnp.clip((obs - self.mean) / jnp.sqrt(self.var + 1e-8), -10.0, 10.0)
