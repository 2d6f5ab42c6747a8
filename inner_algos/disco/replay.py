"""A FIFO replay buffer of whole rollouts, as DiscoRL's evaluation colab trains Disco103 on Catch
(`colabs/eval.ipynb`: 2 envs x 29 steps collected per step, 1024 trajectories kept, 64 sampled
uniformly with replacement per update once 64 are held: a replay ratio of 32).

Pure and jittable: the buffer is a fixed-size pytree in the agent's state. A trajectory is one
env's slice of a `Rollout` (`obs`, `actions`, `behaviour_logits` `[T+1, ...]`, `rewards`,
`is_terminal` `[T]`); the episode bookkeeping is not kept (the episode metrics come from the
fresh rollout).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct


class Trajectories(NamedTuple):
    """Trajectories batch-first: obs `[N, T+1, obs]`, actions `[N, T+1]`, behaviour_logits
    `[N, T+1, A]`, rewards and is_terminal `[N, T]`."""

    obs: jax.Array
    actions: jax.Array
    behaviour_logits: jax.Array
    rewards: jax.Array
    is_terminal: jax.Array


@struct.dataclass
class Replay:
    """`capacity` trajectories (`Trajectories` with N = capacity) and `added` `[]` int32: how many
    were ever added (slot of the next one: added mod capacity; held: min(added, capacity))."""

    data: Trajectories
    added: jax.Array

    @property
    def capacity(self) -> int:
        return self.data.actions.shape[0]

    @property
    def held(self) -> jax.Array:
        return jnp.minimum(self.added, self.capacity)


def time_major(traj: Trajectories) -> Trajectories:
    """`[N, T, ...]` <-> `[T, N, ...]` on every field (its own inverse)."""
    return Trajectories(*(jnp.swapaxes(x, 0, 1) for x in traj))


def empty(capacity: int, example: Trajectories) -> Replay:
    """A buffer of `capacity` zero trajectories shaped as one of `example` (time-major `[T, B]`
    rollout fields: B is dropped)."""
    data = Trajectories(*(jnp.zeros((capacity, x.shape[0], *x.shape[2:]), x.dtype) for x in example))
    return Replay(data=data, added=jnp.zeros((), jnp.int32))


def add(replay: Replay, rollout: Trajectories) -> Replay:
    """The buffer with the B trajectories of a time-major rollout (`[T, B]` fields) written into
    the next B slots, oldest first out (B <= capacity: the config checks it)."""
    batch = rollout.actions.shape[1]
    slots = (replay.added + jnp.arange(batch)) % replay.capacity
    data = Trajectories(*(buf.at[slots].set(new) for buf, new in zip(replay.data, time_major(rollout))))
    return Replay(data=data, added=replay.added + batch)


def sample(replay: Replay, key: jax.Array, batch: int) -> Trajectories:
    """`batch` trajectories drawn uniformly with replacement from those held, time-major
    (`[T, batch]` fields). Call only when at least one is held."""
    index = jax.random.randint(key, (batch,), 0, replay.held)
    return time_major(Trajectories(*(x[index] for x in replay.data)))
