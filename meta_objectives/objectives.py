"""Meta-objectives: pure functions from inner-run metrics to a scalar fitness (higher is better).

An inner run's metrics are per-update arrays `[..., U]` (leading axes: population, seed, ...).
`episode_return` is the mean return of the episodes that ended in an update and NaN where none
did; `num_episodes` counts them. On tasks without terminations (e.g. brax halfcheetah) all
episodes end together every `episode_length` agent steps, so most updates end none. The scores
below therefore read the learning curve as it is usually logged, `latest_returns`: at every
update the mean return of the latest episodes that ended (in it or before), 0 before the first
one of the lifetime. Truncated estimators score their segments with the same curve
(`meta_objectives.segments`), so whole-lifetime ES and PES treat an update with no ended episode alike.

Pipeline for one task: score each (member, seed) run -> normalise by the task's baseline
(`normalize`, or `paired_normalize` against the baseline trained on the same draw and seed) ->
score each diverged run as a clear loss (`penalize_diverged`) -> mean over seeds; several tasks:
mean over tasks. Any other non-finite value in a member's runs makes its fitness non-finite;
`shaping.rank_last` then sends it to the bottom and counts it.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from inner_algos.config_checks import POSITIVE_INT, OneOf, check_fields
from inner_algos.registry import default_baseline
from inner_algos.rules import RULES, has_meta_params, make_rule

KINDS = ("final_return", "curve_area", "eval_return")
NORMALIZATIONS = ("none", "baseline", "paired")


@dataclasses.dataclass(frozen=True)
class _NonZeroEach:
    """A list of numbers none of which is 0 (a baseline of 0 cannot normalise)."""

    def problem(self, value) -> str | None:
        return "may not contain 0" if any(b == 0 for b in value) else None


NON_ZERO_EACH = _NonZeroEach()


@dataclasses.dataclass(frozen=True)
class MetaObjective:
    """The [meta_objective] table.

    kind: "final_return" (mean of `latest_returns` over the last `last_k` updates),
      "curve_area" (mean of `latest_returns` over all updates: the learning curve's area per
      update), or "eval_return" (deterministic evaluation of the final policy on
      `eval_envs` full episodes of the inner algorithm; exact but costs one episode of extra env steps).
    normalize: "none", or "baseline": per task (score - b) / |b| with b the baseline's score
      (0 = as good as the baseline, 1 = twice as good), so tasks with different return scales
      average fairly. "paired": every generation also trains the baseline rule on exactly the
      members' task draws and seed keys (one more member per generation), and a member's score on
      a (task, seed) is its improvement over that baseline run, in units of the baseline's gain
      over the random agent on the task (`paired_normalize`): 0 = as good as the baseline on the
      same problems, 1 = better by as much as the baseline is better than acting at random.
    baseline_rule: the fixed rule of the baselines; "" = the inner algorithm's reference baseline
      (its first registered one: ppo_clip for PPO, a2c for LPG; `with_baseline_rule`).
    baselines: per-task baseline scores in [[tasks]] order; empty = measured once at job start
      by training the baseline rule on `baseline_seeds` seeds with the same inner config.
    """

    kind: str = "final_return"
    last_k: int = 5
    normalize: str = "none"
    baseline_rule: str = ""
    baseline_seeds: int = 8
    baselines: tuple[float, ...] = ()

    OLD_SPELLINGS: ClassVar[dict] = {"normalise": "normalize"}  # read by config_checks.build

    def __post_init__(self):
        check_fields(
            self,
            "meta_objective",
            kind=OneOf(KINDS),
            normalize=OneOf(NORMALIZATIONS),
            last_k=POSITIVE_INT,
            baseline_seeds=POSITIVE_INT,
            baselines=NON_ZERO_EACH,
        )
        if self.baseline_rule:  # "" is resolved by `with_baseline_rule`
            check_fields(self, "meta_objective", baseline_rule=OneOf(tuple(sorted(RULES))))
        if self.normalize == "paired" and self.baseline_rule:
            _check_fixed_rule(self.baseline_rule)

    def with_baseline_rule(self, inner: str) -> MetaObjective:
        """This objective with an empty baseline_rule set to inner algorithm `inner`'s reference
        baseline (`inner_algos.registry.default_baseline`); unchanged when one is given."""
        if self.baseline_rule:
            return self
        return dataclasses.replace(self, baseline_rule=default_baseline(inner))


def _check_fixed_rule(name: str) -> None:
    """normalize = "paired" trains the baseline beside the members: it must be a fixed rule."""

    if has_meta_params(make_rule(name)):
        fixed = [n for n in sorted(RULES) if not has_meta_params(make_rule(n))]
        raise ValueError(
            f'meta_objective.baseline_rule = {name!r} has meta-parameters; normalize = "paired" '
            f"trains a fixed, hand-designed rule beside the members: one of {', '.join(fixed)}"
        )


def latest_returns(episode_return: jnp.ndarray, num_episodes: jnp.ndarray):
    """The logged learning curve: (curve, seen), both `[..., U]`.

    curve[u]: mean return of the latest update <= u that ended an episode (its `episode_return`),
    0 where no episode has ended yet; seen[u]: some episode has ended by update u.
    """
    updates = episode_return.shape[-1]
    has = num_episodes > 0
    index = jnp.where(has, jnp.arange(updates), -1)
    latest = jax.lax.cummax(index, axis=index.ndim - 1)
    seen = latest >= 0
    curve = jnp.take_along_axis(episode_return, jnp.maximum(latest, 0), axis=-1)
    return jnp.where(seen, curve, 0.0), seen


def final_return(episode_return: jnp.ndarray, num_episodes: jnp.ndarray, last_k: int) -> jnp.ndarray:
    """Mean of `latest_returns` over the last `last_k` updates: `[..., U] -> [...]`.

    NaN if no episode ended in the whole run.
    """
    curve, seen = latest_returns(episode_return, num_episodes)
    return jnp.where(seen[..., -1], jnp.mean(curve[..., -last_k:], axis=-1), jnp.nan)


def curve_area(episode_return: jnp.ndarray, num_episodes: jnp.ndarray) -> jnp.ndarray:
    """Mean of `latest_returns` over all updates: `[..., U] -> [...]`.

    NaN if no episode ended in the whole run.
    """
    curve, seen = latest_returns(episode_return, num_episodes)
    return jnp.where(seen[..., -1], jnp.mean(curve, axis=-1), jnp.nan)


def score(objective: MetaObjective, metrics: dict, eval_return: jnp.ndarray | None) -> jnp.ndarray:
    """The raw (unnormalised) score of runs: metrics arrays `[..., U]`, eval_return `[...]` -> `[...]`
    (kind "eval_return" needs eval_return)."""
    if objective.kind == "final_return":
        return final_return(metrics["episode_return"], metrics["num_episodes"], objective.last_k)
    if objective.kind == "curve_area":
        return curve_area(metrics["episode_return"], metrics["num_episodes"])
    if eval_return is None:
        raise ValueError(
            f"meta_objective.kind = {objective.kind!r} scores the evaluation's return; none was run"
        )
    return eval_return


def normalize(scores: jnp.ndarray, baseline: jnp.ndarray | float | None) -> jnp.ndarray:
    """(score - b) / |b| elementwise, or the scores unchanged when baseline is None."""
    if baseline is None:
        return scores
    return (scores - baseline) / jnp.abs(baseline)


def paired_normalize(
    scores: jnp.ndarray, baseline: jnp.ndarray, baseline_mean: jnp.ndarray, random: jnp.ndarray
) -> jnp.ndarray:
    """Members' scores `[M, K, S]` (member, task, seed) relative to the baseline's runs on the
    same task draws and seeds, baseline `[K, S]`: (x - b) / (B - R) per task.

    B `[K]` (baseline_mean) is the baseline's mean score and R `[K]` (random) the random agent's,
    both measured once at job start. The scale B - R is the gap `discover eval` normalises by
    (random = 0, PPO-clip = 1), so a fitness reads in the same units as its held-out results. It
    is fixed for the job: a per-generation scale (e.g. |b| averaged over the generation's seeds)
    would put the draw's luck back into the curve the pairing takes it out of, and |b| itself can
    be near zero (returns around 0, as on MountainCarContinuous); B - R is the return a task's
    learning is worth, and the job refuses tasks where it is not clearly positive
    (`check_paired_scale`). A non-finite baseline run makes every member's score on that (task,
    seed) non-finite, so such a generation ranks no member (counted in num_nonfinite).
    """
    return (scores - baseline[None]) / (baseline_mean - random)[None, :, None]


MIN_PAIRED_GAP = 0.05  # B - R must be at least this fraction of max(|B|, |R|)


def check_paired_scale(baseline_mean, random, labels, section: str) -> None:
    """Raises ValueError naming the task when the baseline does not clearly beat the random agent
    (B - R < MIN_PAIRED_GAP * max(|B|, |R|)): the paired differences would be divided by ~0.
    section: the inner algorithm's spec section (e.g. "ppo"), whose keys the advice names."""
    for b, r, label in zip(baseline_mean, random, labels):
        if not b - r > 0 or b - r < MIN_PAIRED_GAP * max(abs(b), abs(r)):
            raise ValueError(
                f'meta_objective.normalize = "paired" divides by the baseline\'s gain over the '
                f"random agent, which on {label} is {b:.4g} - {r:.4g}: too small to normalize by. "
                f"Give the inner runs enough budget for the baseline to learn there ({section}.num_updates, "
                f'{section}.learning_rate), give meta_objective.baselines, or use normalize = "baseline"'
            )


def penalize_diverged(scores: jnp.ndarray, diverged: jnp.ndarray) -> jnp.ndarray:
    """Normalised scores `[M, K, S]` (member, task, seed) with each diverged lifetime's score
    replaced by a clear loss, the same finite penalty for every one of them:

        P = X_min - N * (X_max - X_min + max(1, |X_min|))

    X_min, X_max: the smallest and largest finite score of a lifetime that did not diverge, over
    every member, task and seed given; N = K * S, the lifetimes a member's fitness averages.
    diverged `[M, K, S]` bool: which lifetimes to penalise (`contract.lifetime_diverged`).

    Why this P: a member's fitness (`aggregate`) is the mean of its N scores, so one lifetime at P
    pulls it below X_min, the score of the worst finished lifetime, and so below the fitness of
    every member that diverged nowhere; and each further diverged lifetime lowers it by more than
    the finished ones can make up: members rank first by how many of their lifetimes diverged
    (fewer is better), then by their finished lifetimes. P is finite, so ES's ranks and the
    logged statistics hold it. A fixed level (e.g. the random agent's score) could not promise
    this: a member that finished worse than random would rank below one that diverged.
    Where nothing diverged the scores are returned unchanged (bit for bit); where every score is
    non-finite, P is NaN and the diverged lifetimes keep NaN (their members rank last, counted
    in num_nonfinite). A non-finite score of a lifetime that did not diverge (no episode ended,
    or the paired baseline's run there diverged) is kept too.
    """
    finished = jnp.isfinite(scores) & ~diverged
    low = jnp.min(jnp.where(finished, scores, jnp.inf))
    high = jnp.max(jnp.where(finished, scores, -jnp.inf))
    lifetimes = scores.shape[-2] * scores.shape[-1]
    penalty = low - lifetimes * (high - low + jnp.maximum(1.0, jnp.abs(low)))
    penalty = jnp.where(jnp.any(finished), penalty, jnp.nan)
    return jnp.where(diverged, penalty.astype(scores.dtype), scores)


def aggregate(scores: jnp.ndarray) -> jnp.ndarray:
    """Per-member fitness from normalised scores `[M, T, S]` (member, task, seed) -> `[M]`.

    Mean over seeds, then over tasks; any non-finite score makes the member's fitness non-finite
    (diverged lifetimes hold a finite penalty by then: `penalize_diverged`).
    """
    return jnp.mean(jnp.mean(scores, axis=-1), axis=-1)
