"""The population axis sharded over 2 devices gives the 1-device numbers, whether the 2 devices
are one process's forced host devices or 2 processes' (jax.distributed via `--processes 2`).

Population 4 + the ES mean = 5 members: on 2 devices they are padded to 6, so this also checks
that a population that does not divide the device count works.
"""

import pytest

from tests.support import tiny_job

# several JAX processes at once: one xdist group with the other such files (tests/conftest.py)
pytestmark = pytest.mark.xdist_group("multiprocess")

TOLERANCE = 1e-4  # relative; XLA may vectorise a 3-member and a 5-member batch differently
LAYOUTS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}  # processes x devices per process


def test_two_devices_match_one_device(tmp_path):
    spec = tiny_job.write_spec(tmp_path / "spec.toml", tmp_path / "unused")
    runs = {}
    for name, (processes, devices) in LAYOUTS.items():
        run_dir = tmp_path / name
        runs[name] = (
            run_dir,
            tiny_job.discover(
                ["run", str(spec), "--set", f"job.run_dir={run_dir}", "--processes", str(processes)],
                devices=devices,
            ),
        )
    for name, (_, proc) in runs.items():
        out = proc.communicate(timeout=500)[0]
        assert proc.returncode == 0, out
        processes, devices = LAYOUTS[name]
        assert f"on {processes * devices} device(s)" in out
        assert out.count("discover run 'tiny'") == 1, out  # only process 0 prints
    reference = tiny_job.fitness_history(runs["1x1"][0])
    assert len(reference) == 3
    for name in ("1x2", "2x1"):
        tiny_job.assert_same_history(tiny_job.fitness_history(runs[name][0]), reference, TOLERANCE)
        tiny_job.assert_same_rule(runs[name][0], runs["1x1"][0], TOLERANCE)
