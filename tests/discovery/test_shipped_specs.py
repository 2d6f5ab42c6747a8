"""Every spec shipped in runs/ parses, builds its inner algorithms and meta-optimizer, and passes
the memory check of the job's start-up.

Nothing is compiled or trained: this catches a renamed option or an unknown key in a shipped
spec (including the GPU-scale ones that CI never runs) before a user does.
"""

import json
import os
from pathlib import Path

import jax
import pytest

from discovery.evaluation import train
from discovery.evaluation.sources import resolve_source
from discovery.job import memory
from discovery.meta_opt import make_meta_optimizer
from discovery.spec import (
    apply_overrides,
    build,
    load_toml,
    parse_job_spec,
    parse_ppo,
    parse_rule,
    parse_task,
)
from inner_algos.ppo import make_ppo
from tests.support.builders import spec_problem
from tests.support.shrink import TINY, TINY_INNER, untimed

RUNS = sorted((Path(__file__).resolve().parents[2] / "runs").glob("*.toml"))


def test_specs_are_shipped():
    assert any(p.name == "quickstart.toml" for p in RUNS)


@pytest.mark.parametrize("path", RUNS, ids=lambda p: p.stem)
def test_shipped_spec_builds(path):
    table = load_toml(path)
    if "job" in table:  # a `discover run` spec
        spec = parse_job_spec(table, resolve_source)  # a job resolves [rule] init_from SOURCEs
        baselines = [1.0] * len(spec.tasks)  # stand in for the measured baseline and random-agent scores
        problem = spec_problem(spec, baselines, random_scores=[0.0] * len(spec.tasks))
        optimizer = make_meta_optimizer(spec.meta_optimizer, spec.meta_optimizer_options, problem)
        params = jax.eval_shape(lambda: optimizer.params(optimizer.init(jax.random.PRNGKey(0))))
        rule_shapes = jax.eval_shape(spec.rule.init, jax.random.PRNGKey(0))
        assert params["mean"] == rule_shapes  # the estimator searches the rule's meta-params
        # the memory check at start-up passes on one device of a 16 GiB machine (or GPU)
        assert memory.estimate(spec, num_devices=1).bytes < 16 * 2**30
    else:  # a `discover train` spec
        rule = parse_rule(table.get("rule", {"name": "ppo_clip"}))
        make_ppo(parse_ppo(table["ppo"]), parse_task(table["task"]), rule)
        build(train.TrainSettings, table.get("train", {}), "train")


# Shrinks every shipped spec to seconds of compute (`tests.support.shrink`: two generations, tiny
# networks, batches and episodes) with one member pair or two members.
TINY_ESTIMATOR = {
    "es": ["meta_optimizer.population_size=2"],
    "pes": [
        "meta_optimizer.num_pairs=1",
        "meta_optimizer.unroll_length=2",
        "meta_optimizer.min_lifetime=2",
        "meta_optimizer.max_lifetime=4",
    ],
    "metagrad": [
        "meta_optimizer.num_runs=1",
        "meta_optimizer.unroll_length=2",
        "meta_optimizer.min_lifetime=2",
        "meta_optimizer.max_lifetime=4",
    ],
    "online_metagrad": ["meta_optimizer.updates_per_step=1"],
}
TINY_ESTIMATOR["truncated_es"] = TINY_ESTIMATOR["pes"]
JOB_SPECS = [p for p in RUNS if "job" in load_toml(p)]
IN_DEFAULT_SUITE = ("study_cpu", "quickstart")  # the others are slow-marked (minutes in all)

# The fitness histories these tiny runs gave before the code was restructured: a refactor must
# leave every number bit-identical (same XLA programs up to fusion-neutral changes). Recorded with
# jax 0.10.2 on the 2-core Xeon CI machine; a deliberate change of behaviour re-records them with
# `DISCOVER_RECORD_GOLDEN=1 python -m pytest -m "slow or not slow" tests/discovery/test_shipped_specs.py`.
GOLDEN = Path(__file__).parent / "golden_histories.json"


def _check_golden(stem: str, history: list[dict]) -> None:
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("DISCOVER_RECORD_GOLDEN"):
        golden[stem] = untimed(history)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    assert stem in golden, f"no recorded history for {stem}; record with DISCOVER_RECORD_GOLDEN=1"
    assert untimed(history) == golden[stem]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, id=p.stem, marks=() if p.stem in IN_DEFAULT_SUITE else pytest.mark.slow)
        for p in JOB_SPECS
    ],
)
def test_shipped_spec_runs_one_generation_at_a_tiny_size(path, tmp_path):
    """`discover run SPEC --set ...` (the CLI's code path) gets through a generation on CPU with
    finite fitness for every member: every shipped job, including the GPU-scale ones whose tasks
    (e.g. halfcheetah, which never terminates) CI could not afford at full size."""
    from discovery.job.runner import run_job

    table = load_toml(path)
    name = table.get("meta_optimizer", {}).get("name", "es")
    inner = table.get("inner", {}).get("name", "ppo")
    sets = TINY + TINY_INNER[inner] + TINY_ESTIMATOR[name] + [f"job.run_dir={tmp_path / 'run'}"]
    normalize = table.get("meta_objective", {}).get("normalize")
    if path.stem in IN_DEFAULT_SUITE and normalize in ("baseline", "paired"):
        # given baselines skip their measurement: one compile fewer in the default suite ("paired":
        # far above any random agent's return here, so its scale check passes at a tiny size)
        given = 1.0 if normalize == "baseline" else 1000.0
        sets.append(f"meta_objective.baselines={[given] * len(table['tasks'])}")
    result = run_job(apply_overrides(table, sets), progress=False)
    assert result.generation == 2
    for record in result.history:
        assert record["num_nonfinite"] == 0, record
        assert all(v is not None for v in record["task_scores"].values()), record
    if path.stem.startswith(("quickstart", "study")):
        _check_golden(path.stem, result.history)
