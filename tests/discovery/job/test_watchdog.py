"""The watchdog: a stalled generation (or evaluation task) ends the process with a message and a
stack dump; `discover resume` then finishes the job exactly as an uninterrupted run.

The stall is injected with DISCOVER_TEST_STALL (`discovery.job.watchdog`): the named unit sleeps
an hour inside its guard, like a computation that never returns.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from discovery.evaluation import evaluate
from discovery.evaluation.sources import resolve_source
from discovery.job import checkpoint, watchdog
from discovery.rule_io import save_rule
from discovery.spec import SpecError, parse_job_spec
from inner_algos.rules import make_rule
from tests.support import tiny_job


@pytest.mark.fast
@pytest.mark.parametrize(
    "previous, factor, min_seconds, seconds",
    [
        ([1.0, 2.0, 30.0], 10.0, 5.0, 20.0),  # 10 x the median 2 s
        ([0.1, 0.2], 10.0, 5.0, 5.0),  # the minimum
        ([], 10.0, 5.0, 50.0),  # nothing to compare with: factor x minimum
    ],
)
def test_time_limit(previous, factor, min_seconds, seconds):
    assert watchdog.time_limit(previous, factor, min_seconds).seconds == pytest.approx(seconds)


@pytest.mark.fast
def test_factor_zero_turns_the_watchdog_off():
    assert watchdog.time_limit([1.0], 0.0, 5.0) is None


@pytest.mark.fast
@pytest.mark.parametrize(
    "values, message",
    [
        ({"watchdog": 0.5}, "job.watchdog = 0.5 must be >= 1"),
        ({"watchdog_min_seconds": 0}, "job.watchdog_min_seconds = 0.0 must be > 0"),
    ],
)
def test_bad_watchdog_keys_are_rejected(tmp_path, values, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_job_spec(tiny_job.table(tmp_path, job=values))


def report(text: str) -> tuple[float, float]:
    """(seconds the unit ran, its limit) from the watchdog's message."""
    match = re.search(r"has run for (\d+) s, over its limit of (\d+) s", text)
    assert match, text
    return float(match[1]), float(match[2])


@pytest.mark.slow  # the stalled evaluation below keeps the watchdog in the default suite
def test_stalled_generation_ends_the_job_and_resume_is_exact(tmp_path, monkeypatch):
    job = {"generations": 4, "checkpoint_every": 2, "watchdog": 10.0, "watchdog_min_seconds": 15.0}
    stalled_dir, reference_dir = tmp_path / "stalled", tmp_path / "reference"
    spec = tiny_job.write_spec(tmp_path / "spec.toml", stalled_dir, job=job)
    reference = tiny_job.discover(["run", str(spec), "--set", f"job.run_dir={reference_dir}"])
    monkeypatch.setenv(watchdog.STALL_ENV, "generation 3")
    start = time.monotonic()
    stalled = tiny_job.discover(["run", str(spec)])
    monkeypatch.delenv(watchdog.STALL_ENV)
    out = stalled.communicate(timeout=600)[0]
    elapsed = time.monotonic() - start

    assert stalled.returncode == watchdog.EXIT_CODE, out
    assert elapsed < watchdog.STALL_SECONDS / 4  # the watchdog, not the end of the stall, ended it
    ran, limit = report(out)
    durations = [r["generation_time"] for r in map(json.loads, (stalled_dir / "metrics.jsonl").open())]
    assert len(durations) == 2  # generations 1 and 2 finished
    assert limit == round(max(15.0, 10.0 * (durations[0] + durations[1]) / 2))
    assert limit <= ran <= limit + 5
    assert "generation 3" in out and "The last checkpoint (generation 2)" in out
    assert f"discover resume {stalled_dir}" in out
    dump = (stalled_dir / "stalled_generation_3.txt").read_text()
    assert "watchdog: generation 3 has run for" in dump
    assert "most recent call first" in dump and "in run_job" in dump and "in guard" in dump
    assert checkpoint.available_steps(stalled_dir) == [2]

    resumed = tiny_job.discover(["resume", str(stalled_dir)])
    out = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, out
    assert "resuming at generation 2" in out
    assert reference.communicate(timeout=600)[0] and reference.returncode == 0
    assert tiny_job.fitness_history(stalled_dir) == tiny_job.fitness_history(reference_dir)
    assert len(tiny_job.fitness_history(reference_dir)) == 4


def test_stalled_eval_task_ends_the_evaluation(tmp_path):
    """The first task (no earlier timing) has factor x minimum = 3 x 2 s to finish."""
    save_rule(tmp_path / "rule", make_rule("ppo_clip"), {}, train_tasks=["inverted_pendulum/spring"])
    out_dir = tmp_path / "eval"
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "discovery.cli",
            "eval",
            str(tmp_path / "rule.json"),
            "--seeds",
            "1",
            "--baselines",
            "",
            "--out",
            str(out_dir),
            "--watchdog",
            "3",
            "--watchdog-min-seconds",
            "2",
        ],
        env={**os.environ, watchdog.STALL_ENV: "task inverted_pendulum/spring"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == watchdog.EXIT_CODE, done.stdout + done.stderr
    assert time.monotonic() - start < watchdog.STALL_SECONDS / 4
    ran, limit = report(done.stderr)
    assert limit == 6 and 6 <= ran <= 11
    assert "run the same command again to continue from this task" in done.stderr
    dump = (out_dir / "stalled_task_inverted_pendulum_spring.txt").read_text()
    assert "most recent call first" in dump and "in run_eval" in dump
    assert not (out_dir / "results.json").exists()


@pytest.mark.fast
def test_bad_eval_watchdog_options_are_rejected(tmp_path):
    save_rule(tmp_path / "rule", make_rule("ppo_clip"), {})
    source = resolve_source(str(tmp_path / "rule.json"))
    with pytest.raises(ValueError, match=re.escape("--watchdog = 0.5 must be >= 1 (a factor) or 0")):
        evaluate.run_eval(
            source,
            ["inverted_pendulum/spring"],
            [],
            1,
            0,
            1,
            [],
            None,
            tmp_path / "eval",
            [],
            watchdog=(0.5, 300.0),
        )
