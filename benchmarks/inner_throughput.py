"""Inner-loop throughput: raw brax stepping vs PPO training, same env and number of envs.

For each (env, num_envs) it runs, in a fresh subprocess (so peak memory is per configuration):
  raw   random actions through the same wrapped env (episode bookkeeping, auto-reset), vmap x scan
  ppo   `make_ppo(...).step` under lax.scan: rollout + GAE + 4 epochs x 8 minibatches
and prints env-steps/s of each, their ratio, compile times and peak RSS.

    python benchmarks/inner_throughput.py                      # the README table
    python benchmarks/inner_throughput.py --envs hopper --num-envs 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

ROLLOUT = 16


def measure(env_name: str, num_envs: int, backend: str, min_seconds: float) -> dict:
    """Runs inside the subprocess: returns the figures for one configuration."""
    import resource

    import jax

    from inner_algos.envs import Task, make_env
    from inner_algos.ppo import PPOConfig, make_ppo
    from inner_algos.rules import make_rule

    task = Task(env_name=env_name, backend=backend, episode_length=1000)
    env = make_env(task)

    def timed(fn, *args):
        """(compile seconds, steady-state seconds per call, number of calls)."""
        t0 = time.perf_counter()
        compiled = jax.jit(fn).lower(*args).compile()
        compile_s = time.perf_counter() - t0
        jax.block_until_ready(compiled(*args))  # warm-up
        calls, t0 = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - t0 < min_seconds:
            jax.block_until_ready(compiled(*args))
            calls += 1
        return compile_s, (time.perf_counter() - t0) / calls

    updates = 8

    def raw(key):
        state = jax.vmap(env.reset)(jax.random.split(key, num_envs))

        def body(state, k):
            action = jax.random.uniform(k, (num_envs, env.action_size), minval=-1, maxval=1)
            state = jax.vmap(env.step)(state, action)
            # depend on the observations: inverted_pendulum's reward is a constant 1, and XLA
            # would otherwise delete the physics
            return state, state.reward.sum() + state.obs.sum()

        _, rewards = jax.lax.scan(body, state, jax.random.split(key, updates * ROLLOUT))
        return rewards.sum()

    raw_compile, raw_s = timed(raw, jax.random.PRNGKey(0))
    raw_sps = num_envs * ROLLOUT * updates / raw_s

    config = PPOConfig(num_envs=num_envs, rollout_length=ROLLOUT, num_updates=updates,
                       num_epochs=4, num_minibatches=8)
    algo = make_ppo(config, task, make_rule("ppo_clip"))
    state = jax.jit(algo.init)({}, jax.random.PRNGKey(0))

    def ppo(state):
        return jax.lax.scan(lambda s, _: algo.step({}, s), state, None, length=updates)[1][
            "policy_loss"
        ].sum()

    ppo_compile, ppo_s = timed(ppo, state)
    ppo_sps = algo.env_steps_per_update * updates / ppo_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "env": env_name, "backend": backend, "num_envs": num_envs,
        "raw_steps_per_s": raw_sps, "ppo_steps_per_s": ppo_sps, "ratio": ppo_sps / raw_sps,
        "raw_compile_s": raw_compile, "ppo_compile_s": ppo_compile, "peak_rss_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", default="inverted_pendulum,hopper")
    parser.add_argument("--num-envs", default="64,512,2048")
    parser.add_argument("--backend", default="spring")
    parser.add_argument("--min-seconds", type=float, default=3.0,
                        help="steady-state timing window per measurement")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        env_name, num_envs = args.child.split(":")
        print(json.dumps(measure(env_name, int(num_envs), args.backend, args.min_seconds)))
        return
    header = (f"{'env':<18} {'envs':>5} {'raw steps/s':>12} {'PPO steps/s':>12} {'PPO/raw':>8} "
              f"{'compile raw':>11} {'compile PPO':>11} {'peak RSS':>9}")
    print(header)
    print("-" * len(header))
    for env_name in args.envs.split(","):
        for num_envs in args.num_envs.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", f"{env_name}:{num_envs}",
                 "--backend", args.backend, "--min-seconds", str(args.min_seconds)],
                capture_output=True, text=True, check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['env']:<18} {r['num_envs']:>5} {r['raw_steps_per_s']:>12,.0f} "
                  f"{r['ppo_steps_per_s']:>12,.0f} {r['ratio']:>8.0%} {r['raw_compile_s']:>10.1f}s "
                  f"{r['ppo_compile_s']:>10.1f}s {r['peak_rss_mb']:>7.0f}MB", flush=True)


if __name__ == "__main__":
    main()
