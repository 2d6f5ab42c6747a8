"""The results of `discover eval`: statistics per task and pooled (`discovery.evaluation.stats`),
results.json / manifest.json writing, the table printed per task."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from discovery.evaluation import stats
from inner_algos.contract import InnerConfig
from inner_algos.envs import Task
from inner_algos.registry import config_section


def normalization(reference: str | None) -> str:
    """What a normalised score is, for results.json: in units of `reference`'s gain over the
    random agent (None: there is no reference, so no normalised scores)."""
    if reference is None:
        return "none: no baselines, so no reference rule and no normalised scores"
    return (
        f"(R - R0) / (R_{reference} - R0); R0 mean return of uniform random actions, "
        f"R_{reference} mean final return of {reference} (the reference: the first baseline) on the same task"
    )


def task_results(
    curves: dict[str, np.ndarray],
    updates,
    per_update,
    in_training: bool | None,
    config: InnerConfig,
    task: Task,
    random_return: float,
    reference: str | None,
) -> dict:
    """Statistics of one task's curves `{label: [N, P+1]}` as a JSON-ready dict; scores are
    normalised between `random_return` (0) and the mean final return of the `reference` rule
    (1; one of the labels, the first baseline; None: no normalised scores). Seeds whose curve
    holds NaN diverged: counted (`diverged`), left out of the statistics."""
    finals = {label: curve[np.all(np.isfinite(curve), axis=1), -1] for label, curve in curves.items()}
    initial = float(np.mean([c[:, 0] for c in curves.values()]))
    reference_return = (
        float(np.mean(finals[reference])) if reference in curves and finals[reference].size else math.nan
    )
    scale = reference_return - random_return
    normalizable = bool(scale > 1e-8)  # the reference must beat the random agent (nan: False)
    per_rule = {}
    for label, curve in curves.items():
        final = finals[label]
        entry = {
            "final_returns": curve[:, -1].tolist(),
            "curves": curve.tolist(),
            "diverged": int(curve.shape[0] - final.size),
            "final": stats.summarize(final) if final.size else None,
        }
        if normalizable and final.size:
            normalized = (final - random_return) / scale
            entry.update(normalized_scores=normalized.tolist(), normalized=stats.summarize(normalized))
        per_rule[label] = entry
    return {
        "in_training_set": in_training,
        "held_out": None if in_training is None else not in_training,
        "task": dataclasses.asdict(task),
        config_section(config): dataclasses.asdict(config),  # "ppo" / "lpg": the spec section
        "env_steps_per_update": per_update,
        "updates": [int(u) for u in updates],
        "env_steps": [int(u) * per_update for u in updates],
        "initial_return": initial,
        "random_return": random_return,
        "reference": reference,
        "reference_final_return": reference_return,
        "rules": per_rule,
        "normalized": bool(normalizable),
    }


def pooled(tasks: dict[str, dict]) -> dict[str, dict]:
    """Normalised scores pooled over tasks and seeds: {label: summarize_pooled(...)}, CIs by the
    stratified bootstrap (seeds resampled within each task)."""
    scores: dict[str, list] = {}
    for result in tasks.values():
        for label, entry in result["rules"].items():
            if "normalized_scores" in entry:  # the seeds that did not diverge
                scores.setdefault(label, []).append(np.asarray(entry["normalized_scores"]))
    return {label: stats.summarize_pooled(v) for label, v in scores.items()}


def comparisons(labels: list[str], baseline: list[bool]) -> list[tuple[str, str]]:
    """The (rule, baseline) pairs to compare, in order: every rule against every baseline, a
    baseline only against the baselines listed before it (no pair twice, mirrored)."""
    return [
        (rule, base)
        for i, rule in enumerate(labels)
        for j, base in enumerate(labels)
        if baseline[j] and i != j and not (baseline[i] and i < j)
    ]


def _finals(result: dict, label: str) -> np.ndarray:
    """A rule's final returns `[N]` on a task, NaN (null in JSON) for diverged seeds."""
    return np.array([np.nan if v is None else v for v in result["rules"][label]["final_returns"]], float)


def _scale(result: dict) -> float:
    """R_reference - R0 of a normalised task (a normalised score is (R - R0) / this)."""
    return result["reference_final_return"] - result["random_return"]


def paired_task(result: dict, pairs: list[tuple[str, str]]) -> list[dict]:
    """Paired statistics of one task (`task_results`' output) for each (rule, baseline) of `pairs`.

    Per pair: the seeds where both ran to the end (`pairs`; `left_out` the others); the mean
    paired difference of final returns (`difference`) and of normalised scores
    (`normalized_difference`, on normalised tasks) with 95% bootstrap CIs; P(rule > baseline)
    over the paired seeds, ties one half (`p_improvement`); `detectable`, the CI's half-width;
    then the verdict of `judge` (divergence first, then the difference's CI).
    """
    out = []
    for rule, base in pairs:
        d, left_out = stats.paired_differences(_finals(result, rule), _finals(result, base))
        entry: dict[str, Any] = {"rule": rule, "baseline": base, "pairs": int(d.size), "left_out": left_out}
        if d.size:
            entry.update(stats.paired_bootstrap([d]))
            if result["normalized"]:
                entry["normalized_difference"] = stats.paired_bootstrap([d / _scale(result)])["difference"]
            entry["detectable"] = stats.half_width(entry["difference"]["ci"])
        out.append(judge(result, entry))
    return out


VERDICT_RULE = (
    "worse when the rule diverged on significantly more seeds than the baseline (exact one-sided "
    f"sign test on the seeds where only one diverged, p < {stats.DIVERGENCE_LEVEL}), else from the "
    "95% CI of the paired difference over the seeds both finished"
)


def task_divergence(result: dict, rule: str, baseline: str) -> dict | None:
    """`stats.divergence_test` of two rules on a task: a seed diverged where its curve holds a
    null (NaN). None when the task's results hold no curves (a results file written without them)."""
    rules = result.get("rules", {})
    if rule not in rules or baseline not in rules or "curves" not in rules[rule]:
        return None
    diverged = [np.isnan(np.array(rules[label]["curves"], float)).any(axis=1) for label in (rule, baseline)]
    return stats.divergence_test(*diverged)


def judge(result: dict, entry: dict) -> dict:
    """The verdict of a paired entry on a task, the one rule of `discover eval` and `discover
    replicates`: `worse` when the rule diverged significantly more often than the baseline
    (`task_divergence`), whatever its finished seeds say; otherwise the paired difference's CI over
    the seeds where both finished (`stats.verdict`), or none when `paired_reason` gives a reason.
    Returns the entry with `divergence`, `verdict`, `verdict_basis` ("divergence", "paired
    difference" or None) and `no_verdict` (the reason, or None) set. Idempotent: a stored entry
    is judged again alike."""
    entry = {**entry, "divergence": task_divergence(result, entry["rule"], entry["baseline"])}
    divergence, reason = entry["divergence"], paired_reason(result, entry)
    if divergence is not None and divergence["more"]:
        verdict, basis, reason = stats.VERDICTS[1], "divergence", None
    elif reason is None:
        verdict, basis = stats.verdict(entry["difference"]["ci"]), "paired difference"
    else:
        verdict, basis = None, None
    return {
        **entry,
        "verdict": verdict,
        "verdict_basis": basis,
        "no_verdict": reason,
    }


def paired_reason(result: dict, entry: dict) -> str | None:
    """Why the paired difference of an entry decides nothing on this task, or None when it can:
    no seed finished under both rules, the baseline does not beat the random agent, or fewer
    than `stats.MIN_PAIRS` paired seeds (saying how many diverged when that is why). A results
    file without the rules' final returns keeps the reason it stored. The entry's `divergence`
    (`judge` sets it) is read, not computed again."""
    rule, baseline, pairs = entry["rule"], entry["baseline"], entry["pairs"]
    divergence = entry["divergence"] if "divergence" in entry else task_divergence(result, rule, baseline)
    if "final_returns" not in result.get("rules", {}).get(baseline, {}):
        return entry.get("no_verdict")
    if not pairs:
        note = _diverged_note(divergence, rule, baseline)
        return "no seed ran to the end under both rules" + (f" ({note})" if note else "")
    finals = _finals(result, baseline)
    mean = float(np.mean(finals[np.isfinite(finals)]))
    if not mean > result["random_return"]:
        return (
            f"{baseline} does not beat the random agent (mean final return {mean:.4g} <= "
            f"{result['random_return']:.4g}): raise --budget"
        )
    if pairs < stats.MIN_PAIRS:
        if entry["left_out"]:
            note = _diverged_note(divergence, rule, baseline)
            return f"{note}: {pairs} paired seeds left; a verdict needs {stats.MIN_PAIRS}"
        return f"{pairs} paired seeds; a verdict needs {stats.MIN_PAIRS} (raise --seeds)"
    return None


def _diverged_note(d: dict | None, rule: str, baseline: str) -> str:
    """'37 of 40 seeds diverged under lpo, 0 under ppo_clip' from a `task_divergence` ('' when none
    diverged)."""
    if d is None or not d["rule"] + d["baseline"]:
        return ""
    return f"{d['rule']} of {d['seeds']} seeds diverged under {rule}, {d['baseline']} under {baseline}"


def verdict_text(entry: dict) -> str:
    """A paired entry's verdict with the diverged seeds when any: 'worse (diverged 37/40,
    ppo_clip 0/40)', 'better', 'no verdict (diverged 20/40, ppo_clip 19/40)'; a pooled entry's
    with the tasks it leaves out: 'worse (without hopper/spring)'."""
    verdict = entry.get("verdict") or "no verdict"
    if entry.get("left_out_tasks"):  # a pooled entry
        return f"{verdict} (without {', '.join(entry['left_out_tasks'])})"
    d = entry.get("divergence")
    if not d or not d["rule"] + d["baseline"]:
        return verdict
    return f"{verdict} (diverged {d['rule']}/{d['seeds']}, {entry['baseline']} {d['baseline']}/{d['seeds']})"


def pool_reason(result: dict, entry: dict) -> str | None:
    """Why a task is left out of the pooled paired statistics, or None when it is pooled: it has
    no normalised scores, or its paired difference decides nothing (`paired_reason`)."""
    if not result.get("normalized", True):
        return f"no normalised scores (the reference {result.get('reference')} does not beat random actions)"
    return paired_reason(result, entry)


def paired_pooled(tasks: dict[str, dict], pairs: list[tuple[str, str]]) -> list[dict]:
    """Paired statistics pooled over the tasks whose paired difference decides (`pool_reason`),
    for each (rule, baseline): the normalised paired difference (mean over tasks of each task's
    mean over the seeds both finished) and P(rule > baseline) (mean over tasks), with stratified
    bootstrap CIs (pairs resampled within each task), the verdict from the difference's CI and
    its half-width. The pooled difference is in units of the reference's gain over random
    actions. `tasks` lists the tasks pooled, `left_out_tasks` {task: reason} the others and
    `diverged_more` the pooled tasks where the rule diverged significantly more often (their
    diverged seeds are in no pooled number)."""
    out = []
    for rule, base in pairs:
        names, strata, left_out, excluded, diverged = [], [], 0, {}, []
        for name, result in tasks.items():
            entry = next(e for e in result["paired"] if (e["rule"], e["baseline"]) == (rule, base))
            reason = pool_reason(result, entry)
            if reason is not None:
                excluded[name] = reason
                continue
            d, dropped = stats.paired_differences(_finals(result, rule), _finals(result, base))
            names.append(name)
            strata.append(d / _scale(result))
            left_out += dropped
            diverged += [name] if (entry.get("divergence") or {}).get("more") else []
        pooled = {
            "rule": rule,
            "baseline": base,
            "tasks": names,
            "left_out_tasks": excluded,
            "diverged_more": diverged,
            "pairs": int(sum(d.size for d in strata)),
            "left_out": left_out,
        }
        if strata:
            boot = stats.paired_bootstrap(strata)
            pooled.update(
                normalized_difference=boot["difference"],
                p_improvement=boot["p_improvement"],
                verdict=stats.verdict(boot["difference"]["ci"]),
                detectable=stats.half_width(boot["difference"]["ci"]),
                no_verdict=None,
            )
        else:
            pooled.update(verdict=None, no_verdict="no task has a verdict and normalised scores")
        out.append(pooled)
    return out


def score_matrix(tasks: dict[str, dict]) -> dict:
    """Per rule, the normalised final scores `[seeds, tasks]` of the normalised tasks (NaN, null
    in JSON, for a diverged seed): {"tasks": [names], "scores": {rule: [[...]]}}, the
    {name: array[runs x tasks]} that rliable's aggregate functions take."""
    names = [name for name, r in tasks.items() if r["normalized"]]
    labels = list(next(iter(tasks.values()))["rules"]) if tasks else []
    scores = {
        label: np.stack(
            [(_finals(tasks[n], label) - tasks[n]["random_return"]) / _scale(tasks[n]) for n in names], axis=1
        ).tolist()
        if names
        else []
        for label in labels
    }
    return {"tasks": names, "scores": scores}


def json_ready(value):
    """Non-finite floats become null (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: Path, data) -> None:
    """`data` as strict JSON at `path`, atomically (a temporary file renamed into place), so a
    kill leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(json_ready(data), indent=1, default=str, allow_nan=False))
    os.replace(tmp, path)


def status(in_training: bool | None) -> str:
    return {None: "training set unknown", True: "training task", False: "held-out"}[in_training]


def print_task(result: dict, seconds: float) -> None:
    print(
        f"  {'rule':<28} {'mean [95% CI]':>26} {'IQM':>9} {'norm. IQM':>10} {'diverged':>9}"
        f"   ({seconds:.0f} s)"
    )
    for label, e in result["rules"].items():
        seeds = f"{e['diverged']}/{len(e['final_returns'])}"
        if e["final"] is None:
            print(f"  {label:<28} {'diverged on every seed: no score':>57} {seeds:>9}")
            continue
        mean = e["final"]["mean"]
        norm = e.get("normalized", {}).get("iqm", {}).get("value", math.nan)
        print(
            f"  {label:<28} {mean['value']:>9.1f} [{mean['ci'][0]:>7.1f}, {mean['ci'][1]:>7.1f}]"
            f" {e['final']['iqm']['value']:>9.1f} {norm:>10.2f} {seeds:>9}"
        )


def _interval(entry: dict | None, digits: int) -> str:
    """'value [lo, hi]' of a {"value", "ci"} entry ('-' when absent)."""
    if entry is None:
        return "-"
    lo, hi = entry["ci"]
    return f"{entry['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def print_paired(entries: list[dict], key: str = "difference", digits: int = 1) -> None:
    """The paired comparisons (`paired_task` / `paired_pooled` entries), one line each: the
    paired difference `key` with its CI, P(rule > baseline) with its CI, the paired / all seeds
    and the verdict with the smallest detectable difference (the CI's half-width)."""
    print(
        f"  {'paired: rule - baseline':<36} {'difference [95% CI]':>30} {'P(rule > base.) [95% CI]':>25}"
        f" {'pairs':>6}   verdict (detectable +-)"
    )
    for e in entries:
        verdict = verdict_text(e)
        if e["verdict"] and e.get("detectable") is not None and e.get("verdict_basis") != "divergence":
            verdict += f" (+-{e['detectable']:.{digits}f})"
        if e.get("no_verdict"):
            verdict += f": {e['no_verdict']}"
        name = f"{e['rule']} - {e['baseline']}"
        seeds = f"{e['pairs']}/{e['pairs'] + e['left_out']}"
        print(
            f"  {name:<36} {_interval(e.get(key), digits):>30} {_interval(e.get('p_improvement'), 2):>25}"
            f" {seeds:>6}   {verdict}"
        )
        for task, reason in e.get("left_out_tasks", {}).items():
            print(f"    left out of the pool: {task}: {reason}")
        if e.get("diverged_more"):
            print(f"    pooled, though {e['rule']} diverged more often: {', '.join(e['diverged_more'])}")
    if any(
        (e.get("divergence") or {}).get("rule") or (e.get("divergence") or {}).get("baseline")
        for e in entries
    ):
        print(f"  verdict: {VERDICT_RULE}")
