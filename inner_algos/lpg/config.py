"""The LPG agent's static settings (an `[lpg]` section of a run spec, once registered)."""

from __future__ import annotations

import dataclasses

from inner_algos.config_checks import (
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    UNIT,
    UNIT_OPEN_CLOSED,
    OneOf,
    Widths,
    check_fields,
)
from inner_algos.networks import ACTIVATIONS

AGENTS = ("tabular", "mlp")
OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class LPGConfig:
    """Static settings of an agent trained by learned targets (or by the A2C baseline rule).

    Each update collects num_envs x rollout_length steps as whole `[T, N]` trajectories (never
    shuffled across time) and takes one gradient step of the agent and one of the side critic.

    agent: "tabular" (a logits table and a y table over the observation, for one-hot tabular
      observations: grid worlds only) or "mlp" (a shared torso of `hidden` widths, then the policy
      and y heads; gymnax tasks, observations flattened: MinAtar's 10 x 10 x C grid is 100 C inputs).
    y_size: n, the size of the agent's categorical prediction y(s) (GROOVE: 8).
    y_coef: alpha_y, the weight of KL(y_hat || y) in the agent's loss (GROOVE: 0.5).
    optimizer, learning_rate, max_grad_norm: the agent's update (GROOVE's tabular agent: SGD at 40
      after clipping the gradient's global norm to 0.5; its MLP agent: Adam at 1e-3).
    critic_learning_rate: the side critic's (same optimizer and clipping), trained on TD(lambda)
      targets at gamma and gae_lambda; it gives advantages to the A2C rule and the meta-objective,
      never to a learned rule.
    gamma: the discount the rule reads (and the critic's).
    normalize_meta_advantages: the meta-objective's policy-gradient loss reads the side critic's
      advantages standardised over its `[T, N]` batch (zero mean, unit std), so that every task
      weighs the same in the meta-gradient whatever its reward scale; false (the default) uses
      them raw, as LPG and GROOVE do. The agent's own update never reads it.
    Defaults follow GROOVE's tabular agent (Jackson et al. 2023, github.com/EmptyJackson/groove).
    """

    num_envs: int = 64
    rollout_length: int = 20
    num_updates: int = 50
    agent: str = "tabular"
    hidden: tuple[int, ...] = (32,)
    activation: str = "tanh"
    y_size: int = 8
    y_coef: float = 0.5
    optimizer: str = "sgd"
    learning_rate: float = 40.0
    critic_learning_rate: float = 4.0
    max_grad_norm: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    eval_envs: int = 8
    normalize_meta_advantages: bool = False

    def __post_init__(self):
        check_fields(
            self,
            "lpg",
            **{f: POSITIVE_INT for f in ("num_envs", "rollout_length", "num_updates", "y_size", "eval_envs")},
        )
        check_fields(
            self,
            "lpg",
            agent=OneOf(AGENTS),
            optimizer=OneOf(OPTIMIZERS),
            activation=OneOf(ACTIVATIONS),
            hidden=Widths(),
            y_coef=NON_NEGATIVE,
            learning_rate=POSITIVE,
            critic_learning_rate=POSITIVE,
            max_grad_norm=POSITIVE,
            gamma=UNIT_OPEN_CLOSED,
            gae_lambda=UNIT,
        )
        object.__setattr__(self, "hidden", tuple(self.hidden))

    @property
    def batch_size(self) -> int:
        """Transitions per update: num_envs x rollout_length."""
        return self.num_envs * self.rollout_length
