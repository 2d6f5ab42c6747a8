"""Truncated estimators over devices: outer steps per second of PES (or another truncated
estimator) with its persistent runs laid over 1 or 2 host devices, or over 2 processes.

Each layout (processes x host devices per process) runs in fresh subprocesses (own XLA device
count; several processes join through jax.distributed as `discover run --processes N` does) and
times `benchmarks/truncated.py`'s measurement: the compiled outer step, state laid out as the
job lays it out (runs split over the devices, CPU host devices included), median over --repeats
calls, compile excluded.

    python benchmarks/truncated_scaling.py                         # PES, 1 and 2 host devices
    python benchmarks/truncated_scaling.py --layouts 1x1 1x2 2x1 --num-pairs 8 --k 4
    python benchmarks/truncated_scaling.py --estimator metagrad --num-pairs 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from discovery import xla_flags

HERE = Path(__file__).resolve().parent


def child(estimator: str, size: int, k: int, repeats: int) -> dict:
    """Inside the subprocess(es): the figures of one layout."""
    from argparse import Namespace

    from discovery.job import distributed

    distributed.initialize(
        distributed.settings(Namespace(coordinator=None, num_processes=None, process_id=None))
    )
    import jax

    sys.path.insert(0, str(HERE))
    from truncated import measure

    options = {"num_runs": size} if estimator == "metagrad" else {"num_pairs": size}
    r = measure(estimator, {**options, "unroll_length": k}, repeats)
    return {
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "compile_s": r["compile_s"],
        "step_s": r["step_s"],
        "steps_per_s": 1.0 / r["step_s"],
        "env_steps_per_s": r["env_steps_per_s"],
    }


def run_layout(layout: str, args) -> dict:
    """Process 0's figures for layout "PxD" (P processes with D host devices each)."""
    from discovery.job.launch import child_environment, free_port

    processes, devices = (int(x) for x in layout.split("x"))
    flags = xla_flags.with_flag(
        os.environ.get("XLA_FLAGS", ""), "xla_force_host_platform_device_count", devices
    )
    env, port = {**os.environ, "XLA_FLAGS": flags}, free_port()
    command = [
        sys.executable,
        __file__,
        "--child",
        args.estimator,
        str(args.num_pairs),
        str(args.k),
        str(args.repeats),
    ]
    children = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            env=child_environment(i, processes, port, env) if processes > 1 else env,
        )
        for i in range(processes)
    ]
    outputs = [c.communicate()[0] for c in children]
    if any(c.returncode for c in children):
        raise RuntimeError(f"layout {layout} failed: {[c.returncode for c in children]}")
    return json.loads(outputs[0].strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", default="pes", choices=["pes", "truncated_es", "metagrad"])
    parser.add_argument("--num-pairs", type=int, default=8, help="pairs (pes) or runs (metagrad)")
    parser.add_argument("--k", type=int, default=4, help="inner updates per outer step")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--layouts", nargs="+", default=["1x1", "1x2"], help="processes x host devices per process"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, size, k, repeats = args.child
        print(json.dumps(child(name, int(size), int(k), int(repeats))), flush=True)
        return
    print(
        f"{args.estimator}, {args.num_pairs} {'runs' if args.estimator == 'metagrad' else 'pairs'}, "
        f"K = {args.k}",
        flush=True,
    )
    print("| processes x devices | outer steps / s | s / outer step | env steps / s | compile s | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |", flush=True)
    first = None
    for layout in args.layouts:
        r = run_layout(layout, args)
        first = first or r["steps_per_s"]
        print(
            f"| {r['processes']} x {r['devices'] // r['processes']} | {r['steps_per_s']:.3f} | "
            f"{r['step_s']:.3f} | {r['env_steps_per_s']:,.0f} | {r['compile_s']:.0f} | "
            f"{r['steps_per_s'] / first:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    xla_flags.apply_defaults()  # before jax starts its backend: the CPU work-around
    main()
