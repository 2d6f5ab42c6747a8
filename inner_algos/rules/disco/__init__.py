"""DiscoRL's discovered update rule (Oh et al. 2025, "Discovering state-of-the-art reinforcement
learning algorithms", Nature), rule "disco" of the "disco" family (with its actor-critic
baseline "disco_ac"), ported from the published
Haiku harness (github.com/google-deepmind/disco_rl) and shown equal to it by a parity test.

  settings.py    the meta-network's architecture and inputs, the loss's hyperparameters (Disco103's)
  values.py      categorical action values, Retrace targets, moving-average normalisers
  transforms.py  the transforms of the meta-network's inputs
  meta_net.py    the meta-network (pure functions of a params dict) and its initialisation
  weights.py     NAME_MAP: the published weights' tensor names -> our params' paths
  rule.py        DiscoRule: the rule's apply, the agent's loss, the target network's update
  actor_critic.py  DiscoActorCritic: the hand-designed baseline in the same agent

The agent it trains is `inner_algos.disco`; Disco103's weights ship in `discovery.zoo`.
"""

from inner_algos.rules.disco.actor_critic import DiscoActorCritic
from inner_algos.rules.disco.meta_net import LSTMState, MetaOutputs
from inner_algos.rules.disco.rule import AgentOutputs, DiscoInputs, DiscoMetaState, DiscoRule, DiscoTargets
from inner_algos.rules.disco.settings import DiscoHyperparams, MetaNetSettings
from inner_algos.rules.disco.weights import NAME_MAP, params_from_reference

__all__ = [
    "NAME_MAP",
    "AgentOutputs",
    "DiscoActorCritic",
    "DiscoHyperparams",
    "DiscoInputs",
    "DiscoMetaState",
    "DiscoRule",
    "DiscoTargets",
    "LSTMState",
    "MetaNetSettings",
    "MetaOutputs",
    "params_from_reference",
]
