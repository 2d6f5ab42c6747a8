"""The agent trained by learned targets and its side critic (the meta-network that produces the
targets is the "targets" rule family's: `inner_algos.rules.targets`).

Agent (Oh et al. 2020, LPG, section 3): a policy pi(a|s) and a categorical prediction y(s) over n
outcomes whose meaning the agent never sees: the targets rule decides what y should predict.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from inner_algos.networks import ACTIVATIONS, MLP, orthogonal


class Agent(nn.Module):
    """obs `[..., obs_size]` -> (policy logits `[..., num_actions]`, y logits `[..., y_size]`).

    tabular: two tables without biases read by the observation (a one-hot state picks a row),
    zero-initialised (a uniform policy and y); else an MLP torso of `hidden` widths shared by
    the two heads, whose small initial outputs also start near uniform.
    """

    num_actions: int
    y_size: int
    tabular: bool
    hidden: Sequence[int] = ()
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        x = obs
        head_init = nn.initializers.zeros
        if not self.tabular:
            for width in self.hidden:
                x = ACTIVATIONS[self.activation](nn.Dense(width, kernel_init=orthogonal(jnp.sqrt(2.0)))(x))
            head_init = orthogonal(0.01)
        bias = not self.tabular
        logits = nn.Dense(self.num_actions, use_bias=bias, kernel_init=head_init, name="policy")(x)
        y_logits = nn.Dense(self.y_size, use_bias=bias, kernel_init=head_init, name="y")(x)
        return logits, y_logits


class ValueNet(nn.Module):
    """The side critic `[..., obs_size] -> [...]`: a zero-initialised value table (tabular) or an MLP."""

    tabular: bool
    hidden: Sequence[int] = ()
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        if self.tabular:
            return nn.Dense(1, use_bias=False, kernel_init=nn.initializers.zeros)(obs)[..., 0]
        return MLP(tuple(self.hidden), 1, self.activation)(obs)[..., 0]
