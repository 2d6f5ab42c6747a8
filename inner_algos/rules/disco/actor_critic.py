"""The hand-designed baseline of the DiscoRL agent: actor-critic in the same agent and the same
value machinery, rule "disco_ac" (family "disco"), so that "Disco103 vs actor-critic" is one
agent, one budget, two rules (the published harness's `update_rules/actor_critic.py` plays this
part with its own value head and V-trace; here the agent's categorical q head and Retrace serve,
as for the discovered rule).

Loss per step `[T, B]`:
  pg_cost * -log pi(a_t|s_t) A_t - entropy_cost * H(pi(s_t)) + value_cost * (the q head's
  categorical loss towards Q(s_t, a_t) + q_td), A_t = Retrace's advantage (data; normalised by its
  moving average with normalize_adv). y, z and aux_pi are not trained.
Defaults: the harness's `get_settings_actor_critic()` (pg 1, entropy 0.2, value 0.5, lambda 0.95,
gamma 0.997, unnormalised advantages); prediction_size and num_bins size the agent's y, z and q
heads (Disco103's agent: 600 and 601).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from inner_algos.config_checks import NON_NEGATIVE, POSITIVE, POSITIVE_INT, UNIT, check_fields
from inner_algos.rules.base import Rule
from inner_algos.rules.disco.meta_net import initial_state
from inner_algos.rules.disco.rule import AgentOutputs, DiscoInputs, DiscoMetaState, DiscoTargets
from inner_algos.rules.disco.rule import entropy as policy_entropy
from inner_algos.rules.disco.settings import MetaNetSettings
from inner_algos.rules.disco.values import (
    ValueSettings,
    categorical_value_loss,
    ema_init,
    take_action,
    value_outputs,
)


@dataclasses.dataclass(frozen=True)
class DiscoActorCritic(Rule):
    """Actor-critic for the DiscoRL agent (module docstring); no meta-params."""

    name: ClassVar[str] = "disco_ac"
    family: ClassVar[str] = "disco"
    pg_cost: float = 1.0
    entropy_cost: float = 0.2
    value_cost: float = 0.5
    td_lambda: float = 0.95
    discount: float = 0.997
    normalize_adv: bool = False
    target_params_coeff: float = 0.9
    prediction_size: int = 600
    num_bins: int = 601
    max_abs_value: float = 300.0
    ema_decay: float = 0.99
    ema_eps: float = 1e-6

    def __post_init__(self):
        costs = ("pg_cost", "entropy_cost", "value_cost")
        check_fields(self, "rule", **dict.fromkeys(costs, NON_NEGATIVE))
        check_fields(self, "rule", td_lambda=UNIT, discount=UNIT, target_params_coeff=UNIT, ema_decay=UNIT)
        check_fields(self, "rule", num_bins=POSITIVE_INT, prediction_size=POSITIVE_INT)
        check_fields(self, "rule", max_abs_value=POSITIVE, ema_eps=POSITIVE)

    def initial_meta_state(self) -> DiscoMetaState:
        """The moving averages (and an unused lifetime LSTM state of the rule's shape)."""
        return DiscoMetaState(lstm=initial_state(MetaNetSettings()), adv_ema=ema_init(), td_ema=ema_init())

    def value_settings(self) -> ValueSettings:
        """Retrace's and the moving averages' settings (as DiscoRule.value_settings)."""
        return ValueSettings(self.discount, self.td_lambda, self.max_abs_value, self.ema_decay, self.ema_eps)

    def apply(self, meta_params: Any, inputs: DiscoInputs) -> DiscoTargets:
        del meta_params
        agent, state = inputs.agent_out, inputs.meta_state
        values, adv_ema, td_ema = value_outputs(
            agent.q,
            inputs.target_out.q,
            agent.logits,
            inputs.behaviour_logits,
            inputs.actions,
            inputs.rewards,
            inputs.is_terminal,
            state.adv_ema,
            state.td_ema,
            self.value_settings(),
        )
        return DiscoTargets(None, values, DiscoMetaState(lstm=state.lstm, adv_ema=adv_ema, td_ema=td_ema))

    def agent_loss(
        self,
        agent_out: AgentOutputs,
        targets: DiscoTargets,
        actions: jax.Array,
        is_terminal: jax.Array,
        backprop: bool = False,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(loss `[T, B]` per step, its terms' means); the arguments as DiscoRule.agent_loss's."""
        del is_terminal, backprop
        taken = actions[:-1]
        values = jax.lax.stop_gradient(targets.values)
        adv = values.normalized_adv if self.normalize_adv else values.adv
        log_pi = jax.nn.log_softmax(agent_out.logits[:-1])
        pi_loss = -take_action(log_pi, taken) * adv
        entropy = policy_entropy(agent_out.logits[:-1])
        value_loss = categorical_value_loss(
            take_action(agent_out.q[:-1], taken), values.q_td, self.max_abs_value
        )
        loss = self.pg_cost * pi_loss - self.entropy_cost * entropy + self.value_cost * value_loss
        zero = jnp.zeros(())
        stats = dict(pi_loss=jnp.mean(pi_loss), y_loss=zero, z_loss=zero, aux_policy_loss=zero)
        stats["value_loss"] = jnp.mean(value_loss)
        return loss, {**stats, "entropy": jnp.mean(entropy)}

    def update_target_params(self, target_params: Any, params: Any) -> Any:
        c = self.target_params_coeff
        return jax.tree.map(lambda old, new: c * old + (1.0 - c) * new, target_params, params)
