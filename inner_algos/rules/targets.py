"""The "targets" family: rules that tell an agent trained by learned targets (`inner_algos.lpg`)
what to do, from a whole trajectory read backwards, and the meta-network of its learned rule.

  "lpg"  learned targets: the meta-network below (LPG, Oh et al. 2020, "Discovering Reinforcement
         Learning Algorithms"; with lifetime inputs, TA-LPG of GROOVE, Jackson et al. 2023)
  "a2c"  the hand-designed baseline: pi_hat = the side critic's advantage, y left alone, plus an
         entropy bonus; so "LPG rule vs A2C" is one agent, one budget, two rules.

Both follow `inner_algos.rules.base.Rule`: `apply(meta_params, TargetInputs) -> Targets`.

Meta-network (LPG, figure 1 and section 3; written as pure functions of a params dict so that a test
can write the same equations independently): per step t it reads

  x_t = [r_t, d_t, gamma, pi(a_t|s_t), phi(y(s_t)), (1 - d_t) phi(y(s_t+1))  (, n/N, log N)]

(phi a small embedding shared by both predictions, `[n] -> [1]`; n/N and log N, the lifetime fraction
and log lifetime in updates, only with lifetime inputs, as TA-LPG), runs a GRU backwards in time over
the trajectory, its state reset where an episode ended (h_t = GRU(x_t, (1 - d_t) h_t+1), h_T = 0),
and outputs pi_hat_t = w . relu(h_t) + b (a scalar) and y_hat_t = softmax(W relu(h_t) + c) `[n]`.
The output layers start small (`init_scale`), so the initial rule moves the agent little:
pi_hat ~ 0 and y_hat ~ uniform.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from inner_algos.config_checks import NON_NEGATIVE, POSITIVE, POSITIVE_INT, check_fields
from inner_algos.rules.base import Rule
from inner_algos.rules.families import register_family

register_family(
    "targets",
    slot="the policy and prediction targets (pi_hat, y_hat) the agent is trained towards",
    inner_algos=("lpg",),
)


class TargetInputs(NamedTuple):
    """What a targets rule reads about one `[T, N]` batch of trajectories (all data: no gradient
    reaches the agent through them).

    reward, done `[T, N]` (done: the episode ended at step t, by termination or time limit);
    discount `[]` (gamma); pi_taken `[T, N]`, pi(a_t|s_t); y, y_next `[T, N, n]`, the agent's
    predictions y(s_t), y(s_t+1) (y_next is meaningless where done); advantage `[T, N]`, the side
    critic's (read by the A2C rule only); progress `[]`, the lifetime fraction n/N; log_lifetime `[]`.
    """

    reward: jax.Array
    done: jax.Array
    discount: jax.Array
    pi_taken: jax.Array
    y: jax.Array
    y_next: jax.Array
    advantage: jax.Array
    progress: jax.Array
    log_lifetime: jax.Array


class Targets(NamedTuple):
    """A targets rule's output: pi_hat `[T, N]` (the policy's per-step weight of grad log pi),
    y_hat `[T, N, n]` (a distribution y(s_t) is pulled towards), entropy_coef `[]` (weight of a
    policy-entropy bonus in the agent's loss; 0 for learned targets)."""

    pi_hat: jax.Array
    y_hat: jax.Array
    entropy_coef: jax.Array


def _dense(key, fan_in: int, fan_out: int, scale: float = 1.0) -> dict:
    """{"w": [fan_in, fan_out] ~ N(0, scale^2 / fan_in), "b": zeros [fan_out]}."""
    return {
        "w": scale * jax.random.normal(key, (fan_in, fan_out)) / jnp.sqrt(fan_in),
        "b": jnp.zeros((fan_out,)),
    }


def input_size(lifetime_inputs: bool) -> int:
    """Width of the per-step input x_t: 6, or 8 with the lifetime inputs."""
    return 8 if lifetime_inputs else 6


def init_meta_network(
    key, y_size: int, embed_width: int, hidden: int, lifetime_inputs: bool, init_scale: float
) -> dict:
    """The meta-network's params: embed {w1 [n, E], b1, w2 [E, 1], b2}, gru {wi [D, 3H], bi [3H],
    wh [H, 3H], bhn [H]} (gates ordered reset, update, candidate), pi_head {w [H, 1], b [1]},
    y_head {w [H, n], b [n]}; the heads scaled by init_scale."""
    k1, k2, k3, k4, k5, k6 = jax.random.split(key, 6)
    one, two = _dense(k1, y_size, embed_width), _dense(k2, embed_width, 1)
    gru_in, gru_h = _dense(k3, input_size(lifetime_inputs), 3 * hidden), _dense(k4, hidden, 3 * hidden)
    return {
        "embed": {"w1": one["w"], "b1": one["b"], "w2": two["w"], "b2": two["b"]},
        "gru": {"wi": gru_in["w"], "bi": gru_in["b"], "wh": gru_h["w"], "bhn": jnp.zeros((hidden,))},
        "pi_head": _dense(k5, hidden, 1, init_scale),
        "y_head": _dense(k6, hidden, y_size, init_scale),
    }


def embed(params: dict, y: jax.Array) -> jax.Array:
    """phi: `[..., n] -> [...]`, one hidden ReLU layer."""
    hidden = jax.nn.relu(y @ params["w1"] + params["b1"])
    return (hidden @ params["w2"] + params["b2"])[..., 0]


def gru_cell(params: dict, h: jax.Array, x: jax.Array) -> jax.Array:
    """One GRU step (Cho et al. 2014, as flax's GRUCell): h `[N, H]`, x `[N, D]` -> h' `[N, H]`.

    r = sigmoid(x Wi_r + bi_r + h Wh_r), z = sigmoid(x Wi_z + bi_z + h Wh_z),
    c = tanh(x Wi_c + bi_c + r * (h Wh_c + bhn)), h' = (1 - z) c + z h.
    """
    gx = x @ params["wi"] + params["bi"]
    gh = h @ params["wh"]
    xr, xz, xc = jnp.split(gx, 3, axis=-1)
    hr, hz, hc = jnp.split(gh, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    c = jnp.tanh(xc + r * (hc + params["bhn"]))
    return (1.0 - z) * c + z * h


def backward_gru(params: dict, x: jax.Array, done: jax.Array) -> jax.Array:
    """The GRU run from the last step to the first: x `[T, N, D]`, done `[T, N]` -> h `[T, N, H]`,
    h_t = GRU((1 - done_t) h_t+1, x_t) with h_T = 0, so no step sees past the end of its episode."""
    hidden = params["bhn"].shape[0]

    def step(h_next, inputs):
        x_t, done_t = inputs
        h = gru_cell(params, h_next * (1.0 - done_t)[:, None], x_t)
        return h, h

    h_end = jnp.zeros(x.shape[1:2] + (hidden,), x.dtype)
    _, hs = jax.lax.scan(step, h_end, (x, done), reverse=True)
    return hs


def step_features(params: dict, inputs: TargetInputs, lifetime_inputs: bool) -> jax.Array:
    """x_t of the module docstring, `[T, N, D]`."""
    shape = inputs.reward.shape
    columns = [
        inputs.reward,
        inputs.done,
        jnp.broadcast_to(inputs.discount, shape),
        inputs.pi_taken,
        embed(params["embed"], inputs.y),
        (1.0 - inputs.done) * embed(params["embed"], inputs.y_next),
    ]
    if lifetime_inputs:
        columns += [jnp.broadcast_to(inputs.progress, shape), jnp.broadcast_to(inputs.log_lifetime, shape)]
    return jnp.stack(columns, axis=-1)


def meta_network(params: dict, inputs: TargetInputs, lifetime_inputs: bool) -> tuple[jax.Array, jax.Array]:
    """(pi_hat `[T, N]`, y_hat `[T, N, n]`) for one batch of trajectories (module docstring)."""
    hs = jax.nn.relu(backward_gru(params["gru"], step_features(params, inputs, lifetime_inputs), inputs.done))
    pi_hat = (hs @ params["pi_head"]["w"] + params["pi_head"]["b"])[..., 0]
    y_hat = jax.nn.softmax(hs @ params["y_head"]["w"] + params["y_head"]["b"], axis=-1)
    return pi_hat, y_hat


@dataclasses.dataclass(frozen=True)
class LearnedTargets(Rule):
    """LPG's meta-network (`meta_network`).

    y_size: n, the agent's prediction size (GROOVE: 8); embed_width: phi's hidden width (GROOVE:
    16); hidden: the GRU's width (GROOVE: 256; smaller here for CPU runs); lifetime_inputs: read
    n/N and log N (TA-LPG); init_scale: scale of the output layers' initial weights.
    """

    name: ClassVar[str] = "lpg"
    family: ClassVar[str] = "targets"
    y_size: int = 8
    embed_width: int = 16
    hidden: int = 32
    lifetime_inputs: bool = False
    init_scale: float = 0.01

    def __post_init__(self):
        check_fields(
            self,
            "rule",
            y_size=POSITIVE_INT,
            embed_width=POSITIVE_INT,
            hidden=POSITIVE_INT,
            init_scale=POSITIVE,
        )

    def init(self, key: jax.Array) -> dict:
        return init_meta_network(
            key, self.y_size, self.embed_width, self.hidden, self.lifetime_inputs, self.init_scale
        )

    def apply(self, meta_params: dict, inputs: TargetInputs) -> Targets:
        pi_hat, y_hat = meta_network(meta_params, inputs, self.lifetime_inputs)
        return Targets(pi_hat, y_hat, jnp.zeros((), pi_hat.dtype))


@dataclasses.dataclass(frozen=True)
class A2CTargets(Rule):
    """Advantage actor-critic as a fixed targets rule: pi_hat = A (the side critic's GAE advantage),
    y_hat = y (so the prediction is not trained), entropy bonus ent_coef (GROOVE's A2C: 0.01)."""

    name: ClassVar[str] = "a2c"
    family: ClassVar[str] = "targets"
    ent_coef: float = 0.01

    def __post_init__(self):
        check_fields(self, "rule", ent_coef=NON_NEGATIVE)

    def apply(self, meta_params, inputs: TargetInputs) -> Targets:
        del meta_params
        return Targets(inputs.advantage, inputs.y, jnp.asarray(self.ent_coef, inputs.reward.dtype))
