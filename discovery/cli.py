"""The `discover` command line: `discover {train,run,resume,eval,inspect,replicates,distill} ...`.

Each sub-command lives in its own module exposing `register(subparsers)`, imported here. For the
commands that shard a population (`run`, `resume`), the CPU is split into one XLA host device per
core before jax starts XLA (unless XLA_FLAGS already sets a count): XLA runs one vmapped
computation mostly on a single core, so sharding the population axis over host devices uses all
of them. Every command also turns on JAX's persistent compilation cache
(`configure_compilation_cache`).
"""

from __future__ import annotations

import argparse
import os
import sys

from discovery import xla_flags
from discovery.distill import command as distill
from discovery.evaluation import evaluate, inspect, replicates, train
from discovery.job import commands as job
from discovery.job.console import one_line_warnings
from discovery.job.launch import launches

SHARDED_COMMANDS = ("run", "resume")
# modules with register(subparsers), in --help order
COMMANDS = (train, job, evaluate, inspect, replicates, distill)


def configure_host_devices(count: int | None = None) -> None:
    """Adds --xla_force_host_platform_device_count to XLA_FLAGS before jax starts XLA.

    count defaults to the number of CPU cores; DISCOVER_HOST_DEVICES overrides it (1 disables).
    """
    count = count or int(os.environ.get("DISCOVER_HOST_DEVICES", os.cpu_count() or 1))
    if count > 1:
        xla_flags.set_default("xla_force_host_platform_device_count", count)


def configure_compilation_cache() -> None:
    """Turns on JAX's persistent compilation cache, so that a resumed job, a repeated run or
    evaluation loads its compiled executables instead of compiling again (10-40 s each on CPU).

    The cache key is the program and the XLA version, so a changed spec or code compiles anew.
    JAX_COMPILATION_CACHE_DIR, if set, is used as it is; DISCOVER_COMPILATION_CACHE=0 turns the
    cache off; the default is $XDG_CACHE_HOME/rl-discovery/jax (~/.cache/rl-discovery/jax).
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ or os.environ.get("DISCOVER_COMPILATION_CACHE") == "0":
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(base, "rl-discovery", "jax")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    # jax read its JAX_* variables when the commands imported it: hand it the values set here
    # (the variables stay for the processes the local launcher starts)
    import jax

    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs",
        float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    xla_flags.apply_defaults()  # before any command starts jax's backend
    if argv[:1] and argv[0] in SHARDED_COMMANDS and not launches(argv):
        configure_host_devices()  # the local launcher leaves it to its children
    configure_compilation_cache()
    parser = argparse.ArgumentParser(
        prog="discover", description="Meta-learn, evaluate and inspect RL update rules."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    args = parser.parse_args(argv)
    try:
        with one_line_warnings():
            return args.func(args) or 0
    except (ValueError, OSError) as err:  # bad input or an unusable file: one line, no traceback
        print(f"discover {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
