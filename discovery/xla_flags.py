"""XLA flags: the one place where the project puts flags into XLA_FLAGS, before jax starts XLA.

XLA parses XLA_FLAGS once, when jax creates its first backend (the first computation, or the
first `jax.devices()`), not at `import jax`; so a flag set here after `import jax` still counts
as long as nothing has run yet. Importing a package sets nothing: each entry point calls
`apply_defaults()` first (the `discover` command line's `main`, the tests' conftest, the
benchmark scripts); a user's own script that runs jax programs on a CPU should do the same.

DEFAULTS holds one work-around: XLA's CPU runtime (jaxlib 0.10.2) can deadlock for good after
compiling some vmapped programs (e.g. `jit(vmap(train))` of PPO over 2 seeds returning its state
and metrics): the process then waits forever at 0% CPU. Turning off the CPU's concurrency-optimised
scheduler avoids it. The flag only changes how XLA orders the CPU backend's instructions; GPU
programs are unaffected. A user's own setting of a flag in XLA_FLAGS is never overridden, so
`XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=true` turns the work-around off.
"""

from __future__ import annotations

import os
import sys
import warnings

CPU_SCHEDULER_FLAG = "xla_cpu_enable_concurrency_optimized_scheduler"
# name -> (value, why: said in the warning when the flag comes too late)
DEFAULTS = {
    CPU_SCHEDULER_FLAG: (
        "false",
        "Without it, some vmapped programs can hang forever on a CPU (an XLA deadlock).",
    )
}


def flag_value(flags: str, name: str) -> str | None:
    """The value of `--name` in an XLA_FLAGS string: 'V' for `--name=V`, 'true' for a bare
    `--name`, None when the flag is absent."""
    value = None
    for token in flags.split():
        if token == f"--{name}":
            value = "true"
        elif token.startswith(f"--{name}="):
            value = token.split("=", 1)[1]
    return value


def with_flag(flags: str, name: str, value: object) -> str:
    """`flags` with `--name=value`, replacing any setting of `name` already there."""
    kept = [t for t in flags.split() if t != f"--{name}" and not t.startswith(f"--{name}=")]
    return " ".join([*kept, f"--{name}={value}"])


def backend_started() -> bool:
    """Whether jax has created its backends, after which XLA_FLAGS is no longer read."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def set_default(name: str, value: object, why: str = "") -> bool:
    """Adds `--name=value` to os.environ["XLA_FLAGS"] unless XLA_FLAGS already sets `name`.

    Returns whether it did. Too late (jax's backend already started) it does nothing, and warns
    saying `why` the flag matters when a `why` is given and the backend is a CPU.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if flag_value(flags, name) is not None:
        return False
    if backend_started():
        import jax

        if why and jax.default_backend() == "cpu":
            warnings.warn(
                f"jax already ran a computation before the XLA flags were set, so XLA no longer "
                f"reads --{name}={value} from XLA_FLAGS. {why} Call discovery.xla_flags."
                f"apply_defaults() before running jax, or set XLA_FLAGS=--{name}={value} yourself.",
                stacklevel=2,
            )
        return False
    os.environ["XLA_FLAGS"] = with_flag(flags, name, value)
    return True


def apply_defaults() -> None:
    """Sets every flag of DEFAULTS that the user's XLA_FLAGS does not set."""
    for name, (value, why) in DEFAULTS.items():
        set_default(name, value, why)
