"""`benchmarks/gpu.py --tiny` runs every shipped GPU spec (tiny, on the CPU) and writes the JSON
the GPU measurements are read from, so the GPU benchmark cannot rot between GPU runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SPEC_FIELDS = (
    "spec",
    "estimator",
    "tasks",
    "num_envs",
    "num_updates",
    "members",
    "generations",
    "compile_s",
    "generation_s",
    "env_steps_per_generation",
    "env_steps_per_s",
    "raw_num_envs",
    "raw_env_steps_per_s",
    "raw",
    "generation_over_raw",
    "wall_s",
)


@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_gpu_benchmark_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"device", "platform", "device_count", "versions", "date", "tiny"} <= report.keys()
    assert report["tiny"] and report["versions"]["jax"]
    specs = {r["spec"] for r in report["specs"]}
    assert specs == {"runs/lpo_ant.toml", "runs/study_gpu.toml", "runs/learned_optimizer_pes_gpu.toml"}
    for r in report["specs"]:
        assert "error" not in r, r
        assert set(SPEC_FIELDS) <= r.keys(), r
        assert r["generations"] == 2 and r["members"] >= 2
        assert r["env_steps_per_s"] > 0 and r["raw_env_steps_per_s"] > 0
        assert r["generation_over_raw"] == r["env_steps_per_s"] / r["raw_env_steps_per_s"]
        assert r["raw_num_envs"] == r["members"] * r["num_envs"]
        assert r["spec"] in proc.stdout  # one printed line per spec
