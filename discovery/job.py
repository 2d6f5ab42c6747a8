"""`discover run SPEC [--set key=value ...]` and `discover resume RUN_DIR`: the discovery job.

The job is the impure host loop around one compiled meta-optimizer step:

  restore-or-init -> [ step (compiled once, ahead of time) -> log -> checkpoint? ]* -> final checkpoint

Per generation it appends one record to `metrics.jsonl` and updates a progress bar; every
`job.checkpoint_every` generations, at the end, and on SIGINT/SIGTERM it saves an orbax checkpoint
(`discovery.checkpoint`), exports the meta-optimizer's mean and best rule (`discovery.rule_io`) and
redraws `fitness.png`. Running `run` on a directory that holds a run resumes it from its newest
intact checkpoint; the spec must then equal the saved one except for `job.generations`.
Layout of the run directory: docs/CONTRACTS.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from discovery import distributed, launch, watchdog
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
RESUMABLE = ("job.generations", "job.run_dir", "job.watchdog", "job.watchdog_min_seconds")


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
    with distributed.session(distributed.settings(args)):
        run_job(apply_overrides(table, args.set))
    return 0


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
    with distributed.session(distributed.settings(args)):
        run_job(table)
    return 0


@dataclasses.dataclass
class JobResult:
    """What a finished (or interrupted) job leaves in memory; everything is also on disk.

    traces: how many times the step was traced (1 per process: it is compiled once).
    """

    run_dir: Path
    generation: int
    history: list
    params: dict
    traces: int
    compile_seconds: float
    interrupted: bool


def run_job(table: dict, progress: bool = True) -> JobResult:
    """Runs or resumes the job the spec table describes (see module docstring)."""
    spec = parse_job_spec(table)
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

    replicated = NamedSharding(problem.mesh, PartitionSpec())
    state = distributed.replicate(jax.jit(optimizer.init)(k_init), replicated)
    ckpt = checkpoint.Checkpointer(run_dir)
    history, wall, env_steps = [], 0.0, 0
    restored = ckpt.restore_latest(state)
    if restored is not None:
        state, info = restored
        history, wall, env_steps = info["fitness_history"], info["wall_time"], info["env_steps"]
    if primary:
        _write_history(run_dir / METRICS_FILE, history)

    traces = 0

    def traced_step(state):
        nonlocal traces
        traces += 1
        return optimizer.step(state)

    start = time.perf_counter()
    step = jax.jit(traced_step, in_shardings=replicated, out_shardings=replicated).lower(state).compile()
    compile_seconds = time.perf_counter() - start

    steps_per_generation = optimizer.env_steps_per_step or problem.env_steps_per_member * (
        optimizer.options.population_size + int(spec.job.evaluate_mean))
    common = {
        "spec": resolved, "versions": package_versions(),
        "baselines": None if baselines is None else [float(b) for b in baselines],
    }
    generation = len(history)
    _print_header(spec, problem, resolved["meta_optimizer"], steps_per_generation, generation,
                  compile_seconds, progress)

    stop = _StopFlag()
    watch = watchdog.JobWatchdog(run_dir, spec.job.watchdog, spec.job.watchdog_min_seconds, generation)
    stopping = distributed.any_process(stop.raised)  # all processes stop at the same generation
    bar = _progress_bar(generation, spec.job.generations, progress)
    try:
        while generation < spec.job.generations and not stopping:
            t0 = time.perf_counter()
            with watch.generation(generation + 1, [r["generation_time"] for r in history]):
                state, metrics = step(state)
                metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - t0
            generation += 1
            wall += seconds
            env_steps += steps_per_generation
            record = _record(generation, metrics, seconds, wall, env_steps, steps_per_generation,
                             [t.label for t in spec.tasks])
            history.append(record)
            if primary:
                with open(run_dir / METRICS_FILE, "a") as f:
                    f.write(json.dumps(record) + "\n")
            bar.update(1)
            bar.set_postfix_str(_postfix(record, spec.job.evaluate_mean))
            stopping = distributed.any_process(stop.raised)
            if (generation % spec.job.checkpoint_every == 0 or generation == spec.job.generations
                    or stopping):
                info = {**common, "generation": generation, "fitness_history": history,
                        "wall_time": wall, "env_steps": env_steps}
                _save(ckpt, run_dir, spec, optimizer, state, info, primary)
                watch.saved = generation
    finally:
        bar.close()
        stop.restore()
        ckpt.close()
    if generation >= spec.job.generations and history and progress:
        last = history[-1]
        mean = f", ES mean {_fmt(last['mean_fitness'])}" if spec.job.evaluate_mean else ""
        print(f"done: {generation} generations in {run_dir}; best member {_fmt(last['best_so_far'])}"
              f"{mean}; rules in {run_dir / 'rules'}, curve in "
              f"{run_dir / PLOT_FILE}. More generations: `discover resume {run_dir} "
              f"--set job.generations=N`", file=sys.stderr)
    if stopping and primary:
        print(f"interrupted: saved generation {generation} in {run_dir}; continue with "
              f"`discover resume {run_dir}`", file=sys.stderr)
    return JobResult(run_dir, generation, history, jax.device_get(optimizer.params(state)), traces,
                     compile_seconds, stopping)


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


def _save(ckpt, run_dir: Path, spec: JobSpec, optimizer, state, info: dict,
          primary: bool = True) -> None:
    """Checkpoint (all processes together) + exported mean and best rules + fitness plot (the
    primary process) for generation info['generation']."""
    import jax

    from discovery.rule_io import save_rule

    generation = info["generation"]
    ckpt.save(generation, state, info)
    params = jax.device_get(optimizer.params(state))  # in every process: state spans them all
    if not primary:
        return
    last = info["fitness_history"][-1]
    provenance = {
        "generation": generation,
        "run_dir": str(run_dir),
        "spec_hash": hashlib.sha256((run_dir / SPEC_FILE).read_bytes()).hexdigest()[:16],
        "versions": info["versions"],
        "train_tasks": [t.label for t in spec.tasks],
    }
    for kind, fitness in (("mean", last["mean_fitness"]), ("best", last["best_so_far"])):
        for stem in (f"gen_{generation:06d}_{kind}", f"latest_{kind}"):
            save_rule(run_dir / "rules" / stem, spec.rule, params[kind], kind=kind,
                      fitness=fitness, **provenance)
    plot_fitness(run_dir / PLOT_FILE, info["fitness_history"], spec.job.name)


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
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between generations."""

    def __init__(self):
        self.raised = False
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        del frame
        if self.raised:  # a second signal: stop now
            raise KeyboardInterrupt
        self.raised = True
        print(f"\nreceived {signal.Signals(signum).name}: finishing this generation and saving",
              file=sys.stderr, flush=True)

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
        f"  {steps_per_generation:,} env steps per generation; compiled in {compile_s:.1f} s",
        file=sys.stderr, flush=True,
    )
