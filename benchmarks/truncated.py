"""Truncated estimators: time and compiled memory per outer step vs K, env-steps/s per estimator.

    python benchmarks/truncated.py [--ks 1 4 16] [--k 4] [--repeats 3] [--noremat]

Inner problem: the quickstart's PPO on inverted_pendulum (runs/quickstart.toml's [ppo]) with the
"hyperparams" rule; small populations (ES 4 members + its mean, PES / truncated ES 2 pairs,
metagrad 4 runs, online_metagrad 1 lifetime) so that the whole script takes a few minutes on a
2-core CPU. Table 1: metagrad with remat for K in --ks (and without remat with --noremat). Table 2:
every estimator at K = --k (whole-lifetime ES ignores K; online_metagrad does K inner updates,
each with its meta-update). Memory is XLA's temporary buffer size of the compiled outer step
(`memory_analysis()`: the scratch that grows with K), next to the peak (arguments + outputs +
temporaries); time is the median wall time of a compiled outer step, compile time excluded.
Env steps per outer step count every rollout: the meta-loss's held-out ones included.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from discovery import xla_flags
from discovery.job import distributed
from discovery.meta_opt import make_meta_optimizer, parse_options
from discovery.meta_opt.problem import Problem
from inner_algos.envs import Task
from inner_algos.ppo import PPOConfig
from inner_algos.rules import make_rule
from meta_objectives import MetaObjective

CONFIG = PPOConfig(
    num_envs=32,
    rollout_length=16,
    num_updates=30,
    num_epochs=4,
    num_minibatches=4,
    learning_rate=3e-3,
    actor_hidden=(32, 32),
    critic_hidden=(32, 32),
    eval_envs=4,
)
TASK = Task(env_name="inverted_pendulum", episode_length=200)
ESTIMATORS = {
    "es": {"population_size": 4},
    "pes": {"num_pairs": 2},
    "truncated_es": {"num_pairs": 2},
    "metagrad": {"num_runs": 4, "remat": True},
    "online_metagrad": {},
}
K_OPTION = {
    "pes": "unroll_length",
    "truncated_es": "unroll_length",
    "metagrad": "unroll_length",
    "online_metagrad": "updates_per_step",
}


def env_steps_per_outer_step(name: str, opts, problem: Problem) -> int:
    """Env steps one outer step of pes, truncated_es or metagrad takes (one task): K updates per
    run, plus one meta-loss rollout per run for metagrad. (es and online_metagrad state theirs in
    `MetaOptimizer.env_steps_per_step`.)"""
    extra = 1 if name == "metagrad" else 0
    return opts.population_size * (opts.unroll_length + extra) * problem.algos[0].env_steps_per_update


def measure(name: str, options: dict, repeats: int) -> dict:
    """Compiles one outer step of estimator `name` and times `repeats` calls of it, the persistent
    runs split over the devices as the job splits them."""
    problem = Problem(
        make_rule("hyperparams"),
        (TASK,),
        CONFIG,
        MetaObjective(kind="curve_area"),
        evaluate_mean=name == "es",
    )
    opt = make_meta_optimizer(name, parse_options(name, options), problem)
    state = jax.jit(opt.init)(jax.random.PRNGKey(0))
    replicated = NamedSharding(problem.mesh, PartitionSpec())
    sharding = replicated if opt.state_sharding is None else opt.state_sharding(state)
    state = distributed.replicate(state, sharding)  # laid out over the devices as the job does
    start = time.perf_counter()
    compiled = (
        jax.jit(opt.step, in_shardings=(sharding,), out_shardings=(sharding, replicated))
        .lower(state)
        .compile()
    )
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    seconds = float(np.median(times))
    peak = (
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )
    return {
        "compile_s": compile_s,
        "step_s": seconds,
        "temp_MiB": memory.temp_size_in_bytes / 2**20,
        "peak_MiB": peak / 2**20,
        "env_steps_per_s": (opt.env_steps_per_step or env_steps_per_outer_step(name, opt.options, problem))
        / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16], help="K for table 1")
    parser.add_argument("--k", type=int, default=4, help="K for table 2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noremat", action="store_true", help="table 1 also without remat")
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS), choices=list(ESTIMATORS))
    args = parser.parse_args()
    start = time.perf_counter()
    results = {}

    def get(name: str, options: dict) -> dict:
        key = (name, tuple(sorted(options.items())))
        if key not in results:
            results[key] = measure(name, options, args.repeats)
        return results[key]

    print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()}")
    print("\nmetagrad (4 runs) per outer step vs K")
    print("| K | remat | s / outer step | compile s | temp MiB | peak MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for remat in (True, False) if args.noremat else (True,):
        for k in args.ks:
            r = get("metagrad", {**ESTIMATORS["metagrad"], "unroll_length": k, "remat": remat})
            print(
                f"| {k} | {remat} | {r['step_s']:.3f} | {r['compile_s']:.0f} | {r['temp_MiB']:.1f} "
                f"| {r['peak_MiB']:.1f} |",
                flush=True,
            )
    print(f"\nestimators at K = {args.k}")
    print("| estimator | s / outer step | env steps / s |")
    print("| --- | --- | --- |")
    for name in args.estimators:
        options = dict(ESTIMATORS[name])
        if name in K_OPTION:
            options[K_OPTION[name]] = args.k
        r = get(name, options)
        print(f"| {name} | {r['step_s']:.3f} | {r['env_steps_per_s']:,.0f} |", flush=True)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    xla_flags.apply_defaults()  # before jax starts its backend: the CPU work-around
    main()
