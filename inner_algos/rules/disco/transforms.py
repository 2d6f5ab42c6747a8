"""The transforms DiscoRL's meta-network applies to each of its inputs (`settings.BASE_INPUTS`,
`settings.ACTION_INPUTS`), after the published harness's `update_rules/input_transforms.py`.

A transform maps an array `[T(+1), B, ...]` to another, given the context of the rollout: the
actions taken `[T, B]`, the agent's policy softmax(logits) `[T+1, B, A]` (no gradient) and the
embedding networks "y_net" `[..., n] -> [..., 1]` and "z_net" (the same on z, per action):

  drop_last           x[:-1]: the steps whose action was taken (T of the T+1)
  softmax             over the last axis
  stop_grad           no gradient flows back through it
  select_a            `[T, B, A, ...]` -> `[T, B, ...]` at the action taken
  pi_weighted_avg     `[T+1, B, A, k]` -> `[T+1, B, k]`, the average under the policy
  max_a               the maximum over the action axis (axis 2)
  td_pair             `[T+1, B, k]` -> `[T, B, 2k]`: x_t next to x_t+1 (for TD-like inputs)
  sign_log            sign(x) log(1 + |x|)
  masks_to_discounts  1 - x (a terminal flag -> a continuation flag)
  y_net, z_net        the embeddings
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from inner_algos.rules.disco.values import signed_log1p, take_action


class Context(NamedTuple):
    """What the transforms read besides their input: actions `[T, B]`, policy `[T+1, B, A]` and
    the embeddings (y_net, z_net: arrays `[..., n] -> [..., 1]`)."""

    actions: jax.Array
    policy: jax.Array
    y_net: Callable[[jax.Array], jax.Array]
    z_net: Callable[[jax.Array], jax.Array]


def _td_pair(x: jax.Array) -> jax.Array:
    return jnp.concatenate([x[:-1], x[1:]], axis=-1)


_SIMPLE: dict[str, Callable[[jax.Array], jax.Array]] = {
    "drop_last": lambda x: x[:-1],
    "softmax": jax.nn.softmax,
    "stop_grad": jax.lax.stop_gradient,
    "max_a": lambda x: jnp.max(x, axis=2),
    "td_pair": _td_pair,
    "sign_log": signed_log1p,
    "masks_to_discounts": lambda x: 1.0 - x,
}
NAMES = (*_SIMPLE, "select_a", "pi_weighted_avg", "y_net", "z_net")


def apply_transform(name: str, x: jax.Array, context: Context) -> jax.Array:
    """Transform `name` (module docstring) of x; KeyError naming the valid ones for another."""
    if name in _SIMPLE:
        return _SIMPLE[name](x)
    if name == "select_a":
        return take_action(x, context.actions)
    if name == "pi_weighted_avg":
        return jnp.sum(x * context.policy[..., None], axis=2)
    if name == "y_net":
        return context.y_net(x)
    if name == "z_net":
        return context.z_net(x)
    raise KeyError(f"unknown meta-network input transform {name!r}; valid: {', '.join(NAMES)}")
