"""The zoo of published rules: names, loading, licence files, and `zoo:` sources."""

from pathlib import Path

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from discovery.evaluation.inspect import summary
from discovery.evaluation.sources import resolve_source
from discovery.zoo import PUBLISHED, data_path, get_published, published_names, register_published

NAMES = [
    f"open/{n}" for n in ("ant", "asterix", "breakout", "freeway", "gridworld", "multi", "spaceinvaders")
]


@pytest.mark.fast
def test_every_entry_loads_and_open_vectors_are_the_shipped_files():
    get_published("dpo")  # registers the shipped entries
    assert set(NAMES + ["dpo", "ppo_clip"]) <= set(published_names())
    for name in NAMES:
        entry = get_published("zoo:" + name)
        rule, meta = entry.load()
        assert rule.name == "open" and entry.family == "optimizer"
        np.testing.assert_array_equal(ravel_pytree(meta)[0], np.load(entry.path))
        assert "2407.07082" in entry.about and "b65037bd" in entry.about and "Apache-2.0" in entry.about
    assert get_published("open/multi").load()[0].options()["hidden_size"] == 32
    assert get_published("dpo").load()[0].options() == {"alpha": 2.0, "beta": 0.6}
    assert get_published("ppo_clip").load() == (get_published("ppo_clip").rule(), {})


def test_the_disco103_entry_loads_the_published_weights_into_the_disco_rule():
    from discovery.zoo.disco import WEIGHTS, load_disco103
    from inner_algos.rules.disco import DiscoRule

    entry = get_published("zoo:disco/disco103")
    rule, meta = entry.load()
    assert rule == DiscoRule() and entry.family == "disco" and entry.path == WEIGHTS
    expected = load_disco103()[1]
    assert jax.tree.structure(meta) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(meta), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(a, b)
    with np.load(WEIGHTS) as flat:  # every published number is in the meta-params
        assert sum(x.size for x in jax.tree.leaves(meta)) == sum(v.size for v in flat.values())


@pytest.mark.fast
def test_licence_and_source_beside_the_weights():
    folder = data_path("open")
    assert "Apache License" in (folder / "LICENSE").read_text()
    source = (folder / "SOURCE.md").read_text()
    assert "b65037bd" in source and "2407.07082" in source
    assert len(list(folder.glob("*_OPEN.npy"))) == 7


@pytest.mark.fast
def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="did you mean 'zoo:open/breakout'") as err:
        get_published("zoo:open/brekout")
    assert "zoo:ppo_clip" in str(err.value)
    with pytest.raises(ValueError, match="already registered"):
        register_published(PUBLISHED["dpo"])


@pytest.mark.fast
def test_zoo_source_for_eval_and_inspect():
    source = resolve_source("zoo:open/breakout")
    assert source.kind == "zoo" and source.label == "zoo:open/breakout"
    assert source.rule_path.name == "breakout_OPEN.npy"
    text = summary(source)
    assert "NeurIPS 2024" in text and "github.com/AlexGoldie/rl-learned-optimization" in text
    assert resolve_source("zoo:dpo").rule.name == "dpo"
    with pytest.raises(ValueError, match="--generation"):
        resolve_source("zoo:dpo", generation=3)
    with pytest.raises(ValueError, match="unknown"):
        resolve_source("zoo:nothing")


@pytest.mark.fast
def test_open_entries_carry_opens_minatar_ppo():
    from discovery.evaluation.evaluate import eval_settings

    source = resolve_source("zoo:open/breakout")
    assert source.train_tasks == ["gymnax:Breakout-MinAtar"]
    [(config, task)] = eval_settings(source, ["gymnax:Breakout-MinAtar@65536"], [], None)
    assert (config.num_envs, config.rollout_length, config.num_epochs, config.num_minibatches) == (
        64,
        128,
        4,
        8,
    )
    assert config.actor_hidden == (64, 64) and config.activation == "relu" and config.value_clip
    assert (config.ent_coef, config.clip_eps, config.learning_rate, config.num_updates) == (
        0.01,
        0.2,
        1e-2,
        8,
    )
    assert len(resolve_source("zoo:open/multi").train_tasks) == 4
    assert resolve_source("zoo:open/ant").spec == {}


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_the_search_from_breakout_starts_exactly_at_the_published_vector(tmp_path):
    """runs/open_from_breakout.toml (`[rule] init_from = "zoo:open/breakout"`): the first
    generation's ES mean, flattened in OPEN's order, is the authors' file unchanged."""
    import jax

    from discovery.job.runner import Job
    from discovery.spec import load_toml

    table = load_toml(Path(__file__).parents[2] / "runs" / "open_from_breakout.toml")
    table["job"]["run_dir"] = str(tmp_path / "run")
    job = Job(table, progress=False)
    job.build()
    state = job.restore()
    job.ckpt.close()
    mean = jax.device_get(job.optimizer.params(state)["mean"])
    published = np.load(get_published("open/breakout").path)
    np.testing.assert_array_equal(ravel_pytree(mean)[0], published)
    assert job.spec.rule.name == "open" and job.spec.rule.options()["gru_size"] == 8


def test_the_metagrad_from_disco103_starts_exactly_at_the_published_weights():
    """runs/disco_from_disco103.toml (`[rule] init_from = "zoo:disco/disco103"`, inner "disco",
    metagrad) parses and validates, and the first generation's meta-params (the meta-optimizer's
    state before any meta-update, built and initialised as the job does) are the published
    weights bit for bit. The init runs with a tiny agent, one run and one task, which leaves the
    rule and its start alone: the full-size init compiles for half a minute."""
    from discovery.meta_opt import make_meta_optimizer
    from discovery.meta_opt.problem import Problem
    from discovery.spec import apply_overrides, load_toml, parse_job_spec
    from discovery.zoo.disco import load_disco103
    from tests.support.shrink import TINY_INNER

    table = load_toml(Path(__file__).parents[2] / "runs" / "disco_from_disco103.toml")
    spec = parse_job_spec(table, resolve_source)
    assert (spec.inner, spec.meta_optimizer, spec.rule.name) == ("disco", "metagrad", "disco")
    tiny = apply_overrides(table, [*TINY_INNER["disco"], "meta_optimizer.num_runs=1"])
    spec = parse_job_spec({**tiny, "tasks": tiny["tasks"][:1]}, resolve_source)
    problem = Problem(
        spec.rule,
        spec.tasks,
        spec.inner_config,
        spec.meta_objective,
        inner=spec.inner,
        init_params=spec.init_params,
    )
    optimizer = make_meta_optimizer(spec.meta_optimizer, spec.meta_optimizer_options, problem)
    state = jax.jit(optimizer.init)(jax.random.PRNGKey(spec.job.seed))
    published_rule, published = load_disco103()
    assert spec.rule == published_rule
    mean = jax.device_get(optimizer.params(state)["mean"])
    assert jax.tree.structure(mean) == jax.tree.structure(published)
    for got, want in zip(jax.tree.leaves(mean), jax.tree.leaves(published)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.fast
def test_opens_adam_is_a_baseline_with_the_authors_settings():
    """The Adam OPEN was compared with (learn-rl-algorithms configs.py B1 0.9, B2 0.99; eps 1e-5 of
    its eval_lpo_symbolic.py), not our default b2 0.999: a baseline by zoo name."""
    from discovery.evaluation.runs import baseline_entries

    [entry] = baseline_entries(["zoo:open/adam"], "ppo")
    assert entry.baseline and entry.rule.name == "adam"
    assert (entry.rule.b1, entry.rule.b2, entry.rule.eps) == (0.9, 0.99, 1e-5)
    assert "5c52f686" in get_published("open/adam").about
