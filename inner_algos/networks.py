"""Actor and critic MLPs (flax.linen), the policies (distrax) and running observation
normalisation.

`make_policy` picks the policy from the env's action space: a categorical over `action_size`
logits for discrete actions, else the Gaussian below. Observations reach the MLPs as flat
vectors (envs flatten MinAtar's grids).

Gaussian policy: a diagonal Gaussian over pre-clip actions, mean from an MLP and a state-independent
learned log-std. The environment receives `clip(action, -1, 1)`; log-probabilities and entropy
are of the unclipped Gaussian (as in CleanRL / purejaxrl continuous PPO). Clipping rather than
tanh-squashing keeps log-probabilities exact and cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}


def orthogonal(scale: float) -> Callable:
    """flax's orthogonal initializer, drawn one matrix at a time under `vmap`.

    `init(key, shape, dtype) -> [*shape]`, the same numbers as `nn.initializers.orthogonal(scale)`
    (tested bit for bit). Under `vmap` (population x tasks x seeds) flax's version becomes one
    batched LAPACK QR (geqrf / orgqr). jaxlib 0.10.2's CPU LAPACK kernels split a batch over
    XLA's intra-op thread pool and block their thread until the pieces are done; when every
    thread of that pool is inside such a call (two layers' QRs run concurrently on a 2-thread
    pool), nobody is left to run the pieces and the process waits forever at 0% CPU. Drawing the
    matrices in a loop (`jax.custom_batching.sequential_vmap`) gives LAPACK batches of one,
    which run on the calling thread. The `--xla_cpu_multi_thread_eigen=false` flag does not
    avoid this hang.
    """
    base = nn.initializers.orthogonal(scale)

    def init(key, shape, dtype=jnp.float32):
        return jax.custom_batching.sequential_vmap(lambda k: base(k, shape, dtype))(key)

    return init


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
            x = act(nn.Dense(width, kernel_init=orthogonal(jnp.sqrt(2.0)))(x))
        return nn.Dense(self.out_size, kernel_init=orthogonal(self.out_scale))(x)


class Actor(nn.Module):
    """Gaussian policy head: returns (mean `[..., A]`, log_std `[A]`)."""

    hidden: Sequence[int]
    action_size: int
    activation: str = "tanh"
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, obs):
        mean = MLP(self.hidden, self.action_size, self.activation, out_scale=0.01)(obs)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_size,))
        return mean, log_std


class Critic(nn.Module):
    """State-value function: `[..., obs] -> [...]`."""

    hidden: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden, 1, self.activation, out_scale=1.0)(obs)[..., 0]


class CategoricalActor(nn.Module):
    """Categorical policy head: returns logits `[..., num_actions]` (small initial output, so
    the first policy is near uniform, as the Gaussian's mean starts near 0)."""

    hidden: Sequence[int]
    num_actions: int
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden, self.num_actions, self.activation, out_scale=0.01)(obs)


def layer_activations(params: dict, obs: jax.Array, activation: str) -> dict:
    """Mean |activation| over the batch of each layer of an `MLP`-based actor or critic.

    params: the network's params ({"params": {"MLP_0": {"Dense_i": ...}, "log_std": ...}});
    obs `[B, obs_size]` as the network sees them. Returns a pytree like params: each Dense
    layer's kernel and bias get the layer's `[width]` (after the activation function for hidden
    layers, the raw output for the last), a lone parameter (log-std) gets mean(exp(.)) `[1]`, as
    OPEN's networks report them for its dormancy feature. Recomputes the forward pass; nothing of
    it reaches a gradient.
    """
    act = ACTIVATIONS[activation]
    mlp = params["params"]["MLP_0"]
    names = sorted(mlp, key=lambda name: int(name.split("_")[-1]))
    x, out = obs, {}
    for i, name in enumerate(names):
        x = x @ mlp[name]["kernel"] + mlp[name]["bias"]
        x = act(x) if i < len(names) - 1 else x
        mean_abs = jax.lax.stop_gradient(jnp.mean(jnp.abs(x), axis=tuple(range(x.ndim - 1))))
        out[name] = {"bias": mean_abs, "kernel": mean_abs}
    rest = {k: jnp.mean(jnp.exp(v)).reshape(1) for k, v in params["params"].items() if k != "MLP_0"}
    return {"params": {"MLP_0": out, **rest}}


class Policy(NamedTuple):
    """A stochastic policy over an env's action space; `params` are the actor's.

    init(key, obs `[obs_size]`) -> params; distribution(params, obs `[..., obs_size]`) -> a distrax
    distribution with batch shape `[...]` (actions `[..., A]` continuous, `[...]` int discrete);
    mode(params, obs) -> the deterministic action (Gaussian mean, most likely category).
    """

    init: Callable
    distribution: Callable
    mode: Callable


def make_policy(
    discrete: bool, action_size: int, hidden: Sequence[int], activation: str, init_log_std: float = 0.0
) -> Policy:
    """Categorical policy for a discrete action space, diagonal Gaussian for a continuous one."""
    if discrete:
        return _categorical_policy(CategoricalActor(tuple(hidden), action_size, activation))
    return _gaussian_policy(Actor(tuple(hidden), action_size, activation, init_log_std))


def _categorical_policy(actor: CategoricalActor) -> Policy:
    def logits(params: Any, obs: jax.Array) -> jax.Array:
        return cast(jax.Array, actor.apply(params, obs))

    def distribution(params: Any, obs: jax.Array) -> Any:
        return distrax.Categorical(logits=logits(params, obs))

    return Policy(actor.init, distribution, lambda params, obs: jnp.argmax(logits(params, obs), -1))


def _gaussian_policy(actor: Actor) -> Policy:
    def mean_and_log_std(params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return cast(tuple[jax.Array, jax.Array], actor.apply(params, obs))

    def distribution(params: Any, obs: jax.Array) -> Any:
        return policy_distribution(*mean_and_log_std(params, obs))

    return Policy(actor.init, distribution, lambda params, obs: mean_and_log_std(params, obs)[0])


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
    def create(cls, size: int) -> RunningStats:
        return cls(count=jnp.zeros(()), mean=jnp.zeros((size,)), var=jnp.ones((size,)))

    def update(self, batch: jax.Array) -> RunningStats:
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
