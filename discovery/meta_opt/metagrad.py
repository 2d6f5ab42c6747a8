"""Truncated meta-gradients: jax.grad of a meta-loss through K inner updates of persistent runs.

Each outer step advances N persistent inner lifetimes (`truncated.truncated_step`) by K
updates with the current meta-parameters and differentiates
    meta_loss(theta) = mean_n  meta_losses.meta_loss(kind, *InnerAlgo.rollout_loss(
                                   theta, state_n after K updates of theta, key_n))
                               [+ InnerAlgo.meta_regulariser(metrics of run n's K updates)]
with respect to theta (flat, `[D]`), as in LPG (Oh et al. 2020, arXiv 2007.08794) and DiscoRL
(Oh et al. 2025). The runs then continue from where the K updates left them (truncated
backpropagation: no gradient flows into the state a segment starts from). Meta-loss kinds:
"policy_gradient" (policy-gradient loss of the updated agent on a fresh rollout with its own
GAE advantages) or "inner_objective" (PPO's loss with reference hyperparameters on that held-out
batch, Xu et al. 2018, arXiv 1805.09801). The bracket is the inner algorithm's own hook (None for
PPO; LPG's agent adds GROOVE's entropy and target-size regularisers, `inner_algos.lpg.meta_loss`;
the DiscoRL agent its meta-training colab's regularisers of the targets, `inner_algos.disco.meta_loss`),
so with LPG this is exactly LPG's regularised meta-loss, and with DiscoRL its colab's meta-loss.

What is stopped (see inner_algos.ppo.make_ppo): every rollout runs on stop_gradient(params), so
environment dynamics, sampled actions, behaviour log-probs, values, rewards and observation
statistics are data; gradients reach theta only through the inner updates' parameter changes.
Reset runs (lifetime ended inside the segment) start from `init`, which ignores theta.
Each inner update is wrapped in jax.checkpoint (`remat`), so reverse-mode memory holds one
InnerState per update plus one update's intermediates, not K updates' intermediates.
"""

from __future__ import annotations

import dataclasses

from discovery.meta_opt.base import MetaOptimizer, gradient_meta_optimizer, metagrad_estimator, register
from discovery.meta_opt.truncated import SegmentOptions, check_segments, truncated_step
from inner_algos.config_checks import Interval, OneOf, check_fields
from inner_algos.registry import config_entry
from meta_objectives.meta_losses import META_LOSSES

FITNESS_DOC = (
    "learning-curve area of each of the num_runs persistent runs over this step's "
    "segment (mean over its K updates of the latest ended episodes' return), averaged "
    "over tasks, not baseline-normalised; higher is better"
)


@dataclasses.dataclass(frozen=True)
class MetaGradOptions(SegmentOptions):
    """Options of name = "metagrad": num_runs persistent lifetimes, meta_loss kind, remat."""

    num_runs: int = 4
    meta_loss: str = "policy_gradient"
    remat: bool = True

    def __post_init__(self):
        super().__post_init__()
        check_fields(self, "meta_optimizer", num_runs=Interval(1), meta_loss=OneOf(META_LOSSES))

    @property
    def population_size(self) -> int:
        return self.num_runs


def _metagrad_meta_optimizer(problem, opts: MetaGradOptions) -> MetaOptimizer:
    """Truncated meta-gradient over segments of PPO lifetimes on every task of `problem`."""

    def make_estimator(t, algo, unravel, dim):
        del dim
        step = truncated_step(
            algo,
            opts.schedule(algo.config),
            opts.unroll_length,
            unravel,
            problem.objective,
            meta_loss=opts.meta_loss,
            remat=opts.remat,
        )
        return metagrad_estimator(step, opts.num_runs, problem.runs_mesh)

    # each run advances unroll_length updates, then one fresh rollout scores the meta-loss
    return gradient_meta_optimizer(
        problem, opts, make_estimator, opts.num_runs * (opts.unroll_length + 1), FITNESS_DOC
    )


def check_metagrad(opts: MetaGradOptions, rule, config, objective) -> None:
    """`check_segments`, and an inner algorithm with the rollout_loss the meta-loss reads."""
    check_segments(opts, rule, config, objective)
    entry = config_entry(config)
    if not entry.rollout_loss:
        raise ValueError(
            f"meta_optimizer.name = 'metagrad' reads the inner algorithm's rollout_loss, which inner "
            f"algorithm {entry.name!r} does not provide; use an estimator without a meta-loss (es, pes, "
            "truncated_es)"
        )


@register("metagrad", MetaGradOptions, check_metagrad)
def make_metagrad(options: MetaGradOptions, problem) -> MetaOptimizer:
    """Factory for `[meta_optimizer] name = "metagrad"`."""
    return _metagrad_meta_optimizer(problem, options)
