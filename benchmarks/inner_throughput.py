"""Inner-loop throughput: raw env stepping vs PPO training, one run and a vmapped population.

For each (task, num_envs, host devices) it runs, in a fresh subprocess (so the host device count
and peak memory are per configuration):
  raw   random actions through the same wrapped env (episode bookkeeping, auto-reset), vmap x scan
  ppo   `make_ppo(...).step` under lax.scan: rollout + GAE + 4 epochs x 8 minibatches (one run)
  pop   a population of `--population` LPO members (each its own meta-params and seed), vmapped
        and sharded over the host devices as a discovery job does (`shard_map` over members)
and prints env-steps/s of each (pop: all members together), PPO/raw, compile times and peak RSS.
raw and ppo are single computations (one device); devices matter for pop only.

    python benchmarks/inner_throughput.py                      # the tables of docs/performance.md
    python benchmarks/inner_throughput.py --envs gymnax:CartPole-v1 --num-envs 64 --devices 1,2
    python benchmarks/inner_throughput.py --envs hopper --num-envs 512 --population 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from discovery import xla_flags

ROLLOUT = 16
UPDATES = 8


def timed(fn, *args, min_seconds: float):
    """(compile seconds, steady-state seconds per call) of jit(fn)(*args)."""
    import jax

    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))  # warm-up
    calls, t0 = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - t0 < min_seconds:
        jax.block_until_ready(compiled(*args))
        calls += 1
    return compile_s, (time.perf_counter() - t0) / calls


def raw_stepping(task, num_envs: int, min_seconds: float) -> tuple[float, float]:
    """(compile s, env-steps/s) of random actions through `make_env(task)`, vmap x scan."""
    import jax

    from inner_algos.envs import make_env, random_actions

    env = make_env(task)

    def raw(key):
        state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), {})

        def body(state, k):
            state = jax.vmap(env.step, in_axes=(0, 0, None))(state, random_actions(env, k, num_envs), {})
            # depend on the observations: inverted_pendulum's reward is a constant 1, and XLA
            # would otherwise delete the physics
            return state, state.reward.sum() + state.obs.sum()

        _, rewards = jax.lax.scan(body, state, jax.random.split(key, UPDATES * ROLLOUT))
        return rewards.sum()

    compile_s, seconds = timed(raw, jax.random.PRNGKey(0), min_seconds=min_seconds)
    return compile_s, num_envs * ROLLOUT * UPDATES / seconds


def ppo_training(task, num_envs: int, population: int, min_seconds: float) -> tuple[float, float]:
    """(compile s, env-steps/s in total) of UPDATES PPO updates: one ppo_clip run when
    population == 0, else `population` LPO members (perturbed meta-params, own seeds) vmapped and
    sharded over all local devices."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec

    from inner_algos.ppo import PPOConfig, make_ppo
    from inner_algos.rules import make_rule

    config = PPOConfig(
        num_envs=num_envs, rollout_length=ROLLOUT, num_updates=UPDATES, num_epochs=4, num_minibatches=8
    )
    rule = make_rule("ppo_clip" if population == 0 else "lpo")
    algo = make_ppo(config, task, rule)

    def run(meta, key):
        state = algo.init(meta, key)
        return jax.lax.scan(lambda s, _: algo.step(meta, s), state, None, length=UPDATES)[1][
            "policy_loss"
        ].sum()

    if population == 0:
        compile_s, seconds = timed(run, {}, jax.random.PRNGKey(0), min_seconds=min_seconds)
        return compile_s, algo.env_steps_per_update * UPDATES / seconds
    keys = jax.random.split(jax.random.PRNGKey(0), population)
    metas = jax.vmap(
        lambda k: jax.tree.map(
            lambda x: x + 0.01 * jax.random.normal(k, x.shape), rule.init(jax.random.PRNGKey(1))
        )
    )(keys)
    mesh = Mesh(np.asarray(jax.local_devices()), ("pop",))
    sharded = jax.shard_map(
        jax.vmap(run),
        mesh=mesh,
        in_specs=PartitionSpec("pop"),
        out_specs=PartitionSpec("pop"),
        check_vma=False,
    )
    compile_s, seconds = timed(sharded, metas, keys, min_seconds=min_seconds)
    return compile_s, population * algo.env_steps_per_update * UPDATES / seconds


def measure(label: str, num_envs: int, population: int, min_seconds: float) -> dict:
    """Runs inside the subprocess: the figures of one configuration."""
    import resource

    import jax

    from inner_algos.envs import Task, parse_label

    table = parse_label(label)
    task = Task(**table, episode_length=1000 if table["source"] == "brax" else None)
    raw_compile, raw_sps = raw_stepping(task, num_envs, min_seconds)
    ppo_compile, ppo_sps = ppo_training(task, num_envs, 0, min_seconds)
    pop_compile, pop_sps = ppo_training(task, num_envs, population, min_seconds) if population else (0, 0)
    return {
        "env": task.label,
        "num_envs": num_envs,
        "devices": jax.local_device_count(),
        "raw_steps_per_s": raw_sps,
        "ppo_steps_per_s": ppo_sps,
        "ratio": ppo_sps / raw_sps,
        "pop_steps_per_s": pop_sps,
        "raw_compile_s": raw_compile,
        "ppo_compile_s": ppo_compile,
        "pop_compile_s": pop_compile,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--envs",
        default="inverted_pendulum,hopper,gymnax:CartPole-v1,gymnax:Breakout-MinAtar",
        help="task labels, [source:]env[/backend], comma-separated",
    )
    parser.add_argument("--num-envs", default="64,512", help="environments per run, comma-separated")
    parser.add_argument("--devices", default="1,2", help="host device counts, comma-separated")
    parser.add_argument("--population", type=int, default=16, help="members of the pop run (0: skip)")
    parser.add_argument(
        "--min-seconds", type=float, default=3.0, help="steady-state timing window per measurement"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        label, num_envs = args.child.rsplit("@", 1)
        print(json.dumps(measure(label, int(num_envs), args.population, args.min_seconds)))
        return
    header = (
        f"{'env':<24} {'envs':>5} {'dev':>3} {'raw steps/s':>12} {'PPO steps/s':>12} {'PPO/raw':>8} "
        f"{'pop x' + str(args.population) + ' steps/s':>18} {'compile raw/PPO/pop':>20} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    for label in args.envs.split(","):
        for num_envs in args.num_envs.split(","):
            for devices in args.devices.split(","):
                env = {
                    **os.environ,
                    "XLA_FLAGS": (
                        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}"
                    ).strip(),
                }
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        f"{label}@{num_envs}",
                        "--population",
                        str(args.population),
                        "--min-seconds",
                        str(args.min_seconds),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                    timeout=3600,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                compiles = f"{r['raw_compile_s']:.0f}/{r['ppo_compile_s']:.0f}/{r['pop_compile_s']:.0f}s"
                print(
                    f"{r['env']:<24} {r['num_envs']:>5} {r['devices']:>3} {r['raw_steps_per_s']:>12,.0f} "
                    f"{r['ppo_steps_per_s']:>12,.0f} {r['ratio']:>8.0%} {r['pop_steps_per_s']:>18,.0f} "
                    f"{compiles:>20} {r['peak_rss_mb']:>7.0f}MB",
                    flush=True,
                )


if __name__ == "__main__":
    xla_flags.apply_defaults()  # before jax starts its backend: the CPU work-around
    main()
