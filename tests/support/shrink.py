"""Shrinking shipped specs to seconds of compute (`--set` lines), and comparing job histories
without their wall-clock fields: shared by the shipped-spec tests and the LPG job tests.

TINY: two generations (the second scores the meta-optimizer's first update), one seed, episodes
of 16 agent steps (a lifetime of 4 x 4 steps ends one); TINY_INNER: per inner algorithm, tiny
networks and batches in its own spec section.
"""

import json

TINY = [
    "job.generations=2",
    "job.seeds_per_member=1",
    "job.checkpoint_every=1",
    "tasks.episode_length=16",
]
TINY_INNER = {
    "ppo": [
        "ppo.num_envs=4",
        "ppo.rollout_length=4",
        "ppo.num_updates=4",
        "ppo.num_minibatches=1",
        "ppo.num_epochs=1",
        "ppo.actor_hidden=[8]",
        "ppo.critic_hidden=[8]",
        "ppo.eval_envs=1",
        "meta_objective.baseline_seeds=1",
    ],
    "lpg": [
        "lpg.num_envs=2",
        "lpg.rollout_length=4",
        "lpg.num_updates=4",
        "lpg.eval_envs=1",
        "rule.embed_width=4",
        "rule.hidden=4",
    ],
    "disco": [
        "disco.num_envs=2",
        "disco.rollout_length=4",
        "disco.num_updates=4",
        "disco.torso=[8]",
        "disco.model_lstm_size=4",
        "disco.model_head_hiddens=[4]",
        "disco.eval_envs=1",
    ],
}

TIMING_KEYS = ("generation_time", "wall_time", "env_steps_per_s", "devices", "device_change")


def untimed(history: list[dict]) -> list[dict]:
    """The records without wall-clock fields, through JSON (as metrics.jsonl stores them)."""
    return json.loads(json.dumps([{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]))
