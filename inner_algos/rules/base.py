"""The rule interface every learnable piece of an RL algorithm follows.

A rule is static, hashable configuration (a frozen dataclass) with two pure functions:

  init(key) -> meta_params          a pytree of arrays, the thing a discovery job learns
  apply(meta_params, inputs) -> out the rule's computation, jittable and vmappable over meta_params

`family` says which slot of an inner algorithm the rule fills; families are registered in
`inner_algos.rules.families` (`FAMILIES`: each says its slot and the inner algorithms that have
it). Those shipped:
  "drift"        policy-objective drift (Mirror Learning / LPO)                    in PPO
  "hyperparams"  meta-learned hyperparameters (gamma, lambda, clip, entropy, lr)   in PPO
  "optimizer"    learned optimizer in the update slot                              in PPO
  "targets"      the policy and prediction targets of LPG's agent (learned: "lpg") in LPG
Hand-designed baselines (PPO-clip, DPO, Adam, A2C) are rules too, with empty meta-params.
`options()` returns the JSON-serialisable constructor arguments, so that an exported rule
can be rebuilt as `make_rule(name, **options)` without the job that produced it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax


class Rule:
    """Base class: subclasses are frozen dataclasses that set `name` and `family`; an optimizer
    rule whose output is the whole parameter update (no learning rate) sets `owns_update`."""

    name: ClassVar[str]
    family: ClassVar[str]
    owns_update: ClassVar[bool] = False
    __dataclass_fields__: ClassVar[dict[str, Any]]  # every rule is a frozen dataclass

    def init(self, key: jax.Array) -> Any:
        """Initial meta-parameters (a pytree; `{}` for fixed rules)."""
        del key
        return {}

    def apply(self, meta_params: Any, inputs: Any) -> Any:
        raise NotImplementedError

    def options(self) -> dict:
        """Constructor arguments as plain JSON values."""
        return {
            f.name: (list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }
