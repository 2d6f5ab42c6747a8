"""Divergence in the verdicts of `discover eval` and `discover replicates`: the sign test on
discordant seeds, the cell text, the no-verdict reason and the pooled row's exclusions, on
hand-made task results whose answers are worked out by hand, and on the stored study."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from discovery.evaluation import replicates
from discovery.evaluation import results as eval_results
from tests.support.builders import two_point_results

pytestmark = pytest.mark.fast  # small arrays and JSON files

STUDY = Path(__file__).resolve().parents[3] / "results" / "study_v3"
HOPPER_ROW = "hopper/spring (held-out)"


def _result(rule: list[float], baseline: list[float], random_return: float = 0.0) -> dict:
    """A task's results (as results.json stores them) with these final returns (NaN: diverged),
    the rule 'lpo' against the reference 'ppo_clip', paired entry included."""
    curves = {
        label: np.stack([np.zeros(len(v)), np.asarray(v, float)], axis=1)
        for label, v in (("lpo", rule), ("ppo_clip", baseline))
    }
    result = eval_results.json_ready(two_point_results(curves, False, random_return, "ppo_clip"))
    result["paired"] = eval_results.paired_task(result, [("lpo", "ppo_clip")])
    return result


def test_a_rule_diverging_on_37_of_40_seeds_is_worse_whatever_its_3_survivors_say():
    """PPO-clip finishes all 40 seeds at 10; the rule diverges on 37 and beats PPO-clip by 5 on the
    other 3. Discordant seeds: 37, all the rule's: p = 0.5**37 < 0.025, so worse; the paired
    difference alone (3 pairs, fewer than 5) would give no verdict."""
    result = _result([np.nan] * 37 + [15.0] * 3, [10.0] * 40)
    (entry,) = result["paired"]
    assert entry["divergence"] == {"rule": 37, "baseline": 0, "seeds": 40, "p_more": 0.5**37, "more": True}
    assert (entry["verdict"], entry["verdict_basis"], entry["no_verdict"]) == ("worse", "divergence", None)
    assert entry["difference"]["value"] == pytest.approx(5.0) and entry["pairs"] == 3
    assert eval_results.verdict_text(entry) == "worse (diverged 37/40, ppo_clip 0/40)"


def test_the_sign_test_counts_only_discordant_seeds():
    """6 discordant seeds all the rule's: p = 1/64 < 0.025 (more); 5: p = 1/32 (not); seeds where
    both diverged count for neither (10 of them here)."""
    both = np.array([True] * 10 + [False] * 30)
    rule6, rule5 = both.copy(), both.copy()
    rule6[10:16], rule5[10:15] = True, True
    assert eval_results.stats.divergence_test(rule6, both) == {
        "rule": 16,
        "baseline": 10,
        "seeds": 40,
        "p_more": 1 / 64,
        "more": True,
    }
    assert eval_results.stats.divergence_test(rule5, both)["p_more"] == pytest.approx(1 / 32)
    assert not eval_results.stats.divergence_test(rule5, both)["more"]
    assert eval_results.stats.divergence_test(both, both)["p_more"] == 1.0


def test_the_no_verdict_reason_says_the_seeds_diverged_not_to_raise_seeds():
    """Both rules diverge on seeds 0-35 and the rule on 36 too: 1 discordant seed (p = 1/2), 3
    paired seeds left of 40."""
    rule = [np.nan] * 37 + [12.0, 13.0, 14.0]
    result = _result(rule, [np.nan] * 36 + [10.0] * 4)
    (entry,) = result["paired"]
    assert entry["verdict"] is None and entry["verdict_basis"] is None
    assert entry["no_verdict"] == (
        "37 of 40 seeds diverged under lpo, 36 under ppo_clip: 3 paired seeds left; a verdict needs 5"
    )
    assert eval_results.verdict_text(entry) == "no verdict (diverged 37/40, ppo_clip 36/40)"
    few = _result([12.0, 13.0, 14.0], [10.0, 10.0, 10.0])["paired"][0]
    assert few["no_verdict"] == "3 paired seeds; a verdict needs 5 (raise --seeds)"
    assert eval_results.verdict_text(few) == "no verdict"


def test_a_few_diverged_seeds_leave_the_verdict_to_the_difference_and_are_named():
    """The rule diverges on 2 of 10 seeds, PPO-clip on none (p = 1/4): the 8 pairs gain +1..+8."""
    result = _result([np.nan, np.nan] + [11.0 + i for i in range(8)], [10.0] * 10)
    (entry,) = result["paired"]
    assert (entry["verdict"], entry["verdict_basis"]) == ("better", "paired difference")
    assert eval_results.verdict_text(entry) == "better (diverged 2/10, ppo_clip 0/10)"


def test_the_pooled_row_names_the_tasks_it_leaves_out_and_why():
    ok = _result([11.0 + i for i in range(5)], [10.0] * 5, random_return=5.0)
    diverged = _result([np.nan] * 37 + [15.0] * 3, [10.0] * 40, random_return=5.0)
    some = _result([np.nan] * 6 + [11.0] * 34, [10.0] * 40, random_return=5.0)
    (pooled,) = eval_results.paired_pooled({"a": ok, "b": diverged, "c": some}, [("lpo", "ppo_clip")])
    assert pooled["tasks"] == ["a", "c"]
    assert pooled["left_out_tasks"] == {
        "b": "37 of 40 seeds diverged under lpo, 0 under ppo_clip: 3 paired seeds left; a verdict needs 5"
    }
    assert pooled["diverged_more"] == ["c"]  # 6 discordant seeds, all the rule's: p = 1/64


def test_a_stored_entry_is_judged_again_alike():
    result = _result([np.nan] * 37 + [15.0] * 3, [10.0] * 40)
    (entry,) = result["paired"]
    old = {k: v for k, v in entry.items() if k not in ("divergence", "verdict_basis")}
    old.update(verdict=None, no_verdict="3 paired seeds; a verdict needs 5 (raise --seeds)")
    assert eval_results.judge(result, old) == entry


@pytest.fixture(scope="module")
def study_table(tmp_path_factory):
    """`discover replicates` on a copy of the stored study's three evaluations: its table."""
    root = tmp_path_factory.mktemp("study")
    dirs = [shutil.copytree(STUDY / f"study_v3_seed{i}_eval", root / f"seed{i}") for i in range(3)]
    data = replicates.run_replicates(dirs, root / "out", "seed0,seed1,seed2")
    return (root / "out" / "replicates.md").read_text(), data


@pytest.mark.skipif(not STUDY.is_dir(), reason="the stored study is not in this checkout")
def test_the_stored_study_is_worse_on_hopper_in_every_replicate_with_the_diverged_counts(study_table):
    text, data = study_table
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in text.splitlines()}
    cells = [c.strip() for c in rows[HOPPER_ROW]]
    assert cells[0].startswith("worse (diverged 37/40, ppo_clip 0/40), ")
    assert cells[1].startswith("worse (diverged 7/40, ppo_clip 0/40), ")
    assert cells[2].startswith("worse (diverged 9/40, ppo_clip 0/40), ")
    assert cells[3] == "better 0/3, worse 3/3 |"
    assert "raise --seeds" not in text
    assert "seed0: leaves out hopper/spring (37 of 40 seeds diverged under lpo gen 80 mean" in text
    hopper = next(row for row in data["rows"] if row["group"] == "hopper/spring")
    assert [e["verdict_basis"] for e in hopper["entries"].values()] == ["divergence"] * 3
    stored = json.loads((STUDY / "study_v3_seed0_eval" / "results.json").read_text())
    # precondition: the stored file predates the divergence verdict, so the cells above come from
    # judging it again, not from reading a stored verdict
    assert "divergence" not in stored["tasks"]["hopper/spring"]["paired"][0]


@pytest.mark.skipif(not STUDY.is_dir(), reason="the stored study is not in this checkout")
def test_the_studies_page_quotes_the_replicates_table_as_the_command_prints_it(study_table):
    text, _ = study_table
    page = (STUDY.parents[1] / "docs" / "studies.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table and all(line in page for line in table), "docs/studies.md: rerun discover replicates"
