"""`discover eval SOURCE`: transfer evaluation of a rule against hand-designed baselines.

For each task, the run's inner algorithm (its spec's [inner] name, PPO by default; built by
`inner_algos.registry.make_inner_algo`) is trained with the evaluated rule and with each
baseline (`--baselines`; default: the inner algorithm's registered baselines, PPO's ppo_clip and
dpo, LPG's a2c) for N seeds under one `jax.vmap`; every rule sees the same seed keys (paired
comparison). The deterministic policy is evaluated (`InnerAlgo.evaluate`) at update 0 and at
`--points` evenly spaced updates; the last point is the final return. Drift rules (the
evaluated one and the baselines) run behind one `lax.switch` on a traced index, so each task
compiles once for all of them.

Writes to --out:
  tasks/<task>.json    each task's result with what it depends on (rule contents, reference,
                       seeds, inner config, task), written atomically as soon as the task
                       ends. Rerunning the same command with the same --out reads the tasks
                       done and runs the rest (after a kill, a watchdog stop or a crash); it
                       refuses, naming the differences, when a task there was made with other
                       rules, another reference or other settings
  results.json         per task and rule: per-seed final returns and learning curves; mean,
                       median and IQM with 95% bootstrap CIs, raw and normalised by the
                       reference (`reference`, the first baseline; `reference_final_return`);
                       whether the task was in the rule's training set (held_out); how many
                       seeds diverged (`diverged`); the paired comparisons per task (`paired`)
                       and pooled (`pooled_paired`); `score_matrix`: per rule the normalised
                       final scores [seeds x tasks] (null: diverged), as rliable takes them
  curves_<task>.png    learning curves, mean over the seeds not diverged at each point with
                       95% bootstrap CI bands, and below it how many seeds that is
  summary.png          normalised final return (IQM, 95% CI) per task and pooled, the
                       diverged seeds written above the bars
  paired.png           paired differences and P(rule > baseline) with 95% CIs, per task and pooled
  manifest.json        rule content hash, source, spec, evaluation config, package versions,
                       command line
  tb/, wandb/          with --loggers: the tables, curves and figures in TensorBoard / wandb
                       (`discovery.evaluation.tracking`, docs/tracking.md)
Normalised score = (R - R0) / (R_ref - R0), R0 the mean return of uniform random actions (the
random agent of Atari-style normalisation; the untrained deterministic policy is no reference:
on hopper it stands still and collects more healthy reward than a short PPO run) and R_ref the
mean final return of the reference, the first baseline listed (ppo_clip by default for PPO, a2c
for LPG): 0 is random, 1 is the reference. A task where the reference does not beat R0 (too
small a budget) gets no normalised scores; without baselines there are none at all. A seed
whose policy parameters or observation statistics became non-finite diverged: its returns from
then on are NaN (null in results.json; a NaN policy can collect the maximum return on a task
whose termination it never triggers), it is counted under `diverged` and left out of every
statistic of returns (a curve's point averages the seeds not diverged by then); how often each
rule diverged is compared by the verdict below.

Paired comparisons (every rule against every baseline; a baseline against the baselines listed
before it). Seed i of every rule is trained on the same key, so it forms a pair; a seed that
diverged under either rule is left out of that pair's statistics and counted (`left_out`).
  paired difference    mean over the paired seeds of d_i = R_rule,i - R_baseline,i (final
                       returns), and the same of normalised scores; pooled over tasks: the mean
                       over tasks of each task's mean normalised difference
  P(rule > baseline)   the fraction of paired seeds where the rule's final return is higher,
                       ties counting 1/2; pooled: the mean over tasks
  95% CIs              percentile bootstrap over the pairs (2000 resamples, whole pairs drawn
                       with replacement); pooled: stratified, pairs drawn within each task
  verdict              `worse` when the rule diverged significantly more often than the
                       baseline (exact one-sided sign test on the seeds where only one diverged,
                       p < 0.025: `divergence`); else `better` if the CI of the paired difference
                       lies above 0, `worse` if below, `no difference at 95%` otherwise. None (`no
                       verdict`, with the reason: seeds diverged, or too few) when the baseline's
                       mean final return does not beat R0, or fewer than 5 seeds are paired.
                       Printed with the diverged seeds: "worse (diverged 37/40, ppo_clip 0/40)".
                       The pooled verdict covers the normalised tasks with >= 5 paired seeds
                       (`tasks`; the others under `left_out_tasks`, with the reason).
  detectable (+-)      the CI's half-width: about the smallest true difference this many seeds
                       could tell from none; `no difference` with a wide one means too few seeds
                       to decide, not equal rules
IQM = mean of the middle 50% of the seeds (floor(n/4) trimmed at each end), with a percentile
bootstrap CI; pooled IQMs use the stratified bootstrap (docs/evaluation-statistics.md).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from discovery.evaluation import plots, report, task_store, tracking
from discovery.evaluation.results import (
    comparisons,
    json_ready,
    judge,
    normalization,
    paired_pooled,
    paired_task,
    pooled,
    print_paired,
    score_matrix,
    task_results,
    write_json,
)
from discovery.evaluation.runs import Entry, baseline_entries, run_task
from discovery.evaluation.sources import Source, add_source_command, resolve_source, rule_hash, spec_tasks
from discovery.job import faults
from discovery.job.watchdog import EvalWatchdog
from discovery.spec import (
    SpecError,
    WandbSettings,
    add_override_argument,
    apply_overrides,
    parse_inner,
    parse_inner_config,
    parse_task,
)
from discovery.versions import package_versions
from inner_algos.envs import canonical_label, parse_label, random_policy_return, task_from_table
from inner_algos.registry import DEFAULT, INNER_ALGOS, config_section, inner_algo_entry, make_inner_algo
from inner_algos.rules import get_family


def parse_tasks(text: str) -> list[str]:
    """'hopper/spring,ant,gymnax:Breakout-MinAtar@500000,brax:walker2d' -> ['hopper/spring',
    'ant/spring', 'gymnax:Breakout-MinAtar@500000', 'walker2d/spring'] (source defaults to
    brax, backend to spring; '@STEPS' is that task's env steps per lifetime)."""
    labels = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        label, at, steps = item.partition("@")
        labels.append(canonical_label(label) + at + steps)
    return labels


def split_budget(label: str) -> tuple[str, int | None]:
    """'gymnax:Pendulum-v1@262144' -> ('gymnax:Pendulum-v1', 262144); no '@' -> (label, None)."""
    label, at, steps = label.partition("@")
    if not at:
        return label, None
    if not steps.isdigit() or int(steps) < 1:
        raise ValueError(
            f"--tasks {label}@{steps}: the budget after '@' must be a positive number "
            "of env steps, e.g. gymnax:Pendulum-v1@262144"
        )
    return label, int(steps)


def source_inner(source: Source) -> str:
    """The inner algorithm a source's rule is evaluated in: its run's [inner] name; for an
    exported rule without a spec, PPO when the rule's family has a slot in it, else the first
    inner algorithm its family names."""
    if source.spec:
        return parse_inner(source.spec.get("inner", {}))[0]
    algos = get_family(source.rule.family).inner_algos
    return DEFAULT if DEFAULT in algos or not algos else algos[0]


def default_baselines(source: Source) -> list[str]:
    """The fixed rules a source's rule is compared with when --baselines is not given: those its
    inner algorithm (`source_inner`) registered, the first the reference of the normalised scores."""
    return list(inner_algo_entry(source_inner(source)).baselines)


def eval_settings(source: Source, task_labels: list[str], sets: list[str], budget: int | None):
    """The inner config and tasks of the evaluation: [(config, Task)] in task order, for the
    inner algorithm `source_inner(source)` (PPO: a PPOConfig).

    The config starts from the run's section of it ([ppo] for PPO; a run directory) or the
    config's defaults; a task
    takes the matching spec task's settings (the same label, else the same source, env and
    backend, randomised ranges included) when there is one. Then
    `--set ppo.KEY=VALUE` / `--set task.KEY=VALUE` apply, then the task's budget (env steps per
    lifetime: its '@STEPS', else `--budget`) sets num_updates = max(1, budget // env steps per
    update).
    """
    inner = source_inner(source)
    _, section = parse_inner({"name": inner})
    table = apply_overrides({section: dict(source.spec.get(section, {})), "task": {}}, sets)
    extra = sorted(set(table) - {section, "task"})
    if extra:
        raise SpecError(
            f"--set sections {extra} are not evaluation settings; allowed: {section}.KEY, task.KEY"
        )
    config = parse_inner_config(inner, table[section])
    trained = [task_from_table(t) for t in spec_tasks(source.spec)]
    settings = []
    for label_and_budget in task_labels:
        label, task_budget = split_budget(label_and_budget)
        task_budget = budget if task_budget is None else task_budget
        wanted = parse_label(label)
        base_label = canonical_label(label).partition("~")[0]
        match = next((t for t in trained if t.label == label), None) or next(
            (t for t in trained if t.base_label == base_label), None
        )
        base = match.as_table() if match is not None else {}
        task = parse_task({**base, **wanted, **table["task"]})
        cfg = config
        if task_budget is not None:
            per_update = make_inner_algo(inner, config, task, source.rule).env_steps_per_update
            cfg = dataclasses.replace(config, num_updates=max(1, task_budget // per_update))
        settings.append((cfg, task))
    return settings


def run_eval(
    source: Source,
    task_labels: list[str],
    baselines: list[str],
    seeds: int,
    seed: int,
    points: int,
    sets: list[str],
    budget: int | None,
    out: Path,
    argv: list[str],
    watchdog: tuple[float, float] = (10.0, 300.0),
    loggers: Sequence[str] = (),
    wandb: WandbSettings | None = None,
    reuse: Path | None = None,
) -> dict:
    """Runs the evaluation and writes results.json, the PNGs and manifest.json; returns results.

    The first of `baselines` is the reference: normalised scores are in units of its gain over
    the random agent; without baselines there are none. Each task's result is written to
    OUT/tasks/<task>.json as soon as it ends; a task whose file is there, made with the same
    rules, reference, seeds and settings, is read instead of run again.
    watchdog: (factor, min seconds) of the per-task time limit (`discovery.job.watchdog`).
    loggers: trackers that also get the results ("tensorboard", "wandb" with `wandb`'s settings;
    `discovery.evaluation.tracking`).
    reuse: another evaluation's --out whose task files give the baselines' curves of the tasks
    it holds (`task_store.reused_baselines`): only the evaluated rule is trained there.
    """
    _check_arguments(task_labels, seeds, points, budget, watchdog)
    if reuse is not None and not (reuse / task_store.TASKS_DIR).is_dir():
        raise ValueError(
            f"--reuse-baselines {reuse}: no {task_store.TASKS_DIR}/ folder there; give the --out of an "
            "earlier discover eval"
        )
    settings = eval_settings(source, task_labels, sets, budget)
    entries = [Entry(source.label, source.rule, source.meta_params, False)]
    entries += baseline_entries(baselines, source_inner(source))
    labels = [e.label for e in entries]
    if len(set(labels)) < len(labels):
        raise ValueError(f"--baselines repeat a rule: {labels}")
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    rules = {e.label: _rule_record(e) for e in entries}
    pairs = comparisons(labels, [e.baseline for e in entries])
    reference = baselines[0] if baselines else None
    if reference is None:
        print("no baselines: no reference rule, so no normalised scores and no paired comparisons")
    store_key = functools.partial(task_store.task_key, rules, reference, seeds, seed, points)
    tasks, timings = _evaluate_tasks(
        out, source, settings, entries, keys, points, pairs, store_key, watchdog, reuse
    )
    results: dict[str, Any] = {
        "evaluated": source.label,
        "rules": rules,
        "seeds": seeds,
        "seed": seed,
        "points": points,
        "reference": reference,
        "normalization": normalization(reference),
        "tasks": tasks,
        "pooled_normalized": pooled(tasks),
        "pooled_paired": paired_pooled(tasks, pairs),
        "score_matrix": score_matrix(tasks),
        "wall_seconds": timings,
    }
    write_json(out / "results.json", results)
    if reference is not None:
        print(f"all tasks pooled (normalised paired difference: {reference}'s gain over random actions = 1):")
        print_paired(results["pooled_paired"], key="normalized_difference", digits=3)
    report.summary_figures(out, source.label, results)
    manifest = _manifest(
        source, rules[source.label], settings, baselines, seeds, seed, points, budget, sets, argv
    )
    write_json(out / "manifest.json", manifest)
    tracking.log_evaluation(list(loggers), out, results, json_ready(manifest), wandb or WandbSettings())
    print(f"wrote {out / 'results.json'}, {out / 'manifest.json'} and PNGs to {out}")
    return results


def _evaluate_tasks(
    out: Path,
    source: Source,
    settings,
    entries: list[Entry],
    keys,
    points: int,
    pairs,
    store_key,
    watchdog,
    reuse: Path | None = None,
) -> tuple[dict, dict]:
    """Each (config, task) of `settings` in turn: read from OUT/tasks/<task>.json when an earlier
    run stored it under the same `store_key(config, task)`, else trained (`_run_task`; baselines
    read from `reuse`/tasks/<task>.json when there), compared pairwise and stored at once; then
    reported. Returns ({label: result}, {label: seconds})."""
    (out / task_store.TASKS_DIR).mkdir(parents=True, exist_ok=True)
    tasks: dict[str, dict] = {}
    timings: dict[str, float] = {}
    watch = EvalWatchdog(out, *watchdog)
    baselines = [e.label for e in entries if e.baseline]
    for number, (config, task) in enumerate(settings, start=1):
        key = store_key(config, task)
        path = out / task_store.TASKS_DIR / f"{plots.task_file_name(task.label)}.json"
        done = task_store.finished_task(path, key)
        if done is None:
            known = {}
            if reuse is not None:
                known = task_store.reused_baselines(reuse / task_store.TASKS_DIR / path.name, key, baselines)
            inner = source_inner(source)
            done = _run_task(
                config, task, entries, keys, points, source.train_tasks, watch, timings, inner, known
            )
            done["result"]["paired"] = paired_task(done["result"], pairs)
            faults.hit("eval_task", number)
            write_json(path, {"key": key, **done})
        else:
            print(f"{task.label}: done earlier, read from {path}", flush=True)
            done["result"]["paired"] = [judge(done["result"], e) for e in done["result"]["paired"]]
        tasks[task.label], timings[task.label] = done["result"], done["seconds"]
        report.report_task(out, task.label, done["result"], done["seconds"])
    return tasks, timings


def _rule_record(entry: Entry) -> dict:
    """What results.json says of one evaluated rule (its content hash identifies it on a rerun)."""
    rule = entry.rule
    return {
        "name": rule.name,
        "family": rule.family,
        "options": rule.options(),
        "sha256": rule_hash(rule, entry.meta_params),
        "baseline": entry.baseline,
    }


def _run_task(
    config,
    task,
    entries: list[Entry],
    keys,
    points: int,
    train_tasks,
    watch,
    timings,
    inner: str = DEFAULT,
    known: dict | None = None,
) -> dict:
    """Trains every rule on one task under the watchdog, but those whose curves are `known`
    (`{label: [N, P+1]}`): {"result": task_results(...), "seconds"}, normalised by the reference
    rule's final return (the first baseline of `entries`)."""
    known = known or {}
    reference = next((e.label for e in entries if e.baseline), None)
    start = time.perf_counter()
    print(
        f"{task.label}: {len(entries)} rules x {keys.shape[0]} seeds x {config.num_updates} updates"
        + (f" ({', '.join(known)} read from --reuse-baselines)" if known else ""),
        flush=True,
    )
    with watch.task(task.label, list(timings.values())):
        curves, updates, per_update = run_task(config, task, entries, keys, points, inner, known)
        random_return = float(
            random_policy_return(task, jax.random.fold_in(keys[0], 1), keys.shape[0] * config.eval_envs)
        )
    in_training = None if train_tasks is None else task.label in train_tasks
    result = task_results(curves, updates, per_update, in_training, config, task, random_return, reference)
    return {"result": json_ready(result), "seconds": time.perf_counter() - start}


def _manifest(
    source: Source,
    rule: dict,
    settings: list,
    baselines: list[str],
    seeds: int,
    seed: int,
    points: int,
    budget: int | None,
    sets: list[str],
    argv: list[str],
) -> dict:
    """manifest.json: the evaluated rule and its source, the evaluation's settings, versions."""
    return {
        "rule": rule,
        "source": {
            "text": source.text,
            "kind": source.kind,
            "rule_file": str(source.rule_path),
            "run_dir": None if source.run_dir is None else str(source.run_dir),
            "header": source.header,
        },
        "spec": source.spec,
        "train_tasks": source.train_tasks,
        "evaluation": {
            "tasks": [dataclasses.asdict(t) for _, t in settings],
            config_section(settings[0][0]): {t.label: dataclasses.asdict(c) for c, t in settings},
            "baselines": baselines,
            "seeds": seeds,
            "seed": seed,
            "points": points,
            "budget": budget,
            "set": sets,
        },
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
        "command": argv,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _check_arguments(
    task_labels: list[str], seeds: int, points: int, budget: int | None, watchdog: tuple[float, float]
) -> None:
    """ValueError naming the `discover eval` option when one of them is out of range."""
    if seeds < 1:
        raise ValueError(f"--seeds = {seeds} must be >= 1")
    if budget is not None and budget < 1:
        raise ValueError(f"--budget = {budget} must be a positive number of env steps")
    if points < 1:
        raise ValueError(f"--points = {points} must be >= 1")
    if watchdog[0] != 0 and watchdog[0] < 1 or watchdog[1] <= 0:
        raise ValueError(
            f"--watchdog = {watchdog[0]:g} must be >= 1 (a factor) or 0 (off), and "
            f"--watchdog-min-seconds = {watchdog[1]:g} > 0"
        )
    if not task_labels:
        raise ValueError(
            "no tasks: the rule's training tasks are unknown, give --tasks [source:]env[/backend],..."
        )


def register(subparsers) -> None:
    parser = add_source_command(
        subparsers, "eval", "evaluate a rule against baselines on tasks with many seeds", __doc__
    )
    parser.add_argument(
        "--tasks",
        default=None,
        help="[source:]env[/backend][@STEPS],... e.g. gymnax:Asterix-MinAtar@500000,"
        "brax:hopper/spring,inverted_pendulum (source defaults to brax, backend to "
        "spring; @STEPS: that task's env steps per lifetime, else --budget; "
        "default: the rule's training tasks)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=40,
        help="seeds per task and rule (default 40: on the study's four held-out tasks the paired "
        "CI's half-width was 0.34-1.42 ppo_clip units at 5 seeds, 0.26-0.77 at 20 and 0.22-0.47 at "
        "40; docs/evaluation-statistics.md, 'How many seeds')",
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument(
        "--baselines",
        default=None,
        help="rules to compare with, comma-separated ('' for none): fixed rules by name, or a SOURCE "
        "(exported rule, run directory, RUN_DIR/checkpoints/<G>) for a discovered one; the first is the "
        "reference the normalised scores are in units of (default: the rule's inner algorithm's, "
        + "; ".join(f"{n}: {','.join(e.baselines)}" for n, e in INNER_ALGOS.items())
        + ")",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        metavar="STEPS",
        help="env steps per lifetime (sets num_updates of the inner config, e.g. ppo.num_updates) "
        "of tasks without @STEPS",
    )
    parser.add_argument(
        "--points",
        type=int,
        default=10,
        help="evaluations along each learning curve, after update 0 (default 10)",
    )
    add_override_argument(
        parser,
        "override the inner config: SECTION.KEY=VALUE in the inner algorithm's section (ppo.KEY, "
        "lpg.KEY) or task.KEY=VALUE (repeatable)",
    )
    parser.add_argument("--out", default="discover_eval", help="output folder (default discover_eval)")
    parser.add_argument(
        "--reuse-baselines",
        default=None,
        metavar="EVAL_DIR",
        help="read the baselines' curves from another evaluation's --out made with the same "
        "--seeds, --seed, --points, --baselines, --set and tasks (replicates of a study evaluated "
        "alike), training only the evaluated rule; refused, naming the difference, otherwise",
    )
    parser.add_argument(
        "--watchdog",
        type=float,
        default=10.0,
        metavar="FACTOR",
        help="stop (exit 75, stacks in --out) when a task runs FACTOR x longer than "
        "the median earlier task (0 = off; default 10)",
    )
    parser.add_argument(
        "--watchdog-min-seconds",
        type=float,
        default=300.0,
        metavar="S",
        help="the task time limit is at least S seconds (default 300; the first task gets FACTOR x S)",
    )
    tracking.add_arguments(parser)
    parser.set_defaults(func=main)


def main(args) -> int:
    loggers, wandb = tracking.parse_loggers(args.loggers), tracking.wandb_settings(args)
    source = resolve_source(args.source, args.generation, args.which)
    labels = parse_tasks(args.tasks) if args.tasks is not None else (source.train_tasks or [])
    baselines = (
        default_baselines(source)
        if args.baselines is None
        else [b.strip() for b in args.baselines.split(",") if b.strip()]
    )
    run_eval(
        source,
        labels,
        baselines,
        args.seeds,
        args.seed,
        args.points,
        args.set,
        args.budget,
        Path(args.out),
        list(sys.argv),
        (args.watchdog, args.watchdog_min_seconds),
        loggers,
        wandb,
        None if args.reuse_baselines is None else Path(args.reuse_baselines),
    )
    return 0
