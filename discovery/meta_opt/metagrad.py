"""Truncated meta-gradients: jax.grad of a meta-loss through K inner updates of persistent runs.

Each outer step advances N persistent PPO lifetimes (`discovery.segments`) by K updates with the
current meta-parameters and differentiates
    meta_loss(theta) = mean_n  meta_losses.meta_loss(kind, *InnerAlgo.rollout_loss(
                                   theta, state_n after K updates of theta, key_n))
with respect to theta (flat, `[D]`), as in LPG (Oh et al. 2020, arXiv 2007.08794) and DiscoRL
(Oh et al. 2025). The runs then continue from where the K updates left them (truncated
backpropagation: no gradient flows into the state a segment starts from). Meta-loss kinds:
"policy_gradient" (policy-gradient loss of the updated agent on a fresh rollout with its own
GAE advantages) or "inner_objective" (PPO's loss with reference hyperparameters on that held-out
batch, Xu et al. 2018, arXiv 1805.09801).

What is stopped (see inner_algos.ppo.make_ppo): every rollout runs on stop_gradient(params), so
environment dynamics, sampled actions, behaviour log-probs, values, rewards and observation
statistics are data; gradients reach theta only through the inner updates' parameter changes.
Reset runs (lifetime ended inside the segment) start from `init`, which ignores theta.
Each inner update is wrapped in jax.checkpoint (`remat`), so reverse-mode memory holds one
InnerState per update plus one update's intermediates, not K updates' intermediates.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct

from discovery.meta_opt.base import MetaOptimizer, register
from discovery.meta_opt.truncated import (
    Estimator, SegmentOptions, gradient_meta_optimizer, segment_scores,
)
from discovery.segments import make_runs
from discovery.spec import build
from meta_objectives.meta_losses import META_LOSSES, meta_loss as select_meta_loss


@struct.dataclass
class MetaGradState:
    runs: object


def make_metagrad(init_runs: Callable, unroll: Callable, meta_loss: Callable, num_runs: int) -> Estimator:
    """Truncated meta-gradient estimator over `num_runs` persistent runs sharing theta.

    init_runs(theta `[D]`, key) -> one run. unroll(theta, runs `[N]`) -> (runs, metrics): K
    differentiable inner steps. meta_loss(theta, runs, key) -> scalar. estimate returns
    (d meta_loss / d theta `[D]`, state, metrics with "meta_loss" and the unroll's metrics).
    """

    def init(theta, key):
        runs = jax.vmap(init_runs, in_axes=(None, 0))(theta, jax.random.split(key, num_runs))
        return MetaGradState(runs)

    def estimate(theta, state: MetaGradState, key):
        def loss(theta):
            runs, metrics = unroll(theta, state.runs)
            return meta_loss(theta, runs, key), (runs, metrics)

        (value, (runs, metrics)), grad = jax.value_and_grad(loss, has_aux=True)(theta)
        return grad, MetaGradState(jax.lax.stop_gradient(runs)), dict(metrics, meta_loss=value)

    return Estimator(init, estimate)


@dataclasses.dataclass(frozen=True)
class MetaGradOptions(SegmentOptions):
    """Options of name = "metagrad": num_runs persistent lifetimes, meta_loss kind, remat."""

    num_runs: int = 4
    meta_loss: str = "policy_gradient"
    remat: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.num_runs < 1:
            raise ValueError(f"meta_optimizer.num_runs = {self.num_runs} must be >= 1")
        if self.meta_loss not in META_LOSSES:
            raise ValueError(
                f"meta_optimizer.meta_loss = {self.meta_loss!r} is unknown; valid: {', '.join(META_LOSSES)}"
            )

    @property
    def population_size(self) -> int:
        return self.num_runs


def rl_metagrad_parts(algo, opts: MetaGradOptions, unravel: Callable):
    """(init_runs, unroll, meta_loss) of `make_metagrad` for PPO lifetimes of `algo`."""
    init_one, advance = make_runs(algo, opts.schedule(algo.config.num_updates))

    def unroll(theta, runs):
        runs, segment = advance(unravel(theta), runs, opts.unroll_length, shared=True, remat=opts.remat)
        return runs, {"scores": segment_scores(segment)}

    def meta_loss(theta, runs, key):
        keys = jax.random.split(key, opts.num_runs)
        losses = jax.vmap(lambda meta, inner, k: select_meta_loss(
            opts.meta_loss, *algo.rollout_loss(meta, inner, k)), in_axes=(None, 0, 0))(
            unravel(theta), runs.inner, keys)
        return jnp.mean(losses)

    return (lambda theta, key: init_one(unravel(theta), key)), unroll, meta_loss


def make_rl_metagrad(problem, opts: MetaGradOptions) -> MetaOptimizer:
    """Truncated meta-gradient over segments of PPO lifetimes on every task of `problem`."""

    def make_estimator(t, algo, unravel, dim):
        del t, dim
        return make_metagrad(*rl_metagrad_parts(algo, opts, unravel), opts.num_runs)

    # each run advances unroll_length updates, then one fresh rollout scores the meta-loss
    return gradient_meta_optimizer(problem, opts, make_estimator, opts.num_runs * (opts.unroll_length + 1))


def check_segments(opts: SegmentOptions, rule, ppo, objective) -> None:
    """Lifetimes of the truncation schedule fit ppo.num_updates (ValueError otherwise)."""
    del rule, objective
    opts.schedule(ppo.num_updates)


@register("metagrad", MetaGradOptions, check_segments)
def make_metagrad_optimizer(options: dict, problem) -> MetaOptimizer:
    """Factory for `[meta_optimizer] name = "metagrad"`; options validated as MetaGradOptions."""
    return make_rl_metagrad(problem, build(MetaGradOptions, options, "meta_optimizer"))
