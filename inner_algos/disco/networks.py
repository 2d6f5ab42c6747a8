"""The DiscoRL agent's network (the published harness's `networks/nets.py` MLP with the
`action_models.py` LSTM model): obs -> AgentOutputs (logits, y; per action z, q, aux_pi)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from inner_algos.rules.disco import AgentOutputs


def _mlp(x: jax.Array, widths: Sequence[int], name: str) -> jax.Array:
    """Dense layers with ReLU between them, none after the last (Haiku's MLP)."""
    for i, width in enumerate(widths):
        x = nn.Dense(width, name=f"{name}_{i}")(x)
        if i < len(widths) - 1:
            x = jax.nn.relu(x)
    return x


class DiscoAgentNet(nn.Module):
    """obs `[..., *obs_shape]` (flattened) -> AgentOutputs `[..., ...]`.

    torso: an MLP of `torso` widths; logits `[..., A]` and y `[..., n]`: linear heads with weights
    ~ truncated normal(head_w_init_std). Model: the torso gives an LSTM state (cell = Linear(torso),
    hidden = tanh(cell)); one LSTM step (Haiku's gates, forget bias 1) per action, input the one-hot
    action, gives a `[..., A, lstm]` embedding from which MLPs (`head_hiddens`, then the size) give
    z `[..., A, n]`, q `[..., A, num_bins]` and aux_pi `[..., A, A]`.
    """

    num_actions: int
    prediction_size: int
    num_bins: int
    torso: Sequence[int] = (512, 512)
    head_w_init_std: float = 1e-2
    lstm_size: int = 128
    head_hiddens: Sequence[int] = (128,)

    @nn.compact
    def __call__(self, obs: jax.Array) -> AgentOutputs:
        x = _mlp(obs, self.torso, "torso")
        head_init = nn.initializers.truncated_normal(self.head_w_init_std)
        logits = nn.Dense(self.num_actions, kernel_init=head_init, name="logits")(x)
        y = nn.Dense(self.prediction_size, kernel_init=head_init, name="y")(x)
        cell = nn.Dense(self.lstm_size, name="model_root")(x)
        a = self.num_actions
        actions = jnp.broadcast_to(jnp.eye(a, dtype=x.dtype), cell.shape[:-1] + (a, a))
        hidden = jnp.broadcast_to(jnp.tanh(cell)[..., None, :], cell.shape[:-1] + (a, self.lstm_size))
        gates = nn.Dense(4 * self.lstm_size, name="model_lstm")(jnp.concatenate([actions, hidden], axis=-1))
        i, g, f, o = jnp.split(gates, 4, axis=-1)
        c = jax.nn.sigmoid(f + 1.0) * cell[..., None, :] + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        hiddens = tuple(self.head_hiddens)
        return AgentOutputs(
            logits=logits,
            y=y,
            z=_mlp(h, (*hiddens, self.prediction_size), "z"),
            q=_mlp(h, (*hiddens, self.num_bins), "q"),
            aux_pi=_mlp(h, (*hiddens, a), "aux_pi"),
        )
