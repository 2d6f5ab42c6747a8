"""Truncated estimators: time and compiled memory per outer step vs K, env-steps/s per estimator.

    python benchmarks/truncated.py [--ks 1 4 16] [--repeats 3]

Inner problem: the quickstart's PPO on inverted_pendulum (hyperparams rule, 4 runs / 2 pairs).
Memory is XLA's temp buffer size of the compiled outer step (`memory_analysis()`), which for
metagrad shows the effect of remat; time is the median wall time of a jitted outer step.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from discovery.meta_opt import make_meta_optimizer
from discovery.problem import Problem
from inner_algos.envs import Task
from inner_algos.ppo import PPOConfig
from inner_algos.rules import make_rule
from meta_objectives import MetaObjective

CONFIG = PPOConfig(num_envs=32, rollout_length=16, num_updates=30, num_epochs=4, num_minibatches=4,
                   learning_rate=3e-3, actor_hidden=(32, 32), critic_hidden=(32, 32), eval_envs=4)
TASK = Task(env_name="inverted_pendulum", episode_length=200)
ESTIMATORS = {
    "pes": {"num_pairs": 2},
    "truncated_es": {"num_pairs": 2},
    "metagrad": {"num_runs": 4, "remat": True},
    "metagrad_noremat": {"num_runs": 4, "remat": False},
}


def measure(name: str, options: dict, k: int, repeats: int) -> dict:
    problem = Problem(make_rule("hyperparams"), (TASK,), CONFIG, MetaObjective(kind="curve_area"))
    opt = make_meta_optimizer(name.replace("_noremat", ""), {**options, "unroll_length": k}, problem)
    state = jax.jit(opt.init)(jax.random.PRNGKey(0))
    compiled = jax.jit(opt.step).lower(state).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    runs = opt.options.population_size
    seconds = float(np.median(times))
    env_steps = runs * k * problem.algos[0].env_steps_per_update
    return {"estimator": name, "K": k, "step_s": seconds, "temp_MiB": temp / 2**20,
            "env_steps_per_s": env_steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind}")
    print("| estimator | K | s / outer step | temp memory MiB | env steps / s |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.estimators:
        for k in args.ks:
            r = measure(name, ESTIMATORS[name], k, args.repeats)
            print(f"| {name} | {k} | {r['step_s']:.3f} | {r['temp_MiB']:.1f} | {r['env_steps_per_s']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
