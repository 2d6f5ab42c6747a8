"""LPG's meta-objective after K agent updates (Oh et al. 2020, eq. 3 and its regularisers).

  meta_loss = -mean log pi_K(a|s) A            on a fresh rollout of the updated agent, A from the
                                               side critic trained alongside (data)
              - policy_entropy mean_k H(pi_k)  the updated agents' policy entropy, k = 1..K
              - y_entropy      mean_k H(y_k)   and their prediction entropy
              + pi_hat_l2      mean_k mean pi_hat^2
              + y_hat_l2       mean_k mean |y_hat|^2

Coefficients: GROOVE's defaults (Jackson et al. 2023, github.com/EmptyJackson/groove
`experiments/parse_args.py`: beta_0..beta_3 = 5e-2, 1e-3, 5e-3, 1e-3). Differentiating `meta_loss`
in the meta-params is the truncated meta-gradient through K updates; the job's `metagrad` computes
the same sum from the contract: `rollout_loss` plus `LPGAlgo.meta_regulariser` of the segment's
step metrics. ES over whole lifetimes instead scores `train`'s episode returns with the existing
meta-objectives.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from inner_algos.lpg.types import LPGAlgo, LPGState, Metrics

REGULARISED = ("entropy", "y_entropy", "pi_hat_l2", "y_hat_l2")  # the step metrics the regularisers read


@dataclasses.dataclass(frozen=True)
class MetaLossCoefs:
    """Weights of the regularisers (module docstring), GROOVE's by default."""

    policy_entropy: float = 5e-2
    y_entropy: float = 1e-3
    pi_hat_l2: float = 5e-3
    y_hat_l2: float = 1e-3


def regulariser(step_metrics: Metrics, coefs: MetaLossCoefs = MetaLossCoefs()) -> jax.Array:
    """The regularisers' part of the meta-loss `[]` (module docstring) from the K steps' metrics
    (each `[K]`, or `[]` for one step), averaged over the steps: `LPGAlgo.meta_regulariser`, what
    the truncated meta-gradient adds to the policy-gradient loss of `rollout_loss`."""
    mean = {k: jnp.mean(step_metrics[k]) for k in REGULARISED}
    return (
        coefs.pi_hat_l2 * mean["pi_hat_l2"]
        + coefs.y_hat_l2 * mean["y_hat_l2"]
        - coefs.policy_entropy * mean["entropy"]
        - coefs.y_entropy * mean["y_entropy"]
    )


def regularised(pg_loss: jax.Array, step_metrics: Metrics, coefs: MetaLossCoefs) -> jax.Array:
    """The meta-loss `[]` from the fresh rollout's policy-gradient loss and the K steps' metrics."""
    return pg_loss + regulariser(step_metrics, coefs)


def meta_loss(
    algo: LPGAlgo,
    meta_params: Any,
    state: LPGState,
    key: jax.Array,
    num_steps: int,
    coefs: MetaLossCoefs = MetaLossCoefs(),
) -> tuple[jax.Array, tuple[LPGState, Metrics]]:
    """(meta-loss `[]`, (state after the K = num_steps updates, their metrics `[K]`)): K steps of
    `algo` from `state` (a persistent lifetime: the next segment continues from the returned
    state), then the regularised policy-gradient loss with `key` for the fresh rollout."""
    state, metrics = jax.lax.scan(lambda s, _: algo.step(meta_params, s), state, None, length=num_steps)
    pg_loss, _ = algo.rollout_loss(meta_params, state, key)
    return regularised(pg_loss, metrics, coefs), (state, metrics)
