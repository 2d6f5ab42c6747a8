"""Run specs: TOML tables parsed into frozen, validated config objects.

Every section maps onto a frozen dataclass; `build` rejects unknown keys and wrong types with
one message naming the key, the value and what is allowed, and the dataclass's own
`__post_init__` checks ranges. `--set section.key=value` overrides are applied to the raw
table before parsing, so they are validated exactly like the file.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from discovery.meta_opt import estimators_with, meta_optimizer_entry, validate_options
from discovery.spec_tables import build
from inner_algos.config_checks import (
    FACTOR_OR_OFF,
    NON_NEGATIVE,
    POSITIVE,
    Interval,
    Noted,
    SpecError,
    check_fields,
    did_you_mean,
    respell,
)
from inner_algos.envs import Task
from inner_algos.ppo import PPOConfig
from inner_algos.registry import DEFAULT, INNER_ALGOS, inner_algo_entry
from inner_algos.rules import RULES, Rule, check_supported, make_rule
from meta_objectives import MetaObjective


def load_toml(path: str | Path) -> dict:
    """Reads a TOML file; a missing file, a directory, bytes that are not UTF-8 text or a syntax
    error is a SpecError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"run spec {path} is a directory, not a TOML file")
    if not path.is_file():
        raise SpecError(f"run spec {path} does not exist")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise SpecError(
            f"run spec {path} is not UTF-8 text (byte {err.start} is "
            f"{err.object[err.start]:#04x}); a run spec is a TOML file such as "
            f"runs/quickstart.toml"
        ) from err
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"run spec {path} is not valid TOML: {err}") from err


def _parse_value(text: str) -> Any:
    """A TOML literal (`3`, `1e-3`, `true`, `[64, 64]`, `"x"`), or the bare text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


class _Override(argparse.Action):
    """Appends one `--set KEY=VALUE`; a value without '=' (`--set job.generations 80`, which
    argparse would otherwise report as an unrecognised '80') is an error that shows the fix."""

    def __call__(self, parser, namespace, value, option_string=None):
        if "=" not in value:
            raise argparse.ArgumentError(
                self,
                f"{value!r} has no '=': write the key and its value as one word, --set {value}=VALUE",
            )
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), value])


def add_override_argument(parser, help: str) -> None:
    """The repeatable `--set KEY=VALUE` option of a command that reads a spec (`apply_overrides`)."""
    parser.add_argument("--set", action=_Override, default=[], metavar="KEY=VALUE", help=help)


def apply_overrides(table: dict, overrides: list[str]) -> dict:
    """Returns a copy of `table` with each `dotted.key=value` override set.

    A key under an array of tables sets it in every entry: `tasks.episode_length=20`.
    """
    table = copy.deepcopy(table)
    for item in overrides:
        if "=" not in item:
            raise SpecError(f"override {item!r} must look like section.key=value, e.g. job.generations=80")
        dotted, text = item.split("=", 1)
        _set_path(table, dotted.strip().split("."), _parse_value(text.strip()), item)
    return table


def _set_path(node: dict, path: list[str], value: Any, item: str) -> None:
    *parents, leaf = path
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if isinstance(child, list) and child and all(isinstance(c, dict) for c in child):
            for entry in child:
                _set_path(entry, path[i + 1 :], value, item)
            return
        if not isinstance(child, dict):
            raise SpecError(f"override {item!r}: {part!r} is not a table in the spec")
        node = child
    node[leaf] = value


def parse_task(table: dict, section: str = "task") -> Task:
    return build(Task, table, section)


def parse_ppo(table: dict, section: str = "ppo") -> PPOConfig:
    return build(PPOConfig, table, section)


@dataclasses.dataclass(frozen=True)
class InnerSettings:
    """The [inner] table: name, the registered inner algorithm the rule plugs into
    (`inner_algos.registry`; default "ppo"). Its config is the section the algorithm registered
    (PPO: [ppo])."""

    name: str = DEFAULT


def parse_inner(table: dict, section: str = "inner") -> tuple[str, str]:
    """The [inner] table -> (inner algorithm name, the section of its config); an unknown name
    is a SpecError naming `inner.name` and listing the registered inner algorithms."""
    if not isinstance(table, dict):
        raise SpecError(f"[{section}] must be a table, got {table!r}")
    name = build(InnerSettings, table, section).name
    try:
        entry = inner_algo_entry(name, f"{section}.name")
    except ValueError as err:
        raise SpecError(str(err)) from err
    return entry.name, entry.section


def parse_inner_config(name: str, table: dict):
    """The config of inner algorithm `name` from its section's table (errors name the key)."""
    entry = inner_algo_entry(name)
    return build(entry.config_cls, table, entry.section)


def check_rule_fits(rule: Rule, inner: str, what: str = "rule.name") -> None:
    """SpecError when inner algorithm `inner` has no slot for the family of `rule` (`what` names
    the spec key that chose it)."""
    try:
        check_supported(rule, inner)
    except ValueError as err:
        raise SpecError(f"{what} = {rule.name!r}: {err}; set inner.name or choose another rule") from err


def parse_rule(table: dict, section: str = "rule") -> Rule:
    """`{name = "lpo", hidden_size = 128, ...}` -> the rule; options are checked by the rule."""
    if not isinstance(table, dict) or "name" not in table:
        raise SpecError(f'[{section}] needs a `name` key, e.g. name = "lpo"')
    name = table["name"]
    if name not in RULES:
        raise SpecError(
            f"{section}.name = {name!r} is unknown{did_you_mean(name, RULES)}; "
            f"valid rules: {', '.join(sorted(RULES))}"
        )
    return build(RULES[name], {k: v for k, v in table.items() if k != "name"}, section)


def parse_rule_start(
    table: dict, resolve: Callable | None = None, section: str = "rule"
) -> tuple[Rule, Any, dict]:
    """A discovery spec's [rule] -> (rule, initial meta-parameters or None, resolved table).

    With `init_from = SOURCE` (an exported rule, a run directory's latest rule, a checkpoint step,
    read by `resolve`: `discovery.evaluation.sources.resolve_source`, which the job passes) the
    job starts from that rule's meta-parameters instead of `rule.init`: its name and options come
    from the file, and any the table gives beside init_from must agree with them (a SpecError
    names each that does not). Without it, `parse_rule`. The resolved table keeps init_from, so
    spec.toml says where the start came from.
    """
    if not isinstance(table, dict) or "init_from" not in table:
        rule = parse_rule(table, section)
        return rule, None, {"name": rule.name, **rule.options()}
    given = {k: v for k, v in table.items() if k != "init_from"}
    text = table["init_from"]
    if not isinstance(text, str) or not text:
        raise SpecError(f'{section}.init_from = {text!r} must name a SOURCE, e.g. "out/quickstart"')
    if resolve is None:
        raise SpecError(f"{section}.init_from = {text!r} is read by a discovery job (run_job), not here")
    try:
        loaded = resolve(text)
    except ValueError as err:
        raise SpecError(f"{section}.init_from = {text!r}: {err}") from err
    stored = {"name": loaded.rule.name, **loaded.rule.options()}
    differing = [
        f"{section}.{key} = {value!r} (the rule in {text} has {stored.get(key, '<no such option>')!r})"
        for key, value in given.items()
        if _plain(value) != _plain(stored.get(key))
    ]
    if differing:
        raise SpecError(
            f"{section}.init_from = {text!r} starts from a rule that disagrees with the spec: "
            f"{'; '.join(differing)}; remove those keys (init_from gives the rule's name and "
            f"options) or make them agree"
        )
    return loaded.rule, loaded.meta_params, {**stored, "init_from": text}


@dataclasses.dataclass(frozen=True)
class RunName:
    """A name usable as a directory name under out/ (no path separators, not '.' or '..')."""

    def problem(self, value: Any) -> str | None:
        if value not in ("", ".", "..") and not any(c in value for c in "/\\\0"):
            return None
        return (
            "must be a name, not a path: the run directory defaults to out/<name>; use e.g. "
            "letters, digits, '-' and '_' (no '/', '\\', and not '.' or '..'), or set job.run_dir"
        )


AT_LEAST_ONE = Interval(1)

# --- discovery jobs: [job], [[tasks]], [rule], [inner], [ppo], [meta_objective], [meta_optimizer] --

# the inner algorithm's config section ([ppo] for PPO) comes from the registry: `job_sections`
JOB_SECTIONS = ("job", "tasks", "rule", "inner", "meta_objective", "meta_optimizer")


def job_sections() -> tuple[str, ...]:
    """The sections a discovery spec may have: JOB_SECTIONS and every registered inner
    algorithm's config section."""
    return (*JOB_SECTIONS, *(e.section for e in INNER_ALGOS.values()))


# Where a job's records go (`discovery.job.loggers`): name -> the Python package it needs (None:
# always there). The trackers come with the `tracking` extra.
LOGGERS = {"jsonl": None, "tensorboard": "tensorboardX", "wandb": "wandb"}
TRACKING_EXTRA = "pip install -e '.[tracking]'"
WANDB_MODES = ("offline", "online")


def check_loggers(names, field: str, allowed=tuple(LOGGERS)) -> None:
    """ValueError naming `field` when `names` repeats a logger, names one not in `allowed`, or
    one whose package is not installed (then it names the extra that installs it)."""
    for name in names:
        if name not in allowed:
            raise ValueError(
                f"{field} = {list(names)!r}: {name!r} is not a logger; choose from {', '.join(allowed)}"
            )
    if len(set(names)) < len(names):
        raise ValueError(f"{field} = {list(names)!r} names a logger twice")
    modules = {n: module for n in names if (module := LOGGERS[n])}
    missing = [n for n, module in modules.items() if importlib.util.find_spec(module) is None]
    if missing:
        packages = ", ".join(modules[n] for n in missing)
        raise ValueError(
            f"{field} = {list(names)!r} asks for {', '.join(missing)}, but {packages} "
            f"is not installed: install the tracking extra ({TRACKING_EXTRA}) or "
            f"leave {', '.join(missing)} out of {field}"
        )


@dataclasses.dataclass(frozen=True)
class WandbSettings:
    """The [job.wandb] table: the Weights & Biases run a job with "wandb" in job.loggers logs to.

    project, entity (team or user; "" = your default), group ("" = none): where the run goes.
    mode: "offline" (default: the run is written under RUN_DIR/wandb/ and nothing leaves the
    machine until `wandb sync`) or "online" (streams to the server; needs `wandb login`).
    """

    project: str = "rl-discovery"
    entity: str = ""
    group: str = ""
    mode: str = "offline"

    def __post_init__(self):
        if self.mode not in WANDB_MODES:
            raise ValueError(
                f"job.wandb.mode = {self.mode!r} must be one of {', '.join(WANDB_MODES)} "
                f"(offline: sync later with `wandb sync RUN_DIR/wandb/offline-run-*`)"
            )
        if not self.project:
            raise ValueError('job.wandb.project = "" must name a project, e.g. "rl-discovery"')


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """The [job] table of a discovery run spec.

    name: label of the run; run_dir: where checkpoints, logs and rules go ("" = out/<name>).
    seed: master seed of everything random. generations: outer steps in total (may be raised
    when resuming). seeds_per_member: inner runs (lifetimes) per member and task; all members
    share the same inner seeds in a generation (common random numbers). checkpoint_every: save
    every N generations (and at the end, and on SIGINT/SIGTERM). evaluate_mean: also score the
    meta-optimizer's mean each generation (one extra member). population_batch: evaluate at most
    this many members at once per device (`lax.map` chunks; 0 = all at once) to bound memory.
    watchdog, watchdog_min_seconds: a generation still running after watchdog x the median of
    the earlier ones (at least watchdog_min_seconds; watchdog x watchdog_min_seconds for the
    first) ends the job with a message and a stack dump (`discovery.job.watchdog`); 0 disables it.
    tasks_per_generation: draw this many of the [[tasks]] each generation, the same for every
    member (0 = train on all of them every generation; es only). max_nonfinite_generations: stop
    the job (exit code 1, naming likely causes) when every member's fitness is non-finite for this
    many generations in a row (0 = never; with ES a diverged lifetime scores a finite loss, so
    only a generation whose every lifetime failed counts). loggers: where each generation's
    record goes besides the terminal: "jsonl" (metrics.jsonl, required), "tensorboard"
    (RUN_DIR/tb/), "wandb" ([job.wandb]); docs/tracking.md. wandb: the WandbSettings of the "wandb" logger.
    """

    name: str = "run"
    seed: int = 0
    generations: int = 100
    seeds_per_member: int = 1
    checkpoint_every: int = 10
    evaluate_mean: bool = True
    population_batch: int = 0
    run_dir: str = ""
    watchdog: float = 10.0
    watchdog_min_seconds: float = 300.0
    tasks_per_generation: int = 0
    max_nonfinite_generations: int = 5
    loggers: tuple[str, ...] = ("jsonl",)
    wandb: WandbSettings = WandbSettings()

    def __post_init__(self):
        check_loggers(self.loggers, "job.loggers")
        if "jsonl" not in self.loggers:
            raise ValueError(
                f"job.loggers = {list(self.loggers)!r} lacks 'jsonl': metrics.jsonl is "
                f"the run's own record (inspect and eval read it); list it too, e.g. "
                f"{['jsonl', *self.loggers]!r}"
            )
        check_fields(
            self,
            "job",
            generations=AT_LEAST_ONE,
            seeds_per_member=AT_LEAST_ONE,
            checkpoint_every=AT_LEAST_ONE,
            tasks_per_generation=NON_NEGATIVE,
            max_nonfinite_generations=Noted(NON_NEGATIVE, "(0 = never stop)"),
            population_batch=NON_NEGATIVE,
            watchdog=FACTOR_OR_OFF,
            watchdog_min_seconds=POSITIVE,
            name=RunName(),
        )

    @property
    def directory(self) -> Path:
        return Path(self.run_dir or f"out/{self.name}")


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """A parsed, validated discovery run spec: one typed object per section.

    inner: the registered inner algorithm's name ([inner] name, default "ppo"); inner_config: its
    config (PPO's from [ppo]). meta_optimizer: the estimator's registered name;
    meta_optimizer_options: its validated options dataclass (what
    `discovery.meta_opt.make_meta_optimizer` takes). `table` is the
    resolved TOML table, every default filled in and keys in their current spelling (what
    `spec.toml` in the run directory holds). init_params: the meta-parameters the search starts
    from ([rule] init_from), None for the rule's own `init`."""

    job: JobSettings
    tasks: tuple[Task, ...]
    rule: Rule
    inner: str
    inner_config: Any
    meta_objective: Any
    meta_optimizer: str
    meta_optimizer_options: Any
    table: dict
    init_params: Any = None


def parse_job_spec(table: dict, resolve: Callable | None = None) -> JobSpec:
    """Validates a whole discovery spec; errors name the key, the value and what is allowed.
    resolve: reads a [rule] init_from SOURCE (`parse_rule_start`).

    Everything is checked here, before a job measures or writes anything: each section, the
    chosen estimator's options and its compatibility with the rule, PPO config and meta-objective
    (`discovery.meta_opt.validate_options`).
    """
    unknown = sorted(set(table) - set(job_sections()))
    if unknown:
        raise SpecError(
            f"unknown section(s) {', '.join(f'[{k}]' for k in unknown)}"
            f"{did_you_mean(unknown[0], job_sections())}; allowed sections: {', '.join(job_sections())}"
        )
    for section, example in (
        ("tasks", '[[tasks]] with env_name = "inverted_pendulum"'),
        ("rule", '[rule] with name = "lpo"'),
    ):
        if section not in table:  # no silent default job: what to learn, and on what, is explicit
            raise SpecError(
                f"run spec has no {example.split()[0]} section; add one, e.g. {example} "
                f"(runs/quickstart.toml shows every key)"
            )
    job = parse_job_settings(table.get("job", {}))
    task_tables = table["tasks"]
    if not isinstance(task_tables, list) or not task_tables:
        raise SpecError(f"tasks = {task_tables!r} must be a non-empty list of [[tasks]] tables")
    tasks = tuple(parse_task(t, f"tasks[{i}]") for i, t in enumerate(task_tables))
    if len(set(tasks)) < len(tasks):
        raise SpecError(f"[[tasks]] lists the same task twice: {[t.label for t in tasks]}")
    rule, init_params, rule_table = parse_rule_start(table["rule"], resolve)
    inner, inner_section = parse_inner(table.get("inner", {}))
    others = sorted(set(table) & {e.section for e in INNER_ALGOS.values()} - {inner_section})
    if others:
        raise SpecError(
            f"section(s) {', '.join(f'[{k}]' for k in others)} configure another inner algorithm "
            f"than inner.name = {inner!r} (its section: [{inner_section}]); remove them or set inner.name"
        )
    config = parse_inner_config(inner, table.get(inner_section, {}))
    check_rule_fits(rule, inner)
    objective = build(MetaObjective, table.get("meta_objective", {}), "meta_objective")
    objective = objective.with_baseline_rule(inner)
    if objective.normalize == "paired" or (objective.normalize == "baseline" and not objective.baselines):
        check_rule_fits(make_rule(objective.baseline_rule), inner, "meta_objective.baseline_rule")
    if objective.baselines and len(objective.baselines) != len(tasks):
        raise SpecError(
            f"meta_objective.baselines = {list(objective.baselines)!r} has {len(objective.baselines)} "
            f"values; expected one per task ({len(tasks)}) or none"
        )
    opt_table = table.get("meta_optimizer", {})
    if not isinstance(opt_table, dict):
        raise SpecError(f"[meta_optimizer] must be a table, got {opt_table!r}")
    opt_table = dict(opt_table)
    name = opt_table.pop("name", "es")
    options = validate_options(name, opt_table, rule, config, objective)
    _check_task_sampling(job.tasks_per_generation, tasks, name)
    if objective.normalize == "paired" and not meta_optimizer_entry(name).paired_baseline:
        able = " or ".join(f'"{n}"' for n in estimators_with("paired_baseline"))
        raise SpecError(
            f'meta_objective.normalize = "paired" trains the baseline beside each '
            f"generation's population, which only meta_optimizer.name = {able} does "
            f'(got {name!r}); use normalize = "baseline" (a fixed per-task baseline)'
        )
    job_table = _job_table(job)
    resolved = {
        "job": job_table,
        "tasks": [t.as_table() for t in tasks],
        "rule": rule_table,
        # [inner] only when not the default, so that the spec.toml of older runs stays theirs
        **({} if inner == DEFAULT else {"inner": {"name": inner}}),
        inner_section: dataclasses.asdict(config),
        "meta_objective": dataclasses.asdict(objective),
        "meta_optimizer": {"name": name, **dataclasses.asdict(options)},
    }
    return JobSpec(job, tasks, rule, inner, config, objective, name, options, _plain(resolved), init_params)


def respell_spec(table: dict) -> dict:
    """A discovery spec table with the old spellings of renamed keys replaced by the current
    ones (`config_checks.respell`, noted once), e.g. a run directory's spec.toml or checkpoint
    spec written before a rename, so that it compares equal to the spec resolved today."""
    table = dict(table)
    inner_configs = tuple((e.section, e.config_cls) for e in INNER_ALGOS.values())
    for section, cls in (("job", JobSettings), *inner_configs, ("meta_objective", MetaObjective)):
        if section in table:
            table[section] = respell(cls, table[section], section)
    if isinstance(table.get("tasks"), list):
        table["tasks"] = [respell(Task, t, f"tasks[{i}]") for i, t in enumerate(table["tasks"])]
    return table


def parse_job_settings(table: dict) -> JobSettings:
    """The [job] table (with its [job.wandb] subtable) -> JobSettings."""
    if not isinstance(table, dict):
        raise SpecError(f"[job] must be a table, got {table!r}")
    table = dict(table)
    wandb = build(WandbSettings, table.pop("wandb", {}), "job.wandb")
    return build(JobSettings, {**table, "wandb": wandb}, "job")


def _job_table(job: JobSettings) -> dict:
    """The resolved [job] table; keys added later are absent while they hold their defaults, so
    the spec.toml of older runs stays equal to theirs and they resume."""
    table = dataclasses.asdict(job)
    defaults = dataclasses.asdict(JobSettings())
    for key in ("tasks_per_generation", "loggers", "wandb"):
        if table[key] == defaults[key]:
            del table[key]
    return table


def _check_task_sampling(k: int, tasks: tuple, meta_optimizer: str) -> None:
    if k > len(tasks):
        raise SpecError(
            f"job.tasks_per_generation = {k} exceeds the {len(tasks)} [[tasks]] listed; "
            f"choose at most {len(tasks)} (0 = all)"
        )
    if 0 < k < len(tasks) and not meta_optimizer_entry(meta_optimizer).whole_lifetime:
        able = " or ".join(f'"{n}"' for n in estimators_with("whole_lifetime"))
        raise SpecError(
            f"job.tasks_per_generation = {k} samples tasks, which only meta_optimizer.name "
            f"= {able} supports (got {meta_optimizer!r}); set it to 0 or {len(tasks)}"
        )


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively, so a resolved table compares equal to one read from TOML."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. randomize = { mass_scale = [0.5, 2.0] }
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise SpecError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def dump_toml(table: dict) -> str:
    """TOML text for a spec-shaped table: top-level tables of scalars/arrays, and arrays of tables."""
    lines = []
    for section, body in table.items():
        entries = body if isinstance(body, list) else [body]
        for entry in entries:
            lines.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
            lines.append("")
    return "\n".join(lines)
