"""`discover replicates`: the table, counts and target lines on hand-made results.json files whose
verdicts and numbers are known, --baseline, the refusals, and the files written."""

import argparse
import json

import pytest

from discovery.evaluation import plots, replicates
from discovery.evaluation.results import task_divergence

pytestmark = pytest.mark.fast  # reads small JSON files; one small figure

PENDULUM, HOPPER, INV = "gymnax:Pendulum-v1", "brax:hopper", "brax:inverted_pendulum"
HELD_OUT = {PENDULUM: True, HOPPER: True, INV: False}
RULE = "lpo gen 80 mean"


def _paired(rule, base, verdict, diff, ci, norm=None, reason=None):
    """A `results.paired_task` entry with the numbers given (norm: (value, lo, hi) or None)."""
    entry = {
        "rule": rule,
        "baseline": base,
        "pairs": 40,
        "left_out": 0,
        "difference": {"value": diff, "ci": list(ci)},
        "p_improvement": {"value": 0.5, "ci": [0.3, 0.7]},
        "detectable": (ci[1] - ci[0]) / 2,
        "verdict": verdict,
        "no_verdict": reason,
    }
    if norm is not None:
        entry["normalized_difference"] = {"value": norm[0], "ci": [norm[1], norm[2]]}
    return entry


def _pooled(rule, base, verdict, value, ci):
    return {
        "rule": rule,
        "baseline": base,
        "tasks": [PENDULUM, HOPPER, INV],
        "pairs": 120,
        "left_out": 0,
        "normalized_difference": {"value": value, "ci": list(ci)},
        "p_improvement": {"value": 0.6, "ci": [0.5, 0.7]},
        "verdict": verdict,
        "detectable": (ci[1] - ci[0]) / 2,
        "no_verdict": None,
    }


# per replicate, per task: (verdict, difference, CI) against ppo_clip; the same against dpo
PPO_CLIP = {
    "r0": {
        PENDULUM: ("better", 120.4, (40.2, 200.7)),
        HOPPER: ("better", 35.2, (5.1, 66.0)),
        INV: ("worse", -12.3, (-20.6, -4.1)),
        "pooled": ("better", 0.251, (0.102, 0.399)),
    },
    "r1": {
        PENDULUM: ("better", 80.6, (10.3, 150.9)),
        HOPPER: ("no difference at 95%", 2.5, (-10.3, 15.8)),
        INV: (None, 3.0, (-1.0, 7.0)),  # no verdict: the baseline does not beat random actions
        "pooled": ("better", 0.142, (0.031, 0.253)),
    },
    "r2": {
        PENDULUM: ("worse", -60.2, (-110.4, -9.9)),
        HOPPER: ("better", 14.9, (3.3, 27.6)),
        INV: ("better", 8.1, (2.2, 14.0)),
        "pooled": ("no difference at 95%", 0.021, (-0.088, 0.13)),
    },
}
DPO = {
    name: {task: ("worse", -7.5, (-9.5, -5.5)) for task in (PENDULUM, HOPPER, INV)}
    | {"pooled": ("worse", -0.5, (-0.7, -0.3))}
    for name in PPO_CLIP
}
NO_VERDICT = "ppo_clip does not beat the random agent (mean final return 1 <= 2): raise --budget"


def _results(name, tasks=(PENDULUM, HOPPER, INV), seeds=40, seed=0, held_out=None):
    """A results.json of `discover eval` of replicate `name` against ppo_clip (the reference) and
    dpo, with PPO_CLIP's and DPO's numbers (normalised differences: the raw ones / 100)."""
    held_out = held_out or HELD_OUT
    out = {"evaluated": RULE, "reference": "ppo_clip", "seeds": seeds, "seed": seed, "tasks": {}}
    for task in tasks:
        # a baseline against the reference first: only the evaluated rule's entries are read
        paired = [_paired("dpo", "ppo_clip", "worse", -1.0, (-2.0, -0.5), (-0.01, -0.02, -0.005))]
        for base, table in (("ppo_clip", PPO_CLIP), ("dpo", DPO)):
            verdict, diff, ci = table[name][task]
            norm = None if verdict is None else (diff / 100, ci[0] / 100, ci[1] / 100)
            paired.append(_paired(RULE, base, verdict, diff, ci, norm, None if verdict else NO_VERDICT))
        out["tasks"][task] = {
            "in_training_set": not held_out[task],
            "held_out": held_out[task],
            "env_steps": [0, 131072, 262144],
            "paired": paired,
        }
    out["pooled_paired"] = [_pooled("dpo", "ppo_clip", "worse", -0.01, (-0.02, -0.005))] + [
        _pooled(RULE, base, *table[name]["pooled"]) for base, table in (("ppo_clip", PPO_CLIP), ("dpo", DPO))
    ]
    return out


def _write(tmp_path, name, results):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(results))
    return folder


@pytest.fixture
def eval_dirs(tmp_path):
    return [_write(tmp_path, f"eval_{name}", _results(name)) for name in PPO_CLIP]


def _cli(*argv):
    parser = argparse.ArgumentParser()
    replicates.register(parser.add_subparsers())
    args = parser.parse_args(["replicates", *map(str, argv)])
    return args.func(args)


def _table(text):
    """{row label: [cells]} of the Markdown table in `text`."""
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_table_cells_counts_and_target_lines(eval_dirs, tmp_path, capsys):
    out = tmp_path / "side_by_side"
    assert _cli(*eval_dirs, "--names", "r0,r1,r2", "--out", out) == 0
    text = (out / "replicates.md").read_text()
    assert text in capsys.readouterr().out
    assert "| task | r0 | r1 | r2 | replicates |" in text
    table = _table(text)
    assert table[f"{PENDULUM} (held-out)"] == [
        "better, 120 [40, 201]",
        "better, 81 [10, 151]",
        "worse, -60 [-110, -10]",
        "better 2/3, worse 1/3",
    ]
    assert table[f"{HOPPER} (held-out)"] == [
        "better, 35.2 [5.1, 66.0]",
        "no difference at 95%, 2.5 [-10.3, 15.8]",
        "better, 14.9 [3.3, 27.6]",
        "better 2/3, worse 0/3",
    ]
    assert table[f"{INV} (training task)"] == [
        "worse, -12.3 [-20.6, -4.1]",
        "no verdict, 3.0 [-1.0, 7.0]",
        "better, 8.1 [2.2, 14.0]",
        "better 1/3, worse 1/3",
    ]
    assert table["pooled (normalised by ppo_clip)"] == [
        "better, 0.251 [0.102, 0.399]",
        "better, 0.142 [0.031, 0.253]",
        "no difference at 95%, 0.021 [-0.088, 0.130]",
        "better 2/3, worse 0/3",
    ]
    assert list(table) == [f"{PENDULUM} (held-out)", f"{HOPPER} (held-out)", f"{INV} (training task)"] + [
        "pooled (normalised by ppo_clip)"
    ]
    # r0: better on both held-out tasks (its worse task is a training task), pooled better
    assert "- r0: held-out tasks: better on 2, worse on 0; pooled: better; meets the target" in text
    assert "- r1: held-out tasks: better on 1, worse on 0; pooled: better; does not meet the target" in text
    r2 = "- r2: held-out tasks: better on 1, worse on 1; pooled: no difference at 95%;"
    assert f"{r2} does not meet the target" in text
    assert f"- r1 on {INV}: {NO_VERDICT}" in text


def test_the_thresholds_are_arguments(eval_dirs, tmp_path):
    data = replicates.run_replicates(eval_dirs, tmp_path / "out", "r0,r1,r2", min_better=1)
    assert [r["meets_target"] for r in data["replicates"]] == [True, True, False]
    assert (
        "better on >= 1 held-out tasks, worse on none, pooled better"
        in (tmp_path / "out" / "replicates.md").read_text()
    )
    data = replicates.run_replicates(eval_dirs, tmp_path / "out", "r0,r1,r2", max_worse=1, pooled="better")
    assert [r["meets_target"] for r in data["replicates"]] == [True, False, False]


def test_baseline_picks_the_other_comparison(eval_dirs, tmp_path):
    _cli(*eval_dirs, "--baseline", "dpo", "--out", tmp_path / "out")
    text = (tmp_path / "out" / "replicates.md").read_text()
    table = _table(text)
    assert table[f"{HOPPER} (held-out)"] == ["worse, -7.50 [-9.50, -5.50]"] * 3 + ["better 0/3, worse 3/3"]
    assert table["pooled (normalised by ppo_clip)"][-1] == "better 0/3, worse 3/3"
    assert "against dpo" in text
    assert (
        "- eval_r0: held-out tasks: better on 0, worse on 2; pooled: worse; does not meet the target" in text
    )


def test_json_and_png_are_written(eval_dirs, tmp_path):
    out = tmp_path / "out"
    _cli(*eval_dirs, "--names", "r0,r1,r2", "--out", out)
    data = json.loads((out / "replicates.json").read_text())
    assert data["baseline"] == "ppo_clip" and data["seeds"] == 40 and data["seed"] == 0
    assert [r["name"] for r in data["replicates"]] == ["r0", "r1", "r2"]
    assert [r["held_out_better"] for r in data["replicates"]] == [2, 1, 1]
    assert [r["pooled_verdict"] for r in data["replicates"]] == ["better", "better", "no difference at 95%"]
    pooled = data["rows"][-1]
    assert pooled["group"] == "pooled" and (pooled["better"], pooled["worse"]) == (2, 0)
    assert pooled["entries"]["r2"]["normalized_difference"] == {"value": 0.021, "ci": [-0.088, 0.13]}
    assert data["rows"][0]["entries"]["r0"]["difference"]["value"] == 120.4
    assert (out / "replicates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_groups_hold_one_entry_per_replicate(eval_dirs, tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "paired_figure", lambda path, groups, title, ref: drawn.update(groups=groups))
    replicates.run_replicates(eval_dirs, tmp_path / "out", "r0,r1,r2")
    groups = drawn["groups"]
    assert list(groups) == [
        f"{PENDULUM} (held-out)",
        f"{HOPPER} (held-out)",
        f"{INV} (training task)",
        "all tasks (pooled)",
    ]
    assert [e["rule"] for e in groups[f"{PENDULUM} (held-out)"]] == ["r0", "r1", "r2"]
    # r1 has no normalised scores on the inverted pendulum: left out of the figure
    assert [e["rule"] for e in groups[f"{INV} (training task)"]] == ["r0", "r2"]
    assert groups["all tasks (pooled)"][2]["normalized_difference"]["value"] == 0.021


def test_refuses_a_missing_or_unreadable_results_file(eval_dirs, tmp_path):
    empty = tmp_path / "not_evaluated"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"not_evaluated: no results.json.*discover eval"):
        replicates.load_replicates([eval_dirs[0], empty])
    (empty / "results.json").write_text("{ half a file")
    with pytest.raises(ValueError, match=r"not_evaluated/results.json is unreadable.*rerun"):
        replicates.load_replicates([eval_dirs[0], empty])
    (empty / "results.json").write_text(json.dumps({"evaluated": RULE}))
    with pytest.raises(ValueError, match=r"not_evaluated/results.json is not the results.*no reference"):
        replicates.load_replicates([eval_dirs[0], empty])


def test_refuses_a_baseline_without_paired_entries(eval_dirs):
    with pytest.raises(
        ValueError, match=r"eval_r0/results.json has no paired comparison.*'a2c'.*dpo, ppo_clip"
    ):
        replicates.load_replicates(eval_dirs, baseline="a2c")


def test_refuses_replicates_on_different_tasks(eval_dirs, tmp_path):
    other = _write(tmp_path, "eval_short", _results("r1", tasks=(PENDULUM, INV)))
    with pytest.raises(
        ValueError, match=r"eval_short and .*eval_r0 were evaluated on different tasks"
    ) as err:
        replicates.load_replicates([eval_dirs[0], other])
    assert f"only in {eval_dirs[0]}: {HOPPER}" in str(err.value)


def test_refuses_replicates_with_different_seeds(eval_dirs, tmp_path):
    other = _write(tmp_path, "eval_s20", _results("r1", seeds=20))
    with pytest.raises(ValueError, match=r"eval_s20 and .*--seeds 20 --seed 0 against --seeds 40 --seed 0"):
        replicates.load_replicates([eval_dirs[0], other])
    other = _write(tmp_path, "eval_seed3", _results("r1", seed=3))
    with pytest.raises(ValueError, match=r"eval_seed3 and .*--seeds 40 --seed 3 against --seeds 40 --seed 0"):
        replicates.load_replicates([eval_dirs[0], other])


def test_refuses_replicates_that_disagree_on_held_out_tasks(eval_dirs, tmp_path):
    other = _write(tmp_path, "eval_trained", _results("r1", held_out={**HELD_OUT, HOPPER: False}))
    with pytest.raises(ValueError, match=rf"eval_trained and .* disagree on whether {HOPPER} is held out"):
        replicates.load_replicates([eval_dirs[0], other])


def test_names_default_to_folders_and_must_match_in_number(eval_dirs, tmp_path):
    assert replicates.replicate_names(eval_dirs, None) == ["eval_r0", "eval_r1", "eval_r2"]
    with pytest.raises(ValueError, match="--names a,b: 2 names for 3 EVAL_DIRs"):
        replicates.replicate_names(eval_dirs, "a,b")
    with pytest.raises(ValueError, match="names repeat"):
        replicates.replicate_names(eval_dirs, "a,b,a")


def _curves(diverged, seeds=40):
    """Curves `[seeds, 2]` as results.json stores them: the first `diverged` seeds null at the end."""
    return [[0.0, None] if i < diverged else [0.0, 1.0] for i in range(seeds)]


def test_a_rule_that_diverges_far_more_often_is_worse_even_without_a_verdict(tmp_path):
    """r0's rule diverges on 37 of 40 hopper seeds, PPO-clip on none: 3 pairs, no verdict by the
    paired statistics, but the exact sign test on the 37 discordant seeds (p = 0.5**37) makes the
    task worse. r1's rule diverges on seeds 0-2, PPO-clip on seed 0 (discordant 2 vs 0, p = 0.5**2):
    not significant, its verdict stands."""
    folders = []
    for name, rule_diverged, base_diverged in (("r0", 37, 0), ("r1", 3, 1)):
        results = _results(name)
        hopper = results["tasks"][HOPPER]
        hopper["rules"] = {
            RULE: {"curves": _curves(rule_diverged)},
            "ppo_clip": {"curves": _curves(base_diverged)},
        }
        folders.append(_write(tmp_path, f"eval_{name}", results))
    out = tmp_path / "side_by_side"
    assert _cli(*folders, "--names", "r0,r1", "--out", out) == 0
    table = _table((out / "replicates.md").read_text())
    cells = table[f"{HOPPER} (held-out)"]
    assert cells[0] == "worse (diverged 37/40, ppo_clip 0/40), 35.2 [5.1, 66.0]"
    assert cells[1] == "no difference at 95% (diverged 3/40, ppo_clip 1/40), 2.5 [-10.3, 15.8]"
    assert cells[2] == "better 0/2, worse 1/2"
    data = json.loads((out / "replicates.json").read_text())
    assert data["replicates"][0]["held_out_worse"] == 1 and data["replicates"][0]["held_out_better"] == 1
    divergence = task_divergence(results["tasks"][HOPPER], RULE, "ppo_clip")
    assert divergence == {"rule": 3, "baseline": 1, "seeds": 40, "p_more": 0.25, "more": False}
