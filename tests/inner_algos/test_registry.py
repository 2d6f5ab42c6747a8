"""The inner-algorithm contract and the registries of inner algorithms and rule families, walked
from the registries: registering a new inner algorithm or family adds it to these tests.

Every registered inner algorithm, built from its registered example with a rule of every family
it has a slot for, satisfies `inner_algos.contract` (by `jax.eval_shape`: nothing runs); one tiny
step of it gives finite returns metrics. Unknown names and unsupported family / algorithm pairs
are errors naming what is registered; a spec without [inner] runs PPO, one naming an unknown
inner algorithm is a SpecError naming inner.name; every registered family has a picture in
`discover inspect` or its "no picture" line; every registered algorithm's default baselines of
`discover eval` are fixed rules it has a slot for.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.evaluation import inspect
from discovery.spec import SpecError, parse_job_spec
from inner_algos.contract import METRIC_KEYS, check_inner_algo, lifetime_diverged
from inner_algos.registry import INNER_ALGOS, inner_algo_entry, make_inner_algo, register_inner_algo
from inner_algos.rules import FAMILIES, RULES, check_supported, get_family, make_rule, register_family
from tests.support import tiny_job

PAIRS = [
    (algo, rule)
    for algo in sorted(INNER_ALGOS)
    for rule in sorted(RULES)
    if algo in FAMILIES[RULES[rule].family].inner_algos
]


def test_every_rule_belongs_to_a_registered_family_and_every_family_to_a_registered_algorithm():
    for name, cls in RULES.items():
        assert cls.family in FAMILIES, f"rule {name!r} has the unregistered family {cls.family!r}"
    for family in FAMILIES.values():
        assert family.inner_algos, f"family {family.name!r} has no inner algorithm"
        for algo in family.inner_algos:
            assert algo in INNER_ALGOS, f"family {family.name!r} names the unregistered {algo!r}"


def test_every_registered_algorithm_takes_some_family():
    for name in INNER_ALGOS:
        assert any(a == name for a, _ in PAIRS), f"no registered rule fits inner algorithm {name!r}"


@pytest.mark.parametrize(("algo", "rule"), PAIRS, ids=[f"{a}-{r}" for a, r in PAIRS])
def test_every_registered_algorithm_keeps_the_contract_with_every_family_it_takes(algo, rule):
    config, task, _ = INNER_ALGOS[algo].example()
    inner = make_inner_algo(algo, config, task, make_rule(rule))
    check_inner_algo(inner)
    # the registry's ability (what the spec checks) says what the built algorithm provides
    assert (inner.rollout_loss is not None) == INNER_ALGOS[algo].rollout_loss


@pytest.mark.parametrize("algo", sorted(INNER_ALGOS))
def test_one_step_of_every_registered_algorithm_gives_the_contract_metrics_and_divergence(algo):
    """...and `lifetime_diverged` flags a NaN planted in any parameter leaf, in the observation
    statistics (where the state has them) or in any loss of any update, for every algorithm."""
    config, task, rule = INNER_ALGOS[algo].example()
    inner = make_inner_algo(algo, config, task, rule)
    meta = rule.init(jax.random.PRNGKey(0))
    state = inner.init(meta, jax.random.PRNGKey(1))
    state, metrics = jax.jit(inner.step)(meta, state)
    assert int(state.update) == 1
    for key in (*METRIC_KEYS, *inner.loss_metrics):
        assert np.shape(metrics[key]) == ()
    for key in inner.loss_metrics:
        assert np.isfinite(metrics[key]), key
    stacked = {k: jnp.stack([v, v]) for k, v in metrics.items()}  # a lifetime of two updates
    assert not bool(lifetime_diverged(inner, state, stacked))
    planted = [_nan_in_last_leaf(state, "params")]
    planted += [_nan_in_last_leaf(state, "obs_stats")] if hasattr(state, "obs_stats") else []
    for broken in planted:
        assert bool(lifetime_diverged(inner, broken, stacked))
    for key in inner.loss_metrics:
        assert bool(lifetime_diverged(inner, state, {**stacked, key: stacked[key].at[1].set(jnp.nan)})), key


def _nan_in_last_leaf(state, field: str):
    """`state` with one entry of the last leaf of `state.<field>` set to NaN."""
    leaves, tree = jax.tree.flatten(getattr(state, field))
    leaves[-1] = jnp.asarray(leaves[-1], jnp.float32).ravel().at[0].set(jnp.nan).reshape(leaves[-1].shape)
    return state.replace(**{field: jax.tree.unflatten(tree, leaves)})


def test_check_inner_algo_names_what_is_missing():
    config, task, rule = INNER_ALGOS["ppo"].example()
    algo = make_inner_algo("ppo", config, task, rule)

    def step(meta_params, state):
        state, metrics = algo.step(meta_params, state)
        return state, {k: v for k, v in metrics.items() if k != "num_episodes"}

    with pytest.raises(ValueError, match="step's metrics lack 'num_episodes'"):
        check_inner_algo(algo._replace(step=step))


def test_unknown_inner_algorithm_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"inner.name = 'nope' is unknown; registered inner algorithms: "):
        inner_algo_entry("nope")
    config, task, rule = INNER_ALGOS["ppo"].example()
    with pytest.raises(ValueError, match="registered inner algorithms: .*ppo"):
        make_inner_algo("nope", config, task, rule)


def test_unknown_family_lists_the_registered_ones():
    with pytest.raises(
        ValueError, match=r"rule family 'nope' is not registered; registered: (\w+, )*drift, "
    ):
        get_family("nope")


def test_a_family_without_a_slot_in_the_algorithm_is_an_error(monkeypatch):
    monkeypatch.setitem(FAMILIES, "drift", FAMILIES["drift"].__class__("drift", "a drift", ("other",)))
    with pytest.raises(ValueError, match=r"family 'drift' .*inner algorithm 'ppo' has no slot for"):
        check_supported(make_rule("dpo"), "ppo")
    config, task, rule = INNER_ALGOS["ppo"].example()
    with pytest.raises(ValueError, match="has no slot for"):
        make_inner_algo("ppo", config, task, make_rule("dpo"))


def test_registering_a_family_twice_differently_is_an_error():
    register_family("drift", FAMILIES["drift"].slot, FAMILIES["drift"].inner_algos)  # the same: fine
    with pytest.raises(ValueError, match="registered twice"):
        register_family("drift", "something else", ("ppo",))


def test_two_algorithms_may_not_share_a_spec_section(monkeypatch):
    monkeypatch.setattr("inner_algos.registry.INNER_ALGOS", dict(INNER_ALGOS))
    entry = INNER_ALGOS["ppo"]
    with pytest.raises(ValueError, match=r"section \[ppo\] already configures inner algorithm 'ppo'"):
        register_inner_algo("ppo2", entry.make, entry.config_cls, example=entry.example, section="ppo")


@pytest.mark.parametrize("algo", sorted(INNER_ALGOS))
def test_every_registered_algorithm_has_fixed_default_baselines_it_has_a_slot_for(algo):
    baselines = INNER_ALGOS[algo].baselines
    assert baselines, f"inner algorithm {algo!r} has no default baselines for discover eval"
    for name in baselines:
        rule = make_rule(name)
        assert jax.tree.leaves(rule.init(jax.random.PRNGKey(0))) == [], f"{name!r} has meta-parameters"
        check_supported(rule, algo)


def test_the_default_baselines_of_ppo_and_lpg():
    assert INNER_ALGOS["ppo"].baselines == ("ppo_clip", "dpo")
    assert INNER_ALGOS["lpg"].baselines == ("a2c",)


def test_a_default_baseline_the_algorithm_has_no_slot_for_is_refused_at_registration(monkeypatch):
    monkeypatch.setattr("inner_algos.registry.INNER_ALGOS", dict(INNER_ALGOS))
    entry = INNER_ALGOS["ppo"]
    with pytest.raises(ValueError, match=r"inner algorithm 'ppo2': default baseline 'a2c': .*no slot for"):
        register_inner_algo("ppo2", entry.make, entry.config_cls, example=entry.example, baselines=("a2c",))
    with pytest.raises(ValueError, match=r"default baseline 'nope': rule.name = 'nope' is unknown"):
        register_inner_algo("ppo2", entry.make, entry.config_cls, example=entry.example, baselines=("nope",))


def test_a_config_of_another_type_is_refused():
    _, task, rule = INNER_ALGOS["ppo"].example()
    with pytest.raises(TypeError, match="takes a PPOConfig"):
        make_inner_algo("ppo", {"num_envs": 2}, task, rule)


# --- the spec's [inner] -------------------------------------------------------------------


def test_a_spec_without_inner_runs_ppo_and_its_resolved_table_has_no_inner(tmp_path):
    spec = parse_job_spec(tiny_job.table(tmp_path))
    assert spec.inner == "ppo"
    assert type(spec.inner_config).__name__ == "PPOConfig"
    assert "inner" not in spec.table and "ppo" in spec.table


def test_inner_name_ppo_is_the_same_spec(tmp_path):
    table = tiny_job.table(tmp_path)
    explicit = parse_job_spec({**table, "inner": {"name": "ppo"}})
    assert explicit == parse_job_spec(table)


def test_an_unknown_inner_algorithm_is_a_spec_error_naming_the_field(tmp_path):
    message = r"'lpx' is unknown \(did you mean 'lpg'\?\); registered inner algorithms"
    with pytest.raises(SpecError, match=message):
        parse_job_spec({**tiny_job.table(tmp_path), "inner": {"name": "lpx"}})


def test_an_unknown_inner_key_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match=r"inner.nme"):
        parse_job_spec({**tiny_job.table(tmp_path), "inner": {"nme": "ppo"}})


def test_a_rule_the_inner_algorithm_has_no_slot_for_is_a_spec_error(tmp_path, monkeypatch):
    monkeypatch.setitem(FAMILIES, "drift", FAMILIES["drift"].__class__("drift", "a drift", ("other",)))
    table = tiny_job.table(tmp_path)
    table["rule"] = {"name": "dpo"}
    with pytest.raises(SpecError, match=r"rule.name = 'dpo': .*inner algorithm 'ppo' has no slot for"):
        parse_job_spec(table)


# --- discover inspect ------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_inspect_has_a_picture_or_says_it_has_none_for_every_registered_family(family):
    if family not in inspect.PICTURES:
        assert inspect.no_picture(family) == f"no picture for this family ({family})"
    else:
        assert callable(inspect.PICTURES[family])


def test_inspect_prints_no_picture_for_a_family_without_one(tmp_path, capsys, monkeypatch):
    import types

    rule = make_rule("dpo")
    source = types.SimpleNamespace(rule=rule, fitness_history=[], label="x", tag="", header={})
    monkeypatch.setattr(inspect, "PICTURES", {})
    monkeypatch.setattr(inspect, "summary", lambda s: "summary")
    assert inspect.run_inspect([source], tmp_path) == []
    assert "no picture for this family (drift)" in capsys.readouterr().out


def test_results_record_a_config_under_its_own_spec_section():
    from inner_algos.lpg import LPGConfig
    from inner_algos.ppo import PPOConfig
    from inner_algos.registry import config_section

    assert config_section(PPOConfig()) == "ppo"
    assert config_section(LPGConfig()) == "lpg"
    with pytest.raises(TypeError, match="dict is the config of no registered inner algorithm"):
        config_section({})


@pytest.mark.fast
def test_an_empty_baseline_rule_is_the_inner_algorithms_reference_baseline():
    from inner_algos.registry import default_baseline
    from meta_objectives import MetaObjective

    assert (default_baseline("ppo"), default_baseline("lpg")) == ("ppo_clip", "a2c")
    paired = MetaObjective(normalize="paired")
    assert paired.with_baseline_rule("lpg").baseline_rule == "a2c"
    assert paired.with_baseline_rule("ppo").baseline_rule == "ppo_clip"
    given = MetaObjective(normalize="paired", baseline_rule="dpo")
    assert given.with_baseline_rule("ppo") is given
