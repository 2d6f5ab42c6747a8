"""One discovery job over many processes and hosts: JAX's multi-controller runtime.

Every process runs the same program (`discover run` / `resume`); `jax.distributed.initialize`
joins them, after which `jax.devices()` lists every process's devices and one jitted generation
runs over all of them: the population axis is sharded over the global mesh (`Problem.mesh`), the
meta-optimizer state is replicated, and the fitness is gathered inside the step. Process 0 alone
writes metrics, plots and exported rules and prints progress; checkpoints are written by all of
them together (orbax coordinates multi-process saves).

How a process learns that it is one of many (the first that applies):
  1. flags `--coordinator HOST:PORT --num-processes N --process-id I` of `run` / `resume`;
  2. environment variables DISCOVER_COORDINATOR, DISCOVER_NUM_PROCESSES, DISCOVER_PROCESS_ID
     (what the local launcher `--processes N`, `discovery.job.launch`, sets);
  3. SLURM (`srun`, SLURM_NTASKS > 1) or Open MPI (`mpirun`, OMPI_COMM_WORLD_SIZE > 1): jax reads
     the coordinator, count and id from the cluster's own variables.
Otherwise the job is one process and jax.distributed is not started.

Faults: when a process dies, the others' next collective fails at once (its connection is
reset): they print which process they are and how to continue, and exit with code 1 (the local
launcher also kills them). A process that silently stops answering is declared dead after
DISCOVER_FAULT_TIMEOUT seconds (default 60; jax.distributed's heartbeat timeout), and processes
that finish wait at most that long for the others at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys

FAULT_TIMEOUT = 60
FLAG_ENV = (
    ("coordinator", "DISCOVER_COORDINATOR"),
    ("num_processes", "DISCOVER_NUM_PROCESSES"),
    ("process_id", "DISCOVER_PROCESS_ID"),
)
CLUSTER_SIZE_ENV = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Arguments of jax.distributed.initialize; None fields are detected by jax (SLURM, MPI)."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    fault_timeout: int = FAULT_TIMEOUT


def add_arguments(parser) -> None:
    """The multi-process flags of `run` and `resume`."""
    group = parser.add_argument_group("many processes (docs/scale-out.md)")
    group.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="start N local processes that run the job together (default 1)",
    )
    group.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="address of process 0's coordinator (env DISCOVER_COORDINATOR)",
    )
    group.add_argument(
        "--num-processes", type=int, metavar="N", help="processes in the job (env DISCOVER_NUM_PROCESSES)"
    )
    group.add_argument(
        "--process-id", type=int, metavar="I", help="this process's index, 0..N-1 (env DISCOVER_PROCESS_ID)"
    )


def settings(args, environ=os.environ) -> Settings | None:
    """What to initialise jax.distributed with, or None for a one-process job.

    args: the parsed `run`/`resume` namespace (flags win over environment variables).
    Raises ValueError naming the flag when the explicit settings are incomplete or inconsistent.
    """
    if getattr(args, "processes", 1) < 1:
        raise ValueError(f"--processes {args.processes}: must be at least 1")
    given = {}
    for field, env in FLAG_ENV:
        value = getattr(args, field, None)
        given[field] = value if value is not None else environ.get(env)
    timeout = environ.get("DISCOVER_FAULT_TIMEOUT", str(FAULT_TIMEOUT))
    if not timeout.isdigit() or int(timeout) < 1:
        raise ValueError(f"DISCOVER_FAULT_TIMEOUT={timeout!r}: give a whole number of seconds >= 1")
    timeout = int(timeout)
    if any(v is not None for v in given.values()):
        missing = [f"--{f.replace('_', '-')} (or {env})" for f, env in FLAG_ENV if given[f] is None]
        if missing:
            raise ValueError(f"a multi-process job needs {', '.join(missing)} as well")
        count, index = int(given["num_processes"]), int(given["process_id"])
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"--process-id {index} must be in 0..{count - 1} (--num-processes {count})")
        return Settings(str(given["coordinator"]), count, index, timeout)
    if any(int(environ.get(name, "1") or 1) > 1 for name in CLUSTER_SIZE_ENV):
        return Settings(fault_timeout=timeout)
    return None


def initialize(config: Settings | None) -> None:
    """Joins the job's processes (no-op for None); call before any other use of jax.

    CPU collectives go through gloo (jax's default CPU backend has none across processes).
    Processes other than 0 print nothing on stdout.
    """
    if config is None:
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=config.coordinator,
        num_processes=config.num_processes,
        process_id=config.process_id,
        heartbeat_timeout_seconds=config.fault_timeout,
        shutdown_timeout_seconds=config.fault_timeout,
    )
    if jax.process_index() != 0:  # silence Python's and the C++ runtime's stdout (gloo's notes)
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@contextlib.contextmanager
def session(config: Settings | None):
    """Initialises (see `initialize`) and runs the body; in a multi-process job a runtime error
    (typically a collective that failed because another process died or became unreachable)
    ends this process with one clear message and exit code 1, without waiting at shutdown for
    peers that may be dead."""
    initialize(config)
    if config is None:
        yield
        return
    import jax

    try:
        yield
    except jax.errors.JaxRuntimeError as err:
        first_line = str(err).strip().splitlines()[0]
        print(
            f"discover: process {jax.process_index()} of {jax.process_count()} stopped: "
            f"{first_line}. A failed collective means another process died or became "
            f"unreachable (see its output). Continue from the last checkpoint with `discover "
            f"resume RUN_DIR` (any number of processes).",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)  # skips jax.distributed's shutdown barrier, which the dead peer never reaches


def is_primary() -> bool:
    """True in process 0, the one that writes files other than checkpoints and prints progress."""
    import jax

    return jax.process_index() == 0


def any_process(flag: bool) -> bool:
    """True if `flag` is true in any process (all processes must call it; a collective).

    Keeps a signal received by some processes only from splitting the job: all stop together.
    """
    import jax

    if jax.process_count() == 1:
        return flag
    import numpy as np
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def replicate(tree, sharding):
    """A pytree of host or single-device arrays, equal in every process, as global arrays laid out
    by `sharding`: one for every leaf (e.g. replicated over the global mesh) or a pytree of them
    like `tree` (each process then holds the pieces its devices own)."""
    import jax
    import numpy as np

    host = jax.device_get(tree)
    if isinstance(sharding, jax.sharding.Sharding):
        sharding = jax.tree.map(lambda _: sharding, host)
    return jax.tree.map(
        lambda x, s: jax.make_array_from_callback(np.shape(x), s, lambda index: np.asarray(x)[index]),
        host,
        sharding,
    )
