"""What `discover eval` and `discover inspect` read: an exported rule, a run directory or a checkpoint.

A SOURCE on the command line is one of
  - an exported rule: `path/stem`, `path/stem.json` or `path/stem.npz` (see `discovery.rule_io`);
  - a run directory (layout in docs/CONTRACTS.md): the rule is `rules/gen_<G:06d>_<which>`,
    G the newest generation with an intact export unless `generation` is given;
  - a checkpoint step `RUN_DIR/checkpoints/<G>`: the rule exported at that generation, and the
    fitness history up to G;
  - a published rule `zoo:<name>`, e.g. `zoo:open/breakout` (see `discovery.zoo`).
  - a folder holding one exported rule `rule.json`/`rule.npz` (what `discover distill` writes).
Nothing is unpickled or executed: rules come from `load_rule`, the spec from TOML, the fitness
history from JSON lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path

import jax
import numpy as np

from discovery.rule_io import load_rule, stem_of
from discovery.spec import load_toml, respell_spec
from inner_algos.config_checks import did_you_mean
from inner_algos.envs import task_from_table
from inner_algos.rules import Rule

WHICH = ("mean", "best")
_RULE_FILE = re.compile(r"gen_(\d{6})_(mean|best)\.json")


@dataclasses.dataclass(frozen=True)
class Source:
    """A resolved SOURCE: the rule and whatever is known about the run that produced it.

    kind is "rule" (an exported file), "run" (a run directory), "checkpoint" (a step dir) or
    "zoo" (a published rule; header holds its zoo name and `about` text).
    spec is the run's spec.toml as a dict (for an exported rule its header's `spec`, which a
    distilled rule carries from its teacher's run, else {}); fitness_history the metrics.jsonl
    records; checkpoint_steps the generations with a checkpoint directory; tag tells apart
    sources whose labels would otherwise be equal.
    """

    text: str
    kind: str
    rule: Rule
    meta_params: dict
    header: dict
    rule_path: Path
    run_dir: Path | None = None
    spec: dict = dataclasses.field(default_factory=dict)
    fitness_history: list = dataclasses.field(default_factory=list)
    checkpoint_steps: list = dataclasses.field(default_factory=list)
    tag: str = ""

    @property
    def label(self) -> str:
        """Short name for legends, e.g. 'lpo gen 12 mean' or 'lpo (my_rule)', then ' [tag]'."""
        gen, kind = self.header.get("generation"), self.header.get("kind")
        if self.kind == "zoo":
            label = self.text
        elif gen is not None and kind is not None:
            label = f"{self.rule.name} gen {gen} {kind}"
        else:
            label = f"{self.rule.name} ({self.rule_path.name})"
        return f"{label} [{self.tag}]" if self.tag else label

    @property
    def train_tasks(self) -> list[str] | None:
        """Labels (`Task.label`) of the tasks the rule was trained on, or None when unknown."""
        if "train_tasks" in self.header:
            return [str(t) for t in self.header["train_tasks"]]
        return [task_from_table(t).label for t in spec_tasks(self.spec)] or None

    @property
    def hash(self) -> str:
        return rule_hash(self.rule, self.meta_params)


def rule_hash(rule: Rule, meta_params) -> str:
    """sha256 (hex) of the rule's name and options and of every meta-parameter array
    (path, dtype, shape, bytes), in the sorted order jax flattens dicts."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"rule": rule.name, "options": rule.options()}, sort_keys=True).encode())
    for path, leaf in jax.tree_util.tree_flatten_with_path(meta_params)[0]:
        arr = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}|{arr.dtype.str}|{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def spec_tasks(spec: dict) -> list[dict]:
    """The task tables of a spec: its `[[tasks]]` list, or its single `[task]` table."""
    if isinstance(spec.get("tasks"), list):
        return [t for t in spec["tasks"] if isinstance(t, dict)]
    return [spec["task"]] if isinstance(spec.get("task"), dict) else []


def read_run(run_dir: Path, generation: int | None = None) -> dict:
    """What a run directory says about itself, from its JSON/TOML files (no orbax state is built).

    Returns {"spec": spec.toml as a dict ({} if absent), "fitness_history": the metrics.jsonl
    records up to `generation` (all when None; a corrupt line is skipped with a warning naming
    the file), "checkpoint_steps": `discovery.job.checkpoint.available_steps(run_dir)`}.
    """
    from discovery.job.checkpoint import available_steps

    spec = respell_spec(load_toml(run_dir / "spec.toml")) if (run_dir / "spec.toml").is_file() else {}
    history = []
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for number, line in enumerate(metrics.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = None
            if isinstance(record, dict):
                history.append(record)
            else:
                print(f"warning: {metrics} line {number} is not a JSON record; skipped", file=sys.stderr)
    if generation is not None:
        history = [h for h in history if h.get("generation", 0) <= generation]
    return {"spec": spec, "fitness_history": history, "checkpoint_steps": available_steps(run_dir)}


def exported_generations(run_dir: Path, which: str) -> list[int]:
    """Generations G with `rules/gen_<G:06d>_<which>.json` in the run directory, ascending."""
    rules = run_dir / "rules"
    found = [_RULE_FILE.fullmatch(p.name) for p in rules.glob("gen_*.json")] if rules.is_dir() else []
    return sorted(int(m.group(1)) for m in found if m and m.group(2) == which)


def _load_run_rule(run_dir: Path, generation: int | None, which: str):
    """Loads `rules/gen_<G>_<which>`; with generation None, the newest one that loads, warning
    (with the file name) about each newer one that is missing, partial or corrupt."""
    gens = exported_generations(run_dir, which)
    if generation is not None:
        if generation not in gens:
            raise ValueError(
                f"{run_dir / 'rules'}: no exported rule gen_{generation:06d}_{which}; "
                f"generations available: {gens or 'none'}"
            )
        gens = [generation]
    if not gens:
        raise ValueError(f"run directory {run_dir} has no exported rules rules/gen_<G>_{which}.json")
    errors = []
    for gen in reversed(gens):
        stem = run_dir / "rules" / f"gen_{gen:06d}_{which}"
        try:
            rule, meta, header = load_rule(stem)
        except ValueError as err:
            if generation is not None:
                raise
            errors.append(str(err))
            print(f"warning: {err}; falling back to an earlier generation", file=sys.stderr)
            continue
        header = {"generation": gen, "kind": which, **header}
        return rule, meta, header, stem
    raise ValueError(f"run directory {run_dir}: no intact exported rule; " + "; ".join(errors))


def resolve_source(text: str, generation: int | None = None, which: str = "mean") -> Source:
    """Resolves a SOURCE string (see module docstring); ValueError names what is wrong."""
    if which not in WHICH:
        raise ValueError(f"--which = {which!r} is unknown; valid: {', '.join(WHICH)}")
    if text.startswith("zoo:"):
        return zoo_source(text, generation)
    path = Path(text)
    if path.is_dir():
        if path.parent.name == "checkpoints" and path.name.isdigit():
            if generation is not None and generation != int(path.name):
                raise ValueError(f"--generation {generation} contradicts checkpoint step {path}")
            run_dir, generation, kind = path.parent.parent, int(path.name), "checkpoint"
        elif any((path / p).exists() for p in ("spec.toml", "rules", "metrics.jsonl", "checkpoints")):
            run_dir, kind = path, "run"
        elif (path / "rule.json").is_file():  # a folder holding one exported rule (discover distill's)
            return resolve_source(str(path / "rule"), generation, which)
        else:
            raise ValueError(
                f"SOURCE {text} is a directory but neither a run directory (spec.toml, rules/, "
                "metrics.jsonl) nor a checkpoint step RUN_DIR/checkpoints/<G>"
            )
        rule, meta, header, stem = _load_run_rule(run_dir, generation, which)
        info = read_run(run_dir, generation if kind == "checkpoint" else None)
        return Source(text, kind, rule, meta, header, stem, run_dir, **info)
    if stem_of(path).with_suffix(".json").is_file() or stem_of(path).with_suffix(".npz").is_file():
        if generation is not None:
            raise ValueError("--generation applies to a run directory, not to an exported rule")
        rule, meta, header = load_rule(path)
        # a distilled rule carries its teacher's run spec (inner settings, training tasks)
        spec = header.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        return Source(text, "rule", rule, meta, header, stem_of(path), spec=spec)
    raise ValueError(
        f"SOURCE {text} does not exist{did_you_mean(text, _neighbours(path))}; give an exported "
        "rule (stem, .json or .npz), a run directory or a checkpoint step RUN_DIR/checkpoints/<G>"
    )


def zoo_source(text: str, generation: int | None = None) -> Source:
    """The published rule `zoo:<name>` (`discovery.zoo`); rule_path its weights file, if any."""
    from discovery.zoo import get_published

    if generation is not None:
        raise ValueError(f"--generation applies to a run directory, not to the published rule {text}")
    entry = get_published(text)
    rule, meta = entry.load()
    header = {"zoo": entry.name, "about": entry.about}
    return Source(text, "zoo", rule, meta, header, entry.path or Path(text), spec=entry.spec)


def _neighbours(path: Path) -> list[str]:
    """What `path` may have meant: the entries of its parent directory (rule files as stems)."""
    parent = path.parent
    if not parent.is_dir():
        return []
    return sorted({str(stem_of(p)) for p in parent.iterdir()})


def add_source_command(subparsers, name: str, help: str, description: str, nargs=None):
    """Adds the subcommand `name` (its module docstring as `description`, printed as written)
    with the SOURCE arguments of `add_source_arguments`; returns its parser."""
    parser = subparsers.add_parser(
        name, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_source_arguments(parser, nargs=nargs)
    return parser


def add_source_arguments(parser, nargs=None) -> None:
    """Adds SOURCE (nargs as given), --generation and --which to an argparse parser."""
    parser.add_argument(
        "source",
        nargs=nargs,
        metavar="SOURCE",
        help="exported rule (stem, .json or .npz), run directory, RUN_DIR/checkpoints/<G>, or zoo:<name>",
    )
    parser.add_argument(
        "--generation",
        type=int,
        default=None,
        help="generation to read from a run directory (default: newest intact)",
    )
    parser.add_argument(
        "--which", choices=WHICH, default="mean", help="the ES mean or the best member seen (default: mean)"
    )
