"""DiscoRL's settings: the meta-network's architecture and inputs, the value function's, and the
hyperparameters of the agent's loss, with the values of Disco103 (the published harness's
`agent.get_settings_disco()` and `update_rules/disco.get_input_option()`,
github.com/google-deepmind/disco_rl).

An input is (source, transforms): a quantity of the rollout and the transforms applied to it in
order (`inner_algos.rules.disco.transforms`), flattened to `[T, B, k]` (base inputs) or
`[T, B, A, k]` (action-conditional inputs). Sources:

  agent/logits, agent/y, agent/z    the agent's outputs `[T+1, B, ...]` (z per action)
  behaviour/logits                  the policy that acted
  target/logits, target/y, target/z the target network's outputs (a moving average of the agent)
  reward, terminal                  `[T, B]`
  value                             V of the agent's q head `[T+1, B]`
  advantage, normalized_advantage   Retrace's advantage `[T, B]`, raw and normalised
  q, qv_advantage, normalized_qv_advantage   the target's Q and Q - V `[T+1, B, A]`
"""

from __future__ import annotations

import dataclasses

from inner_algos.config_checks import NON_NEGATIVE, POSITIVE_INT, UNIT, Widths, check_fields

Input = tuple[str, tuple[str, ...]]

_POLICY = ("drop_last", "softmax", "stop_grad", "select_a")
_Z_NOW = ("drop_last", "softmax", "z_net", "select_a")
_Z_AVG = ("softmax", "z_net", "pi_weighted_avg", "td_pair")
_Z_MAX = ("softmax", "z_net", "max_a", "td_pair")

BASE_INPUTS: tuple[Input, ...] = (
    ("agent/logits", _POLICY),
    ("behaviour/logits", _POLICY),
    ("reward", ("sign_log",)),
    ("terminal", ("masks_to_discounts",)),
    ("value", ("sign_log", "td_pair", "stop_grad")),
    ("advantage", ("sign_log", "stop_grad")),
    ("normalized_advantage", ("stop_grad",)),
    ("target/logits", _POLICY),
    ("agent/y", ("softmax", "y_net", "td_pair")),
    ("target/y", ("softmax", "y_net", "td_pair")),
    ("agent/z", _Z_NOW),
    ("agent/z", _Z_AVG),
    ("agent/z", _Z_MAX),
    ("target/z", _Z_NOW),
    ("target/z", _Z_AVG),
    ("target/z", _Z_MAX),
)
ACTION_INPUTS: tuple[Input, ...] = (
    ("agent/logits", ("drop_last", "softmax", "stop_grad")),
    ("behaviour/logits", ("drop_last", "softmax", "stop_grad")),
    ("target/logits", ("drop_last", "softmax", "stop_grad")),
    ("agent/z", ("drop_last", "softmax", "z_net")),
    ("target/z", ("drop_last", "softmax", "z_net")),
    ("q", ("sign_log", "drop_last", "stop_grad")),
    ("qv_advantage", ("sign_log", "drop_last", "stop_grad")),
    ("normalized_qv_advantage", ("drop_last", "stop_grad")),
)


@dataclasses.dataclass(frozen=True)
class MetaNetSettings:
    """The meta-network (`inner_algos.rules.disco.meta_net`), Disco103's values.

    prediction_size: the size of y and z (per action); hidden_size: the per-trajectory backward
    LSTM's; embedding_size: widths of the MLP that embeds y or z to a scalar; policy_channels:
    the per-action network over the action-conditional inputs; policy_target_channels: the one
    that gives pi_hat; *_stddev: initial weights' scales of the output, y/z heads, pi_hat head
    and the lifetime state's gate; lifetime_*: the per-lifetime LSTM that reads each update's
    batch (its width, its input MLP, its y/z embedding and its per-action network);
    base_inputs, action_inputs: the inputs (module docstring).
    """

    prediction_size: int = 600
    hidden_size: int = 256
    embedding_size: tuple[int, ...] = (16, 1)
    policy_channels: tuple[int, ...] = (16, 2)
    policy_target_channels: tuple[int, ...] = (16,)
    output_stddev: float = 0.3
    aux_stddev: float = 0.3
    policy_target_stddev: float = 0.3
    state_stddev: float = 1.0
    lifetime_hidden_size: int = 128
    lifetime_embedding_size: tuple[int, ...] = (16,)
    lifetime_pred_embedding_size: tuple[int, ...] = (16, 1)
    lifetime_policy_channels: tuple[int, ...] = (16, 2)
    base_inputs: tuple[Input, ...] = BASE_INPUTS
    action_inputs: tuple[Input, ...] = ACTION_INPUTS

    def __post_init__(self):
        check_fields(self, "rule", prediction_size=POSITIVE_INT, hidden_size=POSITIVE_INT)
        check_fields(self, "rule", lifetime_hidden_size=POSITIVE_INT)
        for name in ("embedding_size", "lifetime_pred_embedding_size"):
            if tuple(getattr(self, name))[-1:] != (1,):
                raise ValueError(f"rule.{name} = {getattr(self, name)!r} must end in 1 (a scalar embedding)")
        check_fields(
            self,
            "rule",
            **{f: Widths() for f in ("embedding_size", "policy_channels", "policy_target_channels")},
        )
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))


@dataclasses.dataclass(frozen=True)
class DiscoHyperparams:
    """The agent loss's weights and the rule's constants (`get_settings_disco()['hyper_params']`):
    pi_cost, y_cost, z_cost, aux_policy_cost (the KL terms), value_cost (the q head's loss),
    target_params_coeff (the target network moves as target <- c target + (1 - c) params),
    value_fn_td_lambda (Retrace's lambda). The harness's table also holds discount_factor = 0.997,
    which its disco rule never reads (its `update_rules/disco.py` discounts by `value_discount`;
    only its actor-critic reads `hyper_params['discount_factor']`): here the discount is
    DiscoRule.value_discount (disco_ac: DiscoActorCritic.discount)."""

    pi_cost: float = 1.0
    y_cost: float = 1.0
    z_cost: float = 1.0
    value_cost: float = 0.2
    aux_policy_cost: float = 1.0
    target_params_coeff: float = 0.9
    value_fn_td_lambda: float = 0.95

    def __post_init__(self):
        costs = ("pi_cost", "y_cost", "z_cost", "value_cost", "aux_policy_cost")
        check_fields(self, "rule.hyperparams", **dict.fromkeys(costs, NON_NEGATIVE))
        check_fields(self, "rule.hyperparams", target_params_coeff=UNIT, value_fn_td_lambda=UNIT)
