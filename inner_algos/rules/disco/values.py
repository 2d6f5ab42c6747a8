"""DiscoRL's value-function utilities: the categorical action-value head read as scalars, Retrace
targets, and the moving averages that normalise advantages and TD errors.

After Oh et al. 2025, "Discovering state-of-the-art reinforcement learning algorithms" (Nature),
and its published harness (github.com/google-deepmind/disco_rl, `value_fns/value_utils.py`,
`utils.MovingAverage`). The agent's q head outputs, per action, logits over `num_bins` integer
bins in [-max_abs_value, max_abs_value] of h(Q), h the signed hyperbolic transform (Pohlen et
al. 2018); a scalar Q is h^-1 of the bins' expectation.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

HYPERBOLIC_EPS = 1e-3  # eps of h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x
TWO_HOT_EPS = 1e-5  # added to a bin's width where a scalar is split between two bins
EMA_ROOT_EPS = 1e-12  # inside the square root of the normalisers' variance


def signed_log1p(x: jax.Array) -> jax.Array:
    """sign(x) log(1 + |x|)."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def signed_hyperbolic(x: jax.Array) -> jax.Array:
    """h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x (eps = 1e-3)."""
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + HYPERBOLIC_EPS * x


def signed_parabolic(x: jax.Array) -> jax.Array:
    """h^-1(x), the inverse of `signed_hyperbolic`, in closed form."""
    eps = HYPERBOLIC_EPS
    z = jnp.sqrt(1.0 + 4.0 * eps * (eps + 1.0 + jnp.abs(x))) / 2.0 / eps - 1.0 / 2.0 / eps
    return jnp.sign(x) * (jnp.square(z) - 1.0)


def bin_values(num_bins: int, max_abs_value: float, dtype=jnp.float32) -> jax.Array:
    """The bins' centres `[num_bins]`, evenly spaced from -max_abs_value to max_abs_value."""
    return jnp.linspace(-max_abs_value, max_abs_value, num_bins).astype(dtype)


def expected_bin_value(logits: jax.Array, max_abs_value: float) -> jax.Array:
    """`[..., num_bins]` logits -> `[...]`, the expectation of the bins under softmax(logits)."""
    support = bin_values(logits.shape[-1], max_abs_value, logits.dtype)
    return jnp.sum(jax.nn.softmax(logits) * support, axis=-1)


def two_hot(x: jax.Array, num_bins: int, max_abs_value: float) -> jax.Array:
    """`[...]` -> `[..., num_bins]`: x clipped to the bins' range, split between its two nearest
    bins in proportion to its distance from each (all on one bin when x is a bin's centre)."""
    low, high = -max_abs_value, max_abs_value
    x = jnp.clip(x, low, high)
    position = (x - low) / (high - low) * (num_bins - 1)
    lower, upper = jnp.floor(position), jnp.ceil(position)
    lower_value = lower / (num_bins - 1.0) * (high - low) + low
    upper_value = upper / (num_bins - 1.0) * (high - low) + low
    p_lower = (upper_value - x) / (upper_value - lower_value + TWO_HOT_EPS)
    lower_hot = jax.nn.one_hot(lower, num_bins, dtype=x.dtype) * p_lower[..., None]
    upper_hot = jax.nn.one_hot(upper, num_bins, dtype=x.dtype) * (1.0 - p_lower)[..., None]
    return lower_hot + upper_hot


def scalar_q(q_logits: jax.Array, max_abs_value: float) -> jax.Array:
    """Categorical q head `[..., num_bins]` -> scalar Q `[...]`: h^-1 of the bins' expectation."""
    return signed_parabolic(expected_bin_value(q_logits, max_abs_value))


def take_action(x: jax.Array, actions: jax.Array) -> jax.Array:
    """x `[T, B, A, ...]` at the actions `[T, B]` -> `[T, B, ...]`."""
    index = actions.astype(jnp.int32).reshape(actions.shape + (1,) * (x.ndim - actions.ndim))
    return jnp.take_along_axis(x, index, axis=2)[:, :, 0]


def importance_weights(pi_logits: jax.Array, mu_logits: jax.Array, actions: jax.Array) -> jax.Array:
    """rho_t = pi(a_t|s_t) / mu(a_t|s_t) `[T, B]` (no gradient) from logits `[T, B, A]`."""
    log_pi = take_action(jax.nn.log_softmax(pi_logits), actions)
    log_mu = take_action(jax.nn.log_softmax(mu_logits), actions)
    return jax.lax.stop_gradient(jnp.exp(log_pi - log_mu))


def retrace_targets(
    rewards: jax.Array,
    discounts: jax.Array,
    traces: jax.Array,
    target_q_taken: jax.Array,
    target_values: jax.Array,
) -> jax.Array:
    """Retrace's targets for Q(s_t, a_t) `[T, B]` (Munos et al. 2016), no gradient:

      G_T-1 = r_T-1 + d_T-1 V_T
      G_t   = r_t + d_t (V_t+1 - c_t+1 Q_t+1 + c_t+1 G_t+1)

    rewards, discounts (gamma where the episode goes on, 0 where it ended), traces c_t
    (lambda min(1, rho_t)) and target_q_taken Q(s_t, a_t) `[T, B]`; target_values V `[T+1, B]`.
    """
    last = rewards[-1] + discounts[-1] * target_values[-1]

    def back(g_next, step):
        reward, discount, c_next, v_next, q_next = step
        g = reward + discount * (v_next - c_next * q_next + c_next * g_next)
        return g, g

    steps = (rewards[:-1], discounts[:-1], traces[1:], target_values[1:-1], target_q_taken[1:])
    _, earlier = jax.lax.scan(back, last, steps, reverse=True)
    return jax.lax.stop_gradient(jnp.concatenate([earlier, last[None]], axis=0))


@struct.dataclass
class EmaState:
    """A moving average of a quantity's batch mean and mean square (zero-initialised, so both are
    debiased by 1 - decay_product, as Adam's moments): moment1, moment2, decay_product, each `[]`."""

    moment1: jax.Array
    moment2: jax.Array
    decay_product: jax.Array


def ema_init() -> EmaState:
    zero = jnp.zeros((), jnp.float32)
    return EmaState(moment1=zero, moment2=zero, decay_product=jnp.ones((), jnp.float32))


def ema_update(state: EmaState, x: jax.Array, decay: float) -> EmaState:
    """Folds the mean and mean square of x (any shape) into the averages."""
    return EmaState(
        moment1=decay * state.moment1 + (1.0 - decay) * jnp.mean(x),
        moment2=decay * state.moment2 + (1.0 - decay) * jnp.mean(jnp.square(x)),
        decay_product=state.decay_product * decay,
    )


def ema_normalize(state: EmaState, x: jax.Array, eps: float, subtract_mean: bool = True) -> jax.Array:
    """(x - mean) / (sqrt(var + 1e-12) + eps) with the debiased moments (x / (...) without the
    mean); var = max(0, E[x^2] - mean^2)."""
    debias = 1.0 / (1.0 - state.decay_product)
    mean = state.moment1 * debias
    var = jnp.maximum(0.0, state.moment2 * debias - jnp.square(mean))
    centred = x - mean if subtract_mean else x
    return centred / (jnp.sqrt(var + EMA_ROOT_EPS) + eps)


class ValueOutputs(NamedTuple):
    """What the rule reads of its action values on a `[T+1, B]` rollout.

    value `[T+1, B]`: V = sum_a pi(a|s) Q(s, a) of the agent's q head; q_value `[T+1, B, A]`
    its Q; target_q_value `[T+1, B, A]` the target network's Q; q_target `[T, B]` Retrace's
    targets; adv `[T, B]` q_target - V_target; qv_adv `[T+1, B, A]` Q_target - V_target;
    q_td `[T, B]` q_target - Q(s_t, a_t); normalized_adv, normalized_qv_adv, normalized_q_td
    those divided by their moving scale (the advantages also centred).
    """

    value: jax.Array
    q_value: jax.Array
    target_q_value: jax.Array
    q_target: jax.Array
    adv: jax.Array
    qv_adv: jax.Array
    q_td: jax.Array
    normalized_adv: jax.Array
    normalized_qv_adv: jax.Array
    normalized_q_td: jax.Array


class ValueSettings(NamedTuple):
    """discount (gamma), td_lambda (Retrace's lambda), max_abs_value (the bins' range), the
    moving averages' decay and eps."""

    discount: float
    td_lambda: float | jax.Array
    max_abs_value: float
    ema_decay: float
    ema_eps: float


def value_outputs(
    q_logits: jax.Array,
    target_q_logits: jax.Array,
    pi_logits: jax.Array,
    mu_logits: jax.Array,
    actions: jax.Array,
    rewards: jax.Array,
    is_terminal: jax.Array,
    adv_ema: EmaState,
    td_ema: EmaState,
    settings: ValueSettings,
) -> tuple[ValueOutputs, EmaState, EmaState]:
    """Action values, Retrace targets and normalised advantages of one rollout.

    q_logits, target_q_logits `[T+1, B, A, num_bins]` (the agent's and its target network's q
    heads); pi_logits, mu_logits `[T+1, B, A]` (the agent's and the behaviour policy's; both the
    agent's and the target network's V weigh their Q by pi); actions `[T+1, B]`; rewards,
    is_terminal `[T, B]`. Returns the outputs and the two moving averages after this batch (the
    advantages' and the TD errors'), with which the outputs are normalised.
    """
    pi = jax.nn.softmax(pi_logits)
    q_value = scalar_q(q_logits, settings.max_abs_value)
    target_q_value = scalar_q(target_q_logits, settings.max_abs_value)
    value = jnp.sum(pi * q_value, axis=-1)
    target_value = jnp.sum(pi * target_q_value, axis=-1)
    taken = actions[:-1]
    rho = importance_weights(pi_logits[:-1], mu_logits[:-1], taken)
    discounts = (1.0 - is_terminal.astype(rewards.dtype)) * settings.discount
    traces = settings.td_lambda * jnp.minimum(rho, 1.0)
    q_target = retrace_targets(
        rewards, discounts, traces, take_action(target_q_value[:-1], taken), target_value
    )
    adv = q_target - target_value[:-1]
    qv_adv = target_q_value - target_value[..., None]
    q_td = q_target - take_action(q_value[:-1], taken)
    adv_ema = ema_update(adv_ema, adv, settings.ema_decay)
    td_ema = ema_update(td_ema, q_td, settings.ema_decay)
    eps = settings.ema_eps
    outputs = ValueOutputs(
        value=value,
        q_value=q_value,
        target_q_value=target_q_value,
        q_target=q_target,
        adv=adv,
        qv_adv=qv_adv,
        q_td=q_td,
        normalized_adv=ema_normalize(adv_ema, adv, eps),
        normalized_qv_adv=ema_normalize(adv_ema, qv_adv, eps),
        normalized_q_td=ema_normalize(td_ema, q_td, eps, subtract_mean=False),
    )
    return outputs, adv_ema, td_ema


def categorical_value_loss(q_logits_taken: jax.Array, td: jax.Array, max_abs_value: float) -> jax.Array:
    """Per-step loss `[T, B]` moving the categorical Q(s_t, a_t) (logits `[T, B, num_bins]`) by a
    TD error td `[T, B]` (data): the cross-entropy of its logits with the two-hot of
    h(stop_gradient(Q + td))."""
    q = scalar_q(q_logits_taken, max_abs_value)
    target = signed_hyperbolic(jax.lax.stop_gradient(q + td))
    probs = two_hot(target, q_logits_taken.shape[-1], max_abs_value)
    return -jnp.sum(probs * jax.nn.log_softmax(q_logits_taken), axis=-1)
