"""`discover run SPEC --processes N` (and `resume`): N local processes that run one job together.

The launcher itself never imports jax. It picks a free port on 127.0.0.1 for process 0's
coordinator, starts N copies of `discover run|resume ...` that find each other through
DISCOVER_COORDINATOR / DISCOVER_NUM_PROCESSES / DISCOVER_PROCESS_ID (`discovery.job.distributed`),
and then only watches them:
  - SIGINT / SIGTERM it receives are forwarded to every child, which then stop together after
    their generation and save (a second signal stops them at once, as in a one-process job);
  - if a child fails (non-zero exit or killed), the others can no longer finish a generation
    (every generation needs all of them), so they are killed at once and the launcher exits with
    the failed child's code (128 + signal number when it was killed by a signal), after saying
    which child failed and how to continue (`discover resume`, from the last checkpoint).
Children run in their own session, so a Ctrl-C at the terminal reaches them once, through the
launcher. On a CPU each child gets cores // N XLA host devices unless DISCOVER_HOST_DEVICES or
XLA_FLAGS say otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

POLL_SECONDS = 0.2


def launches(argv: list[str]) -> bool:
    """True if the command line `argv` asks for the local launcher (`--processes N`, N > 1)."""
    for i, arg in enumerate(argv):
        value = (
            arg.partition("=")[2]
            if arg.startswith("--processes=")
            else (argv[i + 1] if arg == "--processes" and i + 1 < len(argv) else None)
        )
        if value is not None:
            return value.strip().isdigit() and int(value) > 1
    return False


def set_flags(overrides: list[str]) -> list[str]:
    """`--set KEY=VALUE` arguments that repeat `overrides` for the children's command line."""
    return [arg for item in overrides for arg in ("--set", item)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_environment(index: int, processes: int, port: int, environ=os.environ) -> dict:
    """The environment of child `index`: the launcher's plus the multi-process settings."""
    env = {
        **environ,
        "DISCOVER_COORDINATOR": f"127.0.0.1:{port}",
        "DISCOVER_NUM_PROCESSES": str(processes),
        "DISCOVER_PROCESS_ID": str(index),
    }
    if "xla_force_host_platform_device_count" not in env.get("XLA_FLAGS", ""):
        env.setdefault("DISCOVER_HOST_DEVICES", str(max(1, (os.cpu_count() or 1) // processes)))
    return env


def launch_local(command: list[str], processes: int) -> int:
    """Runs `discover COMMAND` as `processes` cooperating local processes; their exit code.

    command: e.g. ["run", "spec.toml", "--set", "job.generations=5"] (without --processes).
    """
    port = free_port()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "discovery.cli", *command],
            env=child_environment(i, processes, port),
            start_new_session=True,
        )
        for i in range(processes)
    ]

    def forward(signum, frame):
        del frame
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _watch(children)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child in children:  # e.g. the launcher itself was interrupted by an exception
            if child.poll() is None:
                child.kill()
                child.wait()


INTERRUPTED = (130, 143)  # 128 + SIGINT, 128 + SIGTERM: a job stopped by a signal after saving


def _watch(children: list[subprocess.Popen]) -> int:
    """Waits for all children; on the first failure kills the rest and returns its code. Children
    that were interrupted and saved (exit 130/143: all stop at the same generation) are waited for
    too; the launcher then exits with their code."""
    while True:
        codes = [child.poll() for child in children]
        failed = [(i, code) for i, code in enumerate(codes) if code not in (None, 0, *INTERRUPTED)]
        if failed:  # a child killed by a signal is the likely cause of its siblings' errors
            index, code = min(failed, key=lambda failure: failure[1] >= 0)
            alive = [child for child in children if child.poll() is None]
            for child in alive:
                child.kill()
            for child in alive:
                child.wait()
            print(
                f"discover: process {index} of {len(children)} {_describe(code)}; stopped "
                f"the other {len(alive)} process(es). The job continues from its last "
                f"checkpoint with `discover resume RUN_DIR` (any --processes).",
                file=sys.stderr,
                flush=True,
            )
            return 128 - code if code < 0 else code
        finished = [code for code in codes if code is not None]
        if len(finished) == len(codes):
            return max(finished)
        time.sleep(POLL_SECONDS)


def _describe(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
