"""The samples a drift is distilled on: a grid over LPO's ranges, the inputs the rule actually
meets in short inner runs on its training tasks, and held-out points for the fidelity.

Ranges: r in [0.5, 1.5], A in [-2, 2] (the drift pictures of LPO's paper, Lu et al. 2022, and of
`discover inspect`), and the lifetime fraction p in [0, 1] when the teacher reads it.

Collected inputs (`collect`): PPO runs under the teacher with the source's own [ppo] config on
each of its spec's tasks, one seed per task, cut to COLLECT_UPDATES updates (p still runs over
[0, 1], as the lifetime fraction is update / num_updates); each loss evaluation hands the first
PER_CALL samples of its minibatch to the host through `jax.debug.callback`. Cost: one compile
and a short run per task (tens of seconds on CPU each).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from inner_algos.rules import DriftInputs, Rule

RATIO_RANGE = (0.5, 1.5)
ADVANTAGE_RANGE = (-2.0, 2.0)
GRID = 41  # points per axis of the training grid (5 lifetime fractions when temporal)
HELD_OUT = 2000  # uniform held-out points in the ranges
COLLECT_UPDATES = 16
PER_CALL = 32


class Samples(NamedTuple):
    """Drift inputs and the teacher's outputs, all `[N]` numpy: ratio, advantage, progress (None
    when the teacher does not read it), drift, and grad = d drift / d r."""

    ratio: np.ndarray
    advantage: np.ndarray
    progress: np.ndarray | None
    drift: np.ndarray
    grad: np.ndarray

    def subset(self, index: np.ndarray) -> Samples:
        return Samples(*(None if x is None else x[index] for x in self))  # type: ignore[arg-type]

    @staticmethod
    def join(a: Samples, b: Samples) -> Samples:
        joined = (None if x is None else np.concatenate([x, y]) for x, y in zip(a, b))
        return Samples(*joined)  # type: ignore[arg-type]


def is_temporal(rule: Rule) -> bool:
    """Whether a drift rule reads the lifetime fraction."""
    return bool(getattr(rule, "temporal", False))


def drift_and_grad(rule: Rule, meta_params: Any, ratio, advantage, progress) -> tuple[np.ndarray, np.ndarray]:
    """The rule's drift `[N]` and d drift / d r `[N]` at each sample (progress `[N]` or None)."""

    def one(r, a, p):
        return rule.apply(meta_params, DriftInputs(r, a, p))

    p = jnp.zeros_like(ratio) if progress is None else jnp.asarray(progress, jnp.float32)
    args = (jnp.asarray(ratio, jnp.float32), jnp.asarray(advantage, jnp.float32), p)
    drift, grad = jax.jit(jax.vmap(jax.value_and_grad(one)))(*args)
    return np.asarray(drift, np.float64), np.asarray(grad, np.float64)


def labelled(rule: Rule, meta_params: Any, ratio, advantage, progress) -> Samples:
    drift, grad = drift_and_grad(rule, meta_params, ratio, advantage, progress)
    return Samples(np.asarray(ratio), np.asarray(advantage), progress, drift, grad)


def grid(rule: Rule, meta_params: Any) -> Samples:
    """The training grid: GRID x GRID points of (r, A) (x 5 lifetime fractions when temporal)."""
    axes = [np.linspace(*RATIO_RANGE, GRID), np.linspace(*ADVANTAGE_RANGE, GRID)]
    if is_temporal(rule):
        axes.append(np.linspace(0.0, 1.0, 5))
    points = [x.ravel() for x in np.meshgrid(*axes, indexing="ij")]
    return labelled(rule, meta_params, points[0], points[1], points[2] if is_temporal(rule) else None)


def held_out(rule: Rule, meta_params: Any, seed: int, n: int = HELD_OUT) -> Samples:
    """n points drawn uniformly in the ranges (off the grid), for the fidelity."""
    rng = np.random.default_rng(seed + 1)
    ratio = rng.uniform(*RATIO_RANGE, n)
    advantage = rng.uniform(*ADVANTAGE_RANGE, n)
    progress = rng.uniform(0.0, 1.0, n) if is_temporal(rule) else None
    return labelled(rule, meta_params, ratio, advantage, progress)


@dataclasses.dataclass(frozen=True)
class _Recording(Rule):
    """The teacher, handing a few of the inputs it is applied to to a host-side list."""

    name: ClassVar[str] = "recording"
    family: ClassVar[str] = "drift"
    teacher: Rule
    sink: list = dataclasses.field(compare=False, hash=False)

    def apply(self, meta_params, inputs: DriftInputs) -> jax.Array:
        def record(ratio, advantage, progress):
            self.sink.append((np.asarray(ratio), np.asarray(advantage), np.full(len(ratio), progress)))

        take = lambda x: jnp.ravel(x)[:PER_CALL]  # noqa: E731
        jax.debug.callback(record, take(inputs.ratio), take(inputs.advantage), inputs.progress)
        return self.teacher.apply(meta_params, inputs)


def collect(rule: Rule, meta_params: Any, spec: dict, seed: int) -> tuple[Samples, list[str]]:
    """The inputs the teacher meets in PPO on each task of `spec` (module docstring); returns
    them labelled with the teacher's outputs, and one line per task saying what ran."""
    from discovery.evaluation.sources import spec_tasks
    from discovery.spec import parse_inner, parse_inner_config
    from inner_algos.envs import task_from_table
    from inner_algos.registry import make_inner_algo

    inner, section = parse_inner(spec.get("inner", {}))
    config = parse_inner_config(inner, spec.get(section, {}))
    config = dataclasses.replace(config, num_updates=min(config.num_updates, COLLECT_UPDATES))
    sink: list = []
    notes = []
    for i, table in enumerate(spec_tasks(spec)):
        task = task_from_table(table)
        algo = make_inner_algo(inner, config, task, _Recording(rule, sink))
        before = len(sink)
        jax.block_until_ready(jax.jit(algo.train)(meta_params, jax.random.PRNGKey(seed + i)))
        notes.append(f"{task.label}: {config.num_updates} updates, {len(sink) - before} loss calls recorded")
    if not sink:
        raise ValueError("the inner runs recorded no drift inputs (has the spec's inner algorithm a drift?)")
    ratio, advantage, progress = (np.concatenate(x) for x in zip(*sink))
    keep = np.isfinite(ratio) & (ratio > 0) & np.isfinite(advantage)
    ratio, advantage, progress = ratio[keep], advantage[keep], progress[keep]
    samples = labelled(rule, meta_params, ratio, advantage, progress if is_temporal(rule) else None)
    return samples, notes
