"""One job over several processes (jax.distributed): settings, the local launcher, faults, resume
with another process count. The job-level tests start real `discover` processes on the tiny job.
"""

import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

from discovery.job import checkpoint, launch
from discovery.job.distributed import Settings, settings
from discovery.spec import dump_toml
from tests.support import tiny_job
from tests.support.tiny_job import META_OPTIMIZERS

TOLERANCE = 1e-4  # relative, as across device counts (tests/discovery/meta_opt/test_devices.py)
NO_FLAGS = Namespace(coordinator=None, num_processes=None, process_id=None)

# several JAX processes at once: one xdist group with the other such files (tests/conftest.py)
pytestmark = pytest.mark.xdist_group("multiprocess")


def test_settings_from_flags_env_and_cluster():
    env = {"DISCOVER_COORDINATOR": "10.0.0.1:1234", "DISCOVER_NUM_PROCESSES": "4", "DISCOVER_PROCESS_ID": "3"}
    assert settings(NO_FLAGS, {}) is None
    assert settings(NO_FLAGS, {"SLURM_NTASKS": "1"}) is None
    assert settings(NO_FLAGS, env) == Settings("10.0.0.1:1234", 4, 3)
    flags = Namespace(coordinator="h:1", num_processes=2, process_id=0)
    assert settings(flags, {**env, "DISCOVER_FAULT_TIMEOUT": "9"}) == Settings("h:1", 2, 0, 9)
    # under srun / mpirun jax reads the cluster's variables itself
    assert settings(NO_FLAGS, {"SLURM_NTASKS": "8"}) == Settings()
    assert settings(NO_FLAGS, {"OMPI_COMM_WORLD_SIZE": "2"}) == Settings()


def test_settings_errors_name_the_flag():
    with pytest.raises(ValueError, match=r"--num-processes \(or DISCOVER_NUM_PROCESSES\)"):
        settings(Namespace(coordinator="h:1", num_processes=None, process_id=0), {})
    with pytest.raises(ValueError, match="--process-id 2 must be in 0..1"):
        settings(Namespace(coordinator="h:1", num_processes=2, process_id=2), {})
    with pytest.raises(ValueError, match="DISCOVER_FAULT_TIMEOUT='soon'"):
        settings(NO_FLAGS, {"DISCOVER_FAULT_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="--processes 0: must be at least 1"):
        settings(Namespace(processes=0, coordinator=None, num_processes=None, process_id=None), {})


def test_launches_only_for_more_than_one_process():
    assert launch.launches(["run", "s.toml", "--processes", "2"])
    assert launch.launches(["resume", "d", "--processes=3"])
    assert not launch.launches(["run", "s.toml", "--processes", "1"])
    assert not launch.launches(["run", "s.toml"])


def test_child_environment_splits_the_cores():
    env = launch.child_environment(1, 2, 5555, {"PATH": "/bin"})
    assert env["DISCOVER_COORDINATOR"] == "127.0.0.1:5555"
    assert (env["DISCOVER_NUM_PROCESSES"], env["DISCOVER_PROCESS_ID"]) == ("2", "1")
    assert int(env["DISCOVER_HOST_DEVICES"]) >= 1
    forced = {"XLA_FLAGS": "--xla_force_host_platform_device_count=3"}
    assert "DISCOVER_HOST_DEVICES" not in launch.child_environment(0, 2, 1, forced)


def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def test_watch_kills_the_others_when_one_fails(capsys):
    sleeper = _python("import time; time.sleep(120)")
    failing = _python("import sys, time; time.sleep(0.5); sys.exit(3)")
    start = time.monotonic()
    assert launch._watch([sleeper, failing]) == 3
    assert time.monotonic() - start < 30
    assert sleeper.poll() == -signal.SIGKILL
    assert "process 1 of 2 exited with code 3; stopped the other 1" in capsys.readouterr().err


def test_watch_reports_a_killed_child_and_waits_for_successes(capsys):
    fine, killed = _python("pass"), _python("import time; time.sleep(120)")
    time.sleep(0.5)
    killed.kill()
    assert launch._watch([fine, killed]) == 128 + signal.SIGKILL
    assert "process 1 of 2 was killed by SIGKILL" in capsys.readouterr().err
    assert launch._watch([_python("pass"), _python("pass")]) == 0


def _wait_for_generations(run_dir: Path, count: int, proc: subprocess.Popen) -> None:
    metrics, deadline = run_dir / "metrics.jsonl", time.time() + 400
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= count):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0]
        time.sleep(0.05)
    assert proc.poll() is None, "the job finished before it could be stopped"


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Run dir of an uninterrupted 8-generation tiny ES job in 1 process x 2 devices."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    spec = tiny_job.write_spec(run_dir.parent / "spec.toml", run_dir, job={"generations": 8})
    proc = tiny_job.discover(["run", str(spec)], devices=2)
    out = proc.communicate(timeout=500)[0]
    assert proc.returncode == 0, out
    return run_dir


@pytest.mark.slow
def test_kill_one_process_then_resume_in_one_process(tmp_path, reference):
    run_dir = tmp_path / "run"
    spec = tiny_job.write_spec(tmp_path / "spec.toml", run_dir, job={"generations": 1000})
    launcher = tiny_job.discover(["run", str(spec), "--processes", "2"], devices=1)
    _wait_for_generations(run_dir, 3, launcher)
    _, second = _children(launcher.pid)
    killed_at = time.monotonic()
    subprocess.run(["kill", "-9", str(second)], check=True)
    out = launcher.communicate(timeout=60)[0]
    assert time.monotonic() - killed_at < 60
    assert launcher.returncode != 0, out
    assert "process 1 of 2 was killed by SIGKILL; stopped the other 1" in out
    steps = checkpoint.available_steps(run_dir)
    assert steps and max(steps) < 8

    resumed = tiny_job.discover(["resume", str(run_dir), "--set", "job.generations=8"], devices=1)
    out = resumed.communicate(timeout=500)[0]
    assert resumed.returncode == 0, out
    assert f"resuming at generation {max(steps)}" in out and "on 1 device(s)" in out
    reference_history = tiny_job.fitness_history(reference)
    tiny_job.assert_same_history(tiny_job.fitness_history(run_dir), reference_history, TOLERANCE)
    tiny_job.assert_same_rule(run_dir, reference, TOLERANCE)


@pytest.mark.slow
def test_without_launcher_the_survivor_stops_with_a_message(tmp_path, monkeypatch):
    """As under srun: no launcher kills the survivor; its failed collective ends it quickly."""
    run_dir = tmp_path / "run"
    spec = tiny_job.write_spec(tmp_path / "spec.toml", run_dir, job={"generations": 1000})
    monkeypatch.setenv("DISCOVER_COORDINATOR", f"127.0.0.1:{launch.free_port()}")
    monkeypatch.setenv("DISCOVER_NUM_PROCESSES", "2")
    procs = []
    for index in range(2):
        monkeypatch.setenv("DISCOVER_PROCESS_ID", str(index))
        procs.append(tiny_job.discover(["run", str(spec)], devices=1))
    _wait_for_generations(run_dir, 3, procs[0])
    procs[1].kill()
    killed_at = time.monotonic()
    out = procs[0].communicate(timeout=90)[0]
    assert time.monotonic() - killed_at < 60
    assert procs[0].returncode == 1, out
    assert "discover: process 0 of 2 stopped" in out and "discover resume" in out


@pytest.mark.slow
def test_sigterm_stops_all_processes_together_then_resume_in_two(tmp_path, reference):
    """1 process -> 2 processes (interrupted with SIGTERM: all save the same generation) -> 2."""
    run_dir = tmp_path / "run"
    spec = tiny_job.write_spec(tmp_path / "spec.toml", run_dir, job={"generations": 2})
    first = tiny_job.discover(["run", str(spec)], devices=1)
    assert first.communicate(timeout=500)[0] and first.returncode == 0

    more = ["--set", "job.generations=1000", "--processes", "2"]
    launcher = tiny_job.discover(["resume", str(run_dir), *more], devices=1)
    _wait_for_generations(run_dir, 4, launcher)
    launcher.send_signal(signal.SIGTERM)
    out = launcher.communicate(timeout=120)[0]
    assert launcher.returncode == 143, out
    assert out.count("interrupted: saved generation") == 1, out
    saved = max(checkpoint.available_steps(run_dir))
    assert saved == len(tiny_job.fitness_history(run_dir)) < 8

    resumed = tiny_job.discover(
        ["resume", str(run_dir), "--set", "job.generations=8", "--processes", "2"], devices=1
    )
    out = resumed.communicate(timeout=500)[0]
    assert resumed.returncode == 0, out
    assert f"resuming at generation {saved}" in out and "on 2 device(s)" in out
    tiny_job.assert_same_history(
        tiny_job.fitness_history(run_dir), tiny_job.fitness_history(reference), TOLERANCE
    )
    tiny_job.assert_same_rule(run_dir, reference, TOLERANCE)


@pytest.mark.slow
def test_pes_two_processes_match_one_process_two_devices(tmp_path):
    table = tiny_job.table(tmp_path / "unused")
    table.update(META_OPTIMIZERS["pes"])
    table["job"]["evaluate_mean"] = False
    spec = tmp_path / "spec.toml"
    spec.write_text(dump_toml(table))
    runs = {}
    for processes, devices in ((1, 2), (2, 1)):
        run_dir = tmp_path / f"{processes}x{devices}"
        runs[processes] = (
            run_dir,
            tiny_job.discover(
                ["run", str(spec), "--set", f"job.run_dir={run_dir}", "--processes", str(processes)],
                devices=devices,
            ),
        )
    for _, proc in runs.values():
        out = proc.communicate(timeout=500)[0]
        assert proc.returncode == 0, out
    one, two = (tiny_job.fitness_history(runs[p][0]) for p in (1, 2))
    assert len(one) == 3 and one[0]["fitness_mean"] != one[-1]["fitness_mean"]
    tiny_job.assert_same_history(two, one, TOLERANCE)
    tiny_job.assert_same_rule(runs[2][0], runs[1][0], TOLERANCE)


@pytest.mark.slow
def test_pes_killed_in_two_processes_resumes_in_one(tmp_path):
    """PES's persistent runs, split over 2 processes' devices in the checkpoint, restore onto one
    device (with the device-change warning) and continue the 1-device numbers to TOLERANCE."""
    table = tiny_job.table(tmp_path / "unused", job={"generations": 1000, "evaluate_mean": False})
    table.update(META_OPTIMIZERS["pes"])
    spec = tmp_path / "spec.toml"
    spec.write_text(dump_toml(table))
    reference = tmp_path / "reference"
    uninterrupted = tiny_job.discover(
        ["run", str(spec), "--set", f"job.run_dir={reference}", "--set", "job.generations=6"], devices=1
    )
    run_dir = tmp_path / "run"
    launcher = tiny_job.discover(
        ["run", str(spec), "--set", f"job.run_dir={run_dir}", "--processes", "2"], devices=1
    )
    _wait_for_generations(run_dir, 3, launcher)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.communicate(timeout=120)[0] and launcher.returncode == 143
    saved = max(checkpoint.available_steps(run_dir))
    assert saved < 6
    resumed = tiny_job.discover(["resume", str(run_dir), "--set", "job.generations=6"], devices=1)
    out = resumed.communicate(timeout=500)[0]
    assert resumed.returncode == 0, out
    assert "checkpointed on 2 device(s) and resumes on 1" in out, out
    assert uninterrupted.communicate(timeout=500)[0] is not None and uninterrupted.returncode == 0
    tiny_job.assert_same_history(
        tiny_job.fitness_history(run_dir), tiny_job.fitness_history(reference), TOLERANCE
    )
    tiny_job.assert_same_rule(run_dir, reference, TOLERANCE)
