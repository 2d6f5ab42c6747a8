"""Shared fixtures: a tiny task and PPO config that compile and run in seconds on a CPU; one JAX
compilation cache per test session; XLA's default flags (the CPU work-around of
`discovery.xla_flags`), set before any test starts jax's backend and inherited by the tests'
subprocesses."""

import os
import shutil
import tempfile

from discovery import xla_flags

xla_flags.apply_defaults()

import jax  # noqa: E402
import pytest  # noqa: E402

from inner_algos.envs import Task  # noqa: E402
from tests.support.builders import tiny_ppo_config  # noqa: E402

_SESSION_CACHE = []  # the cache directory this session made, removed at its end


def pytest_configure(config):
    """Points JAX's persistent compilation cache at a fresh directory for the session.

    Many tests compile the same programs again (a job and its resume, the CLI's subprocesses, the
    same tiny PPO in several files); with the cache each is compiled once per session. The
    directory starts empty, so a local run costs what a fresh CI machine pays (the user's cache of
    `discover`, which earlier runs warmed, is not used). A JAX_COMPILATION_CACHE_DIR of the
    caller's is kept.
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    path = tempfile.mkdtemp(prefix="rl-discovery-test-jax-cache-")
    _SESSION_CACHE.append(path)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path  # inherited by the CLI's subprocesses
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    # jax read its JAX_* variables at import: hand this process the values too
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs",
        float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
    )


MULTIPROCESS = "multiprocess"  # the xdist group of the tests that start several JAX processes at once


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """xdist groups (`--dist loadgroup`, pyproject.toml): every test file is one group, as with
    `--dist loadfile` (its module-scoped fixtures are built once), except the files marked
    `pytest.mark.xdist_group(MULTIPROCESS)`, which share one group and so one worker: two workers
    each running multi-process tests would start four JAX processes on CI's two cores."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def pytest_unconfigure(config):
    for path in _SESSION_CACHE:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def tiny_task():
    return Task(episode_length=50)


@pytest.fixture
def tiny_ppo():
    return tiny_ppo_config()
