"""The meta-objective of truncated estimators: per-update losses and scores of lifetime segments.

A segment is what K inner updates of N persistent runs produced (`discovery.meta_opt.truncated.
Segment`); these functions read its fields `curve`, `age` and `length`, each `[K, N]`. `curve` is
the learning curve the whole-lifetime scores read (`objectives.latest_returns`: the latest ended
episodes' mean return, 0 before the first), carried across segments, so the losses of all the
segments of a lifetime sum to minus that lifetime's whole-lifetime score.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SEGMENT_KINDS = ("final_return", "curve_area")  # meta-objective kinds with per-update losses


def segment_losses(segment, kind: str, last_k: int, scale) -> jax.Array:
    """Per-update losses `[K, N]` whose sum over a lifetime is -(meta-objective) / scale.

    With curve_k = `segment.curve`, kind "curve_area": -curve_k / length; "final_return":
    -curve_k / last_k over the last `last_k` updates of the lifetime, 0 before: the same scores
    as whole-lifetime ES's. `scale`: the task's divisor (`task_scale`).
    """
    returns = segment.curve
    if kind == "curve_area":
        return -returns / segment.length / scale
    if kind == "final_return":
        return -returns * (segment.age >= segment.length - last_k) / last_k / scale
    raise ValueError(
        f"meta_objective.kind = {kind!r} has no per-update form for truncated estimators; "
        f"use one of {', '.join(SEGMENT_KINDS)}"
    )


def segment_scores(segment) -> jax.Array:
    """Per-run mean of the learning curve over the segment: `curve` `[K, N]` -> `[N]` (higher is
    better; not baseline-normalized)."""
    return jnp.mean(segment.curve, axis=0)


def task_scale(baselines: jax.Array | None, t: int):
    """The loss divisor of task t: |baseline| `[]` when the objective is baseline-normalised
    (`baselines` `[T]`), else 1."""
    return 1.0 if baselines is None else jnp.abs(baselines[t])
