"""LPG in discovery jobs: the shipped spec at a tiny size meta-trains by ES as well as by the
meta-gradient (the meta-optimizer switch alone), resumes bit for bit, and exports a rule that
loads as the "targets" family."""

from pathlib import Path

import numpy as np

from discovery.job.runner import run_job
from discovery.rule_io import load_rule
from discovery.spec import apply_overrides, load_toml
from tests.support.shrink import TINY, TINY_INNER, untimed

SPEC = Path(__file__).resolve().parents[3] / "runs" / "lpg_gridworld.toml"


def _tiny(run_dir: Path, generations: int, *extra: str) -> dict:
    sets = [*TINY, *TINY_INNER["lpg"], f"job.generations={generations}", f"job.run_dir={run_dir}", *extra]
    table = apply_overrides(load_toml(SPEC), sets)
    table["tasks"] = table["tasks"][:2]  # dense and sparse: two tasks keep the compile short
    return table


def test_the_meta_gradient_job_resumes_bit_for_bit(tmp_path):
    sets = ("meta_optimizer.num_runs=1", "meta_optimizer.unroll_length=2")
    straight = run_job(_tiny(tmp_path / "straight", 2, *sets), progress=False)
    run_job(_tiny(tmp_path / "split", 1, *sets), progress=False)
    resumed = run_job(_tiny(tmp_path / "split", 2, *sets), progress=False)
    assert resumed.generation == straight.generation == 2
    assert untimed(resumed.history) == untimed(straight.history)
    assert all(np.isfinite(r["fitness_mean"]) for r in straight.history)


def test_es_meta_trains_the_same_rule_and_exports_it(tmp_path):
    table = _tiny(tmp_path / "es", 2)
    # the switch: only [meta_optimizer] changes (ES scores whole lifetimes)
    table["meta_optimizer"] = {"name": "es", "population_size": 2, "sigma_init": 0.05}
    table["job"]["evaluate_mean"] = True
    result = run_job(table, progress=False)
    assert result.generation == 2
    for record in result.history:
        assert record["num_nonfinite"] == 0, record
    rule, meta_params, _ = load_rule(tmp_path / "es" / "rules" / "latest_mean")
    assert (rule.name, rule.family) == ("lpg", "targets")
    assert set(meta_params) == {"embed", "gru", "pi_head", "y_head"}


def test_a_paired_objective_without_a_baseline_rule_uses_lpgs_reference_baseline(tmp_path):
    """No meta_objective.baseline_rule: the baseline beside each generation is the inner
    algorithm's registered reference baseline, a2c for LPG (before, ppo_clip, which LPG refuses)."""
    table = _tiny(tmp_path / "paired", 1)
    table["tasks"] = table["tasks"][:1]
    table["meta_optimizer"] = {"name": "es", "population_size": 2, "sigma_init": 0.05}
    # the scale given (the tiny a2c does not beat the random agent): the baseline still runs beside
    table["meta_objective"] = {"kind": "curve_area", "normalize": "paired", "baselines": [5.0]}
    result = run_job(table, progress=False)
    assert load_toml(tmp_path / "paired" / "spec.toml")["meta_objective"]["baseline_rule"] == "a2c"
    assert result.generation == 1 and result.history[0]["num_nonfinite"] == 0
