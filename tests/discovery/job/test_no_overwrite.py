"""A job never overwrites generations it cannot continue: `discover run`/`resume` on a run
directory whose metrics.jsonl holds records but which has no checkpoint (a stored run such as
results/study_v3/*, kept without its checkpoints) refuses, naming the fix; `--restart` moves the
old files into `replaced-<UTC time>/` and deletes nothing."""

import datetime
import shutil
from pathlib import Path

import pytest

from discovery.job import files
from discovery.spec import SpecError, dump_toml, load_toml, parse_job_spec
from tests.support import tiny_job

STORED = Path(__file__).parents[3] / "results" / "study_v3" / "study_v3_seed0"


def _snapshot(run_dir: Path) -> dict:
    """{relative path: bytes} of every file under run_dir."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _stored_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "study_v3_seed0"
    shutil.copytree(STORED, copy)
    return copy


def _run(args) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `discover ARGS` in a subprocess."""
    proc = tiny_job.discover([str(a) for a in args])
    out = proc.communicate(timeout=400)[0]
    return proc.returncode, out


@pytest.mark.fast
def test_records_without_a_checkpoint_are_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    resolved = parse_job_spec(tiny_job.table(run_dir)).table
    files.check_not_overwriting(run_dir, resolved)  # empty: fine
    (run_dir / "metrics.jsonl").write_text('{"generation": 1}\n{"generation": 2}\n\n')
    with pytest.raises(SpecError, match=r"holds 2 generation\(s\) in metrics.jsonl but no checkpoint"):
        files.check_not_overwriting(run_dir, resolved)


@pytest.mark.fast
def test_a_start_stopped_before_its_first_checkpoint_may_run_again(tmp_path):
    """checkpoints/ exists (the job made it) and spec.toml is this spec: the rerun writes the
    same records, so it goes on; with another spec it would overwrite them, so it refuses."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"generation": 1}\n')
    resolved = parse_job_spec(tiny_job.table(run_dir)).table
    (run_dir / "spec.toml").write_text(dump_toml(resolved))
    files.check_not_overwriting(run_dir, resolved)
    other = parse_job_spec(tiny_job.table(run_dir, ppo={"learning_rate": 0.5})).table
    with pytest.raises(SpecError, match="--restart"):
        files.check_not_overwriting(run_dir, other)
    (run_dir / "checkpoints" / "2").mkdir()  # a checkpoint: the run resumes (or its spec is checked)
    files.check_not_overwriting(run_dir, other)


@pytest.mark.fast
def test_set_aside_moves_everything_into_a_dated_folder(tmp_path):
    run_dir = _stored_copy(tmp_path)
    before = _snapshot(run_dir)
    when = datetime.datetime(2026, 12, 7, 13, 5, 9, tzinfo=datetime.UTC)
    moved = files.set_aside(run_dir, when)
    assert moved == run_dir / "replaced-20261207T130509Z"
    assert [p.name for p in run_dir.iterdir()] == [moved.name]
    assert _snapshot(moved) == before
    assert files.set_aside(run_dir) is None  # only the earlier folder: nothing to move


def test_resume_of_a_stored_run_refuses_and_leaves_it_byte_identical(tmp_path):
    run_dir = _stored_copy(tmp_path)
    before = _snapshot(run_dir)
    code, out = _run(["resume", run_dir])
    assert code == 2, out
    assert "holds 80 generation(s) in metrics.jsonl but no checkpoint" in out, out
    assert "--set job.run_dir=NEW_DIR" in out and "--restart" in out, out
    assert _snapshot(run_dir) == before


def test_restart_moves_the_stored_run_aside(tmp_path, monkeypatch):
    """`discover run SPEC --restart` into the stored run's copy: its files end up unchanged in
    replaced-<time>/ and the new job starts (stopped by a fault at the end of its start-up)."""
    run_dir = _stored_copy(tmp_path)
    before = _snapshot(run_dir)
    spec = tiny_job.write_spec(tmp_path / "tiny.toml", run_dir)
    code, out = _run(["run", spec])
    assert code == 2 and "no checkpoint" in out, out
    assert _snapshot(run_dir) == before
    monkeypatch.setenv("DISCOVER_FAULT", "startup:0")
    code, out = _run(["run", spec, "--restart"])
    assert code == -9, out
    (moved,) = run_dir.glob("replaced-*")
    assert f"moved the earlier files of {run_dir} into {moved}" in out, out
    assert _snapshot(moved) == before
    assert load_toml(run_dir / "spec.toml")["job"]["name"] == "tiny"  # the new job's own spec


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_run_on_a_finished_run_directory_continues_it(tmp_path):
    """As documented: `discover run SPEC --set job.generations=N` on a finished run continues."""
    run_dir = tmp_path / "run"
    spec = tiny_job.write_spec(tmp_path / "tiny.toml", run_dir, job={"generations": 2, "checkpoint_every": 2})
    code, out = _run(["run", spec])
    assert code == 0, out
    code, out = _run(["run", spec, "--set", "job.generations=3"])
    assert code == 0, out
    assert "resuming at generation 2" in out, out
    assert len(tiny_job.fitness_history(run_dir)) == 3
