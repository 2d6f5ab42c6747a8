"""Checkpoints of a discovery job: the only module that imports orbax.

A run directory's `checkpoints/<G>/` is one orbax `CheckpointManager` step, G the number of
completed generations, holding two items:
  state/  the meta-optimizer state pytree (evosax state, RNG key, ...), via StandardSave
  info/   JSON: spec (resolved table), versions, generation, fitness_history (the metrics.jsonl
          records up to G), wall_time, env_steps, baselines, random_scores
Together they continue a job bit for bit. In a multi-process job (`discovery.job.distributed`) every
process calls save and restore (orbax coordinates the writes; each process writes the pieces its
devices hold, e.g. its share of a truncated estimator's persistent runs), and a state saved by
N processes or devices restores into any number of them (laid out as the restore template is).
Readers that only need the JSON (`read_run_info`, `available_steps`) never build the state. A
missing, partial or corrupt step is reported by file name and skipped in favour of the newest
intact one, with one short warning. A write that fails (a full disk) raises CheckpointWriteError
naming the step; the steps before it stay intact.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from discovery.job import faults

STATE, INFO = "state", "info"
TMP_MARK = ".orbax-checkpoint-tmp"  # orbax writes step G into `G.orbax-checkpoint-tmp-<time>` first


class CheckpointWriteError(RuntimeError):
    """A checkpoint step could not be written (disk full, read-only, ...); older steps are intact."""


INFO_KEYS = ("spec", "versions", "generation", "fitness_history", "wall_time", "env_steps")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir).absolute() / "checkpoints"


def available_steps(run_dir: str | Path) -> list[int]:
    """Generations with a finalised checkpoint directory `checkpoints/<G>`, ascending."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def _info_file(run_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / str(step) / INFO / "metadata"


def _read_info(run_dir: str | Path, step: int) -> dict:
    path = _info_file(run_dir, step)
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"checkpoint info {path} is missing or corrupt: {err}") from err
    missing = [k for k in INFO_KEYS if not isinstance(info, dict) or k not in info]
    if missing:
        raise ValueError(f"checkpoint info {path} lacks keys {missing}")
    return {**info, "step": step}


def read_run_info(run_dir: str | Path, step: int | None = None) -> dict:
    """The JSON info of checkpoint `step` (default: the newest intact one) plus key `step`.

    Keys: spec, versions, generation, fitness_history, wall_time, env_steps, baselines, step;
    random_scores (a paired objective's random-agent scores; null otherwise, absent in older runs).
    A given step that is unreadable raises ValueError naming the file; with step=None unreadable
    steps are warned about (naming the file) and older ones tried.
    """
    steps = available_steps(run_dir)
    if step is not None:
        if step not in steps:
            raise ValueError(f"{checkpoint_dir(run_dir)} has no step {step}; available: {steps}")
        return _read_info(run_dir, step)
    for candidate in reversed(steps):
        try:
            return _read_info(run_dir, candidate)
        except ValueError as err:
            warnings.warn(f"{err}; falling back to an older checkpoint", stacklevel=2)
    raise ValueError(f"no intact checkpoint in {checkpoint_dir(run_dir)} (steps found: {steps})")


class Checkpointer:
    """Saves and restores (state pytree, info dict) steps of one run directory, synchronously.

    keep: how many newest steps to keep (older ones are deleted by orbax).
    """

    def __init__(self, run_dir: str | Path, keep: int = 5):
        self.run_dir = Path(run_dir)
        self.manager = ocp.CheckpointManager(
            checkpoint_dir(run_dir),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False),
            item_names=(STATE, INFO),
        )

    def save(self, step: int, state: Any, info: dict) -> None:
        """Writes step `step` (replacing nothing: steps are written once) and waits for it.

        Raises CheckpointWriteError naming the step when the write fails; the step is then not
        finalised (orbax renames it into place only once complete), so older steps stay intact.
        """
        root = checkpoint_dir(self.run_dir)
        try:
            faults.hit(
                "checkpoint_write",
                step,
                root / str(step),
                under_way=lambda: any(p.name.startswith(f"{step}{TMP_MARK}") for p in root.iterdir()),
            )
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    **{STATE: ocp.args.StandardSave(state), INFO: ocp.args.JsonSave(info)}
                ),
                force=True,
            )
            self.manager.wait_until_finished()
        except Exception as err:  # OSError, or orbax/tensorstore's own types for the same causes
            raise CheckpointWriteError(f"cannot write checkpoint {root / str(step)}: {_short(err)}") from err

    def restore_latest(self, template: Any) -> tuple[Any, dict] | None:
        """(state, info) of the newest intact step, or None if there is none.

        template: a pytree with the state's structure, shapes and dtypes (e.g. the init state).
        A step that fails to restore is warned about, renamed to `<G>.corrupt-<ns>` (so that the job
        can write step G again) and skipped.
        """
        with _quiet_closed_event_loops():
            for step in reversed(available_steps(self.run_dir)):
                restored = self._restore(step, template)
                if restored is not None:
                    return restored
        return None

    def _restore(self, step: int, template: Any) -> tuple[Any, dict] | None:
        """(state, info) of `step`, or None (after a warning, the step moved aside) if it is corrupt."""
        try:
            info = _read_info(self.run_dir, step)
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(
                    **{STATE: ocp.args.StandardRestore(template), INFO: ocp.args.JsonRestore()}
                ),
            )
            return restored[STATE], info
        except Exception as err:  # orbax/tensorstore raise many types; name the step either way
            path = checkpoint_dir(self.run_dir) / str(step)
            warnings.warn(
                f"checkpoint {path} cannot be restored ({_short(err)}); trying an older step", stacklevel=3
            )
            if jax.process_index() == 0:  # one process renames; all skip the step
                path.rename(path.with_name(f"{step}.corrupt-{time.time_ns()}"))
            self.manager.reload()
            return None

    def close(self) -> None:
        self.manager.close()


def _short(err: BaseException, limit: int = 200) -> str:
    """The first line of an error's message without tensorstore's JSON spec, cut to its last
    `limit` characters (tensorstore chains its drivers' messages, the cause last)."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0].split(" [tensorstore_spec")[0]
    return text if len(text) <= limit else "..." + text[3 - limit :]


@contextlib.contextmanager
def _quiet_closed_event_loops():
    """Drops the 'Event loop is closed' errors that tensorstore's pending reads report (through
    sys.unraisablehook) after orbax gave up on a corrupt step; any other report passes through."""
    previous = sys.unraisablehook

    def hook(unraisable):
        if not (
            isinstance(unraisable.exc_value, RuntimeError)
            and str(unraisable.exc_value) == "Event loop is closed"
        ):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
