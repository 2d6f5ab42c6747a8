"""Driver: the OPEN authors' PPO (src/train.py make_train) with a pretrained OPEN optimizer,
N seeds vmapped as their eval.py does.  Scratch only; see ADAPTATIONS.md.

usage: nice -n 19 python ref_run.py [--env breakout] [--seeds 8] [--seed 0] [--out results_ref.npz]
"""

import argparse
import json
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
sys.path.insert(0, SRC)
os.chdir(SRC)  # their code loads pretrained/*.npy relative to the repo root

# --- import stubs (ADAPTATIONS.md 1-3) -------------------------------------------------------
# gin: network.py only uses @gin.configurable as a decorator.
gin = types.ModuleType("gin")
gin.configurable = lambda f=None, **kw: f if f is not None else (lambda g: g)
sys.modules.setdefault("gin", gin)
# groove (GROOVE's gridworld, a git submodule not shipped): only the gridworld env uses it.
for name in ["groove", "groove.environments", "groove.environments.gridworld"]:
    sys.modules[name] = types.ModuleType(name)
conf = types.ModuleType("groove.environments.gridworld.configs")
conf.ENV_MODE_KWARGS = {}
conf.reset_env_params = None
grid = types.ModuleType("groove.environments.gridworld.gridworld")
sys.modules["groove.environments.gridworld.configs"] = conf
sys.modules["groove.environments.gridworld.gridworld"] = grid
sys.modules["groove.environments.gridworld"].configs = conf
sys.modules["groove.environments.gridworld"].gridworld = grid
# brax.envs.wrappers.gym needs the old `gym` package (not installed); train.py imports GymWrapper
# from it but never uses it.
brax_gym = types.ModuleType("brax.envs.wrappers.gym")
brax_gym.GymWrapper = None
sys.modules["brax.envs.wrappers.gym"] = brax_gym
# eval.py calls wandb.Api() at import (needs a login); train.py imports only make_plot from it,
# used only in its __main__ meta-training loop.
fake_eval = types.ModuleType("eval")
fake_eval.make_plot = None
sys.modules["eval"] = fake_eval

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import train as ref_train  # noqa: E402
from configs import all_configs  # noqa: E402
from network import GRU_Opt  # noqa: E402
from utils import GymnaxLogWrapper, ParameterReshaper  # noqa: E402


# --- measurement-only: also report `done` per step (ADAPTATIONS.md 5) ---------------------------
class LogWrapperWithDone(GymnaxLogWrapper):
    def step(self, key, state, action, params=None):
        obs, state, reward, done, info = super().step(key, state, action, params)
        info["done"] = done
        return obs, state, reward, done, info


ref_train.GymnaxLogWrapper = LogWrapperWithDone


# --- CPU hang workaround (ADAPTATIONS.md 6) ----------------------------------------------------
# Under vmap, flax's orthogonal initializer becomes one batched LAPACK QR; with jaxlib 0.10.2 on a
# 2-thread CPU pool that call can block forever at 0% CPU (the first run here hung 45 min with
# 58 s of CPU time). Drawing the matrices one at a time (sequential_vmap) gives the same numbers.
def _sequential_orthogonal(scale):
    base = _flax_orthogonal(scale)

    def init(key, shape, dtype=jnp.float32):
        return jax.custom_batching.sequential_vmap(lambda k: base(k, shape, dtype))(key)

    return init


# Opt-in (OPENREF_SEQ_ORTHO=1): the results here were produced without it, with
# XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false instead (the project's cure).
_flax_orthogonal = ref_train.orthogonal
if os.environ.get("OPENREF_SEQ_ORTHO") == "1":
    ref_train.orthogonal = _sequential_orthogonal


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="breakout")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "results_ref.npz"))
    args = ap.parse_args()

    config = dict(all_configs[args.env])
    config["larger"] = False
    config["VISUALISE"] = True  # as eval.py (metrics = the full traj_batch.info)

    # eval.py lines ~176-187: reshape the flat vector with a placeholder GRU_Opt(16, 8)
    flat = jnp.array(jnp.load(f"pretrained/{args.env}_OPEN.npy", allow_pickle=True))
    pholder = GRU_Opt(hidden_size=16, gru_features=8).init(jax.random.PRNGKey(0))
    params = ParameterReshaper(pholder).reshape_single(flat)
    print("meta-params:", jax.tree.map(jnp.shape, params))

    rngs = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    fn = jax.jit(jax.vmap(ref_train.make_train(config), in_axes=(None, 0)))
    print("NUM_UPDATES", config["NUM_UPDATES"], "TOTAL_UPDATES", config["TOTAL_UPDATES"])

    t0 = time.time()
    compiled = fn.lower(params, rngs).compile()
    t_compile = time.time() - t0
    t0 = time.time()
    out, metrics = compiled(params, rngs)
    metrics = jax.device_get(metrics)
    t_run = time.time() - t0
    print(f"compile {t_compile:.1f}s run {t_run:.1f}s")

    ret = np.asarray(metrics["returned_episode_returns"], np.float64)  # [S, U, T, N]
    done = np.asarray(metrics["done"], np.float64)
    held = ret.mean(-1).mean(-1).reshape(args.seeds, -1)  # eval.py's `returns`
    ndone = done.sum((-1, -2))
    completed = np.where(ndone > 0, (ret * done).sum((-1, -2)) / np.maximum(ndone, 1), np.nan)
    # train.py's non-VISUALISE metric (the ES fitness at the last update): last step, mean over envs
    last_step = ret[:, :, -1, :].mean(-1)
    np.savez(
        args.out,
        held=held,
        completed=completed,
        num_episodes=ndone,
        last_step=last_step,
        dormancy=np.asarray(metrics["dormancy"]),
    )
    json.dump(
        {"compile_s": t_compile, "run_s": t_run, "seeds": args.seeds, "seed": args.seed,
         "num_updates": int(config["NUM_UPDATES"]), "env": args.env},
        open(args.out.replace(".npz", ".json"), "w"),
    )
    for s in range(args.seeds):
        print(f"seed {s}: held final {held[s, -1]:.3f} last5 {held[s, -5:].mean():.3f} | "
              f"completed final {completed[s, -1]:.3f} last5 {np.nanmean(completed[s, -5:]):.3f}")


if __name__ == "__main__":
    main()
