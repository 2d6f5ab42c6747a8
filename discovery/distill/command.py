"""`discover distill SOURCE --to symbolic|mlp --out DIR`: a rule distilled into a formula or a
smaller network of its family, written as an exported rule that any command reads as a SOURCE.

SOURCE is what `discover eval` reads (run directory, exported rule, checkpoint step) or the name
of a built-in rule without meta-parameters (`dpo`, `ppo_clip`). What is sampled, fitted and
measured depends on the rule's family (`discovery.distill.FAMILIES`, `DISTILLERS`):
  drift        the drift on a grid over LPO's ranges and, when the source has a spec, on the
               inputs it meets in short inner runs on its training tasks (`discovery.distill.data`);
               fidelity: R^2 and max error of the drift and of the gradient PPO follows,
               d loss / d r, on held-out points, whatever was fitted;
  hyperparams  each scheduled hyperparameter over the lifetime fraction p in [0, 1], fitted in its
               unconstrained form (`discovery.distill.hyperparams`): a formula in p per
               hyperparameter (`hyperparams_formula`) or a `hyperparams` rule of lower degree
               (`--degree`); fidelity: R^2 and max error of each hyperparameter on held-out p.
Options of one family only (`--grad-weight`, `--no-collect`, `--hidden-size`, `--steps`,
`--learning-rate` for drifts; `--degree` for hyperparameters) are refused for the other.

DIR holds `rule.json`/`rule.npz` (the student, its header saying where it came from, how it was
fitted and its fidelity; a formula is an option of the student: a `symbolic` rule's `expression`,
a `hyperparams_formula` rule's `formulas`; when the teacher came from a run, that run's spec, so
`discover eval DIR` trains the inner algorithm with the teacher's settings and marks its training
tasks), `teacher.json`/`teacher.npz` (the teacher, so that `discover inspect DIR` draws the two
side by side) and `distill.json` (the report printed).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from discovery.distill import FAMILIES, distiller
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


def check_flags(args, family: str) -> None:
    """ValueError naming a given option that applies to other families only (`Family.flags`)."""
    own = set(FAMILIES[family].flags)
    for other, steps in sorted(FAMILIES.items()):
        for flag in steps.flags:
            if flag not in own and getattr(args, flag, None) not in (None, False):
                raise ValueError(
                    f"--{flag.replace('_', '-')} applies to the {other} family only; the rule to "
                    f"distil is of family {family!r}"
                )


def run_distill(args) -> dict:
    """Distils the SOURCE of `args` and writes DIR; returns the report."""
    start = time.perf_counter()
    source = builtin_source(args.source) or resolve_source(args.source, args.generation, args.which)
    family = source.rule.family
    fit = distiller(family, args.to)
    check_flags(args, family)
    steps = FAMILIES[family]
    options = steps.options(args)
    train, held_out, notes = steps.samples(source, args)
    print("\n".join([f"distilling {source.label} into {args.to}", *notes]), flush=True)
    student, student_params = fit(source.rule, train, options)
    report = {
        "teacher": {"source": source.text, "label": source.label, "hash": source.hash},
        "to": args.to,
        "options": dataclasses.asdict(options),
        "data": notes,
        "fidelity_held_out": steps.fidelity(student, student_params, held_out),
        "fidelity_train": steps.fidelity(student, student_params, train),
        "wall_seconds": time.perf_counter() - start,
    }
    write(Path(args.out), source, student, student_params, report)
    return report | {"student": student}


def write(out: Path, source: Source, student, student_params, report: dict) -> None:
    """DIR/rule (the student), DIR/teacher and DIR/distill.json (module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    save_rule(out / "teacher", source.rule, source.meta_params, **provenance_of(source.header))
    provenance: dict[str, Any] = {"train_tasks": source.train_tasks} if source.train_tasks else {}
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
    print("\n".join(FAMILIES[report["student"].family].describe(report)))
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
    drift = parser.add_argument_group("drift family")
    drift.add_argument(
        "--grad-weight",
        type=float,
        default=None,
        help="weight of d drift / d r in the fit, beside the drift's value (default 0: value only)",
    )
    drift.add_argument(
        "--no-collect", action="store_true", help="fit on the grid only (no short inner runs under the rule)"
    )
    search = parser.add_argument_group("symbolic (gplearn)")
    search.add_argument("--population", type=int, default=1000, help="programs per generation (default 1000)")
    search.add_argument("--generations", type=int, default=15, help="generations (default 15)")
    search.add_argument("--parsimony", type=float, default=3e-4, help="score per program node (default 3e-4)")
    net = parser.add_argument_group("mlp of the drift family (optax)")
    net.add_argument("--hidden-size", type=int, default=None, help="hidden units of the student (default 16)")
    net.add_argument("--steps", type=int, default=None, help="Adam steps (default 3000)")
    net.add_argument("--learning-rate", type=float, default=None, help="Adam's peak rate (default 3e-3)")
    schedule = parser.add_argument_group("mlp of the hyperparams family (least squares)")
    schedule.add_argument(
        "--degree", type=int, default=None, help="degree of the student's polynomial in p (default 2)"
    )
    parser.set_defaults(func=main)
