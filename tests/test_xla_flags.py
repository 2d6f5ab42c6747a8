"""XLA's CPU runtime can deadlock after compiling some vmapped programs; the package's default
XLA flag (`inner_algos.xla_flags`) avoids it.

Each regression case runs in a subprocess with a hard timeout, so a hang fails the test instead
of stalling the suite. The child gets the pytest process's XLA_FLAGS without the work-around, so
it depends on the package setting it. Without the flag, every case below waits forever at 0% CPU
after compiling (jaxlib 0.10.2, 2-core CPU).
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest

from inner_algos import xla_flags

FLAG = xla_flags.CPU_SCHEDULER_FLAG
TIMEOUT_S = 300  # a case compiles in ~12-25 s on an idle 2-core CPU, and then runs in well under 1 s


def child_env(**extra) -> dict:
    """os.environ with the work-around removed from XLA_FLAGS, plus `extra`."""
    flags = " ".join(t for t in os.environ.get("XLA_FLAGS", "").split() if FLAG not in t)
    return {**os.environ, "XLA_FLAGS": flags, **extra}


def run_child(*parts: str, timeout: float = TIMEOUT_S, **env) -> str:
    """Runs the script made of `parts` (each dedented) in a fresh interpreter; a timeout fails
    the test (the process is killed)."""
    script = "\n".join(textwrap.dedent(part) for part in parts)
    try:
        done = subprocess.run([sys.executable, "-c", script], env=child_env(**env),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"hung: no result after {timeout} s; output so far: {err.stdout!r}")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# Each case: (env_name, num_envs, which outputs of `train` the vmapped program returns).
CASE = """
    def case(env_name, num_envs, pick):
        algo = make_ppo(PPOConfig(num_envs=num_envs, num_updates=2),
                        Task(env_name=env_name, backend="spring"), make_rule("ppo_clip"))
        run = jax.jit(jax.vmap(lambda key: pick(algo.train({}, key))))
        out = jax.block_until_ready(run(jax.random.split(jax.random.PRNGKey(0), 2)))
        print(env_name, num_envs, "finite:", all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(out)))
"""


def test_vmapped_train_finishes_with_only_inner_algos_imported_after_jax():
    """A user who imports jax first and then only inner_algos (no CLI, no discovery): the flag,
    set after `import jax` but before the first computation, still reaches XLA."""
    out = run_child("""
        import jax
        import jax.numpy as jnp
        from inner_algos.envs import Task
        from inner_algos.ppo import PPOConfig, make_ppo
        from inner_algos.rules import make_rule
    """, CASE, """
        case("inverted_pendulum", 8, lambda result: result)               # (state, metrics)
        case("inverted_pendulum", 8, lambda result: result[0].opt_state)  # the optimizer state only
    """)
    assert out.splitlines() == ["inverted_pendulum 8 finite: True"] * 2


def test_vmapped_train_finishes_after_importing_discovery():
    """`import discovery` alone (its modules import jax before inner_algos) sets the flag too."""
    out = run_child("""
        import discovery.evaluate
        import jax
        import jax.numpy as jnp
        from inner_algos.envs import Task
        from inner_algos.ppo import PPOConfig, make_ppo
        from inner_algos.rules import make_rule
    """, CASE, """
        case("hopper", 64, lambda result: result)
    """)
    assert out.splitlines() == ["hopper 64 finite: True"]


def test_flag_set_after_import_jax_reaches_xla():
    """XLA reads XLA_FLAGS when jax creates its backend, not at `import jax`."""
    out = run_child("""
        import jax
        from inner_algos import xla_flags
        assert xla_flags.set_default("xla_force_host_platform_device_count", 3)
        print(jax.device_count())
    """, timeout=120)
    assert out.strip() == "3"


def test_users_own_setting_is_kept():
    out = run_child("""
        import os
        import inner_algos
        print(os.environ["XLA_FLAGS"])
    """, timeout=120, XLA_FLAGS=f"--{FLAG}=true --xla_force_host_platform_device_count=2")
    assert out.strip() == f"--{FLAG}=true --xla_force_host_platform_device_count=2"


def test_too_late_warns_and_leaves_xla_flags(monkeypatch):
    if jax.default_backend() != "cpu":  # this starts the backend of this process
        pytest.skip("the warning is about CPU programs")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    with pytest.warns(UserWarning, match="hang forever on a CPU"):
        assert not xla_flags.set_default(FLAG, "false", xla_flags.DEFAULTS[FLAG][1])
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=1"


@pytest.mark.parametrize("flags, value", [
    ("", None),
    (f"--{FLAG}=false", "false"),
    (f"--a=1 --{FLAG} --b", "true"),  # a bare boolean flag means true
    (f"--{FLAG}_extra=1", None),       # another flag with the same prefix
    (f"--{FLAG}=true --{FLAG}=false", "false"),  # the last setting wins
])
def test_flag_value(flags, value):
    assert xla_flags.flag_value(flags, FLAG) == value


def test_with_flag_replaces_the_setting():
    flags = "--xla_force_host_platform_device_count=4 --a=1"
    assert xla_flags.with_flag(flags, "xla_force_host_platform_device_count", 2) == \
        "--a=1 --xla_force_host_platform_device_count=2"
    assert xla_flags.with_flag("", FLAG, "false") == f"--{FLAG}=false"
