"""The shipped zoo entries: OPEN's seven optimizers, DiscoRL's Disco103, DPO and PPO-clip."""

from __future__ import annotations

import numpy as np

from discovery.zoo.disco import ABOUT as DISCO_ABOUT
from discovery.zoo.disco import disco103_params
from discovery.zoo.registry import Published, data_path, register_published
from inner_algos.rules import Rule, make_rule
from inner_algos.rules.open_optimizer import Open

OPEN_SOURCE = "github.com/AlexGoldie/rl-learned-optimization, commit b65037bd, rl_optimizer/pretrained/"
OPEN_PAPER = (
    "Goldie, Lu, Jackson, Whiteson, Foerster. Can Learned Optimization Make Reinforcement Learning "
    "Less Difficult? NeurIPS 2024, arXiv 2407.07082"
)
# name: (file, meta-training tasks, the larger network)
OPEN_OPTIMIZERS = {
    "breakout": ("breakout_OPEN.npy", "Breakout-MinAtar", False),
    "asterix": ("asterix_OPEN.npy", "Asterix-MinAtar", False),
    "freeway": ("freeway_OPEN.npy", "Freeway-MinAtar", False),
    "spaceinvaders": ("spaceinvaders_OPEN.npy", "SpaceInvaders-MinAtar", False),
    "ant": ("ant_OPEN.npy", "Brax Ant", False),
    "gridworld": ("gridworld_OPEN.npy", "GROOVE's grid worlds", False),
    "multi": ("multi_OPEN.npy", "the four MinAtar games together", True),
}


# OPEN's inner PPO for MinAtar, from its configs.py (lines 43-61 for Breakout; the same values for
# Asterix, Freeway, SpaceInvaders) and train.py; sources of every value in runs/open_breakout_minatar.toml.
# learning_rate / anneal_lr are the Adam baseline's (learn-rl-algorithms 5c52f686,
# algorithms/utils/configs.py lines 24, 49, 76, 101): rule 'open' owns its update and ignores them.
OPEN_MINATAR_PPO = dict(
    num_envs=64,
    rollout_length=128,
    num_updates=1220,  # 1e7 env steps
    num_epochs=4,
    num_minibatches=8,
    anneal_lr=True,
    gamma=0.99,
    gae_lambda=0.95,
    clip_eps=0.2,
    value_clip=True,
    vf_coef=0.5,
    ent_coef=0.01,
    max_grad_norm=0.5,
    actor_hidden=[64, 64],
    critic_hidden=[64, 64],
    activation="relu",
    normalize_obs=False,
    normalize_rewards=False,
)
ADAM_LEARNING_RATE = {"Breakout": 1e-2, "Asterix": 3e-3, "Freeway": 1e-3, "SpaceInvaders": 7e-3}


def _minatar_spec(games: list[str]) -> dict:
    ppo = dict(OPEN_MINATAR_PPO)
    if len(games) == 1:
        ppo["learning_rate"] = ADAM_LEARNING_RATE[games[0]]
    tasks = [{"source": "gymnax", "env_name": f"{g}-MinAtar", "episode_length": 1000} for g in games]
    return {"ppo": ppo, "tasks": tasks}


MINATAR_GAMES = {"breakout": ["Breakout"], "asterix": ["Asterix"], "freeway": ["Freeway"]}
MINATAR_GAMES.update(spaceinvaders=["SpaceInvaders"], multi=list(ADAM_LEARNING_RATE))


def _from_flat(rule: Rule, relative: str) -> dict:
    assert isinstance(rule, Open)
    return rule.from_flat(np.load(data_path(relative)))


def _open_entry(name: str, file: str, tasks: str, larger: bool) -> Published:
    sizes = {"hidden_size": 32, "gru_size": 16} if larger else {}
    relative = f"open/{file}"
    network = (
        "GRU of 16 units, MLP of 32 (the authors' larger network)" if larger else "GRU of 8 units, MLP of 16"
    )
    return Published(
        name=f"open/{name}",
        rule=lambda: make_rule("open", **sizes),
        meta_params=lambda rule: _from_flat(rule, relative),
        about=(
            f"OPEN's learned optimizer meta-trained by the authors on {tasks} ({network}); rule 'open'. "
            f"Source: {OPEN_SOURCE}{file}, copied unchanged. Paper: {OPEN_PAPER}. Licence: Apache-2.0 "
            "(discovery/zoo/data/open/LICENSE). Checked: the update equals the authors' code to 1e-6 "
            "(tests/inner_algos/test_open_optimizer.py)."
        ),
        data=relative,
        spec=_minatar_spec(MINATAR_GAMES[name]) if name in MINATAR_GAMES else {},
    )


for _name, (_file, _tasks, _larger) in OPEN_OPTIMIZERS.items():
    register_published(_open_entry(_name, _file, _tasks, _larger))

register_published(
    Published(
        name="open/adam",
        rule=lambda: make_rule("adam", b1=0.9, b2=0.99, eps=1e-5),
        meta_params=lambda rule: {},
        about=(
            "The Adam OPEN's authors compared with on MinAtar: b1 0.9, b2 0.99, eps 1e-5 "
            "(learn-rl-algorithms 5c52f686, algorithms/utils/configs.py B1/B2 and "
            "algorithms/evaluation/eval_lpo_symbolic.py line 187); "
            "rule 'adam'. Its tuned learning rate is the run's [ppo] learning_rate, linearly annealed (the "
            "zoo:open/<game> entries carry each game's: Breakout 1e-2, Asterix 3e-3, Freeway 1e-3, "
            "SpaceInvaders 7e-3). Use it as `--baselines zoo:open/adam`. No weights."
        ),
    )
)

register_published(
    Published(
        name="dpo",
        rule=lambda: make_rule("dpo", alpha=2.0, beta=0.6),
        meta_params=lambda rule: {},
        about=(
            "Discovered Policy Optimisation: the closed-form drift distilled from LPO, alpha 2, beta 0.6; "
            "rule 'dpo' (our implementation of the paper's eq. 5). Paper: Lu, Kuba, Letcher, Metz, de Witt, "
            "Foerster. Discovered Policy Optimisation. NeurIPS 2022, arXiv 2210.05639. No weights."
        ),
    )
)
register_published(
    Published(
        name="ppo_clip",
        rule=lambda: make_rule("ppo_clip", eps=0.2),
        meta_params=lambda rule: {},
        about=(
            "PPO's clipped objective written as a drift, clip range 0.2; rule 'ppo_clip'. Paper: Schulman, "
            "Wolski, Dhariwal, Radford, Klimov. Proximal Policy Optimization Algorithms. arXiv 1707.06347. "
            "No weights."
        ),
    )
)

# How DiscoRL's evaluation colab trains its agent with Disco103 (colabs/eval.ipynb, "Training loop"):
# 2 envs x 29 timesteps (28 transitions) per step into a replay buffer of 1024 trajectories, 64 drawn
# per update; the agent's other settings are DiscoConfig's defaults, the colab's agent.
DISCO_COLAB_LOOP = {"num_envs": 2, "rollout_length": 28, "replay_capacity": 1024, "replay_batch": 64}

register_published(
    Published(
        name="disco/disco103",
        rule=lambda: make_rule("disco"),
        meta_params=disco103_params,
        about=DISCO_ABOUT,
        data="disco/disco_103.npz",
        spec={"inner": {"name": "disco"}, "disco": DISCO_COLAB_LOOP},
    )
)
