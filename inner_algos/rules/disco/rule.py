"""The DiscoRL rule ("disco", family "disco"): the meta-network that tells an agent what its
policy and two prediction vectors should become, and the agent's loss towards those targets
(Oh et al. 2025, Nature; the published harness's `update_rules/disco.py`).

One update on a rollout `[T+1, B]`:

  1. `value_outputs`: the agent's categorical q head read as Q and V = sum_a pi Q, the target
     network's likewise, Retrace's targets for Q(s_t, a_t) and the advantages, normalised by
     moving averages carried across updates (`values`).
  2. `meta_net.unroll`: targets pi_hat, y_hat, z_hat `[T, B, ...]` and the lifetime LSTM's state.
  3. `agent_loss` per step `[T, B]`:
        pi_cost KL(pi_hat || pi) + y_cost KL(y_hat || y) + z_cost KL(z_hat || z(s, a_t))
      + aux_policy_cost KL(stop_grad pi(s_t+1) || aux_pi(s_t, a_t)) (where the episode goes on)
      + value_cost * the q head's categorical loss towards Q(s_t, a_t) + q_td (Retrace's TD).
  4. `update_target_params`: target <- c target + (1 - c) params (c = target_params_coeff).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from inner_algos.config_checks import POSITIVE, POSITIVE_INT, UNIT, check_fields
from inner_algos.rules.base import Rule
from inner_algos.rules.disco import meta_net
from inner_algos.rules.disco.meta_net import LSTMState, MetaOutputs
from inner_algos.rules.disco.settings import DiscoHyperparams, MetaNetSettings
from inner_algos.rules.disco.values import (
    EmaState,
    ValueOutputs,
    ValueSettings,
    categorical_value_loss,
    ema_init,
    take_action,
    value_outputs,
)
from inner_algos.rules.families import register_family

# Not the "targets" family of LPG's agent: a rule here reads and trains the DiscoRL agent's five
# heads (policy, y, z, categorical q, aux policy), which LPG's agent does not have, and LPG's rules
# give targets of another shape (a scalar pi_hat per step).
register_family(
    "disco",
    slot="the DiscoRL agent's loss: targets for its policy, y and z and its q head's TD",
    inner_algos=("disco",),
)


class AgentOutputs(NamedTuple):
    """An agent's outputs on `[..., ]` states: logits `[..., A]`, y `[..., n]`, and per action
    z `[..., A, n]`, q `[..., A, num_bins]` (categorical h(Q)), aux_pi `[..., A, A]` (the policy
    predicted after each action)."""

    logits: jax.Array
    y: jax.Array
    z: jax.Array
    q: jax.Array
    aux_pi: jax.Array


@struct.dataclass
class DiscoMetaState:
    """What the rule carries across an agent's updates: the lifetime LSTM's state `[128]` each,
    and the moving averages of the advantages and of the TD errors."""

    lstm: LSTMState
    adv_ema: EmaState
    td_ema: EmaState


class DiscoInputs(NamedTuple):
    """One rollout for the rule: agent_out and target_out (AgentOutputs `[T+1, B, ...]` of the
    agent and of its target network), behaviour_logits `[T+1, B, A]` (the policy that acted),
    actions `[T+1, B]` (the last is not used but by the per-step inputs' shapes), rewards and
    is_terminal `[T, B]` (the reward of, and whether the episode ended at, the action at t),
    meta_state the rule's state before this update."""

    agent_out: AgentOutputs
    target_out: AgentOutputs
    behaviour_logits: jax.Array
    actions: jax.Array
    rewards: jax.Array
    is_terminal: jax.Array
    meta_state: DiscoMetaState


class DiscoTargets(NamedTuple):
    """The rule's output: meta (pi, y, z targets `[T, B, ...]` as logits, and meta_input_emb; None
    for the actor-critic baseline),
    values (`values.ValueOutputs`, q_td among them), meta_state (after this update)."""

    meta: MetaOutputs | None
    values: ValueOutputs
    meta_state: DiscoMetaState


def _as(cls, value):
    return cls(**value) if isinstance(value, dict) else value


def _deep_tuple(x: Any) -> Any:
    return tuple(_deep_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def without_discount_factor(hyperparams: dict, value_discount: float) -> dict:
    """A hyperparams table without discount_factor, the harness's unread field that rule files
    written before its removal carry (always equal to value_discount there); another value is
    refused, since it would change nothing."""
    table = dict(hyperparams)
    if table.pop("discount_factor") != value_discount:
        raise ValueError(
            f"rule.hyperparams.discount_factor = {hyperparams['discount_factor']!r}: the disco rule reads "
            f"no such field (the harness never did); its discount is rule.value_discount "
            f"(now {value_discount!r})"
        )
    return table


def entropy(logits: jax.Array) -> jax.Array:
    """H(softmax(logits)) over the last axis."""
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def kl(p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
    """KL(softmax(p) || softmax(q)) over the last axis."""
    p = jax.nn.softmax(p_logits)
    return jnp.sum(p * (jax.nn.log_softmax(p_logits) - jax.nn.log_softmax(q_logits)), axis=-1)


@dataclasses.dataclass(frozen=True)
class DiscoRule(Rule):
    """DiscoRL's discovered rule (module docstring); defaults are Disco103's settings.

    net: the meta-network (`MetaNetSettings`); hyperparams: the loss's weights and constants
    (`DiscoHyperparams`); value_discount: gamma of Retrace; num_bins, max_abs_value: the q head's
    bins (integers in [-300, 300]); ema_decay, ema_eps: the normalisers' moving averages.
    Disco103's weights: `discovery.zoo.disco.load_disco103()`.
    """

    name: ClassVar[str] = "disco"
    family: ClassVar[str] = "disco"
    net: MetaNetSettings = MetaNetSettings()
    hyperparams: DiscoHyperparams = DiscoHyperparams()
    value_discount: float = 0.997
    num_bins: int = 601
    max_abs_value: float = 300.0
    ema_decay: float = 0.99
    ema_eps: float = 1e-6

    def __post_init__(self):
        net = _as(MetaNetSettings, self.net)
        if isinstance(self.net, dict):
            net = dataclasses.replace(
                net, base_inputs=_deep_tuple(net.base_inputs), action_inputs=_deep_tuple(net.action_inputs)
            )
        object.__setattr__(self, "net", net)
        hyperparams = self.hyperparams
        if isinstance(hyperparams, dict) and "discount_factor" in hyperparams:
            hyperparams = without_discount_factor(hyperparams, self.value_discount)
        object.__setattr__(self, "hyperparams", _as(DiscoHyperparams, hyperparams))
        check_fields(self, "rule", value_discount=UNIT, num_bins=POSITIVE_INT, max_abs_value=POSITIVE)
        check_fields(self, "rule", ema_decay=UNIT, ema_eps=POSITIVE)

    def options(self) -> dict:
        """Constructor arguments as plain JSON values (the settings as tables)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["net"] = json_lists(dataclasses.asdict(self.net))
        out["hyperparams"] = dataclasses.asdict(self.hyperparams)
        return out

    def init(self, key: jax.Array) -> dict:
        """A fresh meta-network (Haiku's initialisers); Disco103's weights are in the zoo."""
        return meta_net.init_params(self.net, key)

    def initial_meta_state(self) -> DiscoMetaState:
        """The rule's state at the start of a lifetime."""
        return DiscoMetaState(lstm=meta_net.initial_state(self.net), adv_ema=ema_init(), td_ema=ema_init())

    @property
    def prediction_size(self) -> int:
        """The size of the agent's y and z (the meta-network's)."""
        return self.net.prediction_size

    def value_settings(self) -> ValueSettings:
        h = self.hyperparams
        return ValueSettings(
            self.value_discount, h.value_fn_td_lambda, self.max_abs_value, self.ema_decay, self.ema_eps
        )

    def apply(self, meta_params: dict, inputs: DiscoInputs) -> DiscoTargets:
        """Steps 1 and 2 of the module docstring on one rollout."""
        agent, target, state = inputs.agent_out, inputs.target_out, inputs.meta_state
        values, adv_ema, td_ema = value_outputs(
            agent.q,
            target.q,
            agent.logits,
            inputs.behaviour_logits,
            inputs.actions,
            inputs.rewards,
            inputs.is_terminal,
            state.adv_ema,
            state.td_ema,
            self.value_settings(),
        )
        sources = meta_sources(inputs, values)
        meta, lstm = meta_net.unroll(
            meta_params, self.net, sources, inputs.actions, inputs.is_terminal, state.lstm
        )
        return DiscoTargets(meta, values, DiscoMetaState(lstm=lstm, adv_ema=adv_ema, td_ema=td_ema))

    def agent_loss(
        self,
        agent_out: AgentOutputs,
        targets: DiscoTargets,
        actions: jax.Array,
        is_terminal: jax.Array,
        backprop: bool = False,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Step 3 of the module docstring: (loss `[T, B]` per step, its terms' means and entropy). agent_out
        `[T+1, B, ...]` (differentiable); actions `[T+1, B]`; is_terminal `[T, B]`; backprop:
        let gradients reach the targets (meta-training), else they are data."""
        h = self.hyperparams
        if targets.meta is None:
            raise ValueError("DiscoRule.agent_loss needs the meta-network's targets (DiscoRule.apply's)")
        meta = targets.meta if backprop else jax.lax.stop_gradient(targets.meta)
        taken = actions[:-1]
        out = jax.tree.map(lambda x: x[:-1], agent_out)
        pi_loss = kl(meta.pi, out.logits)
        y_loss = kl(meta.y, out.y)
        z_loss = kl(meta.z, take_action(out.z, taken))
        aux_target = jax.lax.stop_gradient(agent_out.logits[1:])
        aux_loss = kl(aux_target, take_action(out.aux_pi, taken)) * (
            1.0 - is_terminal.astype(aux_target.dtype)
        )
        td = jax.lax.stop_gradient(targets.values.q_td)
        value_loss = categorical_value_loss(take_action(out.q, taken), td, self.max_abs_value)
        loss = (
            h.pi_cost * pi_loss
            + h.y_cost * y_loss
            + h.z_cost * z_loss
            + h.aux_policy_cost * aux_loss
            + h.value_cost * value_loss
        )
        terms = dict(
            pi_loss=pi_loss, y_loss=y_loss, z_loss=z_loss, aux_policy_loss=aux_loss, value_loss=value_loss
        )
        stats = {k: jnp.mean(v) for k, v in terms.items()}
        return loss, {**stats, "entropy": jnp.mean(entropy(out.logits))}

    def update_target_params(self, target_params: Any, params: Any) -> Any:
        """Step 4: target <- c target + (1 - c) params, c = hyperparams.target_params_coeff."""
        c = self.hyperparams.target_params_coeff
        return jax.tree.map(lambda old, new: c * old + (1.0 - c) * new, target_params, params)


def meta_sources(inputs: DiscoInputs, values: ValueOutputs) -> dict[str, jax.Array]:
    """The meta-network's named inputs (`settings` module docstring); quantities that are one
    scalar per step or per action get a trailing axis of 1."""
    sources = {"behaviour/logits": inputs.behaviour_logits}
    for who, out in (("agent", inputs.agent_out), ("target", inputs.target_out)):
        sources.update({f"{who}/logits": out.logits, f"{who}/y": out.y, f"{who}/z": out.z})
    sources.update(reward=inputs.rewards, terminal=inputs.is_terminal.astype(inputs.rewards.dtype))
    sources.update(value=values.value[..., None], q=values.target_q_value[..., None])
    sources.update(advantage=values.adv[..., None], normalized_advantage=values.normalized_adv[..., None])
    sources.update(
        qv_advantage=values.qv_adv[..., None], normalized_qv_advantage=values.normalized_qv_adv[..., None]
    )
    return sources


def json_lists(x: Any) -> Any:
    """Tuples (nested, in dicts) as lists: plain JSON values."""
    if isinstance(x, dict):
        return {k: json_lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_lists(v) for v in x]
    return x
