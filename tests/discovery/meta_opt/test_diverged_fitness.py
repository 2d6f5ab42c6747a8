"""Diverged lifetimes in the fitness: a planted diverging member scores below every member that
did not diverge (paired fitness, against a hand computation), ES ranks it last, and the job's
record and progress line count the diverged lifetimes (records written before carry no count).
The same with real PPO runs diverging: tests/discovery/job/test_job.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.job import console as job_console
from discovery.job import records as job_records
from discovery.meta_opt import make_meta_optimizer, parse_options
from discovery.meta_opt.es import _to_evosax
from discovery.meta_opt.problem import Evaluation, Problem
from inner_algos.registry import INNER_ALGOS
from meta_objectives import MetaObjective, aggregate, penalize_diverged

pytestmark = pytest.mark.fast

NAN = float("nan")
# 3 members x 1 task x 2 seeds: member 1 diverged on seed 0 (its raw score NaN); the paired
# baseline's runs finished on both seeds
RAW = jnp.asarray([[[14.0, 12.0]], [[NAN, 30.0]], [[9.0, 11.0]]])
DIVERGED = jnp.isnan(RAW)
BASELINE = jnp.asarray([[10.0, 10.0]])  # [K, S]
B, R = 10.0, 0.0  # the baseline's and the random agent's mean scores: scale 10


class Planted(Problem):
    """A paired Problem whose inner runs are planted: `scores` and `baseline_scores` return the
    arrays given, so `fitness` (normalisation, penalty, aggregation) runs on known numbers."""

    def __init__(self, raw, diverged, baseline):
        config, task, rule = INNER_ALGOS["ppo"].example()
        objective = MetaObjective(normalize="paired", baseline_rule="ppo_clip")
        super().__init__(rule, (task,), config, objective, raw.shape[-1], [B], random_scores=[R])
        self.planted = raw, diverged, baseline

    def scores(self, members, key):
        del members, key
        return self.planted[0], self.planted[1]

    def baseline_scores(self, key):
        del key
        return self.planted[2]


def test_a_planted_diverging_member_scores_below_every_other_in_the_paired_fitness():
    evaluation = Planted(RAW, DIVERGED, BASELINE).fitness(None, jax.random.PRNGKey(0))
    # paired scores (x - b) / (B - R): [0.4, 0.2], [P, 2.0], [-0.1, 0.1]; X_min = -0.1, X_max = 2,
    # N = 2: P = -0.1 - 2 * (2.1 + 1) = -6.3
    expected = np.asarray([[[0.4, 0.2]], [[-6.3, 2.0]], [[-0.1, 0.1]]])
    np.testing.assert_allclose(evaluation.scores, expected, rtol=1e-6)
    np.testing.assert_allclose(evaluation.fitness, [0.3, -2.15, 0.0], rtol=1e-6, atol=1e-7)
    assert float(evaluation.fitness[1]) < float(jnp.min(evaluation.fitness[jnp.array([0, 2])]))
    np.testing.assert_array_equal(evaluation.diverged, DIVERGED)


def test_without_divergence_the_paired_fitness_is_the_formula_before():
    raw = jnp.nan_to_num(RAW, nan=10.0)
    evaluation = Planted(raw, jnp.zeros(raw.shape, bool), BASELINE).fitness(None, jax.random.PRNGKey(0))
    by_hand = jnp.mean(jnp.mean((raw - BASELINE[None]) / (B - R), axis=-1), axis=-1)
    np.testing.assert_array_equal(evaluation.fitness, by_hand)
    np.testing.assert_allclose(evaluation.fitness, [0.3, 1.0, 0.0], atol=1e-7)


def test_where_the_paired_baseline_diverged_no_member_is_penalised():
    """The baseline's seed-0 run diverged: no member has a reference there, so every member's
    fitness is non-finite (ranked last, counted) rather than the diverged one ranking first."""
    baseline = BASELINE.at[0, 0].set(NAN)
    evaluation = Planted(RAW, DIVERGED, baseline).fitness(None, jax.random.PRNGKey(0))
    assert np.all(np.isnan(evaluation.fitness))


class PlantedQuadratic:
    """A duck-typed LifetimeProblem: fitness -|x|^2 per lifetime on 1 task x 4 seeds, member 0's
    seed 2 diverged in every generation."""

    evaluate_mean = True
    paired = False
    env_steps_per_member = 0

    def init_meta_params(self, key):
        del key
        return {"x": jnp.zeros(3)}

    def fitness(self, members, key):
        del key
        per_member = -jnp.sum(members["x"] ** 2, axis=-1)
        raw = jnp.tile(per_member[:, None, None], (1, 1, 4))
        diverged = jnp.zeros(raw.shape, bool).at[0, 0, 2].set(True)
        scores = penalize_diverged(jnp.where(diverged, NAN, raw), diverged)
        return Evaluation(aggregate(scores), jnp.mean(raw, axis=-1), scores, None, diverged)

    def task_indices(self, key):
        del key
        return jnp.arange(1)


def test_es_ranks_the_diverging_member_last_and_counts_its_lifetime():
    optimizer = make_meta_optimizer("es", parse_options("es", {"population_size": 8}), PlantedQuadratic())
    _, metrics = jax.jit(optimizer.step)(optimizer.init(jax.random.PRNGKey(0)))
    fitness = np.asarray(metrics["fitness"])
    assert np.all(np.isfinite(fitness)) and int(metrics["num_nonfinite"]) == 0
    assert fitness[0] < np.min(fitness[1:])
    assert int(np.argmax(_to_evosax(metrics["fitness"]))) == 0  # evosax minimises: worst
    assert metrics["diverged"].shape == (8, 1, 4) and int(np.sum(metrics["diverged"])) == 1


METRICS = {
    "fitness": np.asarray([0.1, -5.0, 0.2]),
    "task_scores": np.ones((3, 1)),
    "num_nonfinite": 0,
    "mean_fitness": 0.0,
    "best_fitness": 0.2,
    "env_steps_per_s": 1.0,
}


def test_the_record_and_progress_line_count_the_diverged_lifetimes():
    diverged = np.zeros((3, 2, 2), bool)
    diverged[1, 0, 1] = diverged[1, 1, 0] = diverged[2, 1, 1] = True  # 3 lifetimes of 2 members
    record = job_records.generation_record(1, {**METRICS, "diverged": diverged}, 1.0, 1.0, 10, 10, ["a"])
    assert (record["diverged"], record["diverged_members"], record["lifetimes"]) == (3, 2, 12)
    assert "div 3/12" in job_console.postfix(record, False)
    none = job_records.generation_record(
        1, {**METRICS, "diverged": diverged & False}, 1.0, 1.0, 10, 10, ["a"]
    )
    assert none["diverged"] == 0 and "div" not in job_console.postfix(none, False)


def test_estimators_without_the_count_and_old_records_read_without_it():
    record = job_records.generation_record(1, METRICS, 1.0, 1.0, 10, 10, ["a"])
    assert record["diverged"] is None and record["lifetimes"] is None  # e.g. pes
    assert "div" not in job_console.postfix(record, False)
    old = {k: v for k, v in record.items() if k not in ("diverged", "diverged_members", "lifetimes")}
    assert "div" not in job_console.postfix(old, False)
    assert job_records.diverged([old], 1, INNER_ALGOS["ppo"].example()[0]) is None
