"""LPG's grid worlds on hand-checked moves: walls and edges, object pickup and reward, termination,
respawn, the time limit and the auto-reset, the tabular observation, the task wiring."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inner_algos.envs import Task, make_env, parse_label, sample_params
from inner_algos.envs.gridworld import LAYOUTS

pytestmark = pytest.mark.fast

STAY, N, NE, E, SE, S, SW, W, NW = range(9)


def _env(name, **task):
    return make_env(Task(source="gridworld", env_name=name, **task))


def _at(env, state, row, col, present=None):
    """`state` with the agent at (row, col) and the objects `present` (default: as they are)."""
    cell = jnp.asarray(row * env.layout.width + col, jnp.int32)
    present = state.present if present is None else jnp.asarray(present, jnp.float32)
    return state.replace(cell=cell, present=present, obs=env.observe(cell, present))


def _rc(env, state):
    return divmod(int(state.cell), env.layout.width)


def test_moves_stop_at_walls_and_edges():
    """long_dense: four rooms, a wall down column 5 (open at rows 0 and 7) and along row 4 (open at
    columns 2 and 8)."""
    env = _env("long_dense")
    params = {"object_cells": jnp.array([120, 119, 118, 117])}  # bottom-right corner, out of the way
    state = env.reset(jax.random.PRNGKey(0), params)
    cases = [
        ((0, 0), N, (0, 0)),  # off the grid: stays
        ((0, 0), W, (0, 0)),
        ((0, 0), E, (0, 1)),
        ((0, 0), SE, (1, 1)),
        ((3, 4), E, (3, 4)),  # into the wall at (3, 5)
        ((3, 4), SE, (3, 4)),  # diagonally into (4, 5): wall
        ((0, 4), E, (0, 5)),  # the door in row 0
        ((3, 2), S, (4, 2)),  # the door in row 4
        ((3, 3), S, (3, 3)),  # (4, 3) is wall
        ((7, 4), E, (7, 5)),  # the door in row 7
        ((5, 5), STAY, (5, 5)),
    ]
    for start, action, end in cases:
        moved = env.step(_at(env, state, *start), action, params)
        assert _rc(env, moved) == end, (start, action)
        assert float(moved.reward) == 0.0 and float(moved.done) == 0.0


def test_walls_are_where_the_docstring_says():
    walls = LAYOUTS["long_dense"].wall_mask()
    assert walls[:, 5].tolist() == [r not in (0, 7) for r in range(11)]
    assert walls[4, :].tolist() == [c not in (2, 8) for c in range(11)]
    assert walls.sum() == 9 + 9 - 1


def test_pickup_pays_the_reward_removes_the_object_and_changes_the_observation():
    """dense: objects (+1, 0, 0.05) x 2, (-1, 0.5, 0.1), (-1, 0, 0.5); object 0 at (2, 3)."""
    env = _env("dense")
    params = {"object_cells": jnp.array([2 * 11 + 3, 50, 60, 70])}
    state = _at(env, env.reset(jax.random.PRNGKey(1), params), 2, 2, present=[1, 1, 1, 1])
    assert int(jnp.argmax(state.obs)) == 15 * 121 + 2 * 11 + 2
    after = env.step(state, E, params)
    assert float(after.reward) == 1.0 and float(after.done) == 0.0  # p_term = 0
    assert after.present.tolist() == [0, 1, 1, 1]
    assert int(jnp.argmax(after.obs)) == 14 * 121 + 2 * 11 + 3  # bit 0 cleared
    assert float(after.episode_return) == 1.0 and float(after.episode_length) == 1.0
    again = env.step(after, STAY, params)  # absent: nothing more to collect here
    assert float(again.reward) == 0.0
    # object 3 (-1, never terminates)
    hurt = env.step(_at(env, state, 6, 3), E, params)
    assert float(hurt.reward) == -1.0 and hurt.present.tolist() == [1, 1, 1, 0]


def test_terminating_pickup_ends_the_episode_and_auto_resets():
    """sparse: (+1, terminate 1, respawn 0) and (-1, 1, 0)."""
    env = _env("sparse")
    params = {"object_cells": jnp.array([0, 100])}
    state = _at(env, env.reset(jax.random.PRNGKey(2), params), 7, 10)
    state = env.step(env.step(state, STAY, params), STAY, params)
    assert float(state.done) == 0.0
    ended = env.step(state, W, params)  # onto (7, 9) = cell 100: the -1 object
    assert float(ended.reward) == -1.0 and float(ended.done) == 1.0
    assert float(ended.info["truncation"]) == 0.0
    assert float(ended.info["episode_metrics"]["sum_reward"]) == -1.0
    assert float(ended.info["episode_metrics"]["length"]) == 3.0
    # the new episode: all objects back, time 0, a free start cell, counters zeroed
    assert ended.present.tolist() == [1, 1] and int(ended.time) == 0
    assert int(ended.cell) not in (0, 100)
    assert float(ended.episode_return) == 0.0 and float(ended.episode_length) == 0.0


def test_time_limit_truncates():
    env = _env("sparse", episode_length=3)
    params = {"object_cells": jnp.array([0, 1])}
    state = _at(env, env.reset(jax.random.PRNGKey(3), params), 6, 6)
    for t in range(3):
        state = env.step(state, STAY, params)
        assert float(state.done) == (t == 2)
    assert float(state.info["truncation"]) == 1.0
    assert float(state.info["episode_metrics"]["length"]) == 3.0


def test_absent_objects_respawn_at_their_rate():
    """dense object 0 respawns with probability 0.05 a step: 4000 independent steps from absent."""
    env = _env("dense")
    params = {"object_cells": jnp.array([0, 50, 60, 70])}
    state = _at(env, env.reset(jax.random.PRNGKey(4), params), 10, 10, present=[0, 1, 1, 1])
    keys = jax.random.split(jax.random.PRNGKey(5), 4000)
    step = jax.jit(jax.vmap(lambda k: env.step(state.replace(key=k), STAY, params).present[0]))
    rate = float(step(keys).mean())
    assert abs(rate - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 4000)


def test_starts_and_layouts_avoid_walls_and_objects():
    task = Task(source="gridworld", env_name="long_dense")
    env = make_env(task)
    walls = LAYOUTS["long_dense"].wall_mask().ravel()
    cells = jax.vmap(lambda k: sample_params(task, k)["object_cells"])(
        jax.random.split(jax.random.PRNGKey(6), 200)
    )
    assert not walls[np.asarray(cells)].any()
    assert all(len(set(row)) == 4 for row in np.asarray(cells).tolist())  # distinct cells
    params = {"object_cells": cells[0]}
    starts = jax.vmap(lambda k: env.reset(k, params).cell)(jax.random.split(jax.random.PRNGKey(7), 500))
    assert not walls[np.asarray(starts)].any()
    assert not np.isin(np.asarray(starts), np.asarray(cells[0])).any()


def test_task_wiring():
    task = Task(source="gridworld", env_name="dense")
    assert task.episode_length == 500 and task.label == "gridworld:dense"
    assert parse_label("gridworld:long_dense") == {"source": "gridworld", "env_name": "long_dense"}
    env = make_env(task)
    assert env.discrete and env.action_size == 9 and env.observation_size == 16 * 121
    with pytest.raises(ValueError, match="task.env_name = 'maze' is not a gridworld environment"):
        Task(source="gridworld", env_name="maze")
    with pytest.raises(ValueError, match="task.randomize.object_cells is not a randomizable field"):
        Task(source="gridworld", env_name="dense", randomize={"object_cells": [0, 1]})
