"""`discover run SPEC [--set key=value ...]` and `discover resume RUN_DIR`: the discovery job.

The job is the impure host loop around one compiled meta-optimizer step:

  restore-or-init -> [ step (compiled once, ahead of time) -> log -> checkpoint? ]* -> final checkpoint

Per generation it appends one record to `metrics.jsonl` and updates a progress bar; every
`job.checkpoint_every` generations, at the end, and on SIGINT/SIGTERM it saves an orbax checkpoint
(`discovery.checkpoint`), exports the meta-optimizer's mean and best rule (`discovery.rule_io`) and
redraws `fitness.png`. Running `run` on a directory that holds a run resumes it from its newest
intact checkpoint; the spec must then equal the saved one except for `job.generations`. The
export belongs to its checkpoint: a resume re-exports what the newest checkpoint lacks. Exit
codes: `_run_from_cli`. Layout of the run directory: docs/CONTRACTS.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from discovery import distributed, faults, launch, watchdog
from discovery.spec import (
    JobSpec,
    SpecError,
    apply_overrides,
    check_run_dir,
    dump_toml,
    load_toml,
    parse_job_spec,
    spec_differences,
)

SPEC_FILE, METRICS_FILE, PLOT_FILE = "spec.toml", "metrics.jsonl", "fitness.png"
RESUMABLE = ("job.generations", "job.run_dir", "job.watchdog", "job.watchdog_min_seconds",
             "job.max_nonfinite_generations")


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run", help="run (or continue) a discovery job: meta-learn a rule with a meta-optimizer"
    )
    run.add_argument("spec", help="run spec TOML (see runs/quickstart.toml)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a spec key, e.g. --set job.generations=50 (repeatable)")
    distributed.add_arguments(run)
    run.set_defaults(func=main_run)
    resume = subparsers.add_parser("resume", help="continue the job in a run directory")
    resume.add_argument("run_dir", help="directory written by `discover run`")
    resume.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="e.g. --set job.generations=200 to extend the budget")
    distributed.add_arguments(resume)
    resume.set_defaults(func=main_resume)


def main_run(args) -> int:
    if args.processes > 1:
        return launch.launch_local(["run", args.spec, *launch.set_flags(args.set)], args.processes)
    table = load_toml(args.spec)
    if not table:
        raise SpecError(f"run spec {args.spec} is empty; a discovery spec needs [[tasks]] and "
                        f"[rule] at least (runs/quickstart.toml shows every key)")
    return _run_from_cli(apply_overrides(table, args.set), args)


def main_resume(args) -> int:
    if args.processes > 1:
        return launch.launch_local(["resume", args.run_dir, *launch.set_flags(args.set)],
                                   args.processes)
    run_dir = Path(args.run_dir)
    if not (run_dir / SPEC_FILE).exists():
        raise SpecError(f"{run_dir} is not a run directory: it holds no {SPEC_FILE}; start a job "
                        f"with `discover run SPEC`")
    table = apply_overrides(load_toml(run_dir / SPEC_FILE), args.set)
    table.setdefault("job", {})["run_dir"] = str(run_dir)
    return _run_from_cli(table, args)


def _run_from_cli(table: dict, args) -> int:
    """Runs the job; the exit code: 0 finished, 128 + signal number interrupted (130 SIGINT,
    143 SIGTERM: saved, unless a second signal cut the generation short), 1 failed (one line)."""
    try:
        with distributed.session(distributed.settings(args)), _one_line_warnings():
            return run_job(table).exit_code
    except JobInterrupted as err:
        print(f"discover {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except JobFailed as err:
        print(f"discover {args.command}: error: {err}", file=sys.stderr)
        return 1


class JobFailed(RuntimeError):
    """The job stopped on an error its message explains (exit code 1); what it saved is intact."""


class JobInterrupted(RuntimeError):
    """A signal stopped the job before it could save its current generation."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


@contextlib.contextmanager
def _one_line_warnings():
    """Prints warnings as one `warning: ...` line each (no source line) while the job runs."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


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


def run_job(table: dict, progress: bool = True) -> JobResult:
    """Runs or resumes the job the spec table describes (see module docstring).

    SIGINT/SIGTERM from here on stop the job after the current generation (or after compiling)
    and save it; a second signal outside a save raises JobInterrupted. Raises JobFailed when a
    write fails or every member diverges for job.max_nonfinite_generations generations.
    """
    spec = parse_job_spec(table)
    stop = _StopFlag()
    try:
        return _run_job(spec, progress, stop)
    except KeyboardInterrupt:
        run_dir = spec.job.directory
        raise JobInterrupted(
            f"interrupted before saving the current generation; {run_dir} keeps its newest "
            f"checkpoint, continue with `discover resume {run_dir}`", stop.signum) from None
    finally:
        stop.restore()


def _run_job(spec: JobSpec, progress: bool, stop: _StopFlag) -> JobResult:
    run_dir = spec.job.directory
    saved_spec = _check_start(spec)

    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    from discovery import checkpoint
    from discovery.meta_opt import make_meta_optimizer
    from discovery.problem import Problem, measure_baselines
    from discovery.versions import package_versions

    primary = distributed.is_primary()  # the one process that writes files besides checkpoints
    progress = progress and primary
    saved_info = None
    if saved_spec is not None:
        try:
            saved_info = checkpoint.read_run_info(run_dir)
        except ValueError as err:  # every step unreadable: the run starts again
            print(f"warning: {err}", file=sys.stderr)
    key = jax.random.PRNGKey(spec.job.seed)
    k_baseline, k_init = jax.random.split(key)
    baselines = _baselines(spec, saved_info, lambda: measure_baselines(
        spec.tasks, spec.ppo, spec.meta_objective, k_baseline), primary)
    problem = Problem(
        spec.rule, spec.tasks, spec.ppo, spec.meta_objective, spec.job.seeds_per_member,
        baselines, spec.job.population_batch, spec.job.evaluate_mean,
        tasks_per_generation=spec.job.tasks_per_generation,
    )
    optimizer = make_meta_optimizer(spec.meta_optimizer, spec.meta_optimizer_options, problem)
    resolved = {**spec.table, "meta_optimizer": {
        "name": spec.meta_optimizer, **_plain_options(optimizer.options)}}
    if saved_spec is not None:
        differences = spec_differences(saved_spec, resolved, ignore=RESUMABLE)
        if differences:
            raise SpecError(
                f"{run_dir} holds a run with a different spec; only job.generations may change "
                f"on resume. Differing keys: {'; '.join(differences)}. Use another job.run_dir."
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    if primary:  # atomically: other processes of the job may be reading it
        tmp = run_dir / f"{SPEC_FILE}.tmp"
        tmp.write_text(dump_toml(resolved))
        tmp.replace(run_dir / SPEC_FILE)
    faults.hit("startup", 0)

    replicated = NamedSharding(problem.mesh, PartitionSpec())
    state = distributed.replicate(jax.jit(optimizer.init)(k_init), replicated)
    ckpt = checkpoint.Checkpointer(run_dir)
    history, wall, env_steps = [], 0.0, 0
    restored = ckpt.restore_latest(state)
    if restored is not None:
        state, info = restored
        _check_checkpoint_spec(run_dir, info, resolved)
        history, wall, env_steps = info["fitness_history"], info["wall_time"], info["env_steps"]
    if primary:
        _write_history(run_dir / METRICS_FILE, history)

    traces = 0

    def traced_step(state):
        nonlocal traces
        traces += 1
        return optimizer.step(state)

    start = time.perf_counter()
    faults.hit("compile", 0)
    step = None
    if len(history) < spec.job.generations:  # nothing to compile for a finished job
        step = jax.jit(traced_step, in_shardings=replicated,
                       out_shardings=replicated).lower(state).compile()
    compile_seconds = time.perf_counter() - start if step is not None else None

    steps_per_generation = optimizer.env_steps_per_step or problem.env_steps_per_member * (
        optimizer.options.population_size + int(spec.job.evaluate_mean))
    common = {
        "spec": resolved, "versions": package_versions(),
        "baselines": None if baselines is None else [float(b) for b in baselines],
        "devices": problem.num_devices,
    }
    generation = len(history)
    _print_header(spec, problem, resolved["meta_optimizer"], steps_per_generation, generation,
                  compile_seconds, progress)
    job = _Job(spec, run_dir, ckpt, optimizer, common, primary, steps_per_generation)
    device_change = None
    if restored is not None:
        device_change = _device_change(info, problem.num_devices, generation, progress)
        if primary and not _exported(run_dir, generation):
            print(f"generation {generation}'s rules were not exported (the job stopped between its "
                  f"checkpoint and its export); exporting them now", file=sys.stderr, flush=True)
            _export(job, state, info)
    try:
        state, history, stopping = _generations(job, step, state, history, wall, env_steps, stop,
                                                progress, device_change)
    finally:
        ckpt.close()
    generation = len(history)

    if generation >= spec.job.generations and history and progress:
        last = history[-1]
        mean = f", ES mean {_fmt(last['mean_fitness'])}" if spec.job.evaluate_mean else ""
        print(f"done: {generation} generations in {run_dir}; best member {_fmt(last['best_so_far'])}"
              f"{mean}; rules in {run_dir / 'rules'}, curve in "
              f"{run_dir / PLOT_FILE}. More generations: `discover resume {run_dir} "
              f"--set job.generations=N`", file=sys.stderr)
    if stopping and primary:
        saved = f"saved generation {generation}" if generation else "nothing to save yet"
        print(f"interrupted: {saved} in {run_dir}; continue with `discover resume {run_dir}`",
              file=sys.stderr)
    return JobResult(run_dir, generation, history, jax.device_get(optimizer.params(state)), traces,
                     compile_seconds, stopping, stop.signum if stopping else None)


@dataclasses.dataclass(frozen=True)
class _Job:
    """What the generation loop, the saves and the exports share (static for the job)."""

    spec: JobSpec
    run_dir: Path
    ckpt: Any
    optimizer: Any
    common: dict  # the checkpoint info's fields that do not change per generation
    primary: bool
    steps_per_generation: int


def _generations(job: _Job, step, state, history: list, wall: float, env_steps: int,
                 stop: "_StopFlag", progress: bool, device_change: dict | None):
    """Runs generations until job.generations or a signal, saving every checkpoint_every, at the
    end and when stopped. Returns (state, history, stopped by a signal)."""
    import jax

    spec, generation = job.spec, len(history)
    watch = watchdog.JobWatchdog(job.run_dir, spec.job.watchdog, spec.job.watchdog_min_seconds,
                                 generation)
    stopping = distributed.any_process(stop.raised)  # all processes stop at the same generation
    bar = _progress_bar(generation, spec.job.generations, progress)
    try:
        while generation < spec.job.generations and not stopping:
            t0 = time.perf_counter()
            with watch.generation(generation + 1, [r["generation_time"] for r in history]):
                state, metrics = step(state)
                faults.hit("mid_generation", generation + 1)
                metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - t0
            generation += 1
            wall += seconds
            env_steps += job.steps_per_generation
            record = _record(generation, metrics, seconds, wall, env_steps, job.steps_per_generation,
                             [t.label for t in spec.tasks])
            record["devices"] = job.common["devices"]
            if device_change is not None:
                record["device_change"], device_change = device_change, None
            history.append(record)
            if job.primary:
                with open(job.run_dir / METRICS_FILE, "a") as f:
                    f.write(json.dumps(record) + "\n")
            bar.update(1)
            bar.set_postfix_str(_postfix(record, spec.job.evaluate_mean))
            stopping = distributed.any_process(stop.raised)
            diverged = _diverged(history, spec.job.max_nonfinite_generations)
            if (generation % spec.job.checkpoint_every == 0 or generation == spec.job.generations
                    or stopping or diverged):
                info = {**job.common, "generation": generation, "fitness_history": history,
                        "wall_time": wall, "env_steps": env_steps}
                with stop.saving():
                    _save(job, state, info)
                watch.saved = generation
            if diverged:
                raise JobFailed(diverged)
    finally:
        bar.close()
    return state, history, stopping


def _diverged(history: list, limit: int) -> str | None:
    """The message that stops a job whose every member was non-finite in each of the last
    `limit` generations (0: never), else None."""
    streak = 0
    for record in reversed(history):
        if record["fitness_max"] is not None:
            break
        streak += 1
    if not limit or streak < limit:
        return None
    last = history[-1]["generation"]
    return (f"every member's fitness was non-finite in the last {streak} generations "
            f"({last - streak + 1}-{last}): the inner runs diverge. Likely causes: ppo.learning_rate "
            f"too large, the search step too large (meta_optimizer.sigma_init, or its learning_rate), "
            f"or rewards on a large scale (tasks[].reward_scale, ppo.normalize_rewards). Generation {last} "
            f"is saved; job.max_nonfinite_generations = 0 never stops")


def _device_change(info: dict, devices: int, generation: int, verbose: bool) -> dict | None:
    """{"from": N, "to": M, "generation": G} when the checkpoint was written on N devices and the
    job resumes on M != N (printing a warning: the numbers no longer match an uninterrupted run),
    else None."""
    saved = info.get("devices")
    if saved is None or saved == devices:
        return None
    if verbose:
        print(f"warning: this run was checkpointed on {saved} device(s) and resumes on {devices}: "
              f"from generation {generation + 1} on its numbers differ slightly from an "
              f"uninterrupted run on {saved} (reductions are summed in another order); "
              f"recorded in {METRICS_FILE}", file=sys.stderr, flush=True)
    return {"from": saved, "to": devices, "generation": generation + 1}


def _check_checkpoint_spec(run_dir: Path, info: dict, resolved: dict) -> None:
    """SpecError when the spec differs from the one the restored checkpoint was written with
    (e.g. spec.toml edited by hand), beyond the keys a resume may change."""
    differences = spec_differences(info["spec"], resolved, ignore=RESUMABLE)
    if differences:
        raise SpecError(
            f"{run_dir / SPEC_FILE} differs from the spec checkpoint {info['step']} was written "
            f"with; only job.generations may change on resume. Differing keys: "
            f"{'; '.join(differences)}. Undo the edit or use another job.run_dir."
        )


def _check_start(spec: JobSpec) -> dict | None:
    """The checks after parsing that need the machine, before anything is written or compiled:
    the run directory is usable, the memory estimate fits (`discovery.memory`). Returns the
    saved spec of the run to resume, or None: a run directory holds one once it has a checkpoint;
    a spec.toml without one (a start that failed) is started afresh."""
    import jax

    from discovery import checkpoint, memory

    run_dir = spec.job.directory
    check_run_dir(run_dir)
    memory.check(spec, len(jax.devices()), jax.local_devices())
    if (run_dir / SPEC_FILE).is_file() and checkpoint.available_steps(run_dir):
        return load_toml(run_dir / SPEC_FILE)
    return None


def _baselines(spec: JobSpec, saved_info: dict | None, measure, verbose: bool = True) -> Any:
    """Per-task baseline scores: None (no normalisation), from the spec, the checkpoint, or measured."""
    objective = spec.meta_objective
    if objective.normalise == "none":
        return None
    if objective.baselines:
        return np.asarray(objective.baselines, np.float32)
    if saved_info is not None and saved_info.get("baselines") is not None:
        return np.asarray(saved_info["baselines"], np.float32)
    if verbose:
        print(f"measuring baselines: {objective.baseline_rule} on {len(spec.tasks)} task(s) x "
              f"{objective.baseline_seeds} seeds", file=sys.stderr, flush=True)
    return measure()


def _plain_options(options: Any) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _record(generation, metrics, seconds, wall, env_steps, steps_per_generation, labels) -> dict:
    """One metrics.jsonl line; non-finite numbers become null."""
    fitness = np.asarray(metrics["fitness"], np.float64)
    finite = fitness[np.isfinite(fitness)]
    stats = (lambda f: _finite(f(finite)) if finite.size else None)
    task_scores = np.asarray(metrics["task_scores"], np.float64)
    used = metrics.get("task_indices", range(len(labels)))
    return {
        "generation": generation,
        "fitness_mean": stats(np.mean),
        "fitness_std": stats(np.std),
        "fitness_min": stats(np.min),
        "fitness_median": stats(np.median),
        "fitness_max": stats(np.max),
        "num_nonfinite": int(metrics["num_nonfinite"]),
        "nonfinite_pairs": int(metrics["nonfinite_pairs"]) if "nonfinite_pairs" in metrics else None,
        "best_so_far": _finite(metrics["best_fitness"]),
        "mean_fitness": _finite(metrics["mean_fitness"]),
        "task_scores": {
            label: _finite(np.nanmean(np.where(np.isfinite(col), col, np.nan)))
            if np.isfinite(col).any() else None
            for label, col in zip(labels, task_scores.T)
        },
        "tasks": [labels[int(i)] for i in used],  # the tasks this generation trained on
        "sigma": _finite(metrics["sigma"]) if "sigma" in metrics else None,
        "hyperparams": {k: _finite(v) for k, v in metrics.get("hyperparams", {}).items()} or None,
        "generation_time": seconds,
        "wall_time": wall,
        "env_steps": env_steps,
        "env_steps_per_s": steps_per_generation / seconds,
    }


def _write_history(path: Path, history: list) -> None:
    """metrics.jsonl = the checkpoint's history (drops records of generations after it)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in history))


def _save(job: _Job, state, info: dict) -> None:
    """Checkpoint (all processes together) + exported mean and best rules + fitness plot (the
    primary process) for generation info['generation']. A failed write raises JobFailed; the
    checkpoints before it stay intact, and `discover resume` re-exports rules it lacks."""
    from discovery.checkpoint import CheckpointWriteError, available_steps

    generation = info["generation"]
    previous = max(available_steps(job.run_dir), default=None)
    try:
        job.ckpt.save(generation, state, info)
    except CheckpointWriteError as err:
        kept = "no earlier checkpoint" if previous is None else f"checkpoint {previous} is intact"
        raise JobFailed(f"{err}; {kept}. Free space (or fix the directory) and continue with "
                        f"`discover resume {job.run_dir}`") from err
    _export(job, state, info)


def _export(job: _Job, state, info: dict) -> None:
    """The exported mean and best rules and the fitness plot of the checkpoint of generation
    info['generation'] (rules only from the primary process; a failed write is a JobFailed)."""
    import jax

    generation = info["generation"]
    params = jax.device_get(job.optimizer.params(state))  # in every process: state spans them all
    if not job.primary:
        return
    try:
        _export_files(job, params, info)
    except OSError as err:
        raise JobFailed(
            f"cannot write {err.filename or job.run_dir}: {err.strerror or err}; checkpoint "
            f"{generation} is saved and intact, and `discover resume {job.run_dir}` exports its "
            f"rules and plot once there is room") from err


def _export_files(job: _Job, params: dict, info: dict) -> None:
    from discovery.rule_io import save_rule

    run_dir, spec, generation = job.run_dir, job.spec, info["generation"]
    faults.hit("after_checkpoint", generation, run_dir / "rules")  # checkpoint written, not exported
    last = info["fitness_history"][-1]
    provenance = {
        "generation": generation,
        "run_dir": str(run_dir),
        "spec_hash": hashlib.sha256((run_dir / SPEC_FILE).read_bytes()).hexdigest()[:16],
        "versions": info["versions"],
        "train_tasks": [t.label for t in spec.tasks],
    }
    faults.hit("plot", generation, run_dir / PLOT_FILE)
    plot_fitness(run_dir / PLOT_FILE, info["fitness_history"], spec.job.name)
    for kind, fitness in (("mean", last["mean_fitness"]), ("best", last["best_so_far"])):
        for stem in (f"gen_{generation:06d}_{kind}", f"latest_{kind}"):  # latest last: `_exported`
            save_rule(run_dir / "rules" / stem, spec.rule, params[kind], kind=kind,
                      fitness=fitness, **provenance)


def _exported(run_dir: Path, generation: int) -> bool:
    """Whether generation `generation`'s export is complete: the plot, then gen_<G>_{mean,best}
    and latest_{mean,best} readable with headers at G (`_export_files` writes them in that order,
    each rule's .npz before its .json)."""
    rules = run_dir / "rules"
    stems = [rules / f"{prefix}_{kind}" for prefix in (f"gen_{generation:06d}", "latest")
             for kind in ("mean", "best")]
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


def plot_fitness(path: Path, history: list, title: str) -> None:
    """Population mean/max, the meta-optimizer mean's score and the best so far per generation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [r["generation"] for r in history]

    def series(key):
        return [np.nan if r.get(key) is None else r[key] for r in history]

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(gens, series("fitness_mean"), label="population mean")
    ax.plot(gens, series("fitness_max"), lw=0.8, alpha=0.6, label="population max")
    ax.plot(gens, series("mean_fitness"), lw=2, label="ES mean (evaluated)")
    ax.plot(gens, series("best_so_far"), ls="--", color="k", lw=1, label="best member so far")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between generations; a second signal
    stops at once (KeyboardInterrupt), except during a save, which it never cuts short."""

    def __init__(self):
        self.raised = False
        self.signum = int(signal.SIGINT)  # the first signal received
        self._saving = False
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        del frame
        name = signal.Signals(signum).name
        if self._saving:
            print(f"\nreceived {name} while saving: the save finishes first, then the job stops",
                  file=sys.stderr, flush=True)
        elif self.raised:  # a second signal: stop now
            raise KeyboardInterrupt
        else:
            print(f"\nreceived {name}: finishing this generation (or compiling) and saving; a "
                  f"second signal stops at once without saving it", file=sys.stderr, flush=True)
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


def _progress_bar(generation: int, total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=generation, unit="gen", disable=not enabled, dynamic_ncols=True)


def _fmt(x) -> str:
    return "nan" if x is None else f"{x:.4g}"


def _postfix(record: dict, evaluate_mean: bool) -> str:
    """The progress bar's text: fitness, the ES mean's score when it is evaluated, learned
    hyperparameters when the estimator reports them (online_metagrad), throughput."""
    parts = [f"best {_fmt(record['best_so_far'])}", f"pop-mean {_fmt(record['fitness_mean'])}"]
    if evaluate_mean:
        parts.append(f"ES-mean {_fmt(record['mean_fitness'])}")
    parts += [f"{name} {_fmt(value)}" for name, value in (record["hyperparams"] or {}).items()]
    parts += [f"nonfinite {record['num_nonfinite']}", f"{record['env_steps_per_s']:,.0f} steps/s"]
    return " ".join(parts)


def _print_header(spec, problem, options, steps_per_generation, generation, compile_s, enabled):
    if not enabled:
        return
    tasks = ", ".join(t.label for t in spec.tasks)
    state = f"resuming at generation {generation}" if generation else "starting"
    size = f" population {options['population_size']}" if "population_size" in options else ""
    print(
        f"discover run {spec.job.name!r} -> {spec.job.directory} ({state})\n"
        f"  rule {spec.rule.name} | tasks {tasks} | {spec.meta_optimizer}{size} "
        f"x {spec.job.seeds_per_member} seed(s) on {problem.num_devices} device(s)\n"
        f"  {steps_per_generation:,} env steps per generation; "
        + (f"compiled in {compile_s:.1f} s" if compile_s is not None else "nothing left to run"),
        file=sys.stderr, flush=True,
    )
