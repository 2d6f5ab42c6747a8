"""The DiscoRL agent's static settings (a `[disco]` section of a run spec)."""

from __future__ import annotations

import dataclasses

from inner_algos.config_checks import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    Widths,
    check_fields,
)


@dataclasses.dataclass(frozen=True)
class DiscoConfig:
    """The agent of DiscoRL's evaluation colab (github.com/google-deepmind/disco_rl,
    `colabs/eval.ipynb`, Disco103 on Catch), trained on-policy or from a replay buffer.

    Each update collects num_envs x rollout_length steps (`[T, B]` trajectories, plus the
    observation after the last step for bootstrapping). On-policy (replay_capacity 0) it computes
    the rule's targets on them and takes one optimizer step; with replay_capacity > 0 the
    num_envs trajectories join a FIFO buffer of replay_capacity trajectories
    (`inner_algos.disco.replay`) and the step is taken on replay_batch trajectories drawn from it
    uniformly with replacement, once it holds replay_batch (before that an update only collects:
    its losses read 0). The colab: num_envs 2, rollout 29 timesteps (rollout_length 28
    transitions here), replay_capacity 1024, replay_batch 64. The optimizer step: Adam (b1 0.9,
    b2 0.999, eps 1e-8; no gradient through its denominator) whose update is clipped to
    +-max_abs_update per parameter, then scaled by learning_rate.

    torso: the MLP's widths (ReLU between layers, none after the last); head_w_init_std: the
    policy and y heads' initial weight scale; model_lstm_size, model_head_hiddens: the
    action-conditional model (one LSTM step per action from the torso, then an MLP per output:
    z, q, aux_pi). The sizes of y, z (Disco103: 600) and of the q head's bins (601) are the
    rule's. The colab: torso (512, 512), head_w_init_std 1e-2, lstm 128, heads (128,),
    learning rate 1e-2, max_abs_update 1.
    """

    num_envs: int = 16
    rollout_length: int = 28
    num_updates: int = 100
    torso: tuple[int, ...] = (512, 512)
    head_w_init_std: float = 1e-2
    model_lstm_size: int = 128
    model_head_hiddens: tuple[int, ...] = (128,)
    learning_rate: float = 1e-2
    max_abs_update: float = 1.0
    eval_envs: int = 8
    replay_capacity: int = 0
    replay_batch: int = 0

    def __post_init__(self):
        ints = ("num_envs", "rollout_length", "num_updates", "model_lstm_size", "eval_envs")
        check_fields(self, "disco", **dict.fromkeys(ints, POSITIVE_INT))
        check_fields(self, "disco", replay_capacity=NON_NEGATIVE_INT, replay_batch=NON_NEGATIVE_INT)
        self._check_replay()
        check_fields(self, "disco", torso=Widths(), model_head_hiddens=Widths())
        check_fields(
            self, "disco", learning_rate=POSITIVE, max_abs_update=POSITIVE, head_w_init_std=NON_NEGATIVE
        )
        object.__setattr__(self, "torso", tuple(self.torso))
        object.__setattr__(self, "model_head_hiddens", tuple(self.model_head_hiddens))

    def _check_replay(self) -> None:
        """Replay is off (both 0) or can fill and sample: num_envs <= capacity, batch <= capacity."""
        capacity, batch = self.replay_capacity, self.replay_batch
        if (capacity == 0) != (batch == 0):
            raise ValueError(
                f"disco.replay_capacity = {capacity} and disco.replay_batch = {batch}: set both (a "
                "replay buffer, e.g. 1024 and 64 as DiscoRL's colab) or neither (on-policy)"
            )
        if capacity and not self.num_envs <= capacity:
            raise ValueError(
                f"disco.replay_capacity = {capacity} is below disco.num_envs = {self.num_envs}: "
                "one update adds num_envs trajectories; raise the capacity"
            )
        if batch > capacity:
            raise ValueError(
                f"disco.replay_batch = {batch} exceeds disco.replay_capacity = {capacity}: the "
                "buffer would never hold a batch; lower replay_batch or raise the capacity"
            )

    @property
    def batch_size(self) -> int:
        """Transitions collected per update: num_envs x rollout_length."""
        return self.num_envs * self.rollout_length
