"""PPO's static settings (the `[ppo]` section of a run spec)."""

from __future__ import annotations

import dataclasses

from inner_algos.config_checks import (
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    UNIT,
    UNIT_OPEN_CLOSED,
    Interval,
    OneOf,
    Widths,
    check_fields,
)
from inner_algos.networks import ACTIVATIONS


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Static PPO settings. Defaults suit a small CPU run; see `runs/` for tuned ones.

    num_envs x rollout_length transitions per update are split into num_minibatches and
    passed over num_epochs times. gamma, gae_lambda, ent_coef, learning_rate and clip_eps are
    the defaults a "hyperparams" rule may replace; clip_eps also sets PPO-clip's drift when the
    rule is not a drift rule, and the value-clipping range. normalize_rewards divides the learner's
    rewards (after task.reward_scale) by a running std of the discounted return at the config's
    gamma (`inner_algos.reward_norm`); logged returns stay unscaled.
    """

    num_envs: int = 64
    rollout_length: int = 16
    num_updates: int = 50
    num_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 3e-4
    anneal_lr: bool = False
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_clip: bool = False
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    actor_hidden: tuple[int, ...] = (64, 64)
    critic_hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = 0.0
    normalize_obs: bool = True
    normalize_rewards: bool = True
    eval_envs: int = 8

    def __post_init__(self):
        check_fields(
            self,
            "ppo",
            **{
                f: POSITIVE_INT
                for f in (
                    "num_envs",
                    "rollout_length",
                    "num_updates",
                    "num_epochs",
                    "num_minibatches",
                    "eval_envs",
                )
            },
        )
        batch = self.num_envs * self.rollout_length
        if batch % self.num_minibatches:
            raise ValueError(
                f"ppo.num_minibatches = {self.num_minibatches} does not divide the batch "
                f"num_envs x rollout_length = {self.num_envs} x {self.rollout_length} = {batch}; "
                f"choose a divisor of {batch}"
            )
        check_fields(
            self,
            "ppo",
            learning_rate=POSITIVE,
            max_grad_norm=POSITIVE,
            vf_coef=NON_NEGATIVE,
            ent_coef=NON_NEGATIVE,
            gamma=UNIT_OPEN_CLOSED,
            gae_lambda=UNIT,
            clip_eps=Interval(0, 1, low_open=True, high_open=True),
            activation=OneOf(ACTIVATIONS),
            actor_hidden=Widths(),
            critic_hidden=Widths(),
        )
        for field in ("actor_hidden", "critic_hidden"):
            object.__setattr__(self, field, tuple(getattr(self, field)))

    @property
    def batch_size(self) -> int:
        """Transitions per update: num_envs x rollout_length."""
        return self.num_envs * self.rollout_length
