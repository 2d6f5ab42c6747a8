"""OPEN, the learned optimizer of Goldie et al. (NeurIPS 2024, arXiv 2407.07082), rule "open".

Every parameter element of the agent is updated by the same small network, as in the authors'
code (github.com/AlexGoldie/rl-learned-optimization, `rl_optimizer/network.py`):

  features (19 per element, in this order)
    0      the parameter p
    1-6    sign(m_b) for the momenta m_b <- b m_b + (1 - b) g, b in `DECAYS` (updated with g first)
    7-12   log(|m_b| + 1e-13)
    13-14  sign(g), log(|g| + 1e-13)
           features 0-14 are divided by sqrt(1e-5 + mean over the tensor of their square)
    15     the training proportion: update / (num_updates - 1)
    16     the layer proportion: layer index / (layers in the network - 1), actor and critic apart
    17     the batch proportion: epoch / (num_epochs - 1)
    18     dormancy of the neuron the element feeds: a / sum(|a|) * width over its layer, a the
           mean |activation| over the minibatch (Sokar et al. 2023)
  h'        = GRU(features, h)                           `[..., gru_size]`, h carried per element
  (o0, o1, o2) = MLP(h'): Dense(hidden) -> LayerNorm -> relu -> Dense(hidden) -> LayerNorm -> relu
                 -> Dense(3)
  u         = step_mult (o0 exp(exp_mult o1) + o2 * actor_mask * N(0, 1))
  update    = u - mean(u over every element of actor and critic);   params <- params - update

The noise term is OPEN's learned stochasticity: only actor parameters get it. The key of each
tensor is `jax.random.split(context.key, number of tensors)[i]`, i the tensor's position in the
params' flattening order, as in the reference, so a fixed key gives the reference's numbers.

The rule owns the whole update (`owns_update`): PPO applies it with step size 1 (no learning
rate, no annealing) and passes an `OptimizerContext` (proportions, activations, key).

meta_params are named so that `jax.flatten_util.ravel_pytree` orders them as the reference's
flax modules do; `from_flat` therefore loads the published vectors unchanged (1211 numbers for
hidden_size 16 / gru_size 8; 3571 for the larger 32 / 16 network of `multi_OPEN.npy`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from inner_algos.config_checks import POSITIVE, POSITIVE_INT, check_fields
from inner_algos.rules.base import Rule
from inner_algos.rules.learned_optimizer import OptimizerInputs

DECAYS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
NUM_FEATURES = 19
_LOG_EPS = 1e-13  # inside log(|x| + eps) of the gradient and momenta
_NORM_EPS = 1e-5  # second-moment normaliser
_LAYER_NORM_EPS = 1e-6  # flax.linen.LayerNorm's default
_DORMANCY_EPS = 1e-11


class OpenState(NamedTuple):
    """momenta: pytree like params, leaves `[..., len(DECAYS)]`; carry: the GRU's hidden state,
    leaves `[..., gru_size]`."""

    momenta: Any
    carry: Any


def _dense(p: dict, x: jax.Array) -> jax.Array:
    return x @ p["kernel"] + p["bias"]


def _layer_norm(p: dict, x: jax.Array) -> jax.Array:
    """flax.linen.LayerNorm over the last axis (variance as E[x^2] - E[x]^2, clipped at 0)."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.maximum(jnp.mean(jnp.square(x), axis=-1, keepdims=True) - jnp.square(mean), 0.0)
    return (x - mean) * jax.lax.rsqrt(var + _LAYER_NORM_EPS) * p["scale"] + p["bias"]


def _gru(p: dict, x: jax.Array, h: jax.Array) -> jax.Array:
    """flax.linen.GRUCell: x `[..., 19]`, h `[..., H]` -> new h `[..., H]`."""
    r = jax.nn.sigmoid(_dense(p["x_r"], x) + h @ p["h_r"]["kernel"])
    z = jax.nn.sigmoid(_dense(p["x_z"], x) + h @ p["h_z"]["kernel"])
    n = jnp.tanh(_dense(p["x_n"], x) + r * _dense(p["h_n"], h))
    return (1.0 - z) * n + z * h


def _mlp(p: dict, h: jax.Array) -> jax.Array:
    x = jax.nn.relu(_layer_norm(p["layer_1_norm"], _dense(p["layer_0_dense"], h)))
    x = jax.nn.relu(_layer_norm(p["layer_3_norm"], _dense(p["layer_2_dense"], x)))
    return _dense(p["layer_4_dense"], x)


def dormancy(activation: jax.Array) -> jax.Array:
    """OPEN's per-neuron dormancy `[width]` of a layer's mean |activation| `[width]`."""
    a = activation + _DORMANCY_EPS
    return a / jnp.sum(jnp.abs(a), axis=-1, keepdims=True) * a.shape[-1]


def layer_fractions(params: dict) -> dict:
    """Pytree like params of floats: for each network (top-level key) the index of a leaf's layer
    over (number of layers - 1). A layer is a module holding kernel/bias leaves, or a lone
    parameter (a log-std); layers are counted in the params' flattening order."""
    out = {}
    for net, tree in params.items():
        paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
        layer_of = [p[:-1] if getattr(p[-1], "key", None) in ("kernel", "bias") else p for p in paths]
        layers = list(dict.fromkeys(layer_of))
        last = max(len(layers) - 1, 1)
        fracs = [layers.index(layer) / last for layer in layer_of]
        out[net] = jax.tree.unflatten(jax.tree.structure(tree), fracs)
    return out


@dataclasses.dataclass(frozen=True)
class Open(Rule):
    """OPEN's learned optimizer (see the module docstring); meta_params from `init` or `from_flat`.

    hidden_size: width of the MLP (16; 32 for the multi-task optimizer);
    gru_size: GRU units (8; 16 for the multi-task optimizer); step_mult, exp_mult: OPEN's output
    scales (1e-3 each).
    """

    name: ClassVar[str] = "open"
    family: ClassVar[str] = "optimizer"
    owns_update: ClassVar[bool] = True
    hidden_size: int = 16
    gru_size: int = 8
    step_mult: float = 1e-3
    exp_mult: float = 1e-3

    def __post_init__(self):
        check_fields(self, "rule", hidden_size=POSITIVE_INT, gru_size=POSITIVE_INT)
        check_fields(self, "rule", step_mult=POSITIVE, exp_mult=POSITIVE)

    def init(self, key: jax.Array) -> dict:
        """All zeros, where OPEN's ES starts: the update is exactly 0 until meta-training moves it."""
        del key
        f, g, h = NUM_FEATURES, self.gru_size, self.hidden_size

        def dense(n_in, n_out, bias=True):
            return (
                {"bias": jnp.zeros((n_out,)), "kernel": jnp.zeros((n_in, n_out))}
                if bias
                else {"kernel": jnp.zeros((n_in, n_out))}
            )

        def norm(n):
            return {"bias": jnp.zeros((n,)), "scale": jnp.zeros((n,))}

        gru = {"h_n": dense(g, g), "h_r": dense(g, g, False), "h_z": dense(g, g, False)}
        gru.update(x_n=dense(f, g), x_r=dense(f, g), x_z=dense(f, g))
        mlp = {
            "layer_0_dense": dense(g, h),
            "layer_1_norm": norm(h),
            "layer_2_dense": dense(h, h),
            "layer_3_norm": norm(h),
            "layer_4_dense": dense(h, 3),
        }
        return {"gru": gru, "mlp": mlp}

    @property
    def num_params(self) -> int:
        return int(ravel_pytree(self.init(jax.random.PRNGKey(0)))[0].size)

    def from_flat(self, vector) -> dict:
        """meta_params from a flat vector in the reference's order (e.g. a published `*_OPEN.npy`)."""
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.size != self.num_params:
            raise ValueError(
                f"an OPEN vector of {vector.size} numbers does not fit rule 'open' with "
                f"hidden_size={self.hidden_size}, gru_size={self.gru_size} ({self.num_params} "
                "numbers); the multi-task optimizer needs hidden_size=32, gru_size=16"
            )
        _, unravel = ravel_pytree(self.init(jax.random.PRNGKey(0)))
        return unravel(jnp.asarray(vector))

    def init_state(self, params) -> OpenState:
        momenta = jax.tree.map(lambda p: jnp.zeros(p.shape + (len(DECAYS),), p.dtype), params)
        carry = jax.tree.map(lambda p: jnp.zeros(p.shape + (self.gru_size,), p.dtype), params)
        return OpenState(momenta, carry)

    def _features(self, p, g, momenta, dorm, consts) -> jax.Array:
        """The 19 features `[..., 19]` of one tensor (p, g `[...]`, momenta `[..., 6]`)."""
        tensor = jnp.concatenate(
            [
                p[..., None],
                jnp.sign(momenta),
                jnp.log(jnp.abs(momenta) + _LOG_EPS),
                jnp.sign(g)[..., None],
                jnp.log(jnp.abs(g) + _LOG_EPS)[..., None],
            ],
            axis=-1,
        )
        axes = tuple(range(p.ndim))
        tensor = tensor * jax.lax.rsqrt(_NORM_EPS + jnp.mean(jnp.square(tensor), axis=axes, keepdims=True))
        shared = jnp.broadcast_to(jnp.stack(consts), p.shape + (3,))
        return jnp.concatenate([tensor, shared, jnp.broadcast_to(dorm, p.shape)[..., None]], axis=-1)

    def apply(self, meta_params: dict, inputs: OptimizerInputs):
        """(update, state): the update pytree like params (applied as params - update)."""
        ctx = inputs.context
        if ctx is None:
            raise ValueError("rule 'open' needs PPO's OptimizerContext (inputs.context is None)")
        params = ctx.params
        decays = jnp.asarray(DECAYS)
        momenta = jax.tree.map(
            lambda m, g: decays * m + (1.0 - decays) * g[..., None], inputs.state.momenta, inputs.grads
        )
        fracs = layer_fractions(params)
        dorms = jax.tree.map(dormancy, ctx.activations)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.tree.unflatten(treedef, list(jax.random.split(ctx.key, len(leaves))))
        # the learned stochasticity reaches the actor only
        masks = {n: jax.tree.map(lambda _, m=float(n == "actor"): m, t) for n, t in params.items()}

        def one_tensor(p, g, m, dorm, h, frac, mask, key):
            if p.ndim == 0:  # a scalar parameter is a tensor of one element
                u, h = one_tensor(p[None], g[None], m[None], dorm, h[None], frac, mask, key)
                return u[0], h[0]
            consts = (ctx.update_fraction, jnp.asarray(frac, p.dtype), ctx.epoch_fraction)
            h = _gru(meta_params["gru"], self._features(p, g, m, dorm, consts), h)
            out = _mlp(meta_params["mlp"], h)
            u = out[..., 0] * self.step_mult * jnp.exp(out[..., 1] * self.exp_mult)
            return u + out[..., 2] * mask * jax.random.normal(key, u.shape) * self.step_mult, h

        pairs = jax.tree.map(
            one_tensor, params, inputs.grads, momenta, dorms, inputs.state.carry, fracs, masks, keys
        )
        updates = jax.tree.map(lambda _, pair: pair[0], params, pairs)
        carry = jax.tree.map(lambda _, pair: pair[1], params, pairs)
        mean = jnp.mean(jnp.concatenate([u.reshape(-1) for u in jax.tree.leaves(updates)]))
        return jax.tree.map(lambda u: u - mean, updates), OpenState(momenta, carry)
