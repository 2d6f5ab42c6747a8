"""Run directories and exported rules fabricated in tmp dirs for the eval/inspect tests."""

import json
from pathlib import Path

import jax

from discovery.rule_io import save_rule
from inner_algos.rules import make_rule

SPEC = """
[[tasks]]
env_name = "inverted_pendulum"
backend = "spring"
episode_length = 100

[ppo]
num_envs = 16
rollout_length = 8
num_updates = 4
num_epochs = 1
num_minibatches = 2
actor_hidden = [16]
critic_hidden = [16]
eval_envs = 2

[meta_optimizer]
name = "es"
"""


def lpo_params(rule, scale: float, seed: int = 1):
    """LPO meta-params with a non-zero output layer (scale 0: exactly PPO-clip)."""
    params = rule.init(jax.random.PRNGKey(0))
    return dict(params, out=scale * jax.random.normal(jax.random.PRNGKey(seed), params["out"].shape))


def make_run_dir(root: Path) -> Path:
    """Writes `root/run`, a run directory as `discover run` lays it out: spec, metrics, rules at
    generations 2 and 4 (mean and best), empty checkpoint step dirs 2 and 4."""
    run = root / "run"
    rule = make_rule("lpo", hidden_size=8)
    for gen in (2, 4):
        for kind, scale in (("mean", 0.1 * gen), ("best", 0.2 * gen)):
            save_rule(
                run / "rules" / f"gen_{gen:06d}_{kind}",
                rule,
                lpo_params(rule, scale),
                kind=kind,
                generation=gen,
                fitness=float(gen),
                versions={"jax": jax.__version__},
            )
        (run / "checkpoints" / str(gen)).mkdir(parents=True)
    (run / "spec.toml").write_text(SPEC)
    records = [
        dict(
            generation=g,
            fitness_mean=1.0 * g,
            fitness_max=2.0 * g,
            best_so_far=2.0 * g,
            wall_time=10.0 * g,
            env_steps=512 * g,
        )
        for g in range(1, 5)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run
