"""The discovery job (`discover run` and `discover resume`: `discovery.job.commands`).

The job is the impure host loop around one compiled meta-optimizer step, in three parts:

  Job.build()    check the machine and run directory, baselines, problem, meta-optimizer, spec.toml
  Job.restore()  the init state, or the newest intact checkpoint (re-exporting what it lacks)
  Job.loop()     compile the step once, then per generation: step -> record -> callbacks

Each generation's record (a metrics.jsonl line, `discovery.job.records`) goes to the loop's
callbacks, `callback(record, state)`: first the job's own (append to metrics.jsonl, log to the
trackers of `job.loggers`: `discovery.job.loggers`, advance the progress bar, save a checkpoint
every `job.checkpoint_every` generations, at the end and on SIGINT/SIGTERM, with its exports:
`discovery.job.files`), then the caller's. From Python:

    result = run_job(table, callbacks=[lambda record, state: print(record["fitness_max"])])

Running `run` on a directory that holds a run resumes it from its newest intact checkpoint; the
spec must then equal the saved one except for `job.generations`. Exit codes:
`discovery.job.commands.run_from_cli`.
Layout of the run directory: docs/CONTRACTS.md.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from discovery.evaluation.sources import resolve_source
from discovery.figures import fitness_unit
from discovery.job import console as job_console
from discovery.job import distributed, faults, loggers, reference_scores, watchdog
from discovery.job import files as job_files
from discovery.job import records as job_records
from discovery.job.files import SPEC_FILE, JobFailed
from discovery.job.signals import StopFlag
from discovery.spec import JobSettings, JobSpec, load_toml, parse_job_spec, parse_rule
from discovery.spec_tables import build
from inner_algos.config_checks import SpecError
from inner_algos.registry import config_section

# callback(record, state): record is the generation's metrics.jsonl line (a dict of plain
# Python values, `discovery.job.records`); state is the meta-optimizer state after it (a pytree
# over the job's devices, replicated but for truncated estimators' persistent runs, which are
# split over them; `Job.optimizer.params(state)` -> {"mean", "best"} rules, replicated).
# Called in every process of the job, after the record is logged and, when due, saved.
Callback = Callable[[dict, Any], None]

__all__ = ["Callback", "Job", "JobFailed", "JobInterrupted", "JobResult", "run_job"]


class JobInterrupted(RuntimeError):
    """A signal stopped the job before it could save its current generation."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


@dataclasses.dataclass
class JobResult:
    """What a finished (or interrupted) job leaves in memory; everything is also on disk.

    traces: how many times the step was traced (1 per process: it is compiled once; 0 when there
    was nothing left to run). signal: the signal that interrupted it (None: not interrupted).
    """

    run_dir: Path
    generation: int
    history: list
    params: dict
    traces: int
    compile_seconds: float | None  # None: finished already, nothing compiled
    interrupted: bool
    signal: int | None = None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or signal.SIGINT) if self.interrupted else 0


def run_job(
    table: dict, progress: bool = True, callbacks: Iterable[Callback] = (), restart: bool = False
) -> JobResult:
    """Runs or resumes the job the spec table describes (see module docstring), calling each of
    `callbacks` with every generation's (record, state) after the job's own callbacks.
    restart: first move what the run directory holds into `replaced-<UTC time>/` in it
    (`files.set_aside`) and start from generation 0.

    SIGINT/SIGTERM from here on stop the job after the current generation (or after compiling)
    and save it; a second signal outside a save raises JobInterrupted. Raises JobFailed when a
    write fails or every member diverges for job.max_nonfinite_generations generations.
    """
    spec = parse_job_spec(table, start_resolver(table, restart))
    stop = StopFlag()
    try:
        job = Job(spec, progress, stop, restart)
        job.build()
        return job.loop(job.restore(), callbacks)
    except KeyboardInterrupt:
        run_dir = spec.job.directory
        raise JobInterrupted(
            f"interrupted before saving the current generation; {run_dir} keeps its newest "
            f"checkpoint, continue with `discover resume {run_dir}`",
            stop.signum,
        ) from None
    finally:
        stop.restore()


def start_resolver(table: dict, restart: bool = False) -> Callable[[str], Any]:
    """What reads `[rule] init_from`: `resolve_source`, except for a run directory that already
    holds a checkpoint (and no --restart) with a [rule] naming its rule beside init_from, as a
    run's spec.toml does. The checkpoint is then the start, so the rule is rebuilt from the table
    and the SOURCE, which may have moved or gone since, is not read again."""
    rule = table.get("rule")
    if restart or not isinstance(rule, dict) or "name" not in rule:
        return resolve_source
    try:
        run_dir = build(JobSettings, table.get("job", {}), "job").directory
    except SpecError:  # parse_job_spec says what is wrong
        return resolve_source
    from discovery.job.checkpoint import available_steps  # orbax: imported where used

    if not available_steps(run_dir):
        return resolve_source
    given = {k: v for k, v in rule.items() if k != "init_from"}
    return lambda text: SimpleNamespace(rule=parse_rule(given), meta_params=None)


class Job:
    """One discovery job: `build()`, then `state = restore()`, then `loop(state, callbacks)`.

    spec: a spec table or a parsed JobSpec. progress: print the header, progress bar and closing
    line (from the primary process). stop: the signal flag the loop checks between generations
    (`run_job` installs one; by default no handler is installed and Ctrl-C raises as usual).
    After build(): problem, optimizer, baselines (spec.table is what spec.toml holds).
    After restore(): history (the records so far), steps_per_generation.
    """

    def __init__(
        self,
        spec: JobSpec | dict,
        progress: bool = True,
        stop: StopFlag | None = None,
        restart: bool = False,
    ):
        self.spec = spec if isinstance(spec, JobSpec) else parse_job_spec(spec, start_resolver(spec, restart))
        self.restart = restart
        self.run_dir = self.spec.job.directory
        self.progress = progress
        self.stop = stop if stop is not None else StopFlag(install=False)
        self.traces = 0
        self.stopping = False
        self.failure: str | None = None  # the divergence message that stops the job

    def build(self) -> None:
        """Checks the machine and the run directory, gets the baselines (spec, checkpoint or
        measured), makes the problem and the meta-optimizer and writes spec.toml. A run
        directory holding a run with another spec is a SpecError."""
        import jax

        from discovery.job import checkpoint
        from discovery.meta_opt import make_meta_optimizer
        from discovery.meta_opt.problem import Problem

        spec = self.spec
        self.primary = distributed.is_primary()  # the one process that writes besides checkpoints
        if self.restart:
            self._set_aside()
        saved_spec = _check_start(spec)
        self.progress = self.progress and self.primary
        saved_info = None
        if saved_spec is not None:
            try:
                saved_info = checkpoint.read_run_info(self.run_dir)
            except ValueError as err:  # every step unreadable: the run starts again
                print(f"warning: {err}", file=sys.stderr)
        k_baseline, self._k_init = jax.random.split(jax.random.PRNGKey(spec.job.seed))
        self.baselines = reference_scores.baselines(self.spec, saved_info, k_baseline, self.primary)
        self.random_scores = reference_scores.random_scores(
            self.spec, self.baselines, saved_info, k_baseline, self.primary
        )
        self.problem = Problem(
            spec.rule,
            spec.tasks,
            spec.inner_config,
            spec.meta_objective,
            spec.job.seeds_per_member,
            self.baselines,
            spec.job.population_batch,
            spec.job.evaluate_mean,
            tasks_per_generation=spec.job.tasks_per_generation,
            random_scores=self.random_scores,
            inner=spec.inner,
            init_params=spec.init_params,
        )
        self.optimizer = make_meta_optimizer(spec.meta_optimizer, spec.meta_optimizer_options, self.problem)
        if saved_spec is not None:
            job_files.check_resumed_spec(self.run_dir, saved_spec, self.spec.table)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.primary:
            job_files.write_spec(self.run_dir, self.spec.table)
        faults.hit("startup", 0)

    def _set_aside(self) -> None:
        """--restart: the primary process moves the run directory's files aside, then every
        process waits for it (a collective), so none sees the old files."""
        if self.primary:
            job_files.check_run_dir(self.run_dir)
            moved = job_files.set_aside(self.run_dir)
            if moved is not None:
                print(f"--restart: moved the earlier files of {self.run_dir} into {moved}", file=sys.stderr)
        distributed.any_process(False)

    def restore(self):
        """The meta-optimizer state to continue from: its init, or the newest intact checkpoint
        (then metrics.jsonl is cut back to its history, and its export is redone if it is
        incomplete). Sets `history`."""
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        from discovery.job import checkpoint

        self._replicated = NamedSharding(self.problem.mesh, PartitionSpec())
        state = jax.jit(self.optimizer.init)(self._k_init)
        lay_out = self.optimizer.state_sharding
        self._sharding = self._replicated if lay_out is None else lay_out(state)
        state = distributed.replicate(state, self._sharding)
        self.ckpt = checkpoint.Checkpointer(self.run_dir)
        self.history, self.device_change, info = [], None, None
        restored = self.ckpt.restore_latest(state)
        if restored is not None:
            state, info = restored
            job_files.check_checkpoint_spec(self.run_dir, info, self.spec.table)
            self.history = info["fitness_history"]
        if self.primary:
            job_files.write_history(self.run_dir, self.history)
        self._prepare_saves()
        if info is not None:
            self._resumed(state, info)
        return state

    def _prepare_saves(self) -> None:
        """The env steps per generation, the checkpoint info's fixed fields, the writer."""
        from discovery.versions import package_versions

        spec, optimizer = self.spec, self.optimizer
        self.steps_per_generation = optimizer.env_steps_per_step
        self.common = {
            "spec": self.spec.table,
            "versions": package_versions(),
            "baselines": None if self.baselines is None else [float(b) for b in self.baselines],
            "random_scores": (None if self.random_scores is None else [float(r) for r in self.random_scores]),
            "devices": self.problem.num_devices,
            "fitness": optimizer.fitness_doc,  # what metrics.jsonl's fitness_* and best_so_far are
        }
        self.files = job_files.RunFiles(
            self.run_dir,
            self.ckpt,
            spec.rule,
            spec.job.name,
            [t.label for t in spec.tasks],
            optimizer.params,
            self.primary,
            fitness_unit(dataclasses.asdict(spec.meta_objective)),
        )

    def _resumed(self, state, info: dict) -> None:
        """After a restore: note a device-count change, redo the checkpoint's missing export."""
        generation = len(self.history)
        self.device_change = job_records.device_change(info, self.problem.num_devices, generation)
        if self.device_change is not None and self.progress:
            job_console.warn_device_change(info["devices"], self.problem.num_devices, generation)
        if self.primary and not job_files.exported(self.run_dir, generation):
            job_console.announce_reexport(generation)
            self.files.export(state, info)

    def loop(self, state, callbacks: Iterable[Callback] = ()) -> JobResult:
        """Compiles the step (once) and runs generations until job.generations or a signal.

        After each generation every callback gets (record, state): the job's own (metrics.jsonl,
        trackers, progress bar, a one-time warning when the fitness ranking stays unreliable,
        checkpoint with exports when due) first, then `callbacks` (see `Callback`). Returns the
        JobResult; closes the checkpointer and the trackers, so a Job loops once.
        """
        import jax

        step, compile_seconds = self._compile(state)
        generation = len(self.history)
        job_console.print_header(
            self.spec,
            self.problem.num_devices,
            self.steps_per_generation,
            generation,
            compile_seconds,
            self.progress,
            self.optimizer.fitness_doc,
        )
        self._watch = watchdog.JobWatchdog(
            self.run_dir, self.spec.job.watchdog, self.spec.job.watchdog_min_seconds, generation
        )
        self.stopping = distributed.any_process(self.stop.raised)  # all stop at the same generation
        self.trackers = loggers.JobTrackers(
            self.run_dir, self.spec.job, self.spec.table, self.history, self.primary
        )
        bar = job_console.ProgressBar(
            generation, self.spec.job.generations, self.spec.job.evaluate_mean, self.progress
        )
        alarm = job_console.ReliabilityAlarm(
            self.history, config_section(self.spec.inner_config), self.primary
        )
        try:
            state = self._generations(
                step, state, [self._log, self.trackers, bar, alarm, self._checkpoint, *callbacks]
            )
        finally:
            bar.close()
            self.ckpt.close()
            self.trackers.close()
        job_console.print_end(self.spec, self.history, self.stopping, self.progress, self.primary)
        return JobResult(
            self.run_dir,
            len(self.history),
            self.history,
            jax.device_get(self.optimizer.params(state)),
            self.traces,
            compile_seconds,
            self.stopping,
            self.stop.signum if self.stopping else None,
        )

    def _compile(self, state):
        """(the compiled step, seconds) or (None, None) when the job has no generation left."""
        import jax

        def traced_step(state):
            self.traces += 1
            return self.optimizer.step(state)

        start = time.perf_counter()
        faults.hit("compile", 0)
        if len(self.history) >= self.spec.job.generations:  # nothing to compile for a finished job
            return None, None
        step = (
            jax.jit(
                traced_step, in_shardings=(self._sharding,), out_shardings=(self._sharding, self._replicated)
            )
            .lower(state)
            .compile()
        )
        return step, time.perf_counter() - start

    def _generations(self, step, state, callbacks: list):
        """Runs generations until job.generations, a signal or divergence; returns the state."""
        total = self.spec.job.generations
        while len(self.history) < total and not self.stopping:
            state, record = self._generation(step, state)
            self.history.append(record)
            self.stopping = distributed.any_process(self.stop.raised)
            self.failure = job_records.diverged(
                self.history, self.spec.job.max_nonfinite_generations, self.spec.inner_config
            )
            for callback in callbacks:
                callback(record, state)
            if self.failure:
                raise JobFailed(self.failure)
        return state

    def _generation(self, step, state):
        """One compiled step under the watchdog -> (state, record)."""
        import jax

        previous = self.history[-1] if self.history else {"wall_time": 0.0, "env_steps": 0}
        generation = len(self.history) + 1
        t0 = time.perf_counter()
        with self._watch.generation(generation, [r["generation_time"] for r in self.history]):
            state, metrics = step(state)
            faults.hit("mid_generation", generation)
            metrics = jax.device_get(metrics)
        seconds = time.perf_counter() - t0
        record = job_records.generation_record(
            generation,
            metrics,
            seconds,
            previous["wall_time"] + seconds,
            previous["env_steps"] + self.steps_per_generation,
            self.steps_per_generation,
            [t.label for t in self.spec.tasks],
        )
        record["devices"] = self.common["devices"]
        if self.device_change is not None:
            record["device_change"], self.device_change = self.device_change, None
        return state, record

    def _log(self, record: dict, state) -> None:
        """Callback: the record as the next line of metrics.jsonl (primary process)."""
        del state
        if self.primary:
            job_files.append_record(self.run_dir, record)

    def _checkpoint(self, record: dict, state) -> None:
        """Callback: a checkpoint with its exports every job.checkpoint_every generations, at
        the last one, and when stopping (a signal, or divergence); a signal waits for it."""
        generation, job = record["generation"], self.spec.job
        if (
            generation % job.checkpoint_every == 0
            or generation == job.generations
            or self.stopping
            or self.failure
        ):
            info = {
                **self.common,
                "generation": generation,
                "fitness_history": self.history,
                "wall_time": record["wall_time"],
                "env_steps": record["env_steps"],
            }
            with self.stop.saving():
                self.files.save(state, info)
            self._watch.saved = generation
            self.trackers.exported(generation)


def _check_start(spec: JobSpec) -> dict | None:
    """The checks after parsing that need the machine, before anything is written or compiled:
    the run directory is usable and would lose no stored generation (`files.check_not_overwriting`),
    the memory estimate fits (`discovery.job.memory`). Returns the saved spec of the run to
    resume, or None: a run directory holds one once it has a checkpoint; a spec.toml without one
    (a start that failed) is started afresh."""
    import jax

    from discovery.job import checkpoint, memory

    run_dir = spec.job.directory
    job_files.check_run_dir(run_dir)
    job_files.check_not_overwriting(run_dir, spec.table)
    memory.check(spec, len(jax.devices()), jax.local_devices())
    if (run_dir / SPEC_FILE).is_file() and checkpoint.available_steps(run_dir):
        return load_toml(run_dir / SPEC_FILE)
    return None
