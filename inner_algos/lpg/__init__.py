"""An agent trained by learned targets (LPG / DiscoRL family) in pure JAX, and its A2C baseline.

After Oh et al. 2020, "Discovering Reinforcement Learning Algorithms" (LPG) and Jackson et al. 2023,
GROOVE / TA-LPG: the agent outputs a policy pi(a|s) and a categorical prediction y(s); a
meta-network reads each trajectory backwards and tells it what to do: pi_hat (how much to push
log pi(a_t|s_t)) and y_hat (what y(s_t) should become).

  config.py     LPGConfig, the static settings
  networks.py   the agent (tabular or MLP) and the side critic
  types.py      LPGState, Trajectory, LPGParts, LPGAlgo (PPO's InnerAlgo signatures)
  losses.py     the agent's loss from the targets, the critic's, the policy-gradient loss
  acting.py     rollouts of whole `[T, N]` trajectories, greedy evaluation
  update.py     learn, step, train, rollout_loss, make_lpg
  meta_loss.py  the meta-objective after K updates, with GROOVE's regularisers
  analysis.py   what a rule teaches over a lifetime: pi_hat against the advantage, the return
                read from y (`discover inspect`'s picture of the family)

The rules (family "targets": "lpg" and "a2c") are `inner_algos.rules.targets`. `inner_algos.registry`
registers the agent as inner algorithm "lpg" (its config in the spec's [lpg] section) with
`example` and `size_note` from here.
"""

from inner_algos.lpg.config import LPGConfig
from inner_algos.lpg.meta_loss import MetaLossCoefs, meta_loss
from inner_algos.lpg.types import LPGAlgo, LPGState, Trajectory
from inner_algos.lpg.update import make_lpg
from inner_algos.rules.targets import A2CTargets, LearnedTargets


def example():
    """An LPG agent that compiles in seconds: the sparse grid world with 16-step episodes, 2 envs x
    4 steps, 2 updates, a small meta-network."""
    from inner_algos.envs import Task

    config = LPGConfig(num_envs=2, rollout_length=4, num_updates=2, eval_envs=1)
    task = Task(source="gridworld", env_name="sparse", episode_length=16)
    return config, task, LearnedTargets(embed_width=4, hidden=4)


def size_note(config: LPGConfig) -> str:
    """What sets one LPG run's size, for the memory check's message."""
    return (
        f"lpg.num_envs = {config.num_envs:,} environments x lpg.rollout_length = "
        f"{config.rollout_length} steps (whole trajectories)"
    )


__all__ = [
    "A2CTargets",
    "LPGAlgo",
    "LPGConfig",
    "LPGState",
    "LearnedTargets",
    "MetaLossCoefs",
    "Trajectory",
    "example",
    "make_lpg",
    "meta_loss",
    "size_note",
]
