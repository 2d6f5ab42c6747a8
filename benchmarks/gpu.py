"""GPU benchmark: every shipped GPU spec for a few generations, next to raw stepping of its envs.

For each spec (runs/lpo_ant.toml, runs/learned_optimizer_pes_gpu.toml, runs/study_gpu.toml) it
runs the discovery job (`run_job`, as `discover run` does) for --generations generations at the
spec's real per-member size (its tasks, ppo.num_envs, rollout, epochs, minibatches and networks),
with the population shrunk to fit the time (--population: ES members, or 2 x num_pairs
persistent runs for PES), whole-lifetime ES lifetimes shortened to --num-updates updates (a
generation's cost grows linearly with them, its throughput does not), and the baselines of a
baseline-normalised spec fixed at 1 (their measurement trains full lifetimes). Then it steps
each task's environment with random actions at the env count a generation steps at once
(members x ppo.num_envs; `inner_throughput.raw_stepping`). Per spec it prints and records:
compile seconds of the generation step, seconds per generation (the first excluded),
env-steps/s of a generation, raw env-steps/s, and generation / raw. The JSON at --out holds
them with the device and package versions; it is rewritten after every spec, so a timeout
keeps what finished.

    python benchmarks/gpu.py --out gpu.json                  # ~3-5 min on one H200
    python benchmarks/gpu.py --specs runs/lpo_ant.toml --population 32 --generations 2
    python benchmarks/gpu.py --tiny --out /tmp/tiny.json     # CPU, tiny sizes, in seconds

--tiny keeps each spec's estimator and rule but swaps its tasks for one short inverted_pendulum
and shrinks the networks, batch and lifetimes, so that the whole script runs on a CPU (tested).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from discovery import xla_flags

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("runs/lpo_ant.toml", "runs/learned_optimizer_pes_gpu.toml", "runs/study_gpu.toml")
TRUNCATED = ("pes", "truncated_es", "metagrad", "online_metagrad")
TINY = {  # section -> overrides, applied to the keys a spec has
    "tasks": [{"env_name": "inverted_pendulum", "backend": "spring", "episode_length": 50}],
    "rule": {"hidden_size": 4},
    "ppo": {
        "num_envs": 8,
        "rollout_length": 4,
        "num_updates": 4,
        "num_epochs": 1,
        "num_minibatches": 2,
        "actor_hidden": [8],
        "critic_hidden": [8],
        "eval_envs": 2,
    },
    "meta_optimizer": {"unroll_length": 2, "min_lifetime": 2, "max_lifetime": 4},
}


def shrunk_table(
    path: str, population: int, generations: int, num_updates: int, tiny: bool, run_dir: str
) -> dict:
    """The spec table at `path` shrunk for the benchmark (module docstring)."""
    from discovery.spec import load_toml

    table = load_toml(ROOT / path)
    if tiny:
        table["tasks"] = copy.deepcopy(TINY["tasks"])
        for section in ("rule", "ppo", "meta_optimizer"):
            table[section].update({k: v for k, v in TINY[section].items() if k in table[section]})
    options = table["meta_optimizer"]
    if "num_pairs" in options:
        options["num_pairs"] = max(1, population // 2)
    elif "num_runs" in options:
        options["num_runs"] = population
    elif "population_size" in options:
        options["population_size"] = population
    if options["name"] not in TRUNCATED and num_updates and not tiny:
        table["ppo"]["num_updates"] = num_updates
    if table["meta_objective"].get("normalize") == "baseline":
        table["meta_objective"]["baselines"] = [1.0] * len(table["tasks"])
    table["job"].update(generations=generations, checkpoint_every=generations, run_dir=run_dir)
    return table


def members_at_once(job) -> int:
    """Inner runs one generation steps side by side per task (the ES mean included)."""
    opts = job.optimizer.options
    return opts.population_size + int(job.spec.meta_optimizer == "es" and job.spec.job.evaluate_mean)


def run_generations(table: dict) -> tuple[dict, tuple]:
    """Runs the job of `table`: (its compile time, generation time and env-steps/s; its tasks)."""
    from discovery.job.runner import Job

    job = Job(table, progress=False)
    job.build()
    result = job.loop(job.restore())
    timed = result.history[1:] or result.history
    seconds = sum(r["generation_time"] for r in timed) / len(timed)
    steps = job.steps_per_generation
    return {
        "estimator": job.spec.meta_optimizer,
        "tasks": [t.label for t in job.spec.tasks],
        "num_envs": job.spec.inner_config.num_envs,
        "num_updates": job.spec.inner_config.num_updates,
        "members": members_at_once(job),
        "generations": len(result.history),
        "compile_s": result.compile_seconds,
        "generation_s": seconds,
        "env_steps_per_generation": steps,
        "env_steps_per_s": steps / seconds,
    }, job.spec.tasks


def raw_figures(tasks, num_envs: int, min_seconds: float) -> dict:
    """Raw stepping of each task at `num_envs` envs: {label: {compile_s, env_steps_per_s}}, and
    the rate of stepping all tasks in turn (equal steps each) as "all"."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from inner_throughput import raw_stepping

    out = {}
    for task in tasks:
        compile_s, rate = raw_stepping(task, num_envs, min_seconds)
        out[task.label] = {"compile_s": compile_s, "env_steps_per_s": rate}
    out["all"] = len(tasks) / sum(1.0 / r["env_steps_per_s"] for r in out.values())
    return out


def bench_spec(path: str, args) -> dict:
    """The figures of one spec (an "error" entry instead if it fails)."""
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            table = shrunk_table(
                path, args.population, args.generations, args.num_updates, args.tiny, run_dir
            )
            result, tasks = run_generations(table)
        raw_envs = result["members"] * result["num_envs"]
        raw = raw_figures(tasks, raw_envs, args.min_seconds)
        result.update(raw_num_envs=raw_envs, raw_env_steps_per_s=raw.pop("all"), raw=raw)
        result["generation_over_raw"] = result["env_steps_per_s"] / result["raw_env_steps_per_s"]
    except Exception as err:  # one spec failing (e.g. out of memory) keeps the others' figures
        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {str(err)[:500]}"}
    result.update(spec=path, wall_s=time.perf_counter() - start)
    return result


def machine() -> dict:
    """The device and the package versions the figures were taken with."""
    import jax

    from discovery.versions import package_versions

    device = jax.devices()[0]
    return {
        "device": device.device_kind,
        "platform": device.platform,
        "device_count": jax.device_count(),
        "versions": package_versions(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def line(r: dict) -> str:
    if "error" in r:
        return f"{r['spec']}: FAILED after {r['wall_s']:.0f} s: {r['error']}"
    return (
        f"{r['spec']} ({r['estimator']}, {r['members']} members x {r['num_envs']} envs, "
        f"{r['num_updates']} updates): compile {r['compile_s']:.1f} s, generation "
        f"{r['generation_s']:.3g} s = {r['env_steps_per_s']:,.0f} env-steps/s; raw "
        f"{r['raw_env_steps_per_s']:,.0f} env-steps/s at {r['raw_num_envs']} envs; "
        f"generation / raw {r['generation_over_raw']:.2f}; {r['wall_s']:.0f} s in all"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=list(SPECS))
    parser.add_argument(
        "--population",
        type=int,
        default=8,
        help="ES members (mean excluded), or PES persistent runs (2 x num_pairs)",
    )
    parser.add_argument("--generations", type=int, default=3, help="per spec (the first is not timed)")
    parser.add_argument(
        "--num-updates", type=int, default=48, help="lifetime of whole-lifetime ES specs (0: the spec's)"
    )
    parser.add_argument("--min-seconds", type=float, default=2.0, help="raw stepping timing window")
    parser.add_argument(
        "--budget-s", type=float, default=330.0, help="start no further spec after this many seconds"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, for a CPU (see above)")
    parser.add_argument("--out", default="gpu_benchmark.json")
    args = parser.parse_args(argv)
    if args.tiny:
        args.population, args.generations, args.min_seconds = 2, 2, 0.1
    start = time.perf_counter()
    report = {
        **machine(),
        "tiny": args.tiny,
        "population": args.population,
        "generations": args.generations,
        "specs": [],
    }
    print(
        f"device: {report['device']} x {report['device_count']}; jax {report['versions']['jax']}", flush=True
    )
    for path in args.specs:
        if time.perf_counter() - start > args.budget_s:
            report["specs"].append({"spec": path, "error": "skipped: --budget-s spent", "wall_s": 0.0})
        else:
            print(f"{path}: running (at {time.perf_counter() - start:.0f} s) ...", flush=True)
            report["specs"].append(bench_spec(path, args))
        Path(args.out).write_text(json.dumps(report, indent=1))
        print(line(report["specs"][-1]), flush=True)
    print(f"total {time.perf_counter() - start:.0f} s; results in {args.out}", flush=True)


if __name__ == "__main__":
    xla_flags.apply_defaults()  # before jax starts its backend: the CPU work-around
    main()
