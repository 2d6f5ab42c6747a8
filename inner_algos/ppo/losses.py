"""PPO's loss, a pure function of explicit arguments (its advantage estimate, GAE, is shared:
`inner_algos.rl.gae`).

The policy objective is Mirror Learning's L = -mean(r A - drift(r, A)) (Kuba et al. 2022; Lu et
al. 2022, arXiv 2210.05639), r the probability ratio and A the minibatch-normalised advantage;
the drift slot holds PPO-clip, LPO or DPO (`inner_algos.rules.drift`).
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp

from inner_algos.ppo.slots import DriftFn
from inner_algos.ppo.types import Batch, Metrics, Networks
from inner_algos.rules import DriftInputs
from inner_algos.rules.hyperparams import HyperParams


def ppo_loss(
    params: dict,
    batch: Batch,
    meta_params: Any,
    hp: HyperParams,
    progress: jax.Array,
    *,
    networks: Networks,
    drift: DriftFn,
    vf_coef: float,
    value_clip: bool,
) -> tuple[jax.Array, Metrics]:
    """PPO's loss on a minibatch `batch` (fields `[B, ...]`) at params {"actor", "critic"}.

    total = policy_loss + vf_coef * value_loss - hp.ent_coef * entropy, where
      policy_loss = -mean(r A - drift(meta_params, (r, A, progress), hp)), r = pi(a|s) / pi_old(a|s),
                    A the batch's advantages normalised to mean 0, std 1 over the minibatch;
      value_loss  = 0.5 mean((V - target)^2), or with value_clip the larger of that and the
                    squared error of old_value + clip(V - old_value, -hp.clip_eps, hp.clip_eps);
      entropy     = mean entropy of the policy.
    Returns (total `[]`, stats: dict of scalars policy_loss, value_loss, entropy, approx_kl,
    ratio_mean, ratio_std, drift_mean, drift_active_frac).
    """
    obs, action, old_log_prob, old_value, adv, target = batch
    dist = networks.policy.distribution(params["actor"], obs)
    log_prob = dist.log_prob(action)
    ratio = jnp.exp(log_prob - old_log_prob)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    drift_value = drift(meta_params, DriftInputs(ratio, adv, progress), hp)
    policy_loss = -jnp.mean(ratio * adv - drift_value)
    value = cast(jax.Array, networks.critic.apply(params["critic"], obs))
    value_loss = jnp.square(value - target)
    if value_clip:
        clipped = old_value + jnp.clip(value - old_value, -hp.clip_eps, hp.clip_eps)
        value_loss = jnp.maximum(value_loss, jnp.square(clipped - target))
    value_loss = 0.5 * jnp.mean(value_loss)
    entropy = jnp.mean(dist.entropy())
    total = policy_loss + vf_coef * value_loss - hp.ent_coef * entropy
    log_ratio = log_prob - old_log_prob
    stats = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "ratio_mean": jnp.mean(ratio),
        "ratio_std": jnp.std(ratio),
        "drift_mean": jnp.mean(drift_value),
        "drift_active_frac": jnp.mean(drift_value > 0),
    }
    return total, stats
