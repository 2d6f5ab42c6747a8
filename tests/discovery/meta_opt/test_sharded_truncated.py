"""The truncated estimators' persistent runs laid over 2 devices give the 1-device numbers: the
meta-gradient, the fitness and theta of every outer step, for pes, truncated_es, metagrad and
online_metagrad, whether the 2 devices are one process's host devices or 2 processes'
(jax.distributed). Each layout is one subprocess running `tests/support/truncated_layouts.py`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from discovery import xla_flags
from discovery.job.launch import child_environment, free_port

TOLERANCE = 1e-4  # relative, as for ES's population (tests/discovery/meta_opt/test_devices.py)
ROOT = Path(__file__).resolve().parents[3]  # the repository: tests.* import from there
CHILD = "tests.support.truncated_layouts"

# several JAX processes at once: one xdist group with the other such files (tests/conftest.py)
pytestmark = pytest.mark.xdist_group("multiprocess")


def start(out: Path, processes: int, devices: int) -> list[subprocess.Popen]:
    """The layout's processes, each with `devices` host devices, writing `out`."""
    flags = xla_flags.with_flag(
        os.environ.get("XLA_FLAGS", ""), "xla_force_host_platform_device_count", devices
    )
    env, port = {**os.environ, "XLA_FLAGS": flags}, free_port()
    return [
        subprocess.Popen(
            [sys.executable, "-m", CHILD, str(out)],
            cwd=ROOT,
            env=child_environment(i, processes, port, env) if processes > 1 else env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(processes)
    ]


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
            np.testing.assert_allclose(
                result[name][key], ref[key], rtol=TOLERANCE, atol=1e-6, err_msg=f"{name} {key}"
            )
        assert np.abs(np.asarray(ref["grad"])).max() > 0, name  # a real gradient was compared


TOY = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh
from tests.discovery.meta_opt.test_truncated import _toy_unroll, T
from discovery.meta_opt.base import TruncatedStep, Unrolled, metagrad_estimator
from discovery.meta_opt.pes import pes_estimator

def init(theta, key):  # a state, a random age
    return jnp.zeros(()), jax.random.randint(key, (), 0, T)

def unroll(theta, w):  # 3 steps of w <- w - 0.1 exp(theta_1) (w - theta_0)
    for _ in range(3):
        w = w - 0.1 * jnp.exp(theta[1]) * (w - theta[0])
    return w, Unrolled(None, jnp.zeros((1, w.shape[0]), bool), w)

theta, out = jnp.array([0.5, 1.0]), []
for devices in ([jax.devices()[0]], jax.devices()):
    mesh = Mesh(np.asarray(devices), ("pop",))
    pes = pes_estimator(TruncatedStep(init, _toy_unroll, None), 2, 3, 0.1, True, mesh)
    state, grads = pes.init(theta, jax.random.PRNGKey(0)), []
    for i in range(4):  # lifetimes of T = 10 end inside the segments of K = 3
        grad, state, _ = jax.jit(pes.estimate)(theta, state, jax.random.PRNGKey(i))
        grads.append(grad)
    step = TruncatedStep(lambda th, k: jax.random.normal(k, ()), unroll, lambda th, w, k: (w - 1.0) ** 2)
    mg = metagrad_estimator(step, 3, mesh)  # 3 runs on 2 devices: one padding run
    grad, state, metrics = jax.jit(mg.estimate)(theta, mg.init(theta, jax.random.PRNGKey(0)),
                                                jax.random.PRNGKey(1))
    out.append((np.stack(grads), grad, metrics["meta_loss"], state.runs))
assert jax.device_count() == 2
for one, two in zip(*out):
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
print("same")
"""


def test_toy_estimators_split_over_two_devices_give_the_same_gradients():
    """PES on the toy linear system and metagrad on the toy quadratic (test_truncated.py) with
    their runs over a 1-device and a 2-device mesh in one process: seconds, no PPO."""
    env = {
        **os.environ,
        "XLA_FLAGS": xla_flags.with_flag(
            os.environ.get("XLA_FLAGS", ""), "xla_force_host_platform_device_count", 2
        ),
    }
    proc = subprocess.run(
        [sys.executable, "-c", TOY],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0 and "same" in proc.stdout, proc.stdout + proc.stderr[-3000:]


@pytest.mark.slow  # 4 minutes of one worker (three JAX processes in turn); run with -m slow
def test_two_host_devices_match_one_device(tmp_path):
    runs = results({"1x1": (1, 1), "1x2": (1, 2)}, tmp_path)
    assert (runs["1x1"]["devices"], runs["1x2"]["devices"]) == (1, 2)
    assert_same(runs["1x2"], runs["1x1"])


@pytest.mark.slow
def test_two_processes_match_one_device(tmp_path):
    runs = results({"1x1": (1, 1), "2x1": (2, 1)}, tmp_path)
    assert runs["2x1"]["devices"] == 2
    assert_same(runs["2x1"], runs["1x1"])
