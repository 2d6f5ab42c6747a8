"""Our DiscoRL agent on Catch-8x8 with the colab's loop (2 envs x 28, replay 1024/64), one compile,
seeds run one after another; each seed's training-return curve (per update) saved as it finishes.

    XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false \
        python results/disco_catch/ours.py disco103 1000 results/disco_catch/ours 0,1,2,3,4,5,6,7
    (and `disco_ac` for the actor-critic baseline in the same agent)

Per seed it writes RULE_seed<S>.json: episode_return per update (the mean return of the episodes
that ended in that update's rollout; NaN -> null where none did), the mean of the last 100, the
deterministic policy's final return over 8 episodes (`evaluate`), compile and run seconds, and
the load average when it ended."""

import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from discovery.zoo import get_published
from inner_algos.disco import DiscoConfig, make_disco
from inner_algos.envs import Task
from inner_algos.rules import make_rule

rule_name, steps, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
seeds = [int(s) for s in sys.argv[4].split(",")]
cfg = DiscoConfig(num_envs=2, rollout_length=28, num_updates=steps, replay_capacity=1024, replay_batch=64)
task = Task(source="gymnax", env_name="Catch-8x8")
if rule_name == "disco103":
    rule, meta = get_published("disco/disco103").load()
else:
    rule = make_rule("disco_ac")
    meta = rule.init(jax.random.PRNGKey(0))
algo = make_disco(cfg, task, rule)
t0 = time.time()
train = jax.jit(algo.train).lower(meta, jax.random.PRNGKey(0)).compile()
compile_s = time.time() - t0
out.mkdir(parents=True, exist_ok=True)
for seed in seeds:
    t1 = time.time()
    state, m = train(meta, jax.random.PRNGKey(seed))
    ret = np.asarray(m["episode_return"], np.float64)
    ev, _ = jax.jit(algo.evaluate)(state, jax.random.PRNGKey(10_000 + seed))
    rec = dict(
        rule=rule_name,
        seed=seed,
        updates=steps,
        env_steps_per_update=56,
        compile_s=compile_s,
        run_s=time.time() - t1,
        episode_return=[None if not np.isfinite(r) else float(r) for r in ret],
        last100=float(np.nanmean(ret[-100:])),
        deterministic_final=float(ev),
        load=open("/proc/loadavg").read().split()[:3],
    )
    (out / f"{rule_name}_seed{seed}.json").write_text(json.dumps(rec))
    print(seed, rec["last100"], rec["deterministic_final"], round(rec["run_s"]), flush=True)
