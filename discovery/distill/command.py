"""`discover distill SOURCE --to symbolic|mlp --out DIR`: a rule distilled into a formula or a
smaller network of its family, written as an exported rule that any command reads as a SOURCE.

SOURCE is what `discover eval` reads (run directory, exported rule, checkpoint step) or the name
of a built-in rule without meta-parameters (`dpo`, `ppo_clip`). The teacher is sampled on a grid
over LPO's ranges and, when the source has a spec, on the inputs it meets in short inner runs
on its training tasks (`discovery.distill.data`); the student is fitted (`DISTILLERS`) and its
fidelity measured on held-out points: R^2 and max error of the drift and of the gradient PPO
follows, d loss / d r, whatever was fitted.

DIR holds `rule.json`/`rule.npz` (the student, its header saying where it came from, how it was
fitted and its fidelity; the formula is the `expression` option of a `symbolic` rule; when the
teacher came from a run, that run's spec, so `discover eval DIR` trains the inner algorithm with
the teacher's settings and marks its training tasks),
`teacher.json`/`teacher.npz` (the teacher, so that `discover inspect DIR` draws the two side by
side) and `distill.json` (the report printed).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from discovery.distill import data, distiller, drift, symbolic
from discovery.evaluation.sources import Source, add_source_command, resolve_source
from discovery.rule_io import provenance_of, save_rule
from discovery.versions import package_versions
from inner_algos.rules import RULES, has_meta_params, make_rule


def builtin_source(text: str) -> Source | None:
    """A built-in rule named `text` whose `init` has no meta-parameters, as a Source; else None."""
    if text not in RULES or Path(text).exists():
        return None
    rule = make_rule(text)
    if has_meta_params(rule):
        raise ValueError(
            f"SOURCE {text!r} names a built-in rule with meta-parameters; distil a run directory or an "
            "exported rule of it instead"
        )
    return Source(text, "builtin", rule, {}, {}, Path(text))


def training_samples(
    source: Source, seed: int, collect: bool
) -> tuple[data.Samples, data.Samples, list[str]]:
    """(train, held-out, notes): the grid, plus 80 % of the collected inputs when the source has
    a spec and `collect`; held out: uniform points in the ranges and the other 20 %."""
    rule, meta = source.rule, source.meta_params
    train, held_out = data.grid(rule, meta), data.held_out(rule, meta, seed)
    notes = [f"grid: {len(train.ratio)} points; held out: {len(held_out.ratio)} uniform points"]
    if source.spec and collect:
        collected, lines = data.collect(rule, meta, source.spec, seed)
        order = np.random.default_rng(seed).permutation(len(collected.ratio))
        cut = int(0.8 * len(order))
        train = data.Samples.join(train, collected.subset(order[:cut]))
        held_out = data.Samples.join(held_out, collected.subset(order[cut:]))
        notes += [f"collected {len(order)} inputs in short inner runs:", *(f"  {x}" for x in lines)]
    return train, held_out, notes


def run_distill(args) -> dict:
    """Distils the SOURCE of `args` and writes DIR; returns the report."""
    start = time.perf_counter()
    source = builtin_source(args.source) or resolve_source(args.source, args.generation, args.which)
    fit = distiller(source.rule.family, args.to)
    train, held_out, notes = training_samples(source, args.seed, not args.no_collect)
    print("\n".join([f"distilling {source.label} into {args.to}", *notes]), flush=True)
    options: symbolic.SearchOptions | drift.MLPOptions
    if args.to == "symbolic":
        options = symbolic.SearchOptions(
            args.population, args.generations, args.parsimony, args.seed, args.grad_weight
        )
    else:
        options = drift.MLPOptions(
            args.hidden_size, args.steps, args.learning_rate, args.seed, args.grad_weight
        )
    student, student_params = fit(source.rule, train, options)
    report = {
        "teacher": {"source": source.text, "label": source.label, "hash": source.hash},
        "to": args.to,
        "options": dataclasses.asdict(options),
        "data": notes,
        "fidelity_held_out": drift.fidelity(student, student_params, held_out),
        "fidelity_train": drift.fidelity(student, student_params, train),
        "wall_seconds": time.perf_counter() - start,
    }
    write(Path(args.out), source, student, student_params, report)
    return report | {"student": student}


def write(out: Path, source: Source, student, student_params, report: dict) -> None:
    """DIR/rule (the student), DIR/teacher and DIR/distill.json (module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    save_rule(out / "teacher", source.rule, source.meta_params, **provenance_of(source.header))
    provenance = {"train_tasks": source.train_tasks} if source.train_tasks else {}
    if source.spec:  # the teacher's run spec: the distillate is evaluated under its inner settings
        provenance["spec"] = source.spec
    save_rule(
        out / "rule",
        student,
        student_params,
        kind="distilled",
        distilled=report,
        teacher_rule="teacher",
        versions=package_versions(),
        **provenance,
    )
    (out / "distill.json").write_text(json.dumps(report, indent=2, default=float))


def print_report(report: dict, out: str) -> None:
    student = report["student"]
    if getattr(student, "expression", None) is not None:
        print(f"formula: drift(r, A{', p' if student.temporal else ''}) = {student.expression}")
    else:
        print(f"network: {student.name} with options {student.options()}")
    for name in ("held_out", "train"):
        f = report[f"fidelity_{name}"]
        print(
            f"fidelity ({name.replace('_', '-')}): drift R^2 {f['drift_r2']:.4f}, max error "
            f"{f['drift_max_error']:.3g}; d loss / d r R^2 {f['loss_grad_r2']:.4f}, max error "
            f"{f['loss_grad_max_error']:.3g}"
        )
    print(f"wall {report['wall_seconds']:.1f} s; wrote {out}/rule.json (a SOURCE: discover eval {out})")


def main(args) -> int:
    report = run_distill(args)
    print_report(report, args.out)
    return 0


def register(subparsers) -> None:
    parser = add_source_command(
        subparsers,
        "distill",
        help="distil a rule into a formula or a smaller network of its family",
        description=__doc__,
    )
    parser.add_argument("--to", choices=("symbolic", "mlp"), required=True, help="formula or smaller network")
    parser.add_argument("--out", required=True, help="folder for the distilled rule (DIR)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search, network, data (default 0)")
    parser.add_argument(
        "--grad-weight",
        type=float,
        default=0.0,
        help="weight of d drift / d r in the fit, beside the drift's value (default 0: value only)",
    )
    parser.add_argument(
        "--no-collect", action="store_true", help="fit on the grid only (no short inner runs under the rule)"
    )
    search = parser.add_argument_group("symbolic (gplearn)")
    search.add_argument("--population", type=int, default=1000, help="programs per generation (default 1000)")
    search.add_argument("--generations", type=int, default=15, help="generations (default 15)")
    search.add_argument("--parsimony", type=float, default=3e-4, help="score per program node (default 3e-4)")
    net = parser.add_argument_group("mlp (optax)")
    net.add_argument("--hidden-size", type=int, default=16, help="hidden units of the student (default 16)")
    net.add_argument("--steps", type=int, default=3000, help="Adam steps (default 3000)")
    net.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's peak rate (default 3e-3)")
    parser.set_defaults(func=main)
