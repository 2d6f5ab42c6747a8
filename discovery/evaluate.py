"""`discover eval SOURCE`: transfer evaluation of a rule against hand-designed baselines.

For each task, PPO (`inner_algos.ppo.make_ppo`) is trained with the evaluated rule and with each
baseline (`--baselines`, default ppo_clip and dpo) for N seeds under one `jax.vmap`; every rule
sees the same seed keys (paired comparison). The deterministic policy is evaluated
(`InnerAlgo.evaluate`) at update 0 and at `--points` evenly spaced updates; the last point is the
final return. Drift rules (the evaluated one and the baselines) run behind one `lax.switch` on a
traced index, so each task compiles once for all of them.

Writes to --out:
  results.json         per task and rule: per-seed final returns and learning curves; mean,
                       median and IQM with 95% bootstrap CIs, raw and PPO-clip-normalised;
                       whether the task was in the rule's training set (held_out); how many
                       seeds diverged (`diverged`)
  curves_<task>.png    learning curves, mean over seeds with 95% bootstrap CI bands
  summary.png          PPO-clip-normalised final return (IQM, 95% CI) per task and pooled
  manifest.json        rule content hash, source, spec, evaluation config, package versions,
                       command line
Normalised score = (R - R0) / (R_ppo - R0), R0 the mean return of uniform random actions (the
random agent of Atari-style normalisation; the untrained deterministic policy is no reference:
on hopper it stands still and collects more healthy reward than a short PPO run) and R_ppo the
mean final return of ppo_clip: 0 is random, 1 is PPO-clip. A task where PPO-clip does not beat
R0 (too small a budget) gets no normalised scores. A seed whose policy parameters or
observation statistics became non-finite diverged: its returns from then on are NaN (null in
results.json; a NaN policy can collect the maximum return on a task whose termination it never
triggers), it is counted under `diverged` and left out of every statistic.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import platform
import re
import sys
import time
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from discovery import plots
from discovery.watchdog import EvalWatchdog
from discovery.sources import Source, add_source_arguments, resolve_source, rule_hash, spec_tasks
from discovery.spec import SpecError, apply_overrides, parse_ppo, parse_task
from discovery.versions import package_versions
from inner_algos.envs import Task, canonical_label, parse_label, random_policy_return, task_from_table
from inner_algos.ppo import PPOConfig, make_ppo
from inner_algos.rules import RULES, Rule, make_rule
from meta_objectives import stats

NORMALIZER = "ppo_clip"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One rule to evaluate: legend label, rule, meta-params, and whether it is a baseline."""

    label: str
    rule: Rule
    meta_params: dict
    baseline: bool


@dataclasses.dataclass(frozen=True)
class DriftSwitch(Rule):
    """Several drift rules behind one traced index, so one compiled PPO serves all of them.

    meta_params: {"index": int32 scalar, "params": (meta-params of rules[0], rules[1], ...)}.
    """

    name: ClassVar[str] = "drift_switch"
    family: ClassVar[str] = "drift"
    rules: tuple[Rule, ...] = ()

    def apply(self, meta_params, inputs):
        branches = [lambda params, x, i=i, rule=rule: rule.apply(params[i], x)
                    for i, rule in enumerate(self.rules)]
        return jax.lax.switch(meta_params["index"], branches, meta_params["params"], inputs)


def make_lifetimes(config: PPOConfig, task: Task, rule: Rule, points: int):
    """A jitted `run(meta_params, keys [N]) -> returns [N, P + 1]` and the updates `[P + 1]` at
    which the returns are measured: 0, then P evenly spaced ending at config.num_updates (the
    first gap takes the remainder of num_updates / P).

    Returns are `InnerAlgo.evaluate`'s mean over config.eval_envs episodes of the deterministic
    policy, NaN once the run diverged (`_intact`). One `lax.scan` over the P + 1 measurements,
    each a `fori_loop` of updates then an evaluation, so the step and the evaluation are each
    compiled once.
    """
    algo = make_ppo(config, task, rule)
    points = min(points, config.num_updates)
    every, rest = divmod(config.num_updates, points)
    gaps = np.array([0, rest + every] + [every] * (points - 1), dtype=np.int32)

    def lifetime(meta_params, key):
        k_init, k_eval = jax.random.split(key)

        def measure(state, gap_and_key):
            gap, k = gap_and_key
            state = jax.lax.fori_loop(0, gap, lambda _, s: algo.step(meta_params, s)[0], state)
            return state, jnp.where(_intact(state), algo.evaluate(state, k)[0], jnp.nan)

        state = algo.init(meta_params, k_init)
        _, returns = jax.lax.scan(measure, state, (jnp.asarray(gaps), jax.random.split(k_eval, points + 1)))
        return returns

    return jax.jit(jax.vmap(lifetime, in_axes=(None, 0))), np.cumsum(gaps), algo.env_steps_per_update


def _intact(state) -> jax.Array:
    """Whether an inner state's policy parameters and observation statistics are all finite
    (the actions it takes are then finite too); a scalar bool."""
    leaves = jax.tree.leaves((state.params, state.obs_stats))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def run_task(config: PPOConfig, task: Task, entries: list[Entry], keys: jax.Array, points: int):
    """Trains every entry on `task` for all seed keys `[N]`: returns ({label: returns `[N, P+1]`},
    updates `[P+1]`, env steps per update). Drift entries share one compiled function."""
    drift = [e for e in entries if e.rule.family == "drift"]
    curves = {}
    if len(drift) > 1:
        switch = DriftSwitch(tuple(e.rule for e in drift))
        run, updates, per_update = make_lifetimes(config, task, switch, points)
        params = tuple(e.meta_params for e in drift)
        for i, e in enumerate(drift):
            curves[e.label] = np.asarray(run({"index": jnp.int32(i), "params": params}, keys))
    for e in entries:
        if e.label not in curves:
            run, updates, per_update = make_lifetimes(config, task, e.rule, points)
            curves[e.label] = np.asarray(run(e.meta_params, keys))
    return {e.label: curves[e.label] for e in entries}, updates, per_update


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
        raise ValueError(f"--tasks {label}@{steps}: the budget after '@' must be a positive number "
                         "of env steps, e.g. gymnax:Pendulum-v1@262144")
    return label, int(steps)


def eval_settings(source: Source, task_labels: list[str], sets: list[str], budget: int | None):
    """The inner config and tasks of the evaluation: [(PPOConfig, Task)] in task order.

    PPO starts from the run's [ppo] table (a run directory) or PPOConfig() defaults; a task
    takes the matching spec task's settings (the same label, else the same source, env and
    backend, randomised ranges included) when there is one. Then
    `--set ppo.KEY=VALUE` / `--set task.KEY=VALUE` apply, then the task's budget (env steps per
    lifetime: its '@STEPS', else `--budget`) sets num_updates = max(1, budget // env steps per
    update).
    """
    table = apply_overrides({"ppo": dict(source.spec.get("ppo", {})), "task": {}}, sets)
    extra = sorted(set(table) - {"ppo", "task"})
    if extra:
        raise SpecError(f"--set sections {extra} are not evaluation settings; allowed: ppo.KEY, task.KEY")
    config = parse_ppo(table["ppo"])
    trained = [task_from_table(t) for t in spec_tasks(source.spec)]
    settings = []
    for label_and_budget in task_labels:
        label, task_budget = split_budget(label_and_budget)
        task_budget = budget if task_budget is None else task_budget
        wanted = parse_label(label)
        base_label = canonical_label(label).partition("~")[0]
        match = next((t for t in trained if t.label == label), None) or next(
            (t for t in trained if t.base_label == base_label), None)
        base = match.as_table() if match is not None else {}
        task = parse_task({**base, **wanted, **table["task"]})
        cfg = config
        if task_budget is not None:
            per_update = config.num_envs * config.rollout_length * task.action_repeat
            cfg = dataclasses.replace(config, num_updates=max(1, task_budget // per_update))
        settings.append((cfg, task))
    return settings


def baseline_entries(names: list[str]) -> list[Entry]:
    """Fixed rules (no meta-parameters) by name, with default options."""
    entries = []
    for name in names:
        rule = make_rule(name)
        if jax.tree.leaves(rule.init(jax.random.PRNGKey(0))):
            fixed = [n for n in RULES if not jax.tree.leaves(make_rule(n).init(jax.random.PRNGKey(0)))]
            raise ValueError(f"--baselines {name!r} has meta-parameters; baselines are fixed rules: {fixed}")
        entries.append(Entry(name, rule, {}, True))
    return entries


def task_results(curves: dict[str, np.ndarray], updates, per_update, in_training: bool | None,
                 config: PPOConfig, task: Task, random_return: float) -> dict:
    """Statistics of one task's curves `{label: [N, P+1]}` as a JSON-ready dict; scores are
    normalised between `random_return` (0) and PPO-clip's mean final return (1). Seeds whose
    curve holds NaN diverged: counted (`diverged`), left out of the statistics."""
    finals = {label: curve[np.all(np.isfinite(curve), axis=1), -1] for label, curve in curves.items()}
    initial = float(np.mean([c[:, 0] for c in curves.values()]))
    reference = (float(np.mean(finals[NORMALIZER])) if NORMALIZER in curves and finals[NORMALIZER].size
                 else math.nan)
    scale = reference - random_return
    normalizable = bool(scale > 1e-8)  # PPO-clip must beat the random agent (nan: False)
    per_rule = {}
    for label, curve in curves.items():
        final = finals[label]
        entry = {"final_returns": curve[:, -1].tolist(), "curves": curve.tolist(),
                 "diverged": int(curve.shape[0] - final.size),
                 "final": stats.summarize(final) if final.size else None}
        if normalizable and final.size:
            normalized = (final - random_return) / scale
            entry.update(normalized_scores=normalized.tolist(), normalized=stats.summarize(normalized))
        per_rule[label] = entry
    return {
        "in_training_set": in_training,
        "held_out": None if in_training is None else not in_training,
        "task": dataclasses.asdict(task),
        "ppo": dataclasses.asdict(config),
        "env_steps_per_update": per_update,
        "updates": [int(u) for u in updates],
        "env_steps": [int(u) * per_update for u in updates],
        "initial_return": initial,
        "random_return": random_return,
        "ppo_clip_final_return": reference,
        "rules": per_rule,
        "normalized": bool(normalizable),
    }


def pooled(tasks: dict[str, dict]) -> dict[str, dict]:
    """PPO-clip-normalised scores pooled over tasks and seeds: {label: summarize_pooled(...)},
    CIs by the stratified bootstrap (seeds resampled within each task)."""
    scores: dict[str, list] = {}
    for result in tasks.values():
        for label, entry in result["rules"].items():
            if "normalized_scores" in entry:  # the seeds that did not diverge
                scores.setdefault(label, []).append(np.asarray(entry["normalized_scores"]))
    return {label: stats.summarize_pooled(v) for label, v in scores.items()}


def _json_ready(value):
    """Non-finite floats become null (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(_json_ready(data), indent=1, default=str, allow_nan=False))


def run_eval(source: Source, task_labels: list[str], baselines: list[str], seeds: int, seed: int,
             points: int, sets: list[str], budget: int | None, out: Path, argv: list[str],
             watchdog: tuple[float, float] = (10.0, 300.0)) -> dict:
    """Runs the evaluation and writes results.json, the PNGs and manifest.json; returns results.

    watchdog: (factor, min seconds) of the per-task time limit (`discovery.watchdog`).
    """
    _check_arguments(task_labels, seeds, points, budget, watchdog)
    settings = eval_settings(source, task_labels, sets, budget)
    entries = [Entry(source.label, source.rule, source.meta_params, False)] + baseline_entries(baselines)
    labels = [e.label for e in entries]
    if len(set(labels)) < len(labels):
        raise ValueError(f"--baselines repeat a rule: {labels}")
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    train_tasks = source.train_tasks
    out.mkdir(parents=True, exist_ok=True)
    tasks, timings = {}, {}
    watch = EvalWatchdog(out, *watchdog)
    for config, task in settings:
        start = time.perf_counter()
        print(f"{task.label}: {len(entries)} rules x {seeds} seeds x {config.num_updates} updates", flush=True)
        with watch.task(task.label, list(timings.values())):
            curves, updates, per_update = run_task(config, task, entries, keys, points)
            random_return = float(random_policy_return(task, jax.random.fold_in(keys[0], 1),
                                                       seeds * config.eval_envs))
        timings[task.label] = time.perf_counter() - start
        in_training = None if train_tasks is None else task.label in train_tasks
        tasks[task.label] = result = task_results(curves, updates, per_update, in_training, config,
                                                  task, random_return)
        plots.learning_curves_figure(
            out / f"curves_{re.sub(r'[^A-Za-z0-9._=-]+', '_', task.label)}.png",
            f"{task.label} ({_status(in_training)}): {seeds} seeds, 95% bootstrap CI",
            np.asarray(result["env_steps"]), curves, "return of the deterministic policy",
        )
        _print_task(result, timings[task.label])
        if not result["normalized"]:
            print(f"  no normalised scores on {task.label}: needs the {NORMALIZER} baseline with a "
                  "final return above the random agent's (raise --budget)")
    results = {
        "evaluated": source.label,
        "rules": {e.label: {"name": e.rule.name, "family": e.rule.family, "options": e.rule.options(),
                            "sha256": rule_hash(e.rule, e.meta_params), "baseline": e.baseline}
                  for e in entries},
        "seeds": seeds, "seed": seed, "points": points,
        "normalization": "(R - R0) / (R_ppo_clip - R0); R0 mean return of uniform random actions, "
                         "R_ppo_clip mean final return of ppo_clip on the same task",
        "tasks": tasks,
        "pooled_normalized": pooled(tasks),
        "wall_seconds": timings,
    }
    _write_json(out / "results.json", results)
    scores = {f"{name}\n({_status(r['in_training_set'])})":
              {label: e["normalized"]["iqm"] for label, e in r["rules"].items() if "normalized" in e}
              for name, r in tasks.items()}
    scores["all tasks (pooled)"] = {label: s["iqm"] for label, s in results["pooled_normalized"].items()}
    if any(scores.values()):
        plots.scores_figure(out / "summary.png", {k: v for k, v in scores.items() if v},
                            "final return, PPO-clip-normalised (IQM, 95% CI)",
                            f"Transfer of {source.label}: 0 = random actions, 1 = PPO-clip")
    _write_json(out / "manifest.json", {
        "rule": results["rules"][source.label],
        "source": {"text": source.text, "kind": source.kind, "rule_file": str(source.rule_path),
                   "run_dir": None if source.run_dir is None else str(source.run_dir),
                   "header": source.header},
        "spec": source.spec,
        "train_tasks": train_tasks,
        "evaluation": {"tasks": [dataclasses.asdict(t) for _, t in settings],
                       "ppo": {t.label: dataclasses.asdict(c) for c, t in settings},
                       "baselines": baselines, "seeds": seeds, "seed": seed, "points": points,
                       "budget": budget, "set": sets},
        "versions": package_versions(),
        "python": sys.version.split()[0], "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
        "command": argv,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    print(f"wrote {out / 'results.json'}, {out / 'manifest.json'} and PNGs to {out}")
    return results


def _check_arguments(task_labels: list[str], seeds: int, points: int, budget: int | None,
                     watchdog: tuple[float, float]) -> None:
    """ValueError naming the `discover eval` option when one of them is out of range."""
    if seeds < 1:
        raise ValueError(f"--seeds = {seeds} must be >= 1")
    if budget is not None and budget < 1:
        raise ValueError(f"--budget = {budget} must be a positive number of env steps")
    if points < 1:
        raise ValueError(f"--points = {points} must be >= 1")
    if watchdog[0] != 0 and watchdog[0] < 1 or watchdog[1] <= 0:
        raise ValueError(f"--watchdog = {watchdog[0]:g} must be >= 1 (a factor) or 0 (off), and "
                         f"--watchdog-min-seconds = {watchdog[1]:g} > 0")
    if not task_labels:
        raise ValueError("no tasks: the rule's training tasks are unknown, give --tasks [source:]env[/backend],...")


def _status(in_training: bool | None) -> str:
    return {None: "training set unknown", True: "training task", False: "held-out"}[in_training]


def _print_task(result: dict, seconds: float) -> None:
    print(f"  {'rule':<28} {'mean [95% CI]':>26} {'IQM':>9} {'norm. IQM':>10} {'diverged':>9}"
          f"   ({seconds:.0f} s)")
    for label, e in result["rules"].items():
        seeds = f"{e['diverged']}/{len(e['final_returns'])}"
        if e["final"] is None:
            print(f"  {label:<28} {'diverged on every seed: no score':>57} {seeds:>9}")
            continue
        mean = e["final"]["mean"]
        norm = e.get("normalized", {}).get("iqm", {}).get("value", math.nan)
        print(f"  {label:<28} {mean['value']:>9.1f} [{mean['ci'][0]:>7.1f}, {mean['ci'][1]:>7.1f}]"
              f" {e['final']['iqm']['value']:>9.1f} {norm:>10.2f} {seeds:>9}")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a rule against baselines on tasks with many seeds",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser)
    parser.add_argument("--tasks", default=None,
                        help="[source:]env[/backend][@STEPS],... e.g. gymnax:Asterix-MinAtar@500000,"
                             "brax:hopper/spring,inverted_pendulum (source defaults to brax, backend to "
                             "spring; @STEPS: that task's env steps per lifetime, else --budget; "
                             "default: the rule's training tasks)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per task and rule (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--baselines", default="ppo_clip,dpo",
                        help="fixed rules to compare with, comma-separated ('' for none)")
    parser.add_argument("--budget", type=int, default=None, metavar="STEPS",
                        help="env steps per lifetime (sets ppo.num_updates) of tasks without @STEPS")
    parser.add_argument("--points", type=int, default=10,
                        help="evaluations along each learning curve, after update 0 (default 10)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override the inner config: ppo.KEY=VALUE or task.KEY=VALUE (repeatable)")
    parser.add_argument("--out", default="discover_eval", help="output folder (default discover_eval)")
    parser.add_argument("--watchdog", type=float, default=10.0, metavar="FACTOR",
                        help="stop (exit 75, stacks in --out) when a task runs FACTOR x longer than "
                             "the median earlier task (0 = off; default 10)")
    parser.add_argument("--watchdog-min-seconds", type=float, default=300.0, metavar="S",
                        help="the task time limit is at least S seconds (default 300; the first "
                             "task gets FACTOR x S)")
    parser.set_defaults(func=main)


def main(args) -> int:
    source = resolve_source(args.source, args.generation, args.which)
    labels = parse_tasks(args.tasks) if args.tasks is not None else (source.train_tasks or [])
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    run_eval(source, labels, baselines, args.seeds, args.seed, args.points, args.set, args.budget,
             Path(args.out), list(sys.argv), (args.watchdog, args.watchdog_min_seconds))
    return 0
