"""Contracts every registered meta-optimizer and every registered rule must keep, walked from the
registries (as evosax's tests parametrise over every algorithm and optax's over every alias):
registering a new entry adds it to these tests without touching them.

Meta-optimizers (`discovery.meta_opt.META_OPTIMIZERS`), each on a tiny problem of every registered
inner algorithm whose rule it can meta-learn (its spec check accepts the pair; PPO with a
hyperparameter rule, every other algorithm with its registered `example`), with the tiny options of
`TINY` (required for every registered name): `params` has exactly the rule's
meta-parameter shapes for "mean" and "best"; `step`'s metrics have the documented keys and
shapes; three generations trace the jitted step once; a state saved by the job's checkpointer
and restored resumes bit-for-bit (and without a retrace).

Rules (`inner_algos.rules.RULES`): exported-rule files round-trip the rule (class, options) and
its meta-parameters bit for bit; drift rules give drift 0 at ratio 1 for any advantage.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.job.checkpoint import INFO_KEYS, Checkpointer
from discovery.meta_opt import META_OPTIMIZERS, make_meta_optimizer, parse_options, validate_options
from discovery.meta_opt.base import METRIC_KEYS, OPTIONAL_METRIC_KEYS
from discovery.meta_opt.problem import Problem
from discovery.rule_io import load_rule, save_rule
from inner_algos.config_checks import SpecError
from inner_algos.envs import Task
from inner_algos.registry import INNER_ALGOS
from inner_algos.rules import RULES, DriftInputs, make_rule
from meta_objectives import MetaObjective
from tests.support.builders import tiny_ppo_config

# The smallest options of each registered meta-optimizer (a new one must add its entry here).
TINY = {
    "es": {"population_size": 2},
    "pes": {"num_pairs": 1, "unroll_length": 2},
    "truncated_es": {"num_pairs": 1, "unroll_length": 2},
    "metagrad": {"num_runs": 1, "unroll_length": 2},
    "online_metagrad": {"updates_per_step": 1},
}
PPO = tiny_ppo_config(4, num_envs=2, rollout_length=4, num_updates=4, num_minibatches=1, eval_envs=1)
TASK = Task(source="gymnax", env_name="CartPole-v1", episode_length=16)
RULE = make_rule("hyperparams")  # every estimator accepts it (online_metagrad requires it)
GENERATIONS = 3
OBJECTIVE = MetaObjective(kind="curve_area")


def _problem_parts(inner: str) -> tuple:
    """(config, task, rule) of the tiny problem on inner algorithm `inner`: its registered example
    on 4-step episodes, so that every update ends some (a finite fitness)."""
    if inner == "ppo":
        return PPO, TASK, RULE
    config, task, rule = INNER_ALGOS[inner].example()
    return config, dataclasses.replace(task, episode_length=4), rule


def _fits(name: str, inner: str) -> bool:
    """Whether estimator `name` accepts the tiny problem of `inner` (its spec check)."""
    config, _, rule = _problem_parts(inner)
    try:
        validate_options(name, TINY.get(name, {}), rule, config, OBJECTIVE)
    except ValueError:
        return False
    return True


CASES = [
    (name, inner) for name in sorted(META_OPTIMIZERS) for inner in sorted(INNER_ALGOS) if _fits(name, inner)
]


def _shapes(tree):
    return jax.tree.map(lambda x: (jnp.shape(x), jnp.asarray(x).dtype), tree)


def _assert_bit_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # NaNs in place count as equal


def test_metagrad_refuses_an_inner_algorithm_without_rollout_loss(monkeypatch):
    entry = INNER_ALGOS["disco"]
    monkeypatch.setitem(INNER_ALGOS, "disco", dataclasses.replace(entry, rollout_loss=False))
    config, _, rule = entry.example()
    with pytest.raises(SpecError, match="rollout_loss, which inner algorithm 'disco' does not provide"):
        validate_options("metagrad", TINY["metagrad"], rule, config, OBJECTIVE)


def test_every_estimator_runs_on_some_inner_algorithm():
    for name in META_OPTIMIZERS:
        assert name in TINY, f"meta-optimizer {name!r} is registered: add its tiny options to TINY"
        assert any(n == name for n, _ in CASES), f"meta-optimizer {name!r} fits no inner algorithm"
    assert {inner for _, inner in CASES} == set(INNER_ALGOS)


# Cases whose tiny run compiles for minutes on the shared 2-core CPU: run with -m slow. The
# DiscoRL agent keeps ES in the default suite; the truncated estimators' disco cases (about a
# minute each to compile) run with -m slow.
SLOW_CASES = {
    ("metagrad", "disco"),  # reverse mode through the DiscoRL meta-network: 2.5 min
    ("pes", "disco"),
    ("truncated_es", "disco"),
}


@pytest.fixture(
    scope="module",
    params=[pytest.param(case, marks=pytest.mark.slow if case in SLOW_CASES else ()) for case in CASES],
    ids=[f"{n}-{i}" for n, i in CASES],
)
def run(request, tmp_path_factory):
    """One tiny meta-optimizer run: GENERATIONS jitted steps, then a resume from the state after
    the first, through the job's checkpointer. Shared by the tests of one case (one compile)."""
    name, inner = request.param
    config, task, rule = _problem_parts(inner)
    problem = Problem(rule, (task,), config, OBJECTIVE, inner=inner)
    opt = make_meta_optimizer(name, parse_options(name, TINY[name]), problem)
    traces = []

    def counted(state):
        traces.append(name)  # runs only while jax traces
        return opt.step(state)

    step = jax.jit(counted)
    # committed to a device, as the job's state is (a restored state is too: same jit cache entry)
    states, metrics = [jax.device_put(opt.init(jax.random.PRNGKey(0)), jax.devices()[0])], []
    for _ in range(GENERATIONS):
        state, m = step(states[-1])
        states.append(state)
        metrics.append(m)
    checkpointer = Checkpointer(tmp_path_factory.mktemp(name))
    checkpointer.save(1, states[1], {**dict.fromkeys(INFO_KEYS), "generation": 1})
    restored, _ = checkpointer.restore_latest(states[0])
    resumed = step(restored)
    return {
        "name": name,
        "rule": rule,
        "opt": opt,
        "states": states,
        "metrics": metrics,
        "traces": traces,
        "resumed": resumed,
        "num_tasks": len(problem.tasks),
    }


def test_params_have_the_rules_shapes(run):
    expected = _shapes(run["rule"].init(jax.random.PRNGKey(0)))
    for state in run["states"]:
        params = run["opt"].params(state)
        assert set(params) == {"mean", "best"}
        assert _shapes(params["mean"]) == expected and _shapes(params["best"]) == expected


def test_metrics_have_the_documented_keys_and_shapes(run):
    opt, metrics = run["opt"], run["metrics"][-1]
    assert set(METRIC_KEYS) <= set(metrics) <= set(METRIC_KEYS) | set(OPTIONAL_METRIC_KEYS), sorted(metrics)
    pop = opt.options.population_size
    assert metrics["fitness"].shape == (pop,)
    assert metrics["task_scores"].shape == (pop, run["num_tasks"])
    for key in ("num_nonfinite", "mean_fitness", "best_fitness"):
        assert metrics[key].shape == ()
    assert np.all(np.isfinite(metrics["fitness"])) and int(metrics["num_nonfinite"]) == 0
    assert bool(metrics.get("grad_finite", True))
    assert isinstance(opt.fitness_doc, str) and "higher is better" in opt.fitness_doc


def test_generations_trace_the_step_once(run):
    assert len(run["traces"]) == 1, run["traces"]  # the resumed step included


def test_resume_from_a_checkpoint_is_exact(run):
    state, metrics = run["resumed"]
    _assert_bit_equal(state, run["states"][2])
    _assert_bit_equal(metrics, run["metrics"][1])


# ---- rules ---------------------------------------------------------------------------------------


def _random_meta_params(rule, key):
    """The rule's meta-params moved off their initial values (random, of the same shapes)."""
    init = rule.init(key)
    leaves, tree = jax.tree.flatten(init)
    keys = jax.random.split(jax.random.fold_in(key, 1), max(len(leaves), 1))
    return jax.tree.unflatten(tree, [x + jax.random.normal(k, jnp.shape(x)) for x, k in zip(leaves, keys)])


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(RULES))
def test_exported_rule_files_round_trip_the_rule(name, tmp_path):
    rule = make_rule(name)
    meta_params = _random_meta_params(rule, jax.random.PRNGKey(3))
    save_rule(tmp_path / name, rule, meta_params, kind="mean")
    loaded, loaded_params, header = load_rule(tmp_path / name)
    assert type(loaded) is type(rule) and loaded == rule
    assert loaded.options() == rule.options() and header["kind"] == "mean"
    _assert_bit_equal(loaded_params, jax.device_get(meta_params))


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(n for n, cls in RULES.items() if cls.family == "drift"))
def test_drift_is_zero_at_ratio_one_for_any_advantage(name):
    rule = make_rule(name)
    meta_params = _random_meta_params(rule, jax.random.PRNGKey(5))
    advantage = jnp.concatenate(
        [jnp.array([0.0, 1e-6, -1e-6, 50.0, -50.0]), 3.0 * jax.random.normal(jax.random.PRNGKey(6), (64,))]
    )
    for progress in (0.0, 0.3, 1.0):
        drift = rule.apply(meta_params, DriftInputs(jnp.ones_like(advantage), advantage, progress))
        np.testing.assert_array_equal(drift, 0.0)
