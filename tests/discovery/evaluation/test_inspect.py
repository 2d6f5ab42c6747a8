"""`discover inspect`: source resolution, rule pictures on known rules, summary, fallbacks."""

import argparse
import types

import jax
import numpy as np
import pytest

from discovery.evaluation import inspect
from discovery.evaluation.sources import resolve_source, rule_hash
from discovery.rule_io import save_rule
from inner_algos.rules import make_rule
from tests.support.fabricate import lpo_params, make_run_dir

pytestmark = pytest.mark.fast  # pure functions: part of `python -m pytest -m fast`


def _cli(*argv):
    parser = argparse.ArgumentParser()
    inspect.register(parser.add_subparsers())
    args = parser.parse_args(["inspect", *argv])
    return args.func(args)


@pytest.mark.parametrize("eps", [0.2, 0.3])
def test_ppo_clip_drift_is_zero_inside_the_clip_range_on_the_picture_grid(eps):
    grid = inspect.drift_grid(make_rule("ppo_clip", eps=eps), {})
    assert grid.drift.shape == grid.weight.shape == (101, 101)
    assert grid.ratio[0] == 0.5 and grid.ratio[-1] == 1.5
    assert grid.advantage[0] == -2.0 and grid.advantage[-1] == 2.0
    r, a = np.meshgrid(grid.ratio, grid.advantage)
    inside = np.abs(r - 1.0) <= eps - 1e-6
    assert inside.sum() > 0 and np.all(grid.drift[inside] == 0.0)
    # inside the range the policy-gradient weight is the advantage; outside it is clipped to 0
    np.testing.assert_allclose(grid.weight[inside], a[inside], atol=1e-6)
    clipped = ((r > 1 + eps + 1e-6) & (a > 0)) | ((r < 1 - eps - 1e-6) & (a < 0))
    np.testing.assert_allclose(grid.weight[clipped], 0.0, atol=1e-6)
    np.testing.assert_allclose(
        grid.drift[clipped], ((r - np.clip(r, 1 - eps, 1 + eps)) * a)[clipped], rtol=1e-5
    )


def test_dpo_and_lpo_grids_vanish_at_ratio_one():
    for rule, params in ((make_rule("dpo"), {}), (make_rule("lpo", hidden_size=8), None)):
        params = lpo_params(rule, 1.0) if params is None else params
        grid = inspect.drift_grid(rule, params)
        at_one = np.argmin(np.abs(grid.ratio - 1.0))
        np.testing.assert_allclose(grid.drift[:, at_one], 0.0, atol=1e-6)
        np.testing.assert_allclose(grid.weight[:, at_one], grid.advantage, atol=1e-5)


def test_hyperparams_curve_at_init_is_the_defaults():
    rule = make_rule("hyperparams", progress_degree=1, gamma=0.97)
    progress, values = inspect.hyperparams_curve(rule, rule.init(jax.random.PRNGKey(0)), num=5)
    np.testing.assert_allclose(progress, np.linspace(0, 1, 5))
    np.testing.assert_allclose(values["gamma"], 0.97, rtol=1e-5)
    np.testing.assert_allclose(values["learning_rate"], 3e-4, rtol=1e-4)


def test_optimizer_grid_of_adam_follows_the_sign_of_the_gradients():
    grid = inspect.optimizer_grid(make_rule("adam"), {}, num=5)
    assert grid.update.shape == (5, 5)
    # constant history m then g, all of one sign: Adam moves along that sign
    assert grid.update[-1, -1] > 0 and grid.update[0, 0] < 0
    assert grid.update[2, 2] == 0.0  # no gradient ever: no update


def test_inspect_run_dir_prints_summary_and_writes_pngs(tmp_path, capsys):
    run = make_run_dir(tmp_path)
    assert _cli(str(run), "--out", str(tmp_path / "out")) == 0
    text = capsys.readouterr().out
    for expected in (
        "rule: lpo (family drift)",
        "generations done: 4",
        "best so far 8;",
        "checkpoint steps: [2, 4]",
        "trained on: inverted_pendulum/spring",
        "rules/gen_000004_mean",
        "wall time: 40.0 s",
        "env steps: 2,048",
    ):
        assert expected in text
    for name in ("fitness.png", "rule_drift.png"):
        assert (tmp_path / "out" / name).stat().st_size > 10_000


def test_inspect_two_sources_and_exported_rules_of_other_families(tmp_path, capsys):
    run = make_run_dir(tmp_path)
    hp = make_rule("hyperparams", progress_degree=2)
    save_rule(tmp_path / "hp", hp, hp.init(jax.random.PRNGKey(0)))
    opt = make_rule("learned_optimizer", hidden_size=4)
    save_rule(tmp_path / "opt.json", opt, opt.init(jax.random.PRNGKey(0)))
    out = tmp_path / "out"
    assert _cli(str(run), str(run / "checkpoints" / "2"), "--out", str(out)) == 0
    assert _cli(str(tmp_path / "hp.npz"), str(tmp_path / "opt.json"), "--out", str(out)) == 0
    for name in ("fitness.png", "rule_drift.png", "rule_hyperparams.png", "rule_optimizer.png"):
        assert (out / name).is_file()
    assert "lpo gen 2 mean" in capsys.readouterr().out


def test_replicates_side_by_side_are_told_apart_by_their_run_directories(tmp_path, capsys):
    runs = [make_run_dir(tmp_path / name).rename(tmp_path / name / name) for name in ("s0", "s1", "s2")]
    out = tmp_path / "out"
    assert _cli(*map(str, runs), "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert all(f"lpo gen 4 mean [{name}]" in text for name in ("s0", "s1", "s2"))
    assert (out / "rule_drift.png").is_file()
    same_names = [resolve_source(str(make_run_dir(tmp_path / name))) for name in ("a", "b")]
    assert [s.label for s in inspect.distinct_labels(same_names)] == [
        "lpo gen 4 mean [A]",
        "lpo gen 4 mean [B]",
    ]
    with pytest.raises(ValueError, match="at most 4 SOURCEs"):
        _cli(*[str(runs[0])] * 5)


def test_three_sources_draw_the_es_means_score_alone():
    xy = (np.arange(3), np.zeros(3))
    names = ["population mean", "population max", "ES mean", "best so far"]
    runs = ["running mean of the population mean (5 gen.)", "running mean of the ES mean (5 gen.)"]
    headline = inspect._headline(dict.fromkeys(names + runs, xy))
    assert list(headline) == ["ES mean", "running mean of the ES mean (5 gen.)"]
    no_es = inspect._headline(dict.fromkeys(["population mean", "population max", runs[0]], xy))
    assert list(no_es) == ["population mean", runs[0]]


def test_sources_pick_generation_and_member(tmp_path):
    run = make_run_dir(tmp_path)
    latest = resolve_source(str(run))
    assert latest.kind == "run" and latest.header["generation"] == 4 and latest.header["kind"] == "mean"
    best2 = resolve_source(str(run), generation=2, which="best")
    np.testing.assert_allclose(best2.meta_params["out"], lpo_params(best2.rule, 0.4)["out"], rtol=1e-6)
    step = resolve_source(str(run / "checkpoints" / "2"))
    assert step.kind == "checkpoint" and step.hash == resolve_source(str(run), generation=2).hash
    assert latest.hash != step.hash and len(latest.hash) == 64
    assert rule_hash(make_rule("ppo_clip", eps=0.2), {}) != rule_hash(make_rule("ppo_clip", eps=0.3), {})


def test_corrupt_newest_export_falls_back_with_the_file_named(tmp_path, capsys):
    run = make_run_dir(tmp_path)
    (run / "rules" / "gen_000004_mean.npz").write_bytes(b"truncated")
    source = resolve_source(str(run))
    assert source.header["generation"] == 2
    assert "gen_000004_mean.npz" in capsys.readouterr().err
    with pytest.raises(ValueError, match="gen_000004_mean.npz"):
        resolve_source(str(run), generation=4)


@pytest.mark.parametrize(
    "make_bad, match",
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: root, "neither a run directory"),
        (lambda root: make_run_dir(root), "generations available: \\[2, 4\\]"),
    ],
)
def test_bad_sources_name_the_problem(tmp_path, make_bad, match):
    (tmp_path / "x.txt").write_text("not a run")
    with pytest.raises(ValueError, match=match):
        resolve_source(str(make_bad(tmp_path)), generation=7 if "available" in match else None)


def test_summary_survives_null_and_corrupt_metrics_and_checkpoint_cuts_history(tmp_path, capsys):
    run = make_run_dir(tmp_path)
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"generation": 5, "fitness_mean": null, "fitness_max": null, "best_so_far": 8.0}\n')
        f.write('{"generation": 6, "fitness_me')  # a write cut short
    source = resolve_source(str(run))
    assert "metrics.jsonl line 6" in capsys.readouterr().err
    text = inspect.summary(source)
    assert "generations done: 5" in text and "population mean nan" in text
    assert [h["generation"] for h in resolve_source(str(run / "checkpoints" / "2")).fitness_history] == [1, 2]


def test_temporal_drift_is_drawn_at_three_lifetime_fractions(tmp_path, monkeypatch):
    rule = make_rule("lpo", hidden_size=4, ppo_init=False, temporal=True)
    params = jax.tree.map(lambda x: x + 0.5, rule.init(jax.random.PRNGKey(0)))
    early, late = (inspect.drift_grid(rule, params, progress=p) for p in (0.0, 1.0))
    assert np.abs(early.drift - late.drift).max() > 1e-2
    drawn = {}
    monkeypatch.setattr(
        inspect.plots,
        "heatmaps_figure",
        lambda path, x, y, columns, *a, **k: drawn.setdefault("titles", [t for t, _ in columns]),
    )
    source = types.SimpleNamespace(label="found", rule=rule, meta_params=params, header={})
    inspect._drift_picture(tmp_path / "rule_drift.png", [source])
    assert drawn["titles"] == [
        "found\nn/N = 0",
        "found\nn/N = 0.5",
        "found\nn/N = 1",
        "ppo_clip (eps=0.2)",
        "dpo",
    ]


def test_a_formula_reading_the_lifetime_fraction_is_drawn_at_three_fractions(tmp_path, monkeypatch):
    """A distilled formula in p is temporally aware though `temporal` is no option of its rule."""
    drawn = {}
    monkeypatch.setattr(
        inspect.plots,
        "heatmaps_figure",
        lambda path, x, y, columns, *a, **k: drawn.setdefault("titles", [t for t, _ in columns]),
    )
    rule = make_rule("symbolic", expression="relu((r - 1) * A * p)")
    source = types.SimpleNamespace(label="formula", rule=rule, meta_params={}, header={})
    inspect._drift_picture(tmp_path / "rule_drift.png", [source])
    assert drawn["titles"][:3] == ["formula\nn/N = 0", "formula\nn/N = 0.5", "formula\nn/N = 1"]
