"""An agent trained by learned targets (LPG / DiscoRL family) in pure JAX, and its A2C baseline.

After Oh et al. 2020, "Discovering Reinforcement Learning Algorithms" (LPG) and Jackson et al. 2023,
GROOVE / TA-LPG: the agent outputs a policy pi(a|s) and a categorical prediction y(s); a
meta-network reads each trajectory backwards and tells it what to do: pi_hat (how much to push
log pi(a_t|s_t)) and y_hat (what y(s_t) should become).

  config.py     LPGConfig, the static settings
  networks.py   the agent (tabular or MLP), the side critic, the meta-network (backward GRU with
                episode resets), TargetInputs / Targets
  rules.py      the "targets" rules: "lpg" (the meta-network) and "a2c" (the baseline)
  types.py      LPGState, Trajectory, LPGParts, LPGAlgo (PPO's InnerAlgo signatures)
  losses.py     the agent's loss from the targets, the critic's, the policy-gradient loss
  acting.py     rollouts of whole `[T, N]` trajectories, greedy evaluation
  update.py     learn, step, train, rollout_loss, make_lpg
  meta_loss.py  the meta-objective after K updates, with GROOVE's regularisers
"""

from inner_algos.lpg.config import LPGConfig
from inner_algos.lpg.meta_loss import MetaLossCoefs, meta_loss
from inner_algos.lpg.rules import TARGET_RULES, A2CTargets, LearnedTargets
from inner_algos.lpg.types import LPGAlgo, LPGState, Trajectory
from inner_algos.lpg.update import make_lpg

__all__ = [
    "TARGET_RULES",
    "A2CTargets",
    "LPGAlgo",
    "LPGConfig",
    "LPGState",
    "LearnedTargets",
    "MetaLossCoefs",
    "Trajectory",
    "make_lpg",
    "meta_loss",
]
