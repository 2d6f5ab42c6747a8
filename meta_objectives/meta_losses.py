"""Meta-losses of truncated meta-gradients: what `metagrad` and `online_metagrad` minimise.

Both are read off PPO's loss on a fresh rollout of the current agent (`InnerAlgo.rollout_loss`,
computed with the config's reference hyperparameters, data stop-gradiented):

- "policy_gradient": PPO's policy term. At the rollout's own policy the ratio is 1 with gradient
  grad log pi, so its gradient is that of -mean(log pi(a|s) A), A the normalised advantage
  (LPG / DiscoRL style); its value is ~0.
- "inner_objective": PPO's whole loss (Xu et al. 2018's held-out objective with fixed reference
  hyperparameters).
"""

from __future__ import annotations

import jax

META_LOSSES = ("policy_gradient", "inner_objective")


def meta_loss(kind: str, total: jax.Array, stats: dict) -> jax.Array:
    """The scalar meta-loss of `kind` from PPO's (total loss, loss statistics)."""
    if kind not in META_LOSSES:
        raise ValueError(f"meta_loss = {kind!r} is unknown; valid: {', '.join(META_LOSSES)}")
    return stats["policy_loss"] if kind == "policy_gradient" else total
