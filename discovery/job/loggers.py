"""Experiment trackers beside metrics.jsonl: TensorBoard event files and Weights & Biases runs.

A job's `job.loggers` names where each generation's record goes: "jsonl" (metrics.jsonl, the
job's own file), "tensorboard" (event files under RUN_DIR/tb/, written with tensorboardX: no
TensorFlow) and "wandb" (a run configured by [job.wandb], offline by default under
RUN_DIR/wandb/). `JobTrackers` is the job's loop callback for the trackers; `open_trackers`
gives `discover eval` the same trackers. docs/tracking.md shows how to watch and sync them.

What a tracker receives from a job:
  - every numeric field of each generation's record (`scalars`: nested keys joined with '/',
    e.g. task_scores/inverted_pendulum/spring, hyperparams/gamma), at step = generation;
  - the resolved spec as the run's config (wandb config; TensorBoard text `config` at step 0);
  - the rules exported at each checkpoint (wandb files; TensorBoard has no place for files).

Resume: RUN_DIR/trackers.json keeps the newest generation TensorBoard has logged and the wandb
run id, so a resumed job continues the same runs. A job resumed from checkpoint G logs what a
tracker lacks up to G from the restored history, then the generations it runs. TensorBoard
restarts at the first generation it may lack or the killed run may have logged after G
(`purge_step`: TensorBoard hides the killed run's events from that step on), so its values are
exactly metrics.jsonl's. wandb cannot drop logged steps: an online run skips the steps the
server holds (their fitness numbers equal the recomputed ones: resume is exact); an offline run
gets the whole history again in each start's offline-run directory, because a SIGKILL also
ends wandb's writer before it writes what it buffered; the newest directory is the one to sync.

A tracker that raises (a full disk under tb/, wandb failing) is warned about once and dropped
for the rest of the process; the job goes on and its files stay as they are. Only the primary
process of a multi-process job creates trackers.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from discovery.job import faults
from discovery.spec import JobSettings, WandbSettings

STATE_FILE, TB_DIR = "trackers.json", "tb"
TRACKERS = ("tensorboard", "wandb")


def scalars(record: dict, prefix: str = "") -> dict[str, float]:
    """The numeric scalar fields of a record as {name: float}, nested dicts flattened with '/'
    (`{"task_scores": {"a": 1}}` -> `{"task_scores/a": 1.0}`); the generation (the step),
    nulls (non-finite numbers), booleans, strings and lists are left out."""
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalars(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and name != "generation":
            if math.isfinite(value):
                out[name] = float(value)
    return out


def markdown_table(columns: list[str], rows: list[list]) -> str:
    """A Markdown table (what TensorBoard's text plugin renders); None is an empty cell."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class TensorBoardTracker:
    """Event files in `directory`, one per start, written synchronously (a failure raises here,
    not in a writer thread) and flushed after each call, so a kill loses nothing logged.

    purge_from: on a restart, the first step to log again; TensorBoard hides the events of the
    earlier files from that step on (tensorboardX's `purge_step`).
    """

    name = "tensorboard"

    def __init__(self, directory: Path, purge_from: int | None = None):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import SessionLog

        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        starts = len(list(directory.glob("events.out.tfevents.*")))  # names sort in start order
        self._writer = EventsWriter(str(directory / "events"), f".{starts:04d}")
        if purge_from is not None:
            self._write(purge_from, session_log=SessionLog(status=SessionLog.START))

    def _write(self, step: int, **fields) -> None:
        from tensorboardX.proto.event_pb2 import Event

        self._writer.write_event(Event(wall_time=time.time(), step=step, **fields))
        self._writer.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        from tensorboardX.proto.summary_pb2 import Summary

        faults.hit("tensorboard", step, self.directory)
        self._write(
            step,
            summary=Summary(
                value=[Summary.Value(tag=tag, simple_value=value) for tag, value in values.items()]
            ),
        )

    def config(self, config: dict) -> None:
        """The run's config (a job's resolved spec, an evaluation's manifest) as the text
        `config` at step 0: a JSON code block."""
        self.text("config", "```json\n" + json.dumps(config, indent=1, default=str) + "\n```")

    def text(self, tag: str, markdown: str, step: int = 0) -> None:
        from tensorboardX.summary import text

        self._write(step, summary=text(tag, markdown))

    def table(self, tag: str, columns: list[str], rows: list[list], step: int = 0) -> None:
        self.text(tag, markdown_table(columns, rows), step)

    def curves(self, tag: str, steps: list[int], series: dict[str, list[float]], x_name: str) -> None:
        """One scalar curve per series, `tag/label`, at the given steps (x_name: what they count)."""
        del x_name
        for label, values in series.items():
            for step, value in zip(steps, values):
                if math.isfinite(value):
                    self.scalars(int(step), {f"{tag}/{label}": float(value)})

    def image(self, tag: str, png: Path, step: int = 0) -> None:
        from PIL import Image
        from tensorboardX.proto.summary_pb2 import Summary

        data = Path(png).read_bytes()
        with Image.open(png) as img:
            width, height = img.size
        picture = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=data)
        self._write(step, summary=Summary(value=[Summary.Value(tag=tag, image=picture)]))

    def files(self, paths: list[Path], base: Path) -> None:
        """TensorBoard keeps no files: the exported rules stay in RUN_DIR/rules."""

    def close(self) -> None:
        self._writer.close()


class WandbTracker:
    """A Weights & Biases run. `run_id`: continue that run (resume="allow"). Files and the
    offline run go under `directory`/wandb; background system metrics, code and git capture are
    off, and the SDK prints nothing."""

    name = "wandb"

    def __init__(
        self,
        directory: Path,
        settings: WandbSettings,
        name: str,
        config: dict,
        run_id: str,
        job_type: str = "discovery",
    ):
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        self._wandb = wandb
        self.run = wandb.init(
            project=settings.project,
            entity=settings.entity or None,
            group=settings.group or None,
            name=name,
            id=run_id,
            resume="allow",
            dir=str(directory),
            mode=cast(Any, settings.mode),  # one of WANDB_MODES, checked by WandbSettings
            config=config,
            job_type=job_type,
            reinit="create_new",
            settings=wandb.Settings(
                silent=True, console="off", x_disable_stats=True, disable_git=True, save_code=False
            ),
        )

    def holds_through(self) -> int:
        """The newest step the run holds for sure: an online run resumed from the server knows
        its steps; an offline run (each start is a new offline-run directory, and a killed start
        may lose what wandb had not yet written) holds none, so it gets the whole history."""
        return max(self.run.step - 1, 0)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        faults.hit("wandb", step, self.run.dir)
        self.run.log(values, step=step)

    def config(self, config: dict) -> None:
        """Given to wandb.init already."""

    def table(self, tag: str, columns: list[str], rows: list[list], step: int = 0) -> None:
        self.run.log({tag: self._wandb.Table(columns=cast(list[Any], columns), data=rows)}, step=step)

    def curves(self, tag: str, steps: list[int], series: dict[str, list[float]], x_name: str) -> None:
        """A line chart of every series against `steps` (wandb steps only rise, so the curves
        of several tasks are charts, not scalars)."""
        chart = self._wandb.plot.line_series(
            xs=[list(steps)] * len(series),
            ys=[list(v) for v in series.values()],
            keys=list(series),
            title=tag,
            xname=x_name,
        )
        self.run.log({tag: chart}, step=0)

    def image(self, tag: str, png: Path, step: int = 0) -> None:
        self.run.log({tag: self._wandb.Image(str(png))}, step=step)

    def files(self, paths: list[Path], base: Path) -> None:
        """Copies of `paths` in the run's files, at their places relative to `base`."""
        for path in paths:
            copy = Path(self.run.dir) / Path(path).relative_to(base)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            self.run.save(str(copy), base_path=self.run.dir, policy="now")

    def close(self) -> None:
        self.run.finish()


class Trackers:
    """Trackers behind one guard: a call that raises warns once, naming the tracker and the
    error, and drops that tracker; the others and the caller go on."""

    def __init__(self, trackers: Iterable[Any] = ()):
        self.active = list(trackers)

    def call(self, method: str, *args) -> None:
        for tracker in list(self.active):
            self.call_one(tracker, method, *args)

    def call_one(self, tracker, method: str, *args) -> bool:
        """Calls tracker.method(*args); False (warned, dropped) when it raised."""
        try:
            getattr(tracker, method)(*args)
            return True
        except Exception as err:  # any failure of a tracker is the tracker's, never the job's
            self.drop(tracker, err)
            return False

    def drop(self, tracker, err: BaseException) -> None:
        """Warns that `tracker` failed with `err` and stops using it."""
        if tracker in self.active:
            self.active.remove(tracker)
        warnings.warn(
            f"the {tracker.name} logger failed ({type(err).__name__}: {err}); going on "
            f"without it (a job's metrics.jsonl holds every record, and `discover resume` "
            f"logs what the tracker missed)",
            RuntimeWarning,
            stacklevel=3,
        )
        try:
            tracker.close()
        except Exception:  # already failing: its close may fail too
            pass

    def close(self) -> None:
        self.call("close")
        self.active = []


def new_run_id() -> str:
    """A fresh wandb run id: 12 random lowercase hex digits."""
    return secrets.token_hex(6)


def open_trackers(
    names: Iterable[str], directory: Path, wandb: WandbSettings, name: str, config: dict, job_type: str
) -> Trackers:
    """Fresh trackers for `discover eval` (TensorBoard in directory/tb, hiding what an earlier
    evaluation logged there; wandb: a new run under directory); one that fails to start is
    warned about and left out."""
    trackers = Trackers()
    for tracker_name in names:
        tracker: TensorBoardTracker | WandbTracker
        try:
            if tracker_name == "tensorboard":
                tracker = TensorBoardTracker(directory / TB_DIR, purge_from=0)
            else:
                tracker = WandbTracker(directory, wandb, name, config, new_run_id(), job_type)
        except Exception as err:
            warnings.warn(
                f"the {tracker_name} logger could not start ({type(err).__name__}: "
                f"{err}); going on without it",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        trackers.active.append(tracker)
        trackers.call_one(tracker, "config", config)
    return trackers


class JobTrackers:
    """The job's loop callback `(record, state)` for the trackers in job.loggers: logs each
    record to every tracker and keeps RUN_DIR/trackers.json (see the module docstring).

    history: the restored records (what a tracker lacks of them is logged first). primary:
    whether this process logs (the others get an empty, silent callback).
    """

    def __init__(
        self, run_dir: Path, settings: JobSettings, config: dict, history: list, primary: bool = True
    ):
        self.run_dir = Path(run_dir)
        self.trackers = Trackers()
        names = [n for n in settings.loggers if n in TRACKERS] if primary else []
        self.state = read_state(self.run_dir) if names else {}
        self._state_failed = False
        for name in names:
            self._start(name, settings, config, history)

    def _start(self, name: str, settings: JobSettings, config: dict, history: list) -> None:
        """Opens tracker `name` where its run stands and logs the history it lacks."""
        entry = self.state.setdefault(name, {})
        tracker: TensorBoardTracker | WandbTracker
        try:
            if name == "tensorboard":  # later ones are recomputed: log them again
                logged = min(entry.get("logged", 0), len(history))
                fresh = not any((self.run_dir / TB_DIR).glob("events.out.tfevents.*"))
                tracker = TensorBoardTracker(self.run_dir / TB_DIR, None if fresh else logged + 1)
                if fresh:
                    tracker.config(config)
            else:
                if "id" not in entry:  # kept before the run starts, so a killed job resumes it
                    entry["id"] = new_run_id()
                    self._save_state()
                wandb_tracker = WandbTracker(self.run_dir, settings.wandb, settings.name, config, entry["id"])
                logged = wandb_tracker.holds_through()
                tracker = wandb_tracker
        except Exception as err:
            warnings.warn(
                f"the {name} logger could not start ({type(err).__name__}: {err}); the "
                f"job goes on without it, and `discover resume` tries again",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        entry["logged"] = logged
        self.trackers.active.append(tracker)
        for record in history:
            self._log(tracker, record)
        self._save_state()

    def _log(self, tracker, record: dict) -> None:
        """The record to `tracker`, unless it holds that generation already."""
        generation, entry = record["generation"], self.state[tracker.name]
        if generation > entry["logged"] and self.trackers.call_one(
            tracker, "scalars", generation, scalars(record)
        ):
            entry["logged"] = generation

    def __call__(self, record: dict, state) -> None:
        del state
        if not self.trackers.active:
            return
        for tracker in list(self.trackers.active):
            self._log(tracker, record)
        self._save_state()

    def exported(self, generation: int) -> None:
        """The rules exported with the checkpoint of `generation`, to the trackers that keep files."""
        rules = self.run_dir / "rules"
        paths = [
            rules / f"gen_{generation:06d}_{kind}{suffix}"
            for kind in ("mean", "best")
            for suffix in (".json", ".npz")
        ]
        self.trackers.call("files", paths, self.run_dir)

    def close(self) -> None:
        self.trackers.close()

    def _save_state(self) -> None:
        """trackers.json, atomically; a failed write warns once (the trackers go on)."""
        try:
            tmp = self.run_dir / f"{STATE_FILE}.tmp"
            tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
            os.replace(tmp, self.run_dir / STATE_FILE)
        except OSError as err:
            if not self._state_failed:
                warnings.warn(
                    f"cannot write {self.run_dir / STATE_FILE} ({err}); a resume may log "
                    f"some generations to the trackers twice",
                    RuntimeWarning,
                    stacklevel=2,
                )
            self._state_failed = True


def read_state(run_dir: Path) -> dict:
    """trackers.json of a run directory ({} when absent or unreadable: trackers start over)."""
    try:
        state = json.loads((Path(run_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}
