"""The DiscoRL agent's replay buffer (DiscoRL's evaluation colab's loop): FIFO slots worked out by
hand, sampling only what is held, no update before the buffer holds a batch, and the update
learning from the drawn batch, not from the fresh rollout."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos.disco import DiscoConfig, example
from inner_algos.disco import replay as rb
from inner_algos.disco.update import learn, make_parts, rollout, trajectories
from inner_algos.registry import make_inner_algo
from inner_algos.rules import make_rule

T = 3  # transitions per trajectory


def _batch(markers: list[float]) -> rb.Trajectories:
    """A time-major rollout of len(markers) trajectories, trajectory i filled with markers[i]."""
    m = jnp.asarray(markers, jnp.float32)
    return rb.Trajectories(
        obs=jnp.broadcast_to(m[None, :, None], (T + 1, len(m), 2)),
        actions=jnp.broadcast_to(m.astype(jnp.int32)[None], (T + 1, len(m))),
        behaviour_logits=jnp.broadcast_to(m[None, :, None], (T + 1, len(m), 3)),
        rewards=jnp.broadcast_to(m[None], (T, len(m))),
        is_terminal=jnp.zeros((T, len(m)), bool),
    )


def test_fifo_slots_as_worked_out_by_hand():
    replay = rb.empty(5, _batch([0.0, 0.0]))
    for pair in ([1.0, 2.0], [3.0, 4.0], [5.0, 6.0]):
        replay = rb.add(replay, _batch(pair))
    # Slots 0-4 took 1, 2, 3, 4, 5; the sixth trajectory overwrote the oldest (slot 0).
    np.testing.assert_array_equal(replay.data.rewards[:, 0], [6.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(
        replay.data.obs[:, :, 0], np.broadcast_to([[6.0], [2], [3], [4], [5]], (5, 4))
    )
    assert int(replay.added) == 6 and int(replay.held) == 5


def test_sampling_draws_only_the_trajectories_held_time_major():
    replay = rb.add(rb.empty(8, _batch([0.0, 0.0])), _batch([7.0, 9.0]))
    drawn = rb.sample(replay, jax.random.PRNGKey(0), 400)
    assert drawn.obs.shape == (T + 1, 400, 2) and drawn.rewards.shape == (T, 400)
    assert set(np.unique(drawn.rewards)) == {7.0, 9.0}  # never an empty (zero) slot
    # Each trajectory comes whole: its fields carry the same marker.
    np.testing.assert_array_equal(drawn.actions[0], drawn.rewards[0].astype(np.int32))


def test_no_update_until_the_buffer_holds_a_batch_then_learning_from_the_batch():
    base, task, rule = example()  # 2 envs: the buffer holds 2, then 4 trajectories
    config = dataclasses.replace(base, replay_capacity=6, replay_batch=4)
    algo = make_inner_algo("disco", config, task, rule)
    meta = rule.init(jax.random.PRNGKey(0))
    state = algo.init(meta, jax.random.PRNGKey(1))
    step = jax.jit(algo.step)

    first, metrics = step(meta, state)
    assert int(first.replay.held) == 2
    jax.tree.map(np.testing.assert_array_equal, first.params, state.params)
    assert float(metrics["loss"]) == 0.0

    second, metrics = step(meta, first)
    assert int(second.replay.held) == 4 and float(metrics["loss"]) != 0.0
    # Rebuild the update by hand: the rollout joins the buffer, the batch is drawn with the key the
    # step used, and learn() on that batch gives the step's loss and gradient norm (a step that
    # learned from its fresh rollout, 2 trajectories, would not). Params are not compared: Adam's
    # first step, g / (|g| + eps), turns jit's 1e-7 differences in a near-zero gradient into 1e-4.
    parts = make_parts(config, task, rule)
    _, k_roll = jax.random.split(first.key)
    _, roll = jax.jit(lambda s, k: rollout(parts, s.params, s.env_state, s.env_params, k))(first, k_roll)
    batch = rb.sample(rb.add(first.replay, trajectories(roll)), jax.random.fold_in(k_roll, 1), 4)
    want = jax.jit(lambda s, r: learn(parts, meta, s, r)[-1])(first, batch)
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose(metrics[key], want[key], rtol=1e-4)


@pytest.mark.slow  # half a minute of compiling; the replay path is the default suite's test above
def test_actor_critic_baseline_trains_from_replay():
    base, task, _ = example()
    config = dataclasses.replace(base, replay_capacity=4, replay_batch=2, num_updates=3)
    rule = make_rule("disco_ac", num_bins=11, prediction_size=8, max_abs_value=5.0)
    algo = make_inner_algo("disco", config, task, rule)
    state, metrics = jax.jit(algo.train)({}, jax.random.PRNGKey(3))
    assert int(state.replay.added) == 6 and np.all(np.asarray(metrics["loss"]) != 0.0)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"replay_capacity": 16}, "disco.replay_batch = 0"),
        ({"replay_batch": 4}, "disco.replay_capacity = 0"),
        ({"num_envs": 2, "replay_capacity": 8, "replay_batch": 9}, "disco.replay_batch = 9 exceeds"),
        ({"num_envs": 4, "replay_capacity": 2, "replay_batch": 2}, "below disco.num_envs = 4"),
        ({"replay_capacity": -1, "replay_batch": 1}, "disco.replay_capacity = -1"),
    ],
)
def test_a_replay_setting_that_cannot_work_is_refused_naming_the_field(fields, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        DiscoConfig(**fields)
