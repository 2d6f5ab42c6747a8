"""How much signal a generation's fitness holds: the paired baseline normalisation, the split-half
fitness reliability (function level, against hand computations and synthetic fitness with a known
answer), the warning when it stays low, and a tiny paired job that logs both."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.job import console as job_console
from discovery.job import records as job_records
from discovery.job.runner import run_job
from discovery.spec import SpecError, parse_job_spec
from meta_objectives import (
    MetaObjective,
    aggregate,
    check_paired_scale,
    paired_normalize,
    pooled_reliability,
    spearman,
    spearman_brown,
    split_half_reliability,
)
from tests.support import tiny_job

# ---- paired normalisation ---------------------------------------------------------------------


def test_paired_normalization_equals_a_hand_computation():
    """2 members x 2 tasks x 2 seeds; task 0: baseline 10 vs random 0 (scale 10), task 1:
    baseline -100 vs random -500 (scale 400)."""
    scores = jnp.asarray([[[12.0, 9.0], [-80.0, -140.0]], [[10.0, 11.0], [-100.0, -60.0]]])  # [M, K, S]
    baseline = jnp.asarray([[11.0, 9.0], [-120.0, -100.0]])  # [K, S]: same draws and seeds
    normalized = paired_normalize(scores, baseline, jnp.asarray([10.0, -100.0]), jnp.asarray([0.0, -500.0]))
    expected = [
        [[(12 - 11) / 10, (9 - 9) / 10], [(-80 + 120) / 400, (-140 + 100) / 400]],
        [[(10 - 11) / 10, (11 - 9) / 10], [(-100 + 120) / 400, (-60 + 100) / 400]],
    ]
    np.testing.assert_allclose(normalized, expected, rtol=1e-6)
    # member 0: mean of 0.1, 0, 0.1, -0.1 = 0.025; member 1: -0.1, 0.2, 0.05, 0.1 = 0.0625
    np.testing.assert_allclose(aggregate(normalized), [0.025, 0.0625], rtol=1e-6)


def test_paired_scale_must_be_clearly_positive():
    check_paired_scale([10.0, -100.0], [0.0, -500.0], ["a", "b"], "ppo")
    for baseline, random in ((10.0, 10.0), (9.0, 10.0), (100.0, 99.0), (float("nan"), 0.0)):
        with pytest.raises(ValueError, match='normalize = "paired".*on b.*lpg.num_updates'):
            check_paired_scale([10.0, baseline], [0.0, random], ["a", "b"], "lpg")


def test_paired_needs_a_fixed_baseline_rule_and_es(tmp_path):
    with pytest.raises(ValueError, match="baseline_rule = 'lpo' has meta-parameters.*ppo_clip"):
        MetaObjective(normalize="paired", baseline_rule="lpo")
    table = tiny_job.table(
        tmp_path, meta_objective={"normalize": "paired"}, meta_optimizer={"name": "pes", "num_pairs": 1}
    )
    del table["meta_optimizer"]["population_size"], table["meta_optimizer"]["sigma_init"]
    del table["meta_optimizer"]["learning_rate"]
    with pytest.raises(SpecError, match='normalize = "paired".*meta_optimizer.name = "es"'):
        parse_job_spec(table)


# ---- reliability --------------------------------------------------------------------------------


def test_spearman_matches_hand_computations():
    # no ties: rho = 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 60
    np.testing.assert_allclose(
        spearman(jnp.asarray([1.0, 2, 3, 4]), jnp.asarray([1.0, 3, 2, 4])), 0.8, rtol=1e-6
    )
    # ties share their average rank: y ranks (1.5, 1.5, 3, 4); Pearson of ranks = 4.5 / sqrt(5 * 4.5)
    np.testing.assert_allclose(
        spearman(jnp.asarray([1.0, 2, 3, 4]), jnp.asarray([7.0, 7, 8, 9])), np.sqrt(0.9), rtol=1e-6
    )
    # a non-finite member is left out: the rest are in reverse order
    np.testing.assert_allclose(
        spearman(jnp.asarray([1.0, 2, 3, jnp.nan]), jnp.asarray([3.0, 2, 1, 0])), -1.0, rtol=1e-6
    )
    assert np.isnan(spearman(jnp.asarray([1.0, 2]), jnp.asarray([1.0, 2])))  # < 3 members
    assert np.isnan(spearman(jnp.asarray([1.0, 2, 3]), jnp.asarray([5.0, 5, 5])))  # all tied
    np.testing.assert_allclose(spearman_brown(jnp.asarray(0.5)), 2 / 3, rtol=1e-6)


def test_pooled_reliability_steps_up_the_mean_split_half_correlation():
    """Generations with r = 0.5 and r = -0.5 read 2/3 and -2 stepped up: their plain mean (-2/3)
    is dragged down by the unbounded negative side; the pooled value is that of r = 0, i.e. 0.
    r = 0.2, 0.4 and an unmeasured generation: mean r 0.3, stepped up 0.6 / 1.3."""
    np.testing.assert_allclose(pooled_reliability(jnp.asarray([2 / 3, -2.0])), 0.0, atol=1e-6)
    np.testing.assert_allclose(
        pooled_reliability(jnp.asarray([0.4 / 1.2, 0.8 / 1.4, jnp.nan])), 0.6 / 1.3, rtol=1e-5
    )


def test_split_half_uses_each_half_of_the_seeds():
    """Seeds 0-1 rank members (0, 1, 2, 3), seeds 2-3 rank them (0, 1, 3, 2): r = 0.8 by hand."""
    first = np.asarray([0.0, 1, 2, 3])
    second = np.asarray([0.0, 1, 3, 2])
    scores = np.stack([first, first, second, second], axis=-1)[:, None, :]  # [M, 1, S = 4]
    np.testing.assert_allclose(split_half_reliability(jnp.asarray(scores)), 2 * 0.8 / 1.8, rtol=1e-6)
    with pytest.raises(ValueError, match=">= 2 seeds"):
        split_half_reliability(jnp.zeros((4, 1, 1)))


def _draws(key, members=64, tasks=2, seeds=4, draws=200):
    return jax.random.normal(key, (draws, members, tasks, seeds))


def test_reliability_of_pure_seed_noise_is_near_zero():
    reliability = jax.jit(jax.vmap(split_half_reliability))(_draws(jax.random.PRNGKey(0)))
    assert abs(float(jnp.mean(reliability))) < 0.1


def test_reliability_of_a_planted_member_effect_is_near_one():
    """Fitness = a seed-independent member effect + seed noise + a per-seed offset shared by all
    members (common random numbers: a hard seed is hard for everyone, which ranks nobody)."""
    k_effect, k_noise, k_seed = jax.random.split(jax.random.PRNGKey(1), 3)
    effect = jax.random.normal(k_effect, (200, 64, 1, 1))
    shared = 5.0 * jax.random.normal(k_seed, (200, 1, 2, 4))
    scores = effect + 0.3 * _draws(k_noise) + shared
    reliability = jax.jit(jax.vmap(split_half_reliability))(scores)
    assert float(jnp.min(reliability)) > 0.9


# ---- the warning, the record, the progress line -------------------------------------------------


def _record(generation, reliability):
    return {"generation": generation, "fitness_reliability": reliability}


def test_the_warning_fires_once_and_names_the_keys():
    history = []
    alarm = job_console.ReliabilityAlarm(history, "ppo", enabled=True)
    values = [0.05, None, 0.1, 0.0, -0.2, 0.15] + [0.1] * 6  # a null ends a streak
    fired = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for generation, value in enumerate(values, start=1):
            history.append(_record(generation, value))
            alarm(history[-1], None)
            fired += [generation] * len(caught)
            caught.clear()
    assert fired == [7]  # generations 3-7: five in a row below 0.2; once only
    message = job_records.unreliable(history[:7], "ppo")
    for key in (
        "job.seeds_per_member",
        "meta_optimizer.sigma_init",
        "ppo.num_updates",
        "job.tasks_per_generation",
    ):
        assert key in message
    assert "3-7" in message
    assert job_records.unreliable([_record(g, 0.5) for g in range(1, 9)], "ppo") is None
    assert job_records.unreliable([{"generation": g} for g in range(1, 9)], "ppo") is None  # 1 seed


def test_records_and_progress_line_carry_the_signal_only_when_measured():
    metrics = {
        "fitness": np.asarray([0.1, 0.2]),
        "task_scores": np.ones((2, 2)),
        "num_nonfinite": 0,
        "mean_fitness": 0.0,
        "best_fitness": 0.2,
    }
    plain = job_records.generation_record(1, metrics, 1.0, 1.0, 10, 10, ["a", "b"])
    assert "fitness_reliability" not in plain and "baseline_scores" not in plain
    assert "reliability" not in job_console.postfix(plain, True)
    measured = job_records.generation_record(
        1,
        {**metrics, "fitness_reliability": np.float32(0.42), "baseline_scores": np.asarray([3.0, np.nan])},
        1.0,
        1.0,
        10,
        10,
        ["a", "b"],
    )
    assert measured["fitness_reliability"] == pytest.approx(0.42)
    assert measured["baseline_scores"] == {"a": 3.0, "b": None}
    assert "reliability 0.42" in job_console.postfix(measured, True)


# ---- a tiny paired job --------------------------------------------------------------------------

TASKS = [
    {"env_name": "inverted_pendulum", "episode_length": 50},
    {"source": "gymnax", "env_name": "CartPole-v1", "episode_length": 50},
]


@pytest.mark.slow  # the function-level tests above keep the paired score and reliability in default
def test_a_tiny_paired_job_logs_the_baseline_and_the_reliability(tmp_path):
    """Two tasks, one drawn per generation; the ES mean starts at PPO-clip (LPO's init with
    ppo_init), so in generation 1 it trains exactly what the paired baseline trains on the same
    draw and seeds: its paired score is 0 (up to float rounding). The baselines' mean scores are
    given (3 tiny updates learn too little to beat the random agent clearly), the random agent
    is measured."""
    run_dir = tmp_path / "run"
    table = {
        **tiny_job.table(
            run_dir,
            job={"generations": 2, "seeds_per_member": 2, "tasks_per_generation": 1},
            rule={"ppo_init": True},
            meta_optimizer={"sigma_init": 0.1},
            meta_objective={"normalize": "paired", "baseline_seeds": 2, "baselines": [50.0, 50.0]},
        ),
        "tasks": TASKS,
    }
    result = run_job(table, progress=False)
    assert result.generation == 2 and result.traces == 1
    for record in result.history:
        drawn = record["tasks"]
        assert len(drawn) == 1 and record["num_nonfinite"] == 0
        assert [label for label, v in record["baseline_scores"].items() if v is not None] == drawn
        assert isinstance(record["fitness_reliability"], float)
    assert abs(result.history[0]["mean_fitness"]) < 1e-4
    assert (run_dir / "fitness.png").is_file()
