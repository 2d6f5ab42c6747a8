"""Discovery throughput: one ES generation on the quickstart task, by population and device count.

For each (population, host devices) it runs, in a fresh subprocess (own XLA device count, own
peak memory), the quickstart job (`runs/quickstart.toml`) for a few generations into a temporary
directory and reports: compile time of the generation step, mean wall time of a generation (the
first excluded), env-steps/s, and peak RSS (`ru_maxrss`).

    python benchmarks/generation.py                               # the README table
    python benchmarks/generation.py --populations 8 --devices 2 --generations 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from inner_algos import xla_flags

SPEC = "runs/quickstart.toml"


def measure(population: int, generations: int) -> dict:
    """Runs inside the subprocess: the figures for one configuration."""
    import resource

    import jax

    from discovery.job import run_job
    from discovery.spec import apply_overrides, load_toml

    with tempfile.TemporaryDirectory() as run_dir:
        table = apply_overrides(load_toml(SPEC), [
            f"meta_optimizer.population_size={population}", f"job.generations={generations}",
            f"job.checkpoint_every={generations}", f"job.run_dir={run_dir!r}".replace("'", '"'),
        ])
        result = run_job(table, progress=False)
    timed = result.history[1:]
    seconds = sum(r["generation_time"] for r in timed) / len(timed)
    steps = result.history[0]["env_steps"]
    return {
        "population": population,
        "devices": jax.local_device_count(),
        "compile_s": result.compile_seconds,
        "generation_s": seconds,
        "env_steps_per_generation": steps,
        "env_steps_per_s": steps / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--generations", type=int, default=3, help="per configuration (>= 2)")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    print(f"{'pop':>4} {'dev':>4} {'compile s':>10} {'gen s':>7} {'env steps/gen':>14} "
          f"{'env steps/s':>12} {'peak MiB':>9}", flush=True)
    for population in args.populations:
        for devices in args.devices:
            flags = xla_flags.with_flag(os.environ.get("XLA_FLAGS", ""),
                                        "xla_force_host_platform_device_count", devices)
            env = {**os.environ, "XLA_FLAGS": flags}  # keeps the package's CPU work-around
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(population), str(args.generations)],
                env=env, capture_output=True, text=True, check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{r['population']:>4} {r['devices']:>4} {r['compile_s']:>10.1f} "
                  f"{r['generation_s']:>7.2f} {r['env_steps_per_generation']:>14,} "
                  f"{r['env_steps_per_s']:>12,.0f} {r['peak_rss_mib']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
