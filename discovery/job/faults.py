"""Deterministic fault points for the fault-injection tests (`tests/discovery/job/test_faults.py`).

The job calls `hit(point, generation)` at a few named points of its life; `discover eval` calls
`hit("eval_task", n)` when its n-th task (from 1) has run, before its result is written. Nothing
happens unless the environment variable DISCOVER_FAULT, read here and nowhere else, names that
point and generation:

  DISCOVER_FAULT=POINT:GENERATION[:ACTION][,POINT:GENERATION[:ACTION]...]

POINT is one of POINTS; GENERATION is the generation being run or saved (0 for start-up and
compile; for "eval_task", the task's number); ACTION is one of ACTIONS (default "kill"):
  kill     the process SIGKILLs itself (nothing runs after it: no finally, no atexit)
  sigint   / sigterm: the process sends itself the signal (a user's Ctrl-C or `kill`)
  enospc   raises OSError(ENOSPC), as a full disk does in the write at that point
At "checkpoint_write" a kill lands in the middle of the checkpoint's write: once its
temporary directory exists, before it is renamed into place. At "tensorboard" and "wandb" the
fault lands in that tracker's write of the generation's record (`discovery.job.loggers`).
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Callable

VARIABLE = "DISCOVER_FAULT"
POINTS = (
    "startup",
    "compile",
    "mid_generation",
    "checkpoint_write",
    "after_checkpoint",
    "plot",
    "tensorboard",
    "wandb",
    "eval_task",
)
ACTIONS = ("kill", "sigint", "sigterm", "enospc")


def _faults() -> list[tuple[str, int, str]]:
    """The (point, generation, action) triples DISCOVER_FAULT asks for; ValueError if malformed."""
    faults = []
    for item in filter(None, os.environ.get(VARIABLE, "").split(",")):
        parts = item.strip().split(":")
        if (
            len(parts) not in (2, 3)
            or parts[0] not in POINTS
            or not parts[1].isdigit()
            or (len(parts) == 3 and parts[2] not in ACTIONS)
        ):
            raise ValueError(
                f"{VARIABLE} = {item!r} must be POINT:GENERATION[:ACTION] with POINT in "
                f"{', '.join(POINTS)} and ACTION in {', '.join(ACTIONS)}"
            )
        faults.append((parts[0], int(parts[1]), parts[2] if len(parts) == 3 else "kill"))
    return faults


def hit(
    point: str, generation: int, path: object = None, under_way: Callable[[], bool] | None = None
) -> None:
    """Performs the fault DISCOVER_FAULT sets at (point, generation), if any.

    path: the file or directory written at this point (the filename of an injected OSError).
    under_way: for a kill in the middle of a write that starts after this call, a test of
    whether the write has begun; the kill then lands as soon as it is true.
    """
    for name, at, action in _faults():
        if (name, at) != (point, generation):
            continue
        if action == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))
        if action == "kill" and under_way is not None:
            _kill_when(under_way)
        else:
            sig = {"kill": signal.SIGKILL, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}[action]
            os.kill(os.getpid(), sig)


def _kill_when(under_way: Callable[[], bool]) -> None:
    """SIGKILLs this process from a thread as soon as `under_way()` is true."""

    def watch():
        while not under_way():
            time.sleep(0.0005)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()
