"""Fitness shaping: what an estimator does with a population's fitness before it updates.

Non-finite fitness (a diverged inner run) never crashes a job: `rank_last` sends it to the bottom
and counts it. `z_score_shaping` standardises fitness (what LPO, Lu et al. 2022, used with
OpenAI-ES); centred ranks stay evosax's (`discovery.meta_opt.es`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rank_last(fitness: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Replaces non-finite fitness `[M]` by -inf (ranks last when maximising).

    Returns (fitness `[M]`, number of non-finite members `[]` int32).
    """
    finite = jnp.isfinite(fitness)
    return jnp.where(finite, fitness, -jnp.inf), jnp.sum(~finite).astype(jnp.int32)


def z_score_shaping(fitness: jax.Array) -> jax.Array:
    """(f - mean) / std over the finite members of a *minimised* fitness `[P]` (evosax's side:
    lower is better, failures +inf); a non-finite member gets the worst (largest) finite member's
    score, and all members 0 when none is finite."""
    finite = jnp.isfinite(fitness)
    count = jnp.maximum(jnp.sum(finite), 1)
    mean = jnp.sum(jnp.where(finite, fitness, 0.0)) / count
    std = jnp.sqrt(jnp.sum(jnp.where(finite, (fitness - mean) ** 2, 0.0)) / count)
    z = (jnp.where(finite, fitness, mean) - mean) / (std + 1e-8)
    worst = jnp.max(jnp.where(finite, z, -jnp.inf))
    return jnp.where(finite, z, jnp.where(jnp.any(finite), worst, 0.0))
