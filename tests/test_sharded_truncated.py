"""The truncated estimators' persistent runs laid over 2 devices give the 1-device numbers: the
meta-gradient, the fitness and theta of every outer step, for pes, truncated_es, metagrad and
online_metagrad, whether the 2 devices are one process's host devices or 2 processes'
(jax.distributed). Each layout is one subprocess running `tests/truncated_layouts.py`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from discovery.job.launch import child_environment, free_port
from inner_algos import xla_flags

TOLERANCE = 1e-4  # relative, as for ES's population (tests/test_devices.py)
CHILD = Path(__file__).parent / "truncated_layouts.py"


def start(out: Path, processes: int, devices: int) -> list[subprocess.Popen]:
    """The layout's processes, each with `devices` host devices, writing `out`."""
    flags = xla_flags.with_flag(os.environ.get("XLA_FLAGS", ""),
                                "xla_force_host_platform_device_count", devices)
    env, port = {**os.environ, "XLA_FLAGS": flags}, free_port()
    return [subprocess.Popen([sys.executable, str(CHILD), str(out)],
                             env=child_environment(i, processes, port, env) if processes > 1 else env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for i in range(processes)]


def results(layouts: dict, tmp_path: Path) -> dict:
    """{layout name: the child's JSON}, the layouts' processes run side by side."""
    procs = {name: start(tmp_path / f"{name}.json", *layout) for name, layout in layouts.items()}
    for name, group in procs.items():
        for proc in group:
            out = proc.communicate(timeout=900)[0]
            assert proc.returncode == 0, f"{name}: {out[-3000:]}"
    return {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in layouts}


def assert_same(result: dict, reference: dict) -> None:
    for name, ref in reference.items():
        if name == "devices":
            continue
        for key in ("fitness", "grad", "theta"):
            np.testing.assert_allclose(result[name][key], ref[key], rtol=TOLERANCE, atol=1e-6,
                                       err_msg=f"{name} {key}")
        assert np.abs(np.asarray(ref["grad"])).max() > 0, name  # a real gradient was compared


def test_two_host_devices_match_one_device(tmp_path):
    runs = results({"1x1": (1, 1), "1x2": (1, 2)}, tmp_path)
    assert (runs["1x1"]["devices"], runs["1x2"]["devices"]) == (1, 2)
    assert_same(runs["1x2"], runs["1x1"])


@pytest.mark.slow
def test_two_processes_match_one_device(tmp_path):
    runs = results({"1x1": (1, 1), "2x1": (2, 1)}, tmp_path)
    assert runs["2x1"]["devices"] == 2
    assert_same(runs["2x1"], runs["1x1"])
