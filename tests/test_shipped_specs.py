"""Every spec shipped in runs/ parses and builds its inner algorithms and meta-optimizer.

Nothing is compiled or trained: this catches a renamed option or an unknown key in a shipped
spec (including the GPU-scale ones that CI never runs) before a user does.
"""

from pathlib import Path

import jax
import pytest

from discovery import train
from discovery.meta_opt import make_meta_optimizer
from discovery.problem import Problem
from discovery.spec import build, load_toml, parse_job_spec, parse_ppo, parse_rule, parse_task
from inner_algos.ppo import make_ppo

RUNS = sorted((Path(__file__).parent.parent / "runs").glob("*.toml"))


def test_specs_are_shipped():
    assert any(p.name == "quickstart.toml" for p in RUNS)


@pytest.mark.parametrize("path", RUNS, ids=lambda p: p.stem)
def test_shipped_spec_builds(path):
    table = load_toml(path)
    if "job" in table:  # a `discover run` spec
        spec = parse_job_spec(table)
        baselines = [1.0] * len(spec.tasks)  # stands in for the measured baseline scores
        problem = Problem(spec.rule, spec.tasks, spec.ppo, spec.meta_objective,
                          spec.job.seeds_per_member, baselines, spec.job.population_batch,
                          spec.job.evaluate_mean)
        optimizer = make_meta_optimizer(spec.meta_optimizer, spec.meta_optimizer_options, problem)
        params = jax.eval_shape(lambda: optimizer.params(optimizer.init(jax.random.PRNGKey(0))))
        rule_shapes = jax.eval_shape(spec.rule.init, jax.random.PRNGKey(0))
        assert params["mean"] == rule_shapes  # the estimator searches the rule's meta-params
    else:  # a `discover train` spec
        rule = parse_rule(table.get("rule", {"name": "ppo_clip"}))
        make_ppo(parse_ppo(table["ppo"]), parse_task(table["task"]), rule)
        build(train.TrainSettings, table.get("train", {}), "train")
