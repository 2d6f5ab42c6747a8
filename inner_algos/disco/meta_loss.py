"""DiscoRL's meta-objective after K agent updates (the published harness's meta-training colab,
`colabs/meta_train.ipynb`, `_outer_loss`), what `metagrad` minimises with inner algorithm "disco":

  meta_loss = -mean log pi_K(a|s) A                 on a fresh rollout of the updated agent
              - entropy            mean H(pi_K)     on that rollout (a_t, s_t for t < T)
              - prediction_entropy (mean H(y_K) + mean H(z_K(s, a)))    on that rollout
              + output_l2  mean_k (mean pi_hat_k^2 + mean y_hat_k^2 + mean z_hat_k^2)
              + target_kl  mean_k mean KL(pi_target_k || pi_hat_k)
  (k = 1..K the updates; pi_hat_k, y_hat_k, z_hat_k the rule's targets, as logits, at update k,
  "mean pi_hat_k^2" the square of their mean over the batch, pi_target_k the target network's
  policy, data)

The first three terms are the rollout's (`update.rollout_loss`, its "policy_loss"), the last two
read the K updates' step metrics (`regulariser`, the algorithm's `meta_regulariser`), so
`metagrad`'s "policy_gradient" meta-loss (rollout_loss's policy_loss plus meta_regulariser) is
this sum. Coefficients: the colab's.

Differences from the harness. A is the rule's own Retrace advantage of the fresh rollout, from
the agent's categorical q head and target network and normalised by the rule's moving averages
(data), where the harness trains a separate value network for the meta-objective alone (an MLP
with its own TD(lambda) targets); the agent's q head is trained by the rule's fixed value loss,
which the meta-params do not set, so it too is a critic the rule cannot shape directly. The
validation rollout is rollout_length steps (the harness: twice its inner rollouts). The rule's
inputs (the agent's and target network's outputs) are data, so meta-gradients reach the
meta-params through the targets' effect on the updates and the lifetime LSTM's state, not through
the meta-network's reading of later agents (the harness also differentiates the inputs it does not
stop itself, e.g. y and z).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

REGULARISED = ("pi_hat_mean", "y_hat_mean", "z_hat_mean", "target_kl")  # step metrics read


@dataclasses.dataclass(frozen=True)
class MetaLossCoefs:
    """Weights of the meta-loss's terms beside the policy gradient (module docstring), the
    harness colab's."""

    entropy: float = 1e-2
    prediction_entropy: float = 1e-3
    output_l2: float = 1e-3
    target_kl: float = 1e-2


DEFAULT_COEFS = MetaLossCoefs()


def regulariser(step_metrics: dict[str, jax.Array], coefs: MetaLossCoefs = DEFAULT_COEFS) -> jax.Array:
    """The meta-loss's terms `[]` read off the K updates' metrics (each `[K]`, or `[]` for one
    update): output_l2 times the mean over updates of the squared means of pi_hat, y_hat and z_hat,
    plus target_kl times the mean KL of the target network's policy to pi_hat."""
    squares = sum(jnp.mean(jnp.square(step_metrics[k])) for k in REGULARISED[:3])
    return coefs.output_l2 * squares + coefs.target_kl * jnp.mean(step_metrics["target_kl"])
