"""Everything that turns inner-run metrics into a fitness or a meta-loss, in one home.

- `objectives`: whole-lifetime scores (final return, curve area, eval return), baseline
  normalisation (fixed, or paired with the baseline trained on the same draws and seeds) and
  a diverged lifetime's score (`penalize_diverged`: a clear loss) and aggregation over tasks and
  seeds (`MetaObjective`, the spec's table);
- `reliability`: the split-half rank correlation of a generation's fitness (signal or noise);
- `segments`: the same objective per inner update of a lifetime segment (truncated estimators),
  segment scores and the per-task loss scale;
- `meta_losses`: the meta-loss kinds of meta-gradients, read off PPO's loss;
- `shaping`: ranking failures last, z-score fitness shaping.
"""

import inner_algos  # noqa: F401  (sets XLA's default flags before jax starts)
from meta_objectives.objectives import (
    KINDS,
    NORMALIZATIONS,
    MetaObjective,
    aggregate,
    check_paired_scale,
    curve_area,
    final_return,
    latest_returns,
    normalize,
    paired_normalize,
    penalize_diverged,
    score,
)
from meta_objectives.reliability import (
    pooled_reliability,
    spearman,
    spearman_brown,
    split_half_reliability,
)
from meta_objectives.segments import SEGMENT_KINDS, segment_losses, segment_scores, task_scale
from meta_objectives.shaping import rank_last, z_score_shaping

__all__ = [
    "KINDS",
    "NORMALIZATIONS",
    "SEGMENT_KINDS",
    "MetaObjective",
    "aggregate",
    "check_paired_scale",
    "curve_area",
    "final_return",
    "latest_returns",
    "normalize",
    "paired_normalize",
    "penalize_diverged",
    "pooled_reliability",
    "rank_last",
    "score",
    "segment_losses",
    "segment_scores",
    "spearman",
    "spearman_brown",
    "split_half_reliability",
    "task_scale",
    "z_score_shaping",
]
