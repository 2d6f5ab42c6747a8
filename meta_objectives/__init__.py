"""Meta-objectives (fitness of an inner run) and their aggregation; see `objectives`."""

import inner_algos  # noqa: F401  (sets XLA's default flags before jax starts)

from meta_objectives.objectives import (
    KINDS,
    NORMALISATIONS,
    MetaObjective,
    aggregate,
    curve_area,
    final_return,
    latest_returns,
    normalise,
    rank_last,
    score,
)

__all__ = ["KINDS", "NORMALISATIONS", "MetaObjective", "aggregate", "curve_area", "final_return",
           "latest_returns", "normalise", "rank_last", "score"]
