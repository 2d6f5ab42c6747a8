"""A watchdog that ends a job whose generation (or an evaluation's task) runs far too long.

A stuck XLA computation (e.g. a CPU runtime deadlock) never returns and leaves the CPU idle:
nothing crashes and nothing is logged. `Watchdog.guard` runs a unit of work (one generation, one
evaluation task) under a time limit; past it, a timer thread writes a message (what was waiting,
for how long, what to do next) and the Python stacks of all threads (`faulthandler`) to a file in
the run directory, prints the message, and ends the process with EXIT_CODE, so that a cluster
scheduler or the user can restart it (`discover resume`). The limit (`time_limit`) is `factor`
times the median duration of the previous units, at least `min_seconds`. `JobWatchdog` and
`EvalWatchdog` word the message for a discovery job and for `discover eval`.

Should the stuck thread hold the GIL (the timer thread then never runs), `faulthandler`'s own
C-level timer dumps the stacks to stderr and exits GRACE_SECONDS later.

Test hook: with DISCOVER_TEST_STALL set to a unit's name (e.g. "generation 2"), that unit sleeps
STALL_SECONDS inside the guard, standing in for a stuck computation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): a temporary failure, retrying may succeed
GRACE_SECONDS = 60.0
STALL_ENV, STALL_SECONDS = "DISCOVER_TEST_STALL", 3600.0


@dataclasses.dataclass(frozen=True)
class Limit:
    """A unit's time limit in seconds and how it was reached (for the message)."""

    seconds: float
    basis: str


def time_limit(previous: Sequence[float], factor: float, min_seconds: float) -> Limit | None:
    """max(min_seconds, factor * median(previous durations)); factor * min_seconds when there
    are none (a first unit may be slower, and nothing says how long it should take); None (no
    limit) when factor is 0."""
    if factor == 0:
        return None
    if not previous:
        return Limit(factor * min_seconds, f"{factor:g} x {min_seconds:g} s: no earlier timing")
    median = statistics.median(previous)
    return Limit(
        max(min_seconds, factor * median),
        f"{factor:g} x the median {median:.2f} s of {len(previous)} earlier, at least {min_seconds:g} s",
    )


class Watchdog:
    """Guards units of work of one command (`discover run`, `discover eval`) writing to `directory`."""

    def __init__(self, command: str, directory: Path):
        self.command = command
        self.directory = Path(directory)

    @contextlib.contextmanager
    def guard(self, what: str, limit: Limit | None, waiting: str, advice: str) -> Iterator[None]:
        """Runs the body; still running after `limit.seconds` (None: no limit), ends the process.

        what: the unit ("generation 7"); waiting: what the process waits for in it; advice: what
        is intact and how to continue. Both go into the message.
        """
        if limit is None:
            yield
            return
        start = time.monotonic()
        timer = threading.Timer(limit.seconds, self._fire, (what, start, limit, waiting, advice))
        timer.daemon = True
        timer.start()
        faulthandler.dump_traceback_later(limit.seconds + GRACE_SECONDS, exit=True)
        try:
            if os.environ.get(STALL_ENV) == what:
                time.sleep(STALL_SECONDS)
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()
            timer.cancel()

    def report_path(self, what: str) -> Path:
        return self.directory / f"stalled_{re.sub(r'[^A-Za-z0-9]+', '_', what).strip('_')}.txt"

    def _fire(self, what: str, start: float, limit: Limit, waiting: str, advice: str) -> None:
        """Writes the message and all threads' stacks, prints the message, exits EXIT_CODE."""
        path = self.report_path(what)
        message = (
            f"{self.command}: watchdog: {what} has run for {time.monotonic() - start:.0f} s, "
            f"over its limit of {limit.seconds:.0f} s ({limit.basis}); the process looks stuck "
            f"({waiting}). Stopping with exit code {EXIT_CODE}. {advice} Python stacks of all "
            f"threads: {path}"
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w") as f:
                f.write(message + "\n\n")
                f.flush()
                faulthandler.dump_traceback(file=f, all_threads=True)
        finally:
            print(f"\n{message}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(EXIT_CODE)


class JobWatchdog(Watchdog):
    """The watchdog of a discovery job: `saved` is the generation of its newest checkpoint."""

    def __init__(self, run_dir: Path, factor: float, min_seconds: float, saved: int):
        super().__init__("discover run", run_dir)
        self.factor, self.min_seconds, self.saved = factor, min_seconds, saved

    def generation(self, number: int, previous: Sequence[float]):
        """Guards generation `number`; previous: the durations of the earlier generations [s]."""
        run_dir = self.directory
        if self.saved:
            advice = (
                f"The last checkpoint (generation {self.saved}) in {run_dir} is intact; "
                f"continue with `discover resume {run_dir}`."
            )
        else:
            advice = f"No checkpoint was saved yet: `discover resume {run_dir}` starts from generation 1."
        advice += (
            " If generations really take this long, raise the limit with --set "
            "job.watchdog=FACTOR or job.watchdog_min_seconds=S (job.watchdog=0 turns it off)."
        )
        limit = time_limit(previous, self.factor, self.min_seconds)
        return self.guard(
            f"generation {number}", limit, "waiting for the compiled generation step to return", advice
        )


class EvalWatchdog(Watchdog):
    """The watchdog of `discover eval`: one unit per task."""

    def __init__(self, out: Path, factor: float, min_seconds: float):
        super().__init__("discover eval", out)
        self.factor, self.min_seconds = factor, min_seconds

    def task(self, label: str, previous: Sequence[float]):
        """Guards the evaluation of task `label`; previous: the earlier tasks' durations [s]."""
        advice = (
            "The tasks finished before it are kept in the output folder's tasks/; run the same "
            "command again to continue from this task. If a task really takes this long, raise "
            "the limit with "
            "--watchdog FACTOR or --watchdog-min-seconds S (--watchdog 0 turns it off)."
        )
        return self.guard(
            f"task {label}",
            time_limit(previous, self.factor, self.min_seconds),
            "waiting for its compiled training runs to return",
            advice,
        )
