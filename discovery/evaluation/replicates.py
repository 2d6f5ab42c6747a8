"""`discover replicates EVAL_DIR [EVAL_DIR ...]`: the replicates of a discovery study side by side.

Each EVAL_DIR is the --out folder of a `discover eval` of one replicate's rule (the same spec
run with job.seed 0, 1, 2, ...). From each EVAL_DIR/results.json it takes the paired comparisons
of the evaluated rule with one baseline (--baseline; default: the evaluation's reference, the
first baseline) and prints a Markdown table: one row per task (held-out or training task) and a
pooled row, one column per replicate holding "verdict, paired difference [95% CI]" (rule -
baseline, seed by seed: the final return on a task, the reference-normalised difference pooled),
and a last column counting "better k/N, worse m/N" over the N replicates. Below it, one line per
replicate: on how many held-out tasks it is better and worse, its pooled verdict, and whether it
meets the study target (better on >= 2 held-out tasks, worse on none, pooled better).

A rule that diverges (non-finite parameters) on a seed has no final return there, and the paired
statistics leave that seed out, so a rule that diverges on most seeds could show no verdict
instead of a loss. Each task's verdict is `results.judge`'s, the rule of `discover eval`: worse
when the rule diverged significantly more often than the baseline (an exact one-sided sign test
on the seeds where only one of them diverged, p < 0.025), else from the paired difference's CI.
A cell names the diverged seeds when there are any: "worse (diverged 37/40, ppo_clip 0/40)".
Results files written before the divergence test are judged again from their curves.

The replicates must have been evaluated alike: the same tasks at the same budgets, the same
--seeds and --seed, the same reference and training set. Otherwise the command refuses, naming
the folders and what differs.

Writes to --out:
  replicates.md    the table and the lines printed
  replicates.json  the same data: per row and replicate the paired entry of results.json, the
                   counts, per replicate its held-out counts, pooled verdict and the target
  replicates.png   per task and pooled, each replicate's normalised paired difference and
                   P(rule > baseline) with 95% CIs (the figure of `discover eval`'s paired.png)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import NamedTuple

from discovery.evaluation import plots
from discovery.evaluation.results import VERDICT_RULE, judge, pool_reason, status, verdict_text, write_json

RESULTS = "results.json"
POOLED = "pooled"
NO_VERDICT = "no verdict"


class Replicate(NamedTuple):
    """One replicate's evaluation: its name, EVAL_DIR, the whole results.json, the baseline
    compared with, the paired entry of (evaluated rule, baseline) per task {task: entry} and
    pooled (a `results.paired_pooled` entry)."""

    name: str
    eval_dir: Path
    results: dict
    baseline: str
    paired: dict[str, dict]
    pooled: dict


class Row(NamedTuple):
    """One row of the table: a task (or `POOLED`), what it is ("held-out", "training task",
    ...), held_out (None: unknown, or the pooled row), the key of the paired difference shown
    ("difference": final return; "normalized_difference") and one paired entry per replicate."""

    group: str
    kind: str
    held_out: bool | None
    key: str
    entries: list[dict]


def read_results(eval_dir: Path) -> dict:
    """EVAL_DIR/results.json as a dict; a ValueError naming the folder and the fix when it is
    missing, not JSON, or lacks the keys this command reads."""
    path = Path(eval_dir) / RESULTS
    if not path.is_file():
        raise ValueError(
            f"{eval_dir}: no {RESULTS}; give the --out folder of a finished `discover eval` "
            f"(run `discover eval RUN --out {eval_dir} ...` first)"
        )
    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is unreadable ({err}); rerun `discover eval ... --out {eval_dir}`") from err
    keys = ("evaluated", "reference", "seeds", "seed", "tasks", "pooled_paired")
    missing = [k for k in keys if k not in results] if isinstance(results, dict) else list(keys)
    if missing:
        raise ValueError(
            f"{path} is not the results of `discover eval` (no {', '.join(missing)}); "
            f"rerun `discover eval ... --out {eval_dir}`"
        )
    return results


def select_replicate(name: str, eval_dir: Path, results: dict, baseline: str | None) -> Replicate:
    """The paired entries of the file's evaluated rule against `baseline` (None: the file's
    reference), per task and pooled; a ValueError naming the folder, the baseline and the
    baselines it has when one is missing."""
    rule = results["evaluated"]
    baseline = results["reference"] if baseline is None else baseline
    if baseline is None:
        raise ValueError(
            f"{eval_dir}/{RESULTS} was evaluated without baselines: rerun `discover eval` with "
            "--baselines ppo_clip (or the inner algorithm's)"
        )

    def entry_of(entries: list[dict], where: str) -> dict:
        found = [e for e in entries if e["rule"] == rule and e["baseline"] == baseline]
        if not found:
            have = sorted({e["baseline"] for e in entries if e["rule"] == rule})
            raise ValueError(
                f"{eval_dir}/{RESULTS} has no paired comparison of '{rule}' with baseline "
                f"'{baseline}' ({where}; its baselines: {', '.join(have) or 'none'}): pick one with "
                f"--baseline, or rerun `discover eval` with --baselines {baseline}"
            )
        return found[0]

    paired = {task: judge(r, entry_of(r.get("paired", []), task)) for task, r in results["tasks"].items()}
    pooled = entry_of(results["pooled_paired"], "pooled")
    left_out = {t: pool_reason(results["tasks"][t], e) for t, e in paired.items() if t not in pooled["tasks"]}
    pooled = {**pooled, "left_out_tasks": {t: reason or "not pooled" for t, reason in left_out.items()}}
    return Replicate(name, Path(eval_dir), results, baseline, paired, pooled)


def replicate_names(eval_dirs: list[Path], names: str | None) -> list[str]:
    """The replicates' names: the comma-separated `names` (--names), else the EVAL_DIR folder
    names; a ValueError when their number is off or two are the same."""
    if names is None:
        chosen = [Path(d).resolve().name for d in eval_dirs]
        fix = "name them with --names a,b,c"
    else:
        chosen = [n.strip() for n in names.split(",")]
        fix = f"give {len(eval_dirs)} different names"
        if len(chosen) != len(eval_dirs) or not all(chosen):
            raise ValueError(f"--names {names}: {len(chosen)} names for {len(eval_dirs)} EVAL_DIRs; {fix}")
    if len(set(chosen)) < len(chosen):
        raise ValueError(f"the replicates' names repeat ({', '.join(chosen)}): {fix}")
    return chosen


def check_alike(replicates: list[Replicate]) -> None:
    """A ValueError naming both folders and what differs when a replicate was evaluated unlike
    the first: other tasks (named), other --seeds / --seed, another reference, another training
    set or other env steps per lifetime on a task."""
    first, a = replicates[0], replicates[0].results
    for rep in replicates[1:]:
        b, pair = rep.results, f"{rep.eval_dir} and {first.eval_dir}"
        only_b, only_a = sorted(set(b["tasks"]) - set(a["tasks"])), sorted(set(a["tasks"]) - set(b["tasks"]))
        if only_a or only_b:
            raise ValueError(
                f"{pair} were evaluated on different tasks (only in {rep.eval_dir}: "
                f"{', '.join(only_b) or 'none'}; only in {first.eval_dir}: {', '.join(only_a) or 'none'}): "
                "evaluate every replicate with the same --tasks"
            )
        if (b["seeds"], b["seed"]) != (a["seeds"], a["seed"]):
            raise ValueError(
                f"{pair} were evaluated with different seeds (--seeds {b['seeds']} --seed {b['seed']} "
                f"against --seeds {a['seeds']} --seed {a['seed']}): evaluate every replicate with the "
                "same --seeds and --seed"
            )
        if b["reference"] != a["reference"]:
            raise ValueError(
                f"{pair} have different references ({b['reference']} against {a['reference']}), so "
                "their normalised scores are in other units: evaluate every replicate with the "
                "same first --baselines"
            )
        for task, result in a["tasks"].items():
            other = b["tasks"][task]
            if other.get("held_out") != result.get("held_out"):
                raise ValueError(
                    f"{pair} disagree on whether {task} is held out ({other.get('held_out')} against "
                    f"{result.get('held_out')}): evaluate the replicates of one spec from their run "
                    "directories"
                )
            if _lifetime(other) != _lifetime(result):
                raise ValueError(
                    f"{pair} trained {task} for different env steps per lifetime ({_lifetime(other)} "
                    f"against {_lifetime(result)}): evaluate every replicate with the same --budget "
                    "and --tasks TASK@STEPS"
                )


def _lifetime(result: dict) -> int | None:
    """The env steps of a task's lifetime in `discover eval` (the last curve point's), if given."""
    return (result.get("env_steps") or [None])[-1]


def load_replicates(eval_dirs: list[Path], names: str | None = None, baseline: str | None = None):
    """Reads and checks the replicates: [Replicate] in the order of `eval_dirs` (names:
    `replicate_names`; baseline: None for each file's reference), after `check_alike`."""
    chosen = replicate_names(eval_dirs, names)
    replicates = [
        select_replicate(name, Path(d), read_results(Path(d)), baseline) for name, d in zip(chosen, eval_dirs)
    ]
    check_alike(replicates)
    return replicates


def build_rows(replicates: list[Replicate]) -> list[Row]:
    """The table's rows: one per task in the first file's order (its held-out status from the
    file), then the pooled row (normalised difference)."""
    rows = [
        Row(
            task,
            status(result.get("in_training_set")),
            result.get("held_out"),
            "difference",
            [r.paired[task] for r in replicates],
        )
        for task, result in replicates[0].results["tasks"].items()
    ]
    kind = f"normalised by {replicates[0].results['reference']}"
    rows.append(Row(POOLED, kind, None, "normalized_difference", [r.pooled for r in replicates]))
    return rows


def count(entries: list[dict], verdict: str) -> int:
    """How many of the paired entries stand at this verdict (`results.judge`'s)."""
    return sum(e.get("verdict") == verdict for e in entries)


def target_text(min_better: int = 2, max_worse: int = 0, pooled: str = "better") -> str:
    """The study target in words: 'better on >= 2 held-out tasks, worse on none, pooled better'."""
    worse = "none" if max_worse == 0 else f"<= {max_worse}"
    return f"better on >= {min_better} held-out tasks, worse on {worse}, pooled {pooled}"


def summarize(
    rows: list[Row], index: int, min_better: int = 2, max_worse: int = 0, pooled: str = "better"
) -> dict:
    """Replicate `index`'s standing: on how many held-out tasks it is better and worse, its
    pooled verdict ('no verdict' when none) and whether it meets the target (at least
    `min_better` held-out tasks better, at most `max_worse` worse, the pooled verdict `pooled`)."""
    held_out = [row.entries[index] for row in rows if row.held_out is True]
    better, worse = count(held_out, "better"), count(held_out, "worse")
    verdict = rows[-1].entries[index].get("verdict") or NO_VERDICT
    meets = better >= min_better and worse <= max_worse and verdict == pooled
    return {
        "held_out_better": better,
        "held_out_worse": worse,
        "pooled_verdict": verdict,
        "meets_target": meets,
    }


def decimals(entries: list[dict], key: str) -> int:
    """Decimals that give a row's largest |value| or CI end 3 significant digits (0 to 3), so
    that one row's cells read alike: 201 -> 0, 66.0 -> 1, 0.399 -> 3."""
    values = [abs(v) for e in entries if e.get(key) for v in (e[key]["value"], *e[key]["ci"])]
    top = max(values, default=0.0)
    return 3 if top == 0 else min(3, max(0, 2 - math.floor(math.log10(top))))


def format_cell(entry: dict, key: str, digits: int) -> str:
    """'verdict (diverged seeds), value [lo, hi]' of the paired difference `key`
    (`results.verdict_text`); '-' in place of a missing difference."""
    verdict = verdict_text(entry)
    if not entry.get(key):
        return f"{verdict}, -"
    value, (lo, hi) = entry[key]["value"], entry[key]["ci"]
    return f"{verdict}, {value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def format_report(replicates: list[Replicate], rows: list[Row], summaries: list[dict], target: str) -> str:
    """The Markdown of replicates.md: a heading line, the table, one line per replicate with
    its held-out counts, pooled verdict and target, then the reasons of cells without a verdict."""
    first, n = replicates[0], len(replicates)
    names = [r.name for r in replicates]
    lines = [
        f"Replicates of {first.results['evaluated']} against {first.baseline}: {first.results['seeds']} "
        f"paired seeds per task (--seed {first.results['seed']}); cells: verdict (seeds diverged under "
        f"the rule and the baseline, when any), paired difference rule - baseline [95% CI] over the "
        f"seeds both finished (tasks: final return; pooled: {rows[-1].kind}). Verdict per task: "
        f"{VERDICT_RULE}.",
        "",
        "| task | " + " | ".join(names) + " | replicates |",
        "|---|" + "---|" * (n + 1),
    ]
    for row in rows:
        digits = decimals(row.entries, row.key)
        cells = [format_cell(e, row.key, digits) for e in row.entries]
        tally = f"better {count(row.entries, 'better')}/{n}, worse {count(row.entries, 'worse')}/{n}"
        lines.append(f"| {row.group} ({row.kind}) | " + " | ".join(cells) + f" | {tally} |")
    lines += ["", f"Target: {target}.", ""]
    for name, s in zip(names, summaries):
        meets = "meets the target" if s["meets_target"] else "does not meet the target"
        lines.append(
            f"- {name}: held-out tasks: better on {s['held_out_better']}, worse on {s['held_out_worse']}; "
            f"pooled: {s['pooled_verdict']}; {meets}"
        )
    reasons = [
        f"- {name} on {row.group}: {e['no_verdict']}"
        for row in rows
        for name, e in zip(names, row.entries)
        if e.get("no_verdict")
    ]
    lines += ["", "No verdict:", *reasons] if reasons else []
    return "\n".join(lines + pool_lines(replicates)) + "\n"


def pool_lines(replicates: list[Replicate]) -> list[str]:
    """What each pooled cell leaves out: the tasks not pooled (with the reason), and the pooled
    tasks where the rule diverged more often (their diverged seeds are in no pooled number)."""
    lines = []
    for r in replicates:
        parts = [f"leaves out {task} ({reason})" for task, reason in r.pooled["left_out_tasks"].items()]
        diverged = [t for t in r.pooled["tasks"] if r.paired[t].get("verdict_basis") == "divergence"]
        if diverged:
            parts.append(f"pools {', '.join(diverged)} without the seeds that diverged")
        lines += [f"- {r.name}: " + "; ".join(parts)] if parts else []
    header = "Pooled row: the tasks with normalised scores and enough paired seeds, the seeds both finished."
    return ["", header, *lines] if lines else []


def report_data(replicates: list[Replicate], rows: list[Row], summaries: list[dict], target: dict) -> dict:
    """replicates.json: the settings shared by the replicates, the target, per replicate its
    folder and standing, per row the paired entries {name: entry} and the counts."""
    first, names = replicates[0].results, [r.name for r in replicates]
    return {
        "evaluated": [r.results["evaluated"] for r in replicates],
        "baseline": replicates[0].baseline,
        "reference": first["reference"],
        "seeds": first["seeds"],
        "seed": first["seed"],
        "target": target,
        "replicates": [
            {"name": r.name, "eval_dir": str(r.eval_dir), "evaluated": r.results["evaluated"], **s}
            for r, s in zip(replicates, summaries)
        ],
        "rows": [
            {
                "group": row.group,
                "kind": row.kind,
                "held_out": row.held_out,
                "difference_key": row.key,
                "entries": dict(zip(names, row.entries)),
                "better": count(row.entries, "better"),
                "worse": count(row.entries, "worse"),
            }
            for row in rows
        ],
    }


def draw(path: Path, replicates: list[Replicate], rows: list[Row]) -> Path | None:
    """replicates.png by `plots.paired_figure`: a group per task and pooled, one entry per
    replicate (its rule named by the replicate) with normalised scores; None when no entry has
    them (no task was normalized), and nothing is drawn."""
    names = [r.name for r in replicates]
    groups = {
        (f"{row.group} ({row.kind})" if row.group != POOLED else "all tasks (pooled)"): [
            {**e, "rule": name} for name, e in zip(names, row.entries) if "normalized_difference" in e
        ]
        for row in rows
    }
    groups = {g: entries for g, entries in groups.items() if entries}
    if not groups:
        return None
    first = replicates[0]
    title = f"Replicates of {first.results['evaluated']} - {first.baseline} (seed by seed; 95% CI)"
    return plots.paired_figure(path, groups, title, first.results["reference"])


def run_replicates(
    eval_dirs: list[Path],
    out: Path,
    names: str | None = None,
    baseline: str | None = None,
    min_better: int = 2,
    max_worse: int = 0,
    pooled: str = "better",
) -> dict:
    """Reads and checks the replicates, prints the table and lines, writes OUT/replicates.md,
    .json and .png; returns the JSON data. The target: at least `min_better` held-out tasks
    better, at most `max_worse` worse, the pooled verdict `pooled`."""
    replicates = load_replicates(eval_dirs, names, baseline)
    rows = build_rows(replicates)
    summaries = [summarize(rows, i, min_better, max_worse, pooled) for i in range(len(replicates))]
    target = target_text(min_better, max_worse, pooled)
    text = format_report(replicates, rows, summaries, target)
    print(text, end="")
    out.mkdir(parents=True, exist_ok=True)
    (out / "replicates.md").write_text(text)
    thresholds = {"text": target, "min_better": min_better, "max_worse": max_worse, "pooled": pooled}
    data = report_data(replicates, rows, summaries, thresholds)
    write_json(out / "replicates.json", data)
    figure = draw(out / "replicates.png", replicates, rows)
    if figure is None:
        print("no normalised scores on any task: replicates.png not drawn")
    print(f"wrote {out / 'replicates.md'}, {out / 'replicates.json'}" + (f" and {figure}" if figure else ""))
    return data


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "replicates",
        help="a study's replicates side by side: verdicts per task and pooled, and the study target",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "eval_dir", nargs="+", metavar="EVAL_DIR", help="the --out folder of a `discover eval` per replicate"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="NAME",
        help="the baseline the rules are compared with (default: each evaluation's reference)",
    )
    parser.add_argument(
        "--names", default=None, help="the replicates' names, comma-separated (default: the EVAL_DIR names)"
    )
    parser.add_argument(
        "--out", default="discover_replicates", help="output folder (default discover_replicates)"
    )
    parser.set_defaults(func=main)


def main(args) -> int:
    run_replicates([Path(d) for d in args.eval_dir], Path(args.out), args.names, args.baseline)
    return 0
