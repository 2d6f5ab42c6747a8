"""Fault injection into the real `discover` command (subprocesses), through the deterministic
fault points of `discovery.job.faults` (DISCOVER_FAULT=POINT:GENERATION[:ACTION]):

- kills (SIGKILL) at start-up, compile, mid-generation, during the checkpoint write, between the
  checkpoint and the export, during the plot; then `discover resume`: the fitness history and
  every exported rule must be bit-equal to an uninterrupted run's;
- signals (SIGINT, SIGTERM, a second one during the save or mid-generation): exit 130 / 143,
  one message, resume bit-equal;
- a full disk (injected ENOSPC) in the checkpoint write, the rules export and the plot: exit 1,
  one error line naming the file, the previous checkpoint intact, resume bit-equal;
- a corpus of corrupted run directories: a clear message naming the file or a fallback to an
  earlier checkpoint, never a traceback, never code from the directory (pickles are planted;
  their payload would create a marker file).

The tiny job: 4 generations, checkpoints at 2 and 4. The default suite runs the kill between
checkpoint and export (the newest rules missing) and one corruption; the rest is `slow`.
"""

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from discovery.job import checkpoint
from tests.support import tiny_job

GENERATIONS, EVERY = 4, 2


def _spec(tmp_path: Path, run_dir: Path, **job) -> Path:
    return tiny_job.write_spec(
        tmp_path / f"spec-{run_dir.name}.toml",
        run_dir,
        job={"generations": GENERATIONS, "checkpoint_every": EVERY, **job},
    )


def _discover(args, fault: str = "", devices: int = 1, timeout: int = 500) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `discover ARGS` with DISCOVER_FAULT = fault."""
    saved = os.environ.get("DISCOVER_FAULT")
    os.environ["DISCOVER_FAULT"] = fault
    try:
        proc = tiny_job.discover([str(a) for a in args], devices=devices)
    finally:
        if saved is None:
            del os.environ["DISCOVER_FAULT"]
        else:
            os.environ["DISCOVER_FAULT"] = saved
    out = proc.communicate(timeout=timeout)[0]
    return proc.returncode, out


def _rules(run_dir: Path) -> dict:
    """{file name: (arrays, header's generation, kind and fitness)} of every exported rule."""
    out = {}
    for npz in sorted((run_dir / "rules").glob("*.npz")):
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(npz.with_suffix(".json").read_text())
        out[npz.name] = (arrays, {k: header[k] for k in ("generation", "kind", "fitness")})
    return out


def assert_bit_equal(run_dir: Path, reference: Path, extra: tuple[int, ...] = ()) -> None:
    """Fitness history and every exported rule (arrays bit for bit, header fields) equal; the
    run may hold the rules of `extra` generations more (saved when a signal stopped it)."""
    assert tiny_job.fitness_history(run_dir) == tiny_job.fitness_history(reference)
    got, want = _rules(run_dir), _rules(reference)
    assert sorted(got) == sorted([*want, *(f"gen_{g:06d}_{k}.npz" for g in extra for k in ("best", "mean"))])
    for name, (arrays, header) in want.items():
        assert got[name][1] == header, name
        assert sorted(got[name][0]) == sorted(arrays), name
        for key, value in arrays.items():
            np.testing.assert_array_equal(got[name][0][key], value, err_msg=f"{name}:{key}")


def assert_clean(out: str) -> None:
    assert "Traceback" not in out and "Error in atexit" not in out, out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run of the tiny job."""
    tmp = tmp_path_factory.mktemp("reference")
    code, out = _discover(["run", _spec(tmp, tmp / "run")])
    assert code == 0, out
    assert checkpoint.available_steps(tmp / "run") == [2, 4]
    return tmp / "run"


@pytest.fixture(scope="module")
def exported_on_resume(tmp_path_factory):
    """A run killed between its last checkpoint (4) and that checkpoint's export, then resumed:
    (run dir, the killed run's output, the resume's exit code and output)."""
    tmp = tmp_path_factory.mktemp("export")
    run_dir = tmp / "run"
    code, killed = _discover(["run", _spec(tmp, run_dir)], fault=f"after_checkpoint:{GENERATIONS}")
    assert code == -9, killed
    assert checkpoint.available_steps(run_dir) == [2, 4]
    assert not (run_dir / "rules" / "gen_000004_mean.npz").exists()
    assert json.loads((run_dir / "rules" / "latest_mean.json").read_text())["generation"] == 2
    code, out = _discover(["resume", run_dir])
    return run_dir, code, out


def test_a_kill_between_checkpoint_and_export_is_exported_on_resume(exported_on_resume):
    run_dir, code, out = exported_on_resume
    assert code == 0, out
    assert_clean(out)
    assert "generation 4's rules were not exported" in out and "done: 4 generations" in out
    for kind in ("mean", "best"):
        latest = json.loads((run_dir / "rules" / f"latest_{kind}.json").read_text())
        assert latest["generation"] == 4 and latest["kind"] == kind
        with (
            np.load(run_dir / "rules" / f"latest_{kind}.npz") as a,
            np.load(run_dir / "rules" / f"gen_000004_{kind}.npz") as b,
            np.load(run_dir / "rules" / f"gen_000002_{kind}.npz") as c,
        ):
            for name in a.files:
                np.testing.assert_array_equal(a[name], b[name])
            assert any(not np.array_equal(a[name], c[name]) for name in a.files)
    assert len(tiny_job.fitness_history(run_dir)) == 4


KILLS = [
    "startup:0",
    "compile:0",
    "mid_generation:3",
    "checkpoint_write:2",
    "checkpoint_write:4",
    "after_checkpoint:2",
    "after_checkpoint:4",
    "plot:4",
]


@pytest.mark.slow
@pytest.mark.parametrize("fault", KILLS)
def test_a_kill_then_resume_is_bit_equal(tmp_path, reference, fault):
    run_dir = tmp_path / "run"
    code, out = _discover(["run", _spec(tmp_path, run_dir)], fault=fault)
    assert code == -9, out
    if fault.startswith("checkpoint_write"):  # killed mid-write: the step is not in place
        assert int(fault.split(":")[1]) not in checkpoint.available_steps(run_dir)
    code, out = _discover(["resume", run_dir])
    assert code == 0, out
    assert_clean(out)
    assert_bit_equal(run_dir, reference)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault, code, message, saved",
    [
        ("mid_generation:3:sigint", 130, r"received SIGINT: finishing this generation", [2, 3]),
        ("mid_generation:3:sigterm", 143, r"received SIGTERM: finishing this generation", [2, 3]),
        ("compile:0:sigint", 130, r"interrupted: nothing to save yet", []),
        (
            "mid_generation:3:sigint,checkpoint_write:3:sigint",
            130,
            r"received SIGINT while saving: the save finishes first",
            [2, 3],
        ),
        (
            "mid_generation:3:sigint,mid_generation:3:sigint",
            130,
            r"interrupted before saving the current generation; .* keeps its newest checkpoint",
            [2],
        ),
    ],
)
def test_signals_stop_cleanly_with_their_exit_code(tmp_path, reference, fault, code, message, saved):
    run_dir = tmp_path / "run"
    got, out = _discover(["run", _spec(tmp_path, run_dir)], fault=fault)
    assert got == code, out
    assert_clean(out)
    assert re.search(message, out), out
    assert checkpoint.available_steps(run_dir) == saved
    if saved:
        assert json.loads((run_dir / "rules" / "latest_mean.json").read_text())["generation"] == saved[-1]
    got, out = _discover(["resume", run_dir])
    assert got == 0, out
    assert_bit_equal(run_dir, reference, extra=tuple(g for g in saved if g % EVERY))


DISK_FULL = [
    (
        "checkpoint_write:4:enospc",
        r"cannot write checkpoint .*/checkpoints/4: \[Errno 28\] No space "
        r"left on device.*; checkpoint 2 is intact",
        [2],
    ),
    (
        "after_checkpoint:2:enospc",
        r"cannot write .*/rules: No space left on device; checkpoint 2 is "
        r"saved and intact",
        [2],
    ),
    (
        "plot:4:enospc",
        r"cannot write .*/fitness.png: No space left on device; checkpoint 4 is "
        r"saved and intact",
        [2, 4],
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("fault, message, saved", DISK_FULL)
def test_a_full_disk_is_one_error_and_keeps_the_checkpoints(tmp_path, reference, fault, message, saved):
    run_dir = tmp_path / "run"
    code, out = _discover(["run", _spec(tmp_path, run_dir)], fault=fault)
    assert code == 1, out
    assert_clean(out)
    errors = [line for line in out.splitlines() if line.startswith("discover run: error:")]
    assert len(errors) == 1 and re.search(message, errors[0]), out
    assert checkpoint.available_steps(run_dir) == saved
    assert checkpoint.read_run_info(run_dir)["generation"] == saved[-1]
    code, out = _discover(["resume", run_dir])
    assert code == 0, out
    assert_bit_equal(run_dir, reference)


@pytest.mark.slow
def test_a_resume_on_another_device_count_is_warned_and_recorded(tmp_path, reference):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    code, out = _discover(["resume", run_dir, "--set", "job.generations=5"], devices=2)
    assert code == 0, out
    assert "checkpointed on 1 device(s) and resumes on 2: from generation 5 on" in out
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[4]["device_change"] == {"from": 1, "to": 2, "generation": 5}
    assert [r.get("devices") for r in records] == [1, 1, 1, 1, 2]
    assert tiny_job.fitness_history(run_dir)[:4] == tiny_job.fitness_history(reference)


@pytest.mark.slow
def test_a_job_whose_every_member_diverges_stops_with_likely_causes(tmp_path):
    run_dir = tmp_path / "run"
    spec = _spec(tmp_path, run_dir, max_nonfinite_generations=2, generations=6)
    code, out = _discover(
        ["run", spec, "--set", "ppo.learning_rate=1e30", "--set", "meta_optimizer.sigma_init=1e30"]
    )
    assert code == 1, out
    assert_clean(out)
    assert re.search(
        r"discover run: error: every member's fitness was non-finite in the last 2 "
        r"generations \(1-2\): .*ppo.learning_rate too large",
        out,
    ), out
    assert checkpoint.available_steps(run_dir) == [2]


# --- corrupted run directories ---------------------------------------------------------------

MARKER = "code-from-the-run-directory-ran"


class _Payload:
    """Unpickling this creates the marker file: it would show that code from the directory ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_Payload(marker)))


def _files(directory: Path) -> list[Path]:
    return [p for p in sorted(directory.rglob("*")) if p.is_file()]


def _garbage_state(run, marker):
    for path in _files(run / "checkpoints/4/state"):
        path.write_bytes(os.urandom(64))


def _truncated_manifests(run, marker):
    for path in (run / "checkpoints/4/state").rglob("manifest.ocdbt"):
        path.write_bytes(path.read_bytes()[:30])


def _pickled_state(run, marker):
    for path in _files(run / "checkpoints/4/state"):
        _pickle(path, marker)


def _leftover_write(run, marker):  # a kill in the middle of writing step 4
    shutil.move(run / "checkpoints/4", run / "checkpoints/4.orbax-checkpoint-tmp-1234")
    for path in _files(run / "checkpoints/4.orbax-checkpoint-tmp-1234")[::2]:
        path.write_bytes(path.read_bytes()[:5])


def _step_is_a_file(run, marker):
    shutil.rmtree(run / "checkpoints/4")
    (run / "checkpoints/4").write_text("not a checkpoint")


def _metrics(text: bytes):
    return lambda run, marker: (run / "metrics.jsonl").write_bytes(text)


def _write(relative: str, text: bytes):
    return lambda run, marker: (run / relative).write_bytes(text)


def _remove(relative: str):
    def remove(run, marker):
        path = run / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return remove


def _pickle_at(relative: str):
    return lambda run, marker: _pickle(run / relative, marker)


def _object_array_rule(run, marker):
    np.savez(run / "rules/gen_000004_mean.npz", out=np.array([_Payload(marker)], dtype=object))


def _all_infos_garbage(run, marker):
    for step in (2, 4):
        (run / f"checkpoints/{step}/info/metadata").write_text("{not json")


def _edited_spec(run, marker):
    text = (run / "spec.toml").read_text()
    (run / "spec.toml").write_text(text.replace("learning_rate = 0.01", "learning_rate = 0.02", 1))


FALLBACK = r"warning: checkpoint .*/checkpoints/4 cannot be restored \(.{1,210}\); trying an older step\n"
INFO = r"warning: checkpoint info .*/checkpoints/4/info/metadata is missing or corrupt"
CORRUPTIONS = {  # name: (mutation, exit code, message the output must hold)
    "state files garbage": (_garbage_state, 0, FALLBACK),
    "state manifest truncated": (_truncated_manifests, 0, FALLBACK),
    "state files pickled": (_pickled_state, 0, FALLBACK),
    "state _METADATA pickled": (_pickle_at("checkpoints/4/state/_METADATA"), 0, FALLBACK),
    "state directory missing": (_remove("checkpoints/4/state"), 0, FALLBACK),
    "info garbage": (_write("checkpoints/4/info/metadata", b"{not json"), 0, INFO),
    "info binary": (_write("checkpoints/4/info/metadata", os.urandom(300)), 0, INFO),
    "info pickled": (_pickle_at("checkpoints/4/info/metadata"), 0, INFO),
    "info missing": (_remove("checkpoints/4/info/metadata"), 0, INFO),
    "info lacks keys": (
        _write("checkpoints/4/info/metadata", b"{}"),
        0,
        r"checkpoints/4/info/metadata lacks keys",
    ),
    "every checkpoint corrupt": (_all_infos_garbage, 0, r"no intact checkpoint in .*/checkpoints"),
    "checkpoints missing": (_remove("checkpoints"), 0, r"\(starting\)"),
    "half-written step left by a kill": (_leftover_write, 0, r"resuming at generation 2"),
    "step is a file": (_step_is_a_file, 0, r"resuming at generation 2"),
    "metrics garbage": (_metrics(os.urandom(200)), 0, r"resuming at generation 4"),
    "metrics truncated": (_metrics(b'{"generation": 1, "fitn'), 0, r"resuming at generation 4"),
    "metrics missing": (_remove("metrics.jsonl"), 0, r"resuming at generation 4"),
    "rules missing": (_remove("rules"), 0, r"generation 4's rules were not exported"),
    "latest header garbage": (
        _write("rules/latest_mean.json", b"\x00\xff garbage"),
        0,
        r"generation 4's rules were not exported",
    ),
    "latest arrays truncated": (
        _write("rules/latest_best.npz", b"PK\x03\x04"),
        0,
        r"generation 4's rules were not exported",
    ),
    "rule arrays pickled": (_object_array_rule, 0, r"generation 4's rules were not exported"),
    "spec missing": (_remove("spec.toml"), 2, r"error: run spec .*/spec.toml does not exist"),
    "spec not TOML": (
        _write("spec.toml", b"[job\nname = "),
        2,
        r"error: run spec .*/spec.toml is not valid TOML",
    ),
    "spec edited": (
        _edited_spec,
        2,
        r"spec.toml differs from the spec checkpoint 4 was written with; "
        r".*ppo.learning_rate: 0.01 -> 0.02",
    ),
}
DEFAULT_CORRUPTIONS = ("rules missing",)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=() if name in DEFAULT_CORRUPTIONS else pytest.mark.slow)
        for name in CORRUPTIONS
    ],
)
def test_a_corrupted_run_directory_is_named_or_falls_back(tmp_path, exported_on_resume, name):
    """Resuming the finished run after the corruption: the message, the exit code, no traceback,
    no code run from the directory; a resume that succeeds ends where the intact run did."""
    intact = exported_on_resume[0]
    run_dir, marker = tmp_path / "run", tmp_path / MARKER
    shutil.copytree(intact, run_dir)
    mutate, code, message = CORRUPTIONS[name]
    mutate(run_dir, marker)
    got, out = _discover(["resume", run_dir])
    assert got == code, out
    assert_clean(out)
    assert re.search(message, out), out
    assert not marker.exists()
    if code == 0:
        assert tiny_job.fitness_history(run_dir) == tiny_job.fitness_history(intact)
        got, want = _rules(run_dir), _rules(intact)
        for rule_file in ("latest_mean.npz", "latest_best.npz", "gen_000004_mean.npz"):
            assert got[rule_file][1] == want[rule_file][1]
            for key, value in want[rule_file][0].items():
                np.testing.assert_array_equal(got[rule_file][0][key], value)
