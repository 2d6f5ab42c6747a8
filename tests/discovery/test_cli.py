"""The command line's process set-up: the persistent compilation cache and its switches."""

import os
import subprocess
import sys

import jax
import pytest

from discovery import cli

CACHE_OPTIONS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")


@pytest.mark.fast
def test_compilation_cache_defaults_to_the_user_cache_and_respects_the_switches(monkeypatch, tmp_path):
    for name in (
        "JAX_COMPILATION_CACHE_DIR",
        "DISCOVER_COMPILATION_CACHE",
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    before = {name: getattr(jax.config, name) for name in CACHE_OPTIONS}
    try:
        cli.configure_compilation_cache()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "rl-discovery" / "jax")
    finally:  # this test process keeps its own cache settings
        for name, value in before.items():
            jax.config.update(name, value)
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "rl-discovery" / "jax")

    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/somewhere/else")  # the user's choice wins
    cli.configure_compilation_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/somewhere/else"

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("DISCOVER_COMPILATION_CACHE", "0")  # off
    cli.configure_compilation_cache()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


@pytest.mark.fast
def test_resume_of_a_directory_without_a_run_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCOVER_HOST_DEVICES", "1")
    monkeypatch.setenv("DISCOVER_COMPILATION_CACHE", "0")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    for name in ("empty", "missing", "a_file"):
        assert cli.main(["resume", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"discover resume: error: {tmp_path / name} is not a run directory")
        assert err.count("\n") == 1 and "discover run" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "empty"]


def test_the_command_line_process_fills_the_compilation_cache(tmp_path):
    """jax is imported with the commands, before the cache is configured: it must still be used."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JAX_COMPILATION_CACHE_DIR", "DISCOVER_COMPILATION_CACHE")
    }
    env.update(XDG_CACHE_HOME=str(tmp_path), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    program = (
        "from discovery import cli; cli.configure_compilation_cache(); import jax; "
        "jax.jit(lambda x: x * 2 + 1)(1.0).block_until_ready()"
    )
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=300)
    assert any((tmp_path / "rl-discovery" / "jax").iterdir())


def test_importing_the_commands_leaves_jax_distributed_initialisable():
    """A multi-process job reads its spec (which imports every meta-optimizer) and only then
    calls jax.distributed.initialize, which fails once anything has started the XLA backend
    (evosax's import does, so it is imported when a strategy is built)."""
    from discovery.job.launch import free_port

    program = (
        "import discovery.cli, discovery.spec, jax; "
        f"jax.distributed.initialize('127.0.0.1:{free_port()}', num_processes=1, process_id=0); "
        "print(jax.process_count())"
    )
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("1")
