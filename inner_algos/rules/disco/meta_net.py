"""DiscoRL's meta-network as pure functions of a params dict (Oh et al. 2025, "Discovering
state-of-the-art reinforcement learning algorithms", Nature; the published harness's
`networks/meta_nets.py`, github.com/google-deepmind/disco_rl).

It reads one update's rollout `[T+1, B]` (the agent's outputs, the behaviour policy's, the target
network's, rewards, terminals, Retrace's values and advantages) and outputs the targets the agent
is trained towards: pi_hat `[T, B, A]` (policy logits), y_hat `[T, B, n]` and z_hat `[T, B, n]`
(logits of the two prediction vectors), plus meta_input_emb `[T, B, 1]` for its own lifetime state.

  1. features: each input of `settings.base_inputs` is transformed (`transforms`) and flattened to
     `[T, B, k]`; the action-conditional ones (`settings.action_inputs`, `[T, B, A, k]`, and the
     one-hot action taken) go through a per-action network (1x1 convolutions over the action
     axis, each seeing its input next to the mean over actions, ReLU) whose output is appended
     averaged over actions and at the action taken: x `[T, B, D]`.
  2. a per-trajectory LSTM runs over x backwards in time, its state reset to 0 where an
     episode ended (step t sees only steps t.. of its episode): h `[T, B, H]`.
  3. h is gated by the lifetime LSTM's hidden state: h * Linear(hidden) (multiplicative).
  4. heads: y_hat, z_hat, meta_input_emb are linear in h; pi_hat per action from [h, the
     per-action embedding] by another per-action network and a linear layer.
  5. the lifetime LSTM (one step per update, state `[128]`) reads the batch mean of an MLP of
     the same features (own embedding networks), meta_input_emb and the embedded softmax(y_hat).

The LSTM is Haiku's: gates (i, g, f, o) = [x, h] W + b, c' = sigmoid(f + 1) c + sigmoid(i) tanh(g),
h' = sigmoid(o) tanh(c'). MLPs have ReLU between layers, none after the last.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from inner_algos.rules.disco.settings import Input, MetaNetSettings
from inner_algos.rules.disco.transforms import Context, apply_transform
from inner_algos.rules.disco.values import take_action

Params = dict


class LSTMState(NamedTuple):
    """An LSTM's hidden and cell states, `[..., H]` each."""

    hidden: jax.Array
    cell: jax.Array


class MetaOutputs(NamedTuple):
    """pi `[T, B, A]`, y `[T, B, n]`, z `[T, B, n]` (targets, as logits), meta_input_emb `[T, B, 1]`."""

    pi: jax.Array
    y: jax.Array
    z: jax.Array
    meta_input_emb: jax.Array


def linear(p: Params, x: jax.Array) -> jax.Array:
    """x `[..., in]` W `[in, out]` + b."""
    return x @ p["w"] + p["b"]


def mlp(p: Params, x: jax.Array) -> jax.Array:
    """Layers layer_0, layer_1, ... with ReLU between them (not after the last)."""
    n = len(p)
    for i in range(n):
        x = linear(p[f"layer_{i}"], x)
        if i < n - 1:
            x = jax.nn.relu(x)
    return x


def per_action_net(p: Params, x: jax.Array) -> jax.Array:
    """`[T, B, A, C]` -> `[T, B, A, C']`: per layer, x next to its mean over actions, a 1x1
    convolution over the action axis (kernel `[1, 2C, C']`) and a ReLU."""
    for i in range(len(p)):
        mean = jnp.broadcast_to(jnp.mean(x, axis=2, keepdims=True), x.shape)
        layer = p[f"layer_{i}"]
        x = jax.nn.relu(jnp.concatenate([x, mean], axis=-1) @ layer["w"][0] + layer["b"])
    return x


def lstm_step(p: Params, x: jax.Array, state: LSTMState) -> LSTMState:
    """One step of Haiku's LSTM (module docstring): x `[..., D]`, state `[..., H]`."""
    gates = linear(p, jnp.concatenate([x, state.hidden], axis=-1))
    i, g, f, o = jnp.split(gates, 4, axis=-1)
    cell = jax.nn.sigmoid(f + 1.0) * state.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    return LSTMState(jax.nn.sigmoid(o) * jnp.tanh(cell), cell)


def backward_lstm(p: Params, x: jax.Array, is_terminal: jax.Array) -> jax.Array:
    """The LSTM from the last step to the first over x `[T, B, D]`: before step t its state is
    reset to 0 where is_terminal[t] (the episode ended at t). Returns h `[T, B, H]`."""
    hidden = p["w"].shape[1] // 4
    zeros = jnp.zeros(x.shape[1:2] + (hidden,), x.dtype)

    def step(state: LSTMState, inputs):
        x_t, reset = inputs
        keep = 1.0 - reset.astype(x.dtype)[:, None]
        state = lstm_step(p, x_t, LSTMState(state.hidden * keep, state.cell * keep))
        return state, state.hidden

    _, hs = jax.lax.scan(step, LSTMState(zeros, zeros), (x, is_terminal), reverse=True)
    return hs


def _transformed(sources: Mapping[str, jax.Array], spec: Input, context: Context) -> jax.Array:
    source, names = spec
    if source not in sources:
        raise KeyError(f"unknown meta-network input source {source!r}; valid: {', '.join(sorted(sources))}")
    x = sources[source]
    for name in names:
        x = apply_transform(name, x, context)
    return x


def features(
    nets: Params, settings: MetaNetSettings, sources: Mapping[str, jax.Array], actions: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Step 1 of the module docstring with the embedding networks `nets` (y_net, z_net,
    action_net). sources: the named inputs (`settings` module docstring; scalars per step
    carry a trailing axis of 1); actions `[T+1, B]`. Returns (x `[T, B, D]`, the per-action
    embedding `[T, B, A, C]`)."""
    logits = sources["agent/logits"]
    num_actions = logits.shape[-1]
    taken = actions[:-1]
    t, b = taken.shape
    context = Context(
        actions=taken,
        policy=jax.lax.stop_gradient(jax.nn.softmax(logits)),
        y_net=functools.partial(mlp, nets["y_net"]),
        z_net=functools.partial(mlp, nets["z_net"]),
    )
    base = [_transformed(sources, spec, context).reshape(t, b, -1) for spec in settings.base_inputs]
    per_action = [
        _transformed(sources, spec, context).reshape(t, b, num_actions, -1) for spec in settings.action_inputs
    ]
    per_action.append(jax.nn.one_hot(taken, num_actions, dtype=logits.dtype)[..., None])
    embedding = per_action_net(nets["action_net"], jnp.concatenate(per_action, axis=-1))
    base += [jnp.mean(embedding, axis=2), take_action(embedding, taken)]
    return jnp.concatenate(base, axis=-1), embedding


def lifetime_step(
    p: Params,
    settings: MetaNetSettings,
    sources: Mapping[str, jax.Array],
    actions: jax.Array,
    out: MetaOutputs,
    state: LSTMState,
) -> LSTMState:
    """Step 5 of the module docstring: the lifetime LSTM's state `[H_l]` after this batch."""
    x, _ = features(p, settings, sources, actions)
    y_emb = mlp(p["y_net"], jax.nn.softmax(out.y))
    x = mlp(p["embed"], jnp.concatenate([x, out.meta_input_emb, y_emb], axis=-1))
    return lstm_step(p["lstm"], jnp.mean(x, axis=(0, 1)), state)


def unroll(
    params: Params,
    settings: MetaNetSettings,
    sources: Mapping[str, jax.Array],
    actions: jax.Array,
    is_terminal: jax.Array,
    state: LSTMState,
) -> tuple[MetaOutputs, LSTMState]:
    """The meta-network on one rollout (module docstring): sources (`features`), actions
    `[T+1, B]`, is_terminal `[T, B]`, state the lifetime LSTM's `[H_l]`. Returns the targets and
    the lifetime LSTM's next state."""
    p = params["trajectory"]
    x, action_emb = features(p, settings, sources, actions)
    h = backward_lstm(p["lstm"], x, is_terminal)
    h = h * linear(p["lifetime_gate"], state.hidden)
    num_actions = action_emb.shape[2]
    w = jnp.concatenate(
        [jnp.broadcast_to(h[:, :, None], h.shape[:2] + (num_actions, h.shape[-1])), action_emb], -1
    )
    pi = linear(p["policy_head"], per_action_net(p["policy_net"], w))[..., 0]
    out = MetaOutputs(
        pi=pi,
        y=linear(p["y_head"], h),
        z=linear(p["z_head"], h),
        meta_input_emb=linear(p["lifetime_input_head"], h),
    )
    return out, lifetime_step(params["lifetime"], settings, sources, actions, out, state)


def initial_state(settings: MetaNetSettings) -> LSTMState:
    """The lifetime LSTM's state at the start of a lifetime: zeros `[H_l]`."""
    zeros = jnp.zeros((settings.lifetime_hidden_size,), jnp.float32)
    return LSTMState(zeros, zeros)


# ---- initialisation (Haiku's defaults: truncated normal weights of std 1/sqrt(fan_in) unless a
# stddev is given, zero biases) ------------------------------------------------------------------


def _dense(
    key: jax.Array, fan_in: int, fan_out: int, stddev: float | None = None, conv: bool = False
) -> Params:
    std = stddev if stddev is not None else 1.0 / fan_in**0.5
    shape = (1, fan_in, fan_out) if conv else (fan_in, fan_out)
    w = std * jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)
    return {"w": w, "b": jnp.zeros((fan_out,), jnp.float32)}


def _stack(key: jax.Array, fan_in: int, widths: tuple[int, ...], conv: bool = False) -> Params:
    """Layers layer_i of `widths`; a per-action layer's input is doubled (x next to its mean)."""
    layers = {}
    for i, (k, width) in enumerate(zip(jax.random.split(key, len(widths)), widths, strict=True)):
        layers[f"layer_{i}"] = _dense(k, 2 * fan_in if conv else fan_in, width, conv=conv)
        fan_in = width
    return layers


def _feature_widths(settings: MetaNetSettings, embed_width: int) -> tuple[int, int]:
    """(width of the base features before the per-action embedding, channels of the per-action
    inputs), by tracing `features`' inputs on a dummy rollout (T = 2, B = 1, A = 3)."""
    t, b, a, n = 2, 1, 3, settings.prediction_size
    sources = dummy_sources(t, b, a, n)
    context = Context(
        actions=jnp.zeros((t, b), jnp.int32),
        policy=jnp.zeros((t + 1, b, a)),
        y_net=lambda x: x[..., :embed_width],
        z_net=lambda x: x[..., :embed_width],
    )

    base = sum(_transformed(sources, s, context).reshape(t, b, -1).shape[-1] for s in settings.base_inputs)
    acts = sum(
        _transformed(sources, s, context).reshape(t, b, a, -1).shape[-1] for s in settings.action_inputs
    )
    return base, acts + 1  # + the one-hot action taken


def dummy_sources(t: int, b: int, a: int, n: int) -> dict[str, jax.Array]:
    """Zero inputs of every source for a `[t+1, b]` rollout with a actions and n-vectors."""
    full, steps = (t + 1, b), (t, b)
    out = {}
    for who in ("agent", "behaviour", "target"):
        out[f"{who}/logits"] = jnp.zeros(full + (a,))
        out[f"{who}/y"] = jnp.zeros(full + (n,))
        out[f"{who}/z"] = jnp.zeros(full + (a, n))
    out.update(reward=jnp.zeros(steps), terminal=jnp.zeros(steps), value=jnp.zeros(full + (1,)))
    out.update(advantage=jnp.zeros(steps + (1,)), normalized_advantage=jnp.zeros(steps + (1,)))
    for name in ("q", "qv_advantage", "normalized_qv_advantage"):
        out[name] = jnp.zeros(full + (a, 1))
    return out


def _embedding_nets(
    key: jax.Array, settings: MetaNetSettings, widths: tuple[int, ...], channels: tuple[int, ...]
):
    k_y, k_z, k_a = jax.random.split(key, 3)
    base, action_in = _feature_widths(settings, widths[-1])
    nets = {
        "y_net": _stack(k_y, settings.prediction_size, widths),
        "z_net": _stack(k_z, settings.prediction_size, widths),
        "action_net": _stack(k_a, action_in, channels, conv=True),
    }
    return nets, base + 2 * channels[-1]


def init_params(settings: MetaNetSettings, key: jax.Array) -> Params:
    """Fresh meta-network params (`NAME_MAP` in `inner_algos.rules.disco.weights` lists them)."""
    s = settings
    keys = iter(jax.random.split(key, 12))
    trajectory, width = _embedding_nets(next(keys), s, s.embedding_size, s.policy_channels)
    h, hl = s.hidden_size, s.lifetime_hidden_size
    trajectory.update(
        lstm=_dense(next(keys), width + h, 4 * h),
        lifetime_gate=_dense(next(keys), hl, h, s.state_stddev),
        lifetime_input_head=_dense(next(keys), h, 1, s.output_stddev),
        y_head=_dense(next(keys), h, s.prediction_size, s.aux_stddev),
        z_head=_dense(next(keys), h, s.prediction_size, s.aux_stddev),
        policy_net=_stack(next(keys), h + s.policy_channels[-1], s.policy_target_channels, conv=True),
        policy_head=_dense(next(keys), s.policy_target_channels[-1], 1, s.policy_target_stddev),
    )
    lifetime, width = _embedding_nets(
        next(keys), s, s.lifetime_pred_embedding_size, s.lifetime_policy_channels
    )
    embed_in = width + 1 + s.lifetime_pred_embedding_size[-1]
    lifetime["embed"] = _stack(next(keys), embed_in, s.lifetime_embedding_size)
    lifetime["lstm"] = _dense(next(keys), s.lifetime_embedding_size[-1] + hl, 4 * hl)
    return {"trajectory": trajectory, "lifetime": lifetime}
