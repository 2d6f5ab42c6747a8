"""The rules of the "targets" family: what fills the LPG agent's one slot.

  "lpg"  learned targets: the meta-network of `inner_algos.lpg.networks` (LPG, Oh et al. 2020;
         with lifetime inputs, TA-LPG of GROOVE, Jackson et al. 2023)
  "a2c"  the hand-designed baseline: pi_hat = the side critic's advantage, y left alone, plus an
         entropy bonus; so "LPG rule vs A2C" is one agent, one budget, two rules.

Both follow `inner_algos.rules.base.Rule`: `apply(meta_params, TargetInputs) -> Targets`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from inner_algos.config_checks import NON_NEGATIVE, POSITIVE, POSITIVE_INT, check_fields
from inner_algos.lpg.networks import TargetInputs, Targets, init_meta_network, meta_network
from inner_algos.rules.base import Rule


@dataclasses.dataclass(frozen=True)
class LearnedTargets(Rule):
    """LPG's meta-network (`inner_algos.lpg.networks`).

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


TARGET_RULES: dict[str, type[Rule]] = {cls.name: cls for cls in (LearnedTargets, A2CTargets)}
