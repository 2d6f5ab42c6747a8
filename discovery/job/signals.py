"""SIGINT/SIGTERM in a discovery job: the first asks the loop to stop after the current
generation (and save it); a second stops at once, unless a save is under way."""

from __future__ import annotations

import contextlib
import signal
import sys


class StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between generations; a second signal
    stops at once (KeyboardInterrupt), except during a save, which it never cuts short.
    install=False: no handler (the flag stays down)."""

    def __init__(self, install: bool = True):
        self.raised = False
        self.signum = int(signal.SIGINT)  # the first signal received
        self._saving = False
        self._previous = (
            {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
            if install
            else {}
        )

    def _handle(self, signum, frame):
        del frame
        name = signal.Signals(signum).name
        if self._saving:
            print(
                f"\nreceived {name} while saving: the save finishes first, then the job stops",
                file=sys.stderr,
                flush=True,
            )
        elif self.raised:  # a second signal: stop now
            raise KeyboardInterrupt
        else:
            print(
                f"\nreceived {name}: finishing this generation (or compiling) and saving; a "
                f"second signal stops at once without saving it",
                file=sys.stderr,
                flush=True,
            )
        if not self.raised:
            self.raised, self.signum = True, int(signum)

    @contextlib.contextmanager
    def saving(self):
        """Signals received inside only ask the job to stop after the save."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
