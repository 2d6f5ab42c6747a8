"""How many seeds `discover eval` needs: the paired CIs of a finished evaluation recomputed on
its first N seeds, for several N.

Seed i of an evaluation is trained from `jax.random.split(PRNGKey(seed), seeds)[i]`, and JAX's
partitionable threefry makes the first N keys of a 40-seed split those of an N-seed split, so the
first N seeds of a 40-seed run are the seeds an N-seed run would train (up to float rounding of the
larger vmapped batch). Per task and rule-baseline pair it prints the paired difference of final
returns, its 95% CI half-width (the smallest difference the run could detect), the same in
normalised units (difference / (R_reference - R0), the reference the evaluation's first
baseline), and the verdict.

    python benchmarks/eval_seeds.py OUT [--seeds 10 20 40]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from discovery.evaluation import stats


def widths(task: dict, rule: str, baseline: str, n: int) -> dict:
    """The paired statistics of `rule` - `baseline` on the first n seeds of one task's result."""
    rules = task["rules"]
    a = np.asarray(rules[rule]["final_returns"][:n], dtype=float)
    b = np.asarray(rules[baseline]["final_returns"][:n], dtype=float)
    d, left_out = stats.paired_differences(a, b)
    boot = stats.paired_bootstrap([d])
    ci = boot["difference"]["ci"]
    scale = task["reference_final_return"] - task["random_return"]
    return {
        "seeds": n,
        "pairs": int(d.size),
        "left_out": left_out,
        "difference": boot["difference"]["value"],
        "ci": ci,
        "detectable": stats.half_width(ci),
        "detectable_normalized": stats.half_width(ci) / scale if scale > 0 else None,
        "p_improvement": boot["p_improvement"]["value"],
        "verdict": stats.verdict(ci),
    }


def finished_tasks(out: Path) -> dict:
    """{task label: its result}, from results.json, or from OUT/tasks/*.json while it runs."""
    if (out / "results.json").is_file():
        return json.loads((out / "results.json").read_text())["tasks"]
    return {p.stem: json.loads(p.read_text())["result"] for p in sorted((out / "tasks").glob("*.json"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="--out directory of a finished discover eval")
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 20, 40])
    args = parser.parse_args()
    for label, task in finished_tasks(args.out).items():
        for pair in task["paired"]:
            print(f"{label}: {pair['rule']} - {pair['baseline']}")
            for n in args.seeds:
                w = widths(task, pair["rule"], pair["baseline"], n)
                norm = w["detectable_normalized"]
                print(
                    f"  {n:3d} seeds: difference {w['difference']:9.2f} "
                    f"[{w['ci'][0]:9.2f}, {w['ci'][1]:9.2f}]  +-{w['detectable']:8.2f}"
                    f" ({'n/a' if norm is None else f'{norm:.3f}'} normalized)"
                    f"  P(improvement) {w['p_improvement']:.2f}  {w['verdict']}"
                )


if __name__ == "__main__":
    main()
