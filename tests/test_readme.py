"""The README is a front page: at most 120 lines, the set-up commands first, and every number it
quotes from the stored study equal to the stored results it comes from (results/study_v3)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
STUDY = ROOT / "results" / "study_v3"
REPLICATES = [json.loads((STUDY / f"study_v3_seed{k}_eval" / "results.json").read_text()) for k in range(3)]

pytestmark = pytest.mark.fast


def _interval(stat: dict, digits: int) -> str:
    """'-0.155 [-0.313, -0.008]': a value and its CI as the README writes them."""
    value, (low, high) = stat["value"], stat["ci"]
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _current_result() -> str:
    return README.split("## Current result", 1)[1].split("\n## ", 1)[0].replace("\n", " ")


def test_the_readme_is_a_front_page():
    lines = README.splitlines()
    assert len(lines) <= 120
    first = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert first == [
        "pip install -e . && discover run runs/quickstart.toml",
        "pip install -e '.[test]' && python -m pytest",
    ]


def test_the_pooled_differences_quoted_are_the_stored_ones():
    quoted = re.findall(r"-?\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\]", _current_result())
    stored = [_interval(r["pooled_paired"][0]["normalized_difference"], 3) for r in REPLICATES]
    assert quoted == stored


def test_the_divergence_counts_quoted_are_the_stored_ones():
    counts = []
    for results in REPLICATES:
        rules = results["tasks"]["hopper/spring"]["rules"]
        counts.append({name: sum(r is None for r in e["final_returns"]) for name, e in rules.items()})
    a, b, c = (count[REPLICATES[0]["evaluated"]] for count in counts)
    (seeds,) = {results["seeds"] for results in REPLICATES}
    expected = f"hopper ({a}, {b} and {c} of {seeds} seeds; PPO-clip "
    assert expected in _current_result()
    assert {c["ppo_clip"] for c in counts} == {0} and "PPO-clip 0)" in _current_result()


def test_the_verdicts_quoted_are_the_stored_ones():
    """'all three are better on Breakout-MinAtar', and the pooled rules are 'no better'."""
    verdicts = [r["tasks"]["gymnax:Breakout-MinAtar"]["paired"][0]["verdict"] for r in REPLICATES]
    assert verdicts == ["better"] * 3 and "all three are better on Breakout-MinAtar" in _current_result()
    assert all(r["pooled_paired"][0]["verdict"] != "better" for r in REPLICATES)


def test_the_docs_list_is_the_site_navigation():
    """The README lists every page once, under the title the site's navigation gives it."""
    nav = re.findall(r"^\s+- \"?(.+?)\"?: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    listed = re.findall(r"\[([^\]]+)\]\(docs/([^)#]+\.md)\)", README.split("## Documentation", 1)[1])
    assert listed == [(title, page) for title, page in nav if page != "index.md"]
