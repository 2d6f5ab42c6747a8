"""A tiny discovery job (seconds per generation after a ~30-60 s compile) for the job tests.

The drift starts at zero (ppo_init = false) and ES perturbs it with a large sigma, so members
really differ in fitness and the ES mean moves.
"""

import atexit
import copy
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from discovery import xla_flags
from discovery.spec import dump_toml

TABLE = {
    "job": {"name": "tiny", "seed": 3, "generations": 3, "checkpoint_every": 2},
    "tasks": [{"env_name": "inverted_pendulum", "backend": "spring", "episode_length": 50}],
    "rule": {"name": "lpo", "hidden_size": 4, "ppo_init": False},
    "ppo": {
        "num_envs": 16,
        "rollout_length": 8,
        "num_updates": 3,
        "num_minibatches": 2,
        "num_epochs": 4,
        "learning_rate": 0.01,
        "actor_hidden": [16],
        "critic_hidden": [16],
        "eval_envs": 2,
    },
    "meta_objective": {"kind": "curve_area"},
    "meta_optimizer": {"name": "es", "population_size": 4, "sigma_init": 1.0, "learning_rate": 0.1},
}
FITNESS_KEYS = (
    "generation",
    "fitness_mean",
    "fitness_std",
    "fitness_min",
    "fitness_median",
    "fitness_max",
    "num_nonfinite",
    "best_so_far",
    "mean_fitness",
    "task_scores",
    "sigma",
    "env_steps",
)


def table(run_dir, **sections) -> dict:
    """TABLE with run_dir set and `sections` merged in, e.g. job={"generations": 8}."""
    out = copy.deepcopy(TABLE)
    out["job"]["run_dir"] = str(run_dir)
    for name, values in sections.items():
        out[name] = {**out.get(name, {}), **values}
    return out


def write_spec(path: Path, run_dir, **sections) -> Path:
    path.write_text(dump_toml(table(run_dir, **sections)))
    return path


# Shared by this test session's subprocesses: a resumed job loads the executable its killed
# predecessor compiled instead of compiling again (the cache key is the program, so it is exact).
COMPILATION_CACHE = tempfile.mkdtemp(prefix="discover-tests-jax-cache-")
atexit.register(shutil.rmtree, COMPILATION_CACHE, ignore_errors=True)


def discover(args, devices: int = 1, **popen) -> subprocess.Popen:
    """Starts `discover ARGS` (the real CLI) in a subprocess with `devices` host devices (and
    this process's other XLA flags, such as the CPU work-around of `discovery.xla_flags`)."""
    flags = xla_flags.with_flag(
        os.environ.get("XLA_FLAGS", ""), "xla_force_host_platform_device_count", devices
    )
    env = {
        **os.environ,
        "XLA_FLAGS": flags,
        "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.5",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "discovery.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def fitness_history(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the timing fields."""
    import json

    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: json.loads(line)[k] for k in FITNESS_KEYS} for line in lines]


def assert_same_history(history: list[dict], reference: list[dict], rtol: float) -> None:
    """Fitness histories equal to `rtol` (relative), generation by generation."""
    import numpy as np

    assert len(history) == len(reference)
    for a, b in zip(reference, history):
        for key in ("fitness_mean", "fitness_max", "fitness_min", "mean_fitness", "best_so_far"):
            if a[key] is None:  # e.g. mean_fitness when the mean is not evaluated
                assert b[key] is None, key
            else:
                np.testing.assert_allclose(b[key], a[key], rtol=rtol, err_msg=key)
        assert a["num_nonfinite"] == b["num_nonfinite"]


def assert_same_rule(run_dir, reference_dir, rtol: float) -> None:
    """The latest exported ES-mean rules of two runs are equal to `rtol`."""
    import numpy as np

    with (
        np.load(Path(reference_dir) / "rules" / "latest_mean.npz") as a,
        np.load(Path(run_dir) / "rules" / "latest_mean.npz") as b,
    ):
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_allclose(b[name], a[name], rtol=rtol, atol=1e-6)


# [section] tables that replace the tiny job's to run it under each estimator whose state must
# survive a kill: persistent inner states, PES noise accumulators and online Adam states.
TRUNCATED = {"unroll_length": 1, "learning_rate": 0.1, "stagger": True}
META_OPTIMIZERS = {
    "es": {},
    "pes": {"meta_optimizer": {"name": "pes", "num_pairs": 2, "sigma": 0.5, **TRUNCATED}},
    "metagrad": {"meta_optimizer": {"name": "metagrad", "num_runs": 2, **TRUNCATED}},
    "online_metagrad": {
        "meta_optimizer": {"name": "online_metagrad", "learning_rate": 0.1},
        "rule": {"name": "hyperparams", "learn": ["gamma", "gae_lambda"]},
    },
}
