"""Discovery throughput: one ES generation on the quickstart task, by population and device layout.

For each (population, processes, host devices per process) it runs, in fresh subprocesses (own
XLA device count, own peak memory; several processes join one job through jax.distributed as
`discover run --processes N` does), the quickstart job (`runs/quickstart.toml`) for a few
generations into a temporary directory and reports: compile time of the generation step, mean
wall time of a generation (the first excluded), env-steps/s, and peak RSS (`ru_maxrss`, of
process 0).

    python benchmarks/generation.py                               # the table of docs/performance.md
    python benchmarks/generation.py --populations 8 --devices 2 --generations 4
    python benchmarks/generation.py --populations 8 --processes 1 2 --devices 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from argparse import Namespace

from discovery import xla_flags

SPEC = "runs/quickstart.toml"


def measure(population: int, generations: int, run_dir: str) -> dict:
    """Runs inside the subprocess(es): the figures for one configuration."""
    import resource

    from discovery.job import distributed

    flags = Namespace(coordinator=None, num_processes=None, process_id=None)
    distributed.initialize(distributed.settings(flags))  # from the environment, if several
    import jax

    from discovery.job.runner import run_job
    from discovery.spec import apply_overrides, load_toml

    table = apply_overrides(
        load_toml(SPEC),
        [
            f"meta_optimizer.population_size={population}",
            f"job.generations={generations}",
            f"job.checkpoint_every={generations}",
            f"job.run_dir={run_dir!r}".replace("'", '"'),
        ],
    )
    result = run_job(table, progress=False)
    timed = result.history[1:]
    seconds = sum(r["generation_time"] for r in timed) / len(timed)
    steps = result.history[0]["env_steps"]
    return {
        "population": population,
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "compile_s": result.compile_seconds,
        "generation_s": seconds,
        "env_steps_per_generation": steps,
        "env_steps_per_s": steps / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2], help="XLA host devices per process")
    parser.add_argument("--processes", type=int, nargs="+", default=[1])
    parser.add_argument("--generations", type=int, default=3, help="per configuration (>= 2)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(int(args.child[0]), int(args.child[1]), args.child[2])
        print(json.dumps(result), flush=True)  # process 0's; the others' stdout is closed
        return
    print(
        f"{'pop':>4} {'proc':>4} {'dev':>4} {'compile s':>10} {'gen s':>7} "
        f"{'env steps/gen':>14} {'env steps/s':>12} {'peak MiB':>9}",
        flush=True,
    )
    for population in args.populations:
        for processes in args.processes:
            for devices in args.devices:
                r = run_configuration(population, processes, devices, args.generations)
                print(
                    f"{r['population']:>4} {r['processes']:>4} {r['devices']:>4} "
                    f"{r['compile_s']:>10.1f} "
                    f"{r['generation_s']:>7.2f} {r['env_steps_per_generation']:>14,} "
                    f"{r['env_steps_per_s']:>12,.0f} {r['peak_rss_mib']:>9.0f}",
                    flush=True,
                )


def run_configuration(population: int, processes: int, devices: int, generations: int) -> dict:
    """Process 0's figures for the job run by `processes` subprocesses with `devices` each."""
    from discovery.job.launch import child_environment, free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as run_dir:
        children = []
        for index in range(processes):
            flags = xla_flags.with_flag(
                os.environ.get("XLA_FLAGS", ""), "xla_force_host_platform_device_count", devices
            )
            env = {**os.environ, "XLA_FLAGS": flags}  # keeps the package's CPU work-around
            if processes > 1:
                env = child_environment(index, processes, port, env)
            children.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--child", str(population), str(generations), run_dir],
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = [child.communicate()[0] for child in children]
    if any(child.returncode for child in children):
        raise RuntimeError(f"a benchmark process failed: {[c.returncode for c in children]}")
    return json.loads(outputs[0].strip().splitlines()[-1])


if __name__ == "__main__":
    xla_flags.apply_defaults()  # before jax starts its backend: the CPU work-around
    main()
