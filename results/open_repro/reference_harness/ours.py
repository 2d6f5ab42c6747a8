"""Driver: OUR PPO (/work/main, import only) with a zoo rule, N seeds vmapped, the same metrics as
ref_run.py.  usage: PYTHONPATH=/work/main nice -n 19 python ours.py [--rule zoo:open/breakout]
[--seeds 8] [--seed 0] [--num-updates 61] [--out results_ours.npz]

Metrics (per seed, per update):
  completed  our `episode_return` metric: mean return of the episodes that ended in the update's
             rollout (NaN when none did) -- inner_algos.rl.episode_metrics
  held       eval.py's reading of the reference: mean over the rollout's 128 steps x 64 envs of
             the return of each env's most recently completed episode (0 before its first),
             rebuilt here from per-step records (see `held_metric`)
To get per-step records, `inner_algos.ppo.update.episode_metrics` is wrapped (in this process
only) so the update's metrics also carry the rollout's [T, N] episode_return and episode_done;
training itself is untouched.
"""

import argparse
import dataclasses
import json
import os
import time

import jax
import numpy as np

import inner_algos.ppo.update as ppo_update
from discovery.spec import parse_ppo, parse_task
from discovery.zoo import get_published
from inner_algos.registry import make_inner_algo

HERE = os.path.dirname(os.path.abspath(__file__))

_orig_episode_metrics = ppo_update.episode_metrics


def _episode_metrics_with_steps(traj):
    m = dict(_orig_episode_metrics(traj))
    m["step_episode_return"] = traj.episode_return  # [T, N], the return where an episode ended
    m["step_episode_done"] = traj.episode_done  # [T, N]
    return m


ppo_update.episode_metrics = _episode_metrics_with_steps


def held_metric(step_ret, step_done):
    """[S, U, T, N] -> [S, U]: the reference's returned_episode_returns averaged over T and N
    (held value = return of the last episode completed at or before the step, 0 before any)."""
    S, U, T, N = step_ret.shape
    r = step_ret.reshape(S, U * T, N)
    d = step_done.reshape(S, U * T, N) > 0.5
    idx = np.where(d, np.arange(U * T)[None, :, None], -1)
    last = np.maximum.accumulate(idx, axis=1)
    held = np.where(last >= 0, np.take_along_axis(r, np.maximum(last, 0), axis=1), 0.0)
    return held.reshape(S, U, T, N).mean(-1).mean(-1), held.reshape(S, U, T, N)[:, :, -1, :].mean(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rule", default="zoo:open/breakout")
    ap.add_argument("--spec-from", default=None, help="zoo entry whose .spec to use (default: --rule)")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-updates", type=int, default=61)
    ap.add_argument("--out", default=os.path.join(HERE, "results_ours.npz"))
    args = ap.parse_args()

    entry = get_published(args.rule)
    rule, meta_params = entry.load()
    spec = get_published(args.spec_from or args.rule).spec
    config = parse_ppo({**spec["ppo"], "num_updates": args.num_updates})
    task = parse_task(spec["tasks"][0])
    print("rule", rule)
    print("config", config)
    print("task", task)
    algo = make_inner_algo("ppo", config, task, rule)

    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    fn = jax.jit(jax.vmap(algo.train, in_axes=(None, 0)))
    t0 = time.time()
    compiled = fn.lower(meta_params, keys).compile()
    t_compile = time.time() - t0
    t0 = time.time()
    _, metrics = compiled(meta_params, keys)
    metrics = jax.device_get(metrics)
    t_run = time.time() - t0
    print(f"compile {t_compile:.1f}s run {t_run:.1f}s")

    completed = np.asarray(metrics["episode_return"], np.float64)  # [S, U]
    step_ret = np.asarray(metrics["step_episode_return"], np.float64)
    step_done = np.asarray(metrics["step_episode_done"], np.float64)
    held, last_step = held_metric(step_ret, step_done)
    np.savez(
        args.out,
        held=held,
        completed=completed,
        num_episodes=np.asarray(metrics["num_episodes"]),
        last_step=last_step,
        entropy=np.asarray(metrics["entropy"]),
        grad_norm=np.asarray(metrics["grad_norm"]),
    )
    json.dump(
        {"compile_s": t_compile, "run_s": t_run, "seeds": args.seeds, "seed": args.seed,
         "num_updates": config.num_updates, "rule": args.rule, "config": dataclasses.asdict(config),
         "task": dataclasses.asdict(task)},
        open(args.out.replace(".npz", ".json"), "w"),
        default=str,
    )
    for s in range(args.seeds):
        print(f"seed {s}: held final {held[s, -1]:.3f} last5 {held[s, -5:].mean():.3f} | "
              f"completed final {completed[s, -1]:.3f} last5 {np.nanmean(completed[s, -5:]):.3f}")


if __name__ == "__main__":
    main()
