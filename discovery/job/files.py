"""The run directory of a discovery job: spec.toml, metrics.jsonl, and each checkpoint committed
with its exports (docs/CONTRACTS.md, "Run directory").

A save commits in this order: the orbax checkpoint (all processes together), then `fitness.png`,
then the rules `gen_<G>_{mean,best}` and `latest_{mean,best}` (the primary process; each rule's
.npz before its .json). The export belongs to its checkpoint: `exported` tells whether the newest
checkpoint's export is complete, and a resume re-exports it when not.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from discovery.job import faults
from discovery.spec import SpecError, dump_toml, load_toml, respell_spec

SPEC_FILE, METRICS_FILE, PLOT_FILE = "spec.toml", "metrics.jsonl", "fitness.png"
SET_ASIDE_PREFIX = "replaced-"  # `--restart` moves a run directory's files into replaced-<UTC time>/
RESUMABLE = (
    "job.generations",
    "job.run_dir",
    "job.watchdog",
    "job.watchdog_min_seconds",
    "job.max_nonfinite_generations",
    "job.loggers",
    "job.wandb.project",
    "job.wandb.entity",
    "job.wandb.group",
    "job.wandb.mode",
)


def resumable_keys() -> str:
    """The keys a resume may change, for messages: 'job.generations, job.watchdog, ...'."""
    return ", ".join(key for key in RESUMABLE if key != "job.run_dir")  # run_dir: set by resume


class JobFailed(RuntimeError):
    """The job stopped on an error its message explains (exit code 1); what it saved is intact."""


def write_spec(run_dir: Path, resolved: dict) -> None:
    """spec.toml, atomically: other processes of the job may be reading it."""
    tmp = run_dir / f"{SPEC_FILE}.tmp"
    tmp.write_text(dump_toml(resolved))
    tmp.replace(run_dir / SPEC_FILE)


def write_history(run_dir: Path, history: list) -> None:
    """metrics.jsonl = the checkpoint's history (drops records of generations after it)."""
    (run_dir / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in history))


def append_record(run_dir: Path, record: dict) -> None:
    """One generation's record as the next line of metrics.jsonl."""
    with open(run_dir / METRICS_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")


def check_run_dir(path: Path) -> None:
    """Raises a SpecError unless a job can create or use the run directory `path`: a directory,
    or a path not there yet whose nearest existing parent is a writable directory. Writes nothing."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())  # ends at "." or "/"
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is under {existing}, which is a file"
        raise SpecError(f"job.run_dir = {str(path)!r} {where}; choose a directory (new or a run's)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SpecError(
            f"job.run_dir = {str(path)!r} cannot be written: {existing} is read-only or "
            f"not writable by this user; choose another job.run_dir"
        )


def recorded_generations(run_dir: Path) -> int:
    """How many generation records (non-blank lines) the run directory's metrics.jsonl holds."""
    metrics = Path(run_dir) / METRICS_FILE
    if not metrics.is_file():
        return 0
    return sum(1 for line in metrics.read_bytes().splitlines() if line.strip())


def check_not_overwriting(run_dir: Path, resolved: dict) -> None:
    """SpecError when starting a job in `run_dir` would overwrite generations it cannot continue:
    metrics.jsonl holds records but there is no checkpoint to restore (a stored or copied run,
    whose checkpoints were left out). The one exception is a start of this very spec that was
    stopped before its first checkpoint (checkpoints/ exists, spec.toml agrees): running it again
    writes the same records. Writes nothing."""
    from discovery.job.checkpoint import available_steps, checkpoint_dir

    run_dir = Path(run_dir)
    count = recorded_generations(run_dir)
    if not count or available_steps(run_dir):
        return
    spec_file = run_dir / SPEC_FILE
    if checkpoint_dir(run_dir).is_dir() and spec_file.is_file():
        if not spec_differences(respell_spec(load_toml(spec_file)), resolved, ignore=RESUMABLE):
            return
    raise SpecError(
        f"{run_dir} holds {count} generation(s) in {METRICS_FILE} but no checkpoint to continue "
        f"from (a stored or copied run?); starting here would overwrite them. Keep them and use "
        f"another run directory (`discover run SPEC --set job.run_dir=NEW_DIR`), or add --restart "
        f"to move its files into {run_dir}/{SET_ASIDE_PREFIX}<UTC time>/ (nothing is deleted) and "
        f"start again"
    )


def set_aside(run_dir: Path, now: datetime.datetime | None = None) -> Path | None:
    """Moves every entry of `run_dir` (but earlier set-aside folders) into a new folder
    `run_dir/replaced-<UTC time>/` and returns it; None when there was nothing to move."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    entries = [p for p in run_dir.iterdir() if not p.name.startswith(SET_ASIDE_PREFIX)]
    if not entries:
        return None
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = run_dir / f"{SET_ASIDE_PREFIX}{stamp}"
    target.mkdir()  # exists already: a second restart within the second; the error names it
    for entry in entries:
        entry.rename(target / entry.name)
    return target


def flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}, "tasks": [{"x": 2}]}` -> `{"a.b": 1, "tasks[0].x": 2}`."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out.update(flatten(item, f"{name}[{i}]."))
        else:
            out[name] = value
    return out


def spec_differences(saved: dict, new: dict, ignore: tuple[str, ...] = ("job.generations",)) -> list[str]:
    """Dotted keys whose values differ between two resolved specs, as 'key: saved -> new'."""
    a, b = flatten(saved), flatten(new)
    return [
        f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
        for k in sorted(set(a) | set(b))
        if k not in ignore and a.get(k) != b.get(k)
    ]


def check_resumed_spec(run_dir: Path, saved: dict, resolved: dict) -> None:
    """SpecError when the run directory's spec.toml differs from the resolved spec beyond the
    keys a resume may change. Keys the saved spec spells the old way count as the new ones."""
    differences = spec_differences(respell_spec(saved), resolved, ignore=RESUMABLE)
    if differences:
        raise SpecError(
            f"{run_dir} holds a run with a different spec; only {resumable_keys()} may change "
            f"on resume. Differing keys: {'; '.join(differences)}. Use another job.run_dir."
        )


def check_checkpoint_spec(run_dir: Path, info: dict, resolved: dict) -> None:
    """SpecError when the spec differs from the one the restored checkpoint was written with
    (e.g. spec.toml edited by hand), beyond the keys a resume may change. Keys the checkpoint
    spells the old way count as the new ones."""
    differences = spec_differences(respell_spec(info["spec"]), resolved, ignore=RESUMABLE)
    if differences:
        raise SpecError(
            f"{run_dir / SPEC_FILE} differs from the spec checkpoint {info['step']} was written "
            f"with; only {resumable_keys()} may change on resume. Differing keys: "
            f"{'; '.join(differences)}. Undo the edit or use another job.run_dir."
        )


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """Commits a job's checkpoints with their exports (static for the job).

    params: the meta-optimizer state -> {"mean": meta-params, "best": meta-params}.
    primary: whether this process writes the exports (every process writes the checkpoint).
    """

    run_dir: Path
    ckpt: Any  # discovery.job.checkpoint.Checkpointer
    rule: Any  # inner_algos.rules.Rule
    title: str
    train_tasks: list
    params: Callable[[Any], dict]
    primary: bool
    unit: str = "fitness"  # the fitness plot's y label (`discovery.figures.fitness_unit`)

    def save(self, state, info: dict) -> None:
        """Checkpoint + exported mean and best rules + fitness plot for generation
        info['generation']. A failed write raises JobFailed; the checkpoints before it stay
        intact, and `discover resume` re-exports rules it lacks."""
        from discovery.job.checkpoint import CheckpointWriteError, available_steps

        generation = info["generation"]
        previous = max(available_steps(self.run_dir), default=None)
        try:
            self.ckpt.save(generation, state, info)
        except CheckpointWriteError as err:
            kept = "no earlier checkpoint" if previous is None else f"checkpoint {previous} is intact"
            raise JobFailed(
                f"{err}; {kept}. Free space (or fix the directory) and continue with "
                f"`discover resume {self.run_dir}`"
            ) from err
        self.export(state, info)

    def export(self, state, info: dict) -> None:
        """The exported mean and best rules and the fitness plot of the checkpoint of generation
        info['generation'] (only from the primary process; a failed write is a JobFailed)."""
        import jax

        generation = info["generation"]
        params = jax.device_get(self.params(state))  # in every process: state spans them all
        if not self.primary:
            return
        try:
            self._write_exports(params, info)
        except OSError as err:
            raise JobFailed(
                f"cannot write {err.filename or self.run_dir}: {err.strerror or err}; checkpoint "
                f"{generation} is saved and intact, and `discover resume {self.run_dir}` exports "
                f"its rules and plot once there is room"
            ) from err

    def _write_exports(self, params: dict, info: dict) -> None:
        from discovery.figures import fitness_figure, fitness_series, reliability_series
        from discovery.job.records import RELIABILITY_FLOOR
        from discovery.rule_io import save_rule

        run_dir, generation = self.run_dir, info["generation"]
        faults.hit("after_checkpoint", generation, run_dir / "rules")  # checkpoint written, not exported
        last = info["fitness_history"][-1]
        provenance = {
            "generation": generation,
            "run_dir": str(run_dir),
            "spec_hash": hashlib.sha256((run_dir / SPEC_FILE).read_bytes()).hexdigest()[:16],
            "versions": info["versions"],
            "train_tasks": self.train_tasks,
        }
        faults.hit("plot", generation, run_dir / PLOT_FILE)
        history = info["fitness_history"]
        reliability = reliability_series(history)
        fitness_figure(
            run_dir / PLOT_FILE,
            {self.title: fitness_series(history)},
            {self.title: reliability} if reliability else None,
            RELIABILITY_FLOOR,
            self.unit,
        )
        for kind, fitness in (("mean", last["mean_fitness"]), ("best", last["best_so_far"])):
            for stem in (f"gen_{generation:06d}_{kind}", f"latest_{kind}"):  # latest last: `exported`
                save_rule(
                    run_dir / "rules" / stem,
                    self.rule,
                    params[kind],
                    kind=kind,
                    fitness=fitness,
                    **provenance,
                )


def exported(run_dir: Path, generation: int) -> bool:
    """Whether generation `generation`'s export is complete: the plot, then gen_<G>_{mean,best}
    and latest_{mean,best} readable with headers at G (`RunFiles` writes them in that order,
    each rule's .npz before its .json)."""
    rules = run_dir / "rules"
    stems = [
        rules / f"{prefix}_{kind}"
        for prefix in (f"gen_{generation:06d}", "latest")
        for kind in ("mean", "best")
    ]
    for stem in stems:
        try:
            header = json.loads(stem.with_suffix(".json").read_text())
            with np.load(stem.with_suffix(".npz"), allow_pickle=False) as data:
                for name in data.files:
                    data[name]
        except Exception:  # missing, truncated, garbage, object arrays: export again
            return False
        if not (isinstance(header, dict) and header.get("generation") == generation):
            return False
    return True
