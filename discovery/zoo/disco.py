"""Disco103, DiscoRL's published discovered update rule, as a rule of ours with its weights.

`load_disco103()` -> (rule, meta_params): the "disco" rule of the "disco" family
(`inner_algos.rules.disco.DiscoRule`, Disco103's settings) and the published weights
(`data/disco/disco_103.npz`, CC-BY-4.0, see `data/disco/SOURCE.md`) as its meta-network's params.
"""

from __future__ import annotations

import numpy as np

from discovery.zoo.registry import data_path
from inner_algos.rules import Rule
from inner_algos.rules.disco import DiscoRule, params_from_reference

WEIGHTS = data_path("disco/disco_103.npz")

ABOUT = """\
Disco103 (Oh et al. 2025, "Discovering state-of-the-art reinforcement learning algorithms",
Nature, doi:10.1038/s41586-025-09761-x): a discovered RL update rule. A meta-network reads an
agent's outputs over each rollout (policy, two prediction vectors y and z, categorical action
values, Retrace advantages, the target network's outputs) backwards in time and outputs the
targets of the agent's policy and of y and z; an LSTM across updates conditions it on the
lifetime so far. Meta-trained by DeepMind on 103 environments (Atari, ProcGen, DMLab, ...);
Disco57, its sibling on Atari-57, set the best published Atari IQM. Weights: CC-BY-4.0, from
github.com/google-deepmind/disco_rl (9059a29f), unchanged; the meta-network here is a port in
flax/JAX checked against the Haiku reference to float32 rounding (tests/inner_algos/disco)."""


def disco103_params(rule: Rule) -> dict:
    """The published weights as the meta-params of `rule`'s meta-network (Disco103's settings)."""
    assert isinstance(rule, DiscoRule)
    with np.load(WEIGHTS) as flat:
        return params_from_reference(dict(flat), rule.net)


def load_disco103() -> tuple[DiscoRule, dict]:
    """(the Disco103 rule, its meta-params): Disco103's settings and the published weights."""
    rule = DiscoRule()
    return rule, disco103_params(rule)
