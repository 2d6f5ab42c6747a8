"""XLA's CPU runtime can deadlock after compiling some vmapped programs; the project's default
XLA flag (`discovery.xla_flags`, set by every entry point) avoids it.

Each regression case runs in a subprocess with hard timeouts, so a hang fails the test instead
of stalling the suite. The child gets the pytest process's XLA_FLAGS without the work-around, so
it depends on `apply_defaults` setting it. Without the flag, every case below waits forever at 0% CPU
after compiling (jaxlib 0.10.2, 2-core CPU).
"""

import os
import subprocess
import sys
import textwrap
import time

import jax
import pytest

from discovery import xla_flags

FLAG = xla_flags.CPU_SCHEDULER_FLAG
COMPILE_TIMEOUT_S = 1800  # compiling a case: ~12-25 s on an idle 2-core CPU, over 10 min on a busy one
RUN_TIMEOUT_S = 120  # running it once compiled: well under a second, unless it deadlocks


def child_env(**extra) -> dict:
    """os.environ with the work-around removed from XLA_FLAGS, plus `extra`."""
    flags = " ".join(t for t in os.environ.get("XLA_FLAGS", "").split() if FLAG not in t)
    return {**os.environ, "XLA_FLAGS": flags, **extra}


def run_child(*parts: str, timeout: float = 120, **env) -> str:
    """Runs the script made of `parts` (each dedented) in a fresh interpreter; returns its stdout."""
    script = "\n".join(textwrap.dedent(part) for part in parts)
    done = subprocess.run(
        [sys.executable, "-c", script], env=child_env(**env), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# The vmapped `train` of PPO-clip over 2 seeds, compiled ahead of time; `pick` chooses which
# of its outputs the program returns (which outputs it returns decides whether XLA deadlocks).
CASE = """
    def case(env_name, num_envs, pick):
        algo = make_ppo(PPOConfig(num_envs=num_envs, num_updates=2),
                        Task(env_name=env_name, backend="spring"), make_rule("ppo_clip"))
        keys = jax.random.split(jax.random.PRNGKey(0), 2)
        run = jax.jit(jax.vmap(lambda key: pick(algo.train({}, key)))).lower(keys).compile()
        print("compiled", flush=True)
        out = jax.block_until_ready(run(keys))
        print("finite:", all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(out)), flush=True)
"""


def _wait(done, seconds: float, what: str, child, log) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            child.kill()
            child.wait()
            pytest.fail(f"{what} took over {seconds} s; output: {log.read_text()!r}")
        time.sleep(0.2)


def run_case(tmp_path, imports: str, call: str) -> list[str]:
    """Runs `imports`, CASE and `call` in a fresh interpreter and returns its output lines.

    A hard timeout per stage, so that a hang fails the test: COMPILE_TIMEOUT_S to compile, then
    RUN_TIMEOUT_S for the compiled program (a deadlock: no result at 0% CPU).
    """
    log, errors = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    script = "\n".join(textwrap.dedent(part) for part in (imports, CASE, call))
    with open(log, "w") as out, open(errors, "w") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", script], env=child_env(), stdout=out, stderr=err, text=True
        )
    _wait(
        lambda: "compiled" in log.read_text() or child.poll() is not None,
        COMPILE_TIMEOUT_S,
        "compiling",
        child,
        log,
    )
    _wait(lambda: child.poll() is not None, RUN_TIMEOUT_S, "hung: the compiled program", child, log)
    assert child.returncode == 0, errors.read_text()[-3000:]
    return log.read_text().splitlines()


INNER_ALGOS = """
    from discovery import xla_flags
    xla_flags.apply_defaults()
    from inner_algos.envs import Task
    from inner_algos.ppo import PPOConfig, make_ppo
    from inner_algos.rules import make_rule
    import jax
    import jax.numpy as jnp
"""


def test_vmapped_train_returning_state_and_metrics_finishes(tmp_path):
    """`apply_defaults()` first, as the entry points do (no CLI)."""
    out = run_case(tmp_path, INNER_ALGOS, 'case("inverted_pendulum", 8, lambda result: result)')
    assert out == ["compiled", "finite: True"]


def test_vmapped_train_returning_opt_state_finishes_when_jax_came_first(tmp_path):
    """A script that imports jax before setting the flags: the flag, set after `import jax` but
    before the first computation, still reaches XLA."""
    out = run_case(
        tmp_path,
        "import jax\n" + textwrap.dedent(INNER_ALGOS),
        'case("inverted_pendulum", 8, lambda result: result[0].opt_state)',
    )
    assert out == ["compiled", "finite: True"]


@pytest.mark.slow  # the two inverted_pendulum programs keep the scheduler hang in the default suite
def test_vmapped_train_on_hopper_finishes_after_importing_discovery(tmp_path):
    """Importing discovery's modules starts no backend, so the flags set afterwards still count."""
    out = run_case(
        tmp_path,
        "import discovery.evaluation.evaluate\n" + textwrap.dedent(INNER_ALGOS),
        'case("hopper", 64, lambda result: result)',
    )
    assert out == ["compiled", "finite: True"]


def test_flag_set_after_import_jax_reaches_xla():
    """XLA reads XLA_FLAGS when jax creates its backend, not at `import jax`."""
    out = run_child("""
        import jax
        from discovery import xla_flags
        assert xla_flags.set_default("xla_force_host_platform_device_count", 3)
        print(jax.device_count())
    """)
    assert out.strip() == "3"


def test_users_own_setting_is_kept():
    out = run_child(
        """
        import os
        from discovery import xla_flags
        xla_flags.apply_defaults()
        print(os.environ["XLA_FLAGS"])
    """,
        XLA_FLAGS=f"--{FLAG}=true --xla_force_host_platform_device_count=2",
    )
    assert out.strip() == f"--{FLAG}=true --xla_force_host_platform_device_count=2"


@pytest.mark.fast
def test_too_late_warns_and_leaves_xla_flags(monkeypatch):
    if jax.default_backend() != "cpu":  # this starts the backend of this process
        pytest.skip("the warning is about CPU programs")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    with pytest.warns(UserWarning, match="hang forever on a CPU"):
        assert not xla_flags.set_default(FLAG, "false", xla_flags.DEFAULTS[FLAG][1])
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"


@pytest.mark.fast
@pytest.mark.parametrize(
    "flags, value",
    [
        ("", None),
        (f"--{FLAG}=false", "false"),
        (f"--a=1 --{FLAG} --b", "true"),  # a bare boolean flag means true
        (f"--{FLAG}_extra=1", None),  # another flag with the same prefix
        (f"--{FLAG}=true --{FLAG}=false", "false"),  # the last setting wins
    ],
)
def test_flag_value(flags, value):
    assert xla_flags.flag_value(flags, FLAG) == value


@pytest.mark.fast
def test_with_flag_replaces_the_setting():
    flags = "--xla_force_host_platform_device_count=4 --a=1"
    assert (
        xla_flags.with_flag(flags, "xla_force_host_platform_device_count", 2)
        == "--a=1 --xla_force_host_platform_device_count=2"
    )
    assert xla_flags.with_flag("", FLAG, "false") == f"--{FLAG}=false"


def test_importing_the_packages_sets_no_flag_and_starts_no_backend():
    """No import side effect: importing every entry point's modules leaves XLA_FLAGS alone and jax's
    backend unstarted, so the flags `apply_defaults` sets afterwards still reach XLA."""
    out = run_child(
        """
        import os
        import discovery.cli, inner_algos.registry, meta_objectives
        from jax._src import xla_bridge
        print(repr(os.environ["XLA_FLAGS"]), xla_bridge.backends_are_initialized())
    """,
        XLA_FLAGS="--xla_force_host_platform_device_count=1",
    )
    assert out.strip() == "'--xla_force_host_platform_device_count=1' False"


def test_importing_the_command_line_starts_no_backend():
    """`discover`'s modules (every command's, module-level settings included) run no jax
    computation at import, so the flags its `main` sets afterwards still reach XLA."""
    out = run_child("""
        import discovery.cli
        from discovery import xla_flags
        print(xla_flags.backend_started())
    """)
    assert out.strip() == "False"
