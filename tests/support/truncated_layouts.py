"""Child of tests/discovery/meta_opt/test_sharded_truncated.py: each truncated estimator for a
few outer steps of a tiny PPO problem, compiled as the job compiles its step (the persistent runs
split over the global mesh, the rest replicated), under whatever device layout this process was started with
(host devices, processes).

    python tests/support/truncated_layouts.py OUT.json

Writes (process 0) {estimator: {"fitness": [[N] per step], "grad": [[D] per step],
"theta": [[D] per step]}} where grad is the meta-gradient of each step, read back from Adam's
first moment (mu_t = 0.9 mu_{t-1} + 0.1 g_t), and "devices": the global device count.
"""

import json
import sys
from argparse import Namespace

STEPS = 3
RULE = {
    "name": "hyperparams",
    "learn": ("gamma", "gae_lambda", "learning_rate"),
    "learning_rate": 0.01,
}  # meta-params that move every estimator's numbers
ESTIMATORS = {  # name -> options; 3 metagrad runs on 2 devices exercise the padding
    "pes": {"num_pairs": 3, "unroll_length": 2, "sigma": 0.3, "learning_rate": 0.05},
    "truncated_es": {"num_pairs": 3, "unroll_length": 2, "sigma": 0.3, "learning_rate": 0.05},
    "metagrad": {"num_runs": 3, "unroll_length": 2, "learning_rate": 0.05},
    "online_metagrad": {"updates_per_step": 2, "learning_rate": 0.05},
}


def local(x):
    """Process-local numpy copy of a replicated global array."""
    import numpy as np

    return np.asarray(x.addressable_data(0))


def run(name: str) -> dict:
    """STEPS outer steps of estimator `name`: fitness, meta-gradient and theta per step."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    from discovery.job import distributed
    from discovery.meta_opt import make_meta_optimizer, parse_options
    from discovery.meta_opt.problem import Problem
    from inner_algos.envs import Task
    from inner_algos.rules import make_rule
    from meta_objectives import MetaObjective
    from tests.support.builders import tiny_ppo_config

    ppo = tiny_ppo_config(
        8, num_envs=4, rollout_length=4, num_updates=4, num_epochs=2, learning_rate=0.01, eval_envs=1
    )
    rule = make_rule(**RULE)
    problem = Problem(
        rule,
        (Task(episode_length=16),),
        ppo,
        MetaObjective(kind="curve_area"),
        evaluate_mean=False,
    )
    opt = make_meta_optimizer(name, parse_options(name, ESTIMATORS[name]), problem)
    replicated = NamedSharding(problem.mesh, PartitionSpec())
    state = jax.jit(opt.init)(jax.random.PRNGKey(0))
    sharding = opt.state_sharding(state)  # the runs split over the devices, as the job does
    state = distributed.replicate(state, sharding)
    step = jax.jit(opt.step, in_shardings=(sharding,), out_shardings=(sharding, replicated))
    out = {"fitness": [], "grad": [], "theta": []}
    previous = 0.0
    for _ in range(STEPS):
        state, metrics = step(state)
        mu = local(state.opt_state[0].mu)
        out["grad"].append(((mu - 0.9 * previous) / 0.1).tolist())
        previous = mu
        out["fitness"].append(local(metrics["fitness"]).tolist())
        out["theta"].append(local(state.theta).tolist())
    return out


def main(path: str) -> None:
    from discovery.job import distributed

    distributed.initialize(
        distributed.settings(Namespace(coordinator=None, num_processes=None, process_id=None))
    )
    import jax

    results = {name: run(name) for name in ESTIMATORS}
    if jax.process_index() == 0:
        with open(path, "w") as f:
            json.dump({**results, "devices": jax.device_count()}, f)


if __name__ == "__main__":
    from discovery import xla_flags

    xla_flags.apply_defaults()
    main(sys.argv[1])
