"""What a discovery job prints to the terminal (stderr): the header, the progress bar, the
closing lines, warnings as one line each. Only the primary process prints (`enabled`)."""

from __future__ import annotations

import contextlib
import sys

from discovery.job.files import METRICS_FILE, PLOT_FILE
from discovery.job.records import unreliable


def fmt(x) -> str:
    return "nan" if x is None else f"{x:.4g}"


@contextlib.contextmanager
def one_line_warnings():
    """Prints warnings as one `warning: ...` line each (no source line) while the job runs."""
    import warnings

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


class ProgressBar:
    """A loop callback: advances a tqdm bar by one generation per record and shows `postfix`."""

    def __init__(self, generation: int, total: int, evaluate_mean: bool, enabled: bool):
        from tqdm import tqdm

        self.evaluate_mean = evaluate_mean
        self.bar = tqdm(total=total, initial=generation, unit="gen", disable=not enabled, dynamic_ncols=True)

    def __call__(self, record: dict, state) -> None:
        del state
        self.bar.update(1)
        self.bar.set_postfix_str(postfix(record, self.evaluate_mean))

    def close(self) -> None:
        self.bar.close()


class ReliabilityAlarm:
    """A loop callback: warns once (`warnings.warn`) when the job's history shows an unreliable
    fitness ranking for several generations in a row (`discovery.job.records.unreliable`).

    history: the job's list of records, appended to before the callbacks run; section: the inner
    algorithm's spec section (its keys are the advice)."""

    def __init__(self, history: list, section: str, enabled: bool):
        self.history = history
        self.section = section
        self.enabled = enabled
        self.warned = False

    def __call__(self, record: dict, state) -> None:
        del record, state
        if self.enabled and not self.warned:
            message = unreliable(self.history, self.section)
            if message is not None:
                import warnings

                self.warned = True
                warnings.warn(message, stacklevel=2)


def postfix(record: dict, evaluate_mean: bool) -> str:
    """The progress bar's text: fitness, the ES mean's score when it is evaluated, the fitness
    reliability when measured, learned hyperparameters when the estimator reports them
    (online_metagrad), the diverged lifetimes when any did ("div 3/64": of the lifetimes scored),
    throughput."""
    parts = [f"best {fmt(record['best_so_far'])}", f"pop-mean {fmt(record['fitness_mean'])}"]
    if evaluate_mean:
        parts.append(f"ES-mean {fmt(record['mean_fitness'])}")
    if "fitness_reliability" in record:
        parts.append(f"reliability {fmt(record['fitness_reliability'])}")
    parts += [f"{name} {fmt(value)}" for name, value in (record["hyperparams"] or {}).items()]
    parts.append(f"nonfinite {record['num_nonfinite']}")
    if record.get("diverged"):  # absent from records written before it was counted
        parts.append(f"div {record['diverged']}/{record['lifetimes']}")
    parts.append(f"{record['env_steps_per_s']:,.0f} steps/s")
    return " ".join(parts)


def print_header(
    spec,
    devices: int,
    steps_per_generation: int,
    generation: int,
    compile_s: float | None,
    enabled: bool,
    fitness_doc: str,
) -> None:
    """What the job runs, where, what its fitness is, and how long compiling took (None: nothing
    left to run)."""
    if not enabled:
        return
    tasks = ", ".join(t.label for t in spec.tasks)
    state = f"resuming at generation {generation}" if generation else "starting"
    size = spec.meta_optimizer_options.population_size
    print(
        f"discover run {spec.job.name!r} -> {spec.job.directory} ({state})\n"
        f"  rule {spec.rule.name} | tasks {tasks} | {spec.meta_optimizer} population {size} "
        f"x {spec.job.seeds_per_member} seed(s) on {devices} device(s)\n"
        + f"  fitness: {fitness_doc}\n"
        + f"  {steps_per_generation:,} env steps per generation; "
        + (f"compiled in {compile_s:.1f} s" if compile_s is not None else "nothing left to run"),
        file=sys.stderr,
        flush=True,
    )


def print_end(spec, history: list, stopped: bool, progress: bool, primary: bool) -> None:
    """The closing line: where the results are (finished, with progress output) or how to
    continue (stopped: from the primary process even without progress output)."""
    run_dir, generation = spec.job.directory, len(history)
    if generation >= spec.job.generations and history and progress:
        last = history[-1]
        mean = f", ES mean {fmt(last['mean_fitness'])}" if spec.job.evaluate_mean else ""
        print(
            f"done: {generation} generations in {run_dir}; best member {fmt(last['best_so_far'])}"
            f"{mean}; rules in {run_dir / 'rules'}, curve in "
            f"{run_dir / PLOT_FILE}. More generations: `discover resume {run_dir} "
            f"--set job.generations=N`",
            file=sys.stderr,
        )
    if stopped and primary:
        saved = f"saved generation {generation}" if generation else "nothing to save yet"
        print(
            f"interrupted: {saved} in {run_dir}; continue with `discover resume {run_dir}`", file=sys.stderr
        )


def warn_device_change(saved: int, devices: int, generation: int) -> None:
    print(
        f"warning: this run was checkpointed on {saved} device(s) and resumes on {devices}: "
        f"from generation {generation + 1} on its numbers differ slightly from an "
        f"uninterrupted run on {saved} (reductions are summed in another order); "
        f"recorded in {METRICS_FILE}",
        file=sys.stderr,
        flush=True,
    )


def announce_reexport(generation: int) -> None:
    print(
        f"generation {generation}'s rules were not exported (the job stopped between its "
        f"checkpoint and its export); exporting them now",
        file=sys.stderr,
        flush=True,
    )


def announce_baselines(objective, num_tasks: int) -> None:
    print(
        f"measuring baselines: {objective.baseline_rule} on {num_tasks} task(s) x "
        f"{objective.baseline_seeds} seeds",
        file=sys.stderr,
        flush=True,
    )


def announce_random_scores(episodes: int, num_tasks: int) -> None:
    print(
        f"measuring the random agent (the paired scale): {num_tasks} task(s) x {episodes} episodes",
        file=sys.stderr,
        flush=True,
    )
