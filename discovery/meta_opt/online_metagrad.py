"""Online hyperparameter meta-gradients (Xu, van Hasselt and Silver 2018, arXiv 1805.09801).

One lifetime per task; at every inner update, a one-step look-ahead with the hyperparameters
eta of a "hyperparams" rule (e.g. gamma and GAE lambda, in logit form):

    theta'(eta) = InnerAlgo.step(eta, state)                       the inner update on batch tau
    J'(eta)     = meta_losses.meta_loss(kind, PPO's loss of theta'(eta) on tau')   on the next batch tau'
    eta        <- Adam(eta, dJ'/deta)                              then the lifetime continues

J' uses the fixed reference hyperparameters of `PPOConfig` (gamma, gae_lambda, clip_eps, ent_coef;
the paper's eta-bar), so it depends on eta only through theta'. kind "inner_objective" is PPO's
whole loss (the paper's choice: the inner objective with reference hyperparameters);
"policy_gradient" is its policy term only. tau' is a fresh rollout of the updated agent from the
environment states where the next inner batch starts (same distribution as that batch, its own
sample), so every inner update costs two rollouts of env steps.

This is the truncated meta-gradient (`base.metagrad_estimator` over `truncated.truncated_step`)
with K = 1 inner update, one run per task, no staggering, and `updates_per_step` meta-updates per
outer step (a `lax.scan` of the shared Adam adapter `base.gradient_meta_optimizer`). When a
lifetime of ppo.num_updates updates ends, a fresh agent starts and eta carries on.

What is stopped (see also inner_algos.ppo.make_ppo):
- both rollouts run on stop_gradient(params): environment dynamics, sampled actions, behaviour
  log-probs, values, rewards and observation statistics are data;
- the inner state an update starts from (params, Adam state) is a constant: gradients flow
  through exactly one inner update (the paper's accumulating trace z with mu = 0), and the
  updated state is stop-gradiented before the lifetime continues;
- at a lifetime's last update the meta-loss sees the fresh agent, which does not depend on eta:
  that update's meta-gradient is zero (Adam's momentum still moves eta once).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from discovery.meta_opt.base import (
    Estimator,
    MetaOptimizer,
    gradient_meta_optimizer,
    metagrad_estimator,
    register,
)
from discovery.meta_opt.truncated import TruncationSchedule, truncated_step
from inner_algos.config_checks import POSITIVE, Interval, OneOf, check_fields
from inner_algos.contract import lifetime_fraction
from inner_algos.rules import has_meta_params
from meta_objectives import rank_last
from meta_objectives.meta_losses import META_LOSSES

FITNESS_DOC = (
    "learning-curve value of the one lifetime (the latest ended episodes' return at "
    "each inner update), averaged over tasks and over this step's updates_per_step "
    "updates (NaN-mean), not baseline-normalised; higher is better"
)


@dataclasses.dataclass(frozen=True)
class OnlineMetaGradOptions:
    """Options of name = "online_metagrad".

    updates_per_step: inner updates (each followed by one meta-update) per outer step.
    meta_loss: "inner_objective" (Xu et al. 2018) or "policy_gradient". learning_rate: Adam step
    on the unconstrained hyperparameters. init_seed: key for the rule's initial meta-parameters.
    """

    updates_per_step: int = 1
    meta_loss: str = "inner_objective"
    learning_rate: float = 0.001
    init_seed: int = 0

    def __post_init__(self):
        check_fields(
            self,
            "meta_optimizer",
            updates_per_step=Interval(1),
            meta_loss=OneOf(META_LOSSES),
            learning_rate=POSITIVE,
        )

    @property
    def population_size(self) -> int:
        return 1  # one lifetime (per task)


def online_metagrad_estimator(algo, opts: OnlineMetaGradOptions, unravel, objective) -> Estimator:
    """One-step look-ahead estimator of one lifetime of `algo` (ppo.num_updates updates, not
    staggered): estimate(theta `[D]`, state, key) -> (dJ'/dtheta `[D]`, state advanced by one
    inner update, metrics)."""
    schedule = TruncationSchedule("constant", algo.config.num_updates, stagger=False)
    step = truncated_step(algo, schedule, 1, unravel, objective, meta_loss=opts.meta_loss)
    return metagrad_estimator(step, num_runs=1)


def _online_meta_optimizer(problem, opts: OnlineMetaGradOptions) -> MetaOptimizer:
    """Online meta-gradient of a "hyperparams" rule over one lifetime per task of `problem`.

    step's metrics: those of `gradient_meta_optimizer` reduced over the updates_per_step updates
    (fitness `[1]` and task_scores `[1, T]`: mean over the updates that ended an episode;
    grad_norm: mean; grad_finite: all; best_fitness: last) plus `hyperparams`, a dict of the
    learned hyperparameters' current values (actual gamma, not its logit) at the next update's
    lifetime fraction. env_steps_per_step: two rollouts (tau and tau') per inner update and task.
    """
    rule = problem.rule
    # one inner update: its own rollout plus the next batch's rollout for the meta-loss
    inner = gradient_meta_optimizer(
        problem,
        opts,
        lambda t, algo, unravel, dim: online_metagrad_estimator(algo, opts, unravel, problem.objective),
        2,
        FITNESS_DOC,
    )

    def step(state):
        state, stacked = jax.lax.scan(lambda s, _: inner.step(s), state, None, length=opts.updates_per_step)
        fitness = jnp.nanmean(stacked["fitness"], axis=0)
        run = jax.tree.map(lambda x: x[0], state.estimators[0].runs.inner)
        hp = rule.apply(inner.params(state)["mean"], lifetime_fraction(run))
        metrics = {
            "fitness": fitness,
            "task_scores": jnp.nanmean(stacked["task_scores"], axis=0),
            "num_nonfinite": rank_last(fitness)[1],
            "mean_fitness": jnp.asarray(jnp.nan),
            "best_fitness": stacked["best_fitness"][-1],
            "grad_norm": jnp.mean(stacked["grad_norm"]),
            "grad_finite": jnp.all(stacked["grad_finite"]),
            "hyperparams": {name: getattr(hp, name) for name in rule.learn},
        }
        return state, metrics

    return MetaOptimizer(
        inner.init,
        step,
        inner.params,
        opts,
        opts.updates_per_step * inner.env_steps_per_step,
        FITNESS_DOC,
        inner.state_sharding,
    )


def check_rule(opts: OnlineMetaGradOptions, rule, config, objective) -> None:
    """online_metagrad meta-learns hyperparameters only (ValueError for other rule families and
    for a hyperparams rule without meta-parameters, such as `hyperparams_formula`)."""
    del opts, config, objective
    if rule.family != "hyperparams":
        raise ValueError(
            f"meta_optimizer.name = 'online_metagrad' meta-learns hyperparameters: rule.name = "
            f"{rule.name!r} is of family {rule.family!r}; use rule.name = 'hyperparams'"
        )
    if not has_meta_params(rule):
        raise ValueError(
            f"meta_optimizer.name = 'online_metagrad' meta-learns hyperparameters: rule.name = "
            f"{rule.name!r} has no meta-parameters to learn; use rule.name = 'hyperparams'"
        )


@register("online_metagrad", OnlineMetaGradOptions, check_rule)
def make_online_metagrad(options: OnlineMetaGradOptions, problem) -> MetaOptimizer:
    """Factory for `[meta_optimizer] name = "online_metagrad"`."""
    return _online_meta_optimizer(problem, options)
