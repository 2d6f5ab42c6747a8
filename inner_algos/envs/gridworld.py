"""The gridworld task source: LPG's tabular grid worlds in JAX, behind the env interface of
`inner_algos.envs`.

The worlds of Oh et al. 2020, "Discovering Reinforcement Learning Algorithms" (LPG, arXiv
2007.08794), appendix A.1 (tabular grid worlds). A world is a grid with walls and objects; each
object is [reward, termination probability, respawn probability]:

  - the agent has 9 actions: stay, or move to one of the 8 neighbouring cells; a move into a wall
    or off the grid leaves it where it is;
  - entering (or staying on) a cell with a present object collects it: the object's reward is paid,
    the object disappears, and the episode ends with the object's termination probability;
  - every absent object reappears at its own cell with its respawn probability at each step;
  - the episode also ends after `episode_length` steps (a time-limit truncation).

Object cells are drawn once per lifetime (fixed within it, random across lifetimes, as in LPG):
`sample_layout(env_name, key)` is the task's lifetime parameter `{"object_cells": [m] int32}` that
`inner_algos.envs.sample_params` returns for this source; `params = {}` means a fixed default layout
(drawn from PRNGKey(0)). The agent starts each episode on a uniformly drawn free cell (no wall, no
object). The observation is tabular: a one-hot over (which objects are present, agent cell),
`[2^m * H * W]` float32, index `presence_bits * H * W + row * W + col` (object i is bit i).

Published values used (grid size, objects, episode length; LPG's appendix table, as read the same
way by two independent re-implementations: GROOVE, github.com/EmptyJackson/groove
`environments/gridworld/configs.py`, and github.com/jinPrelude/LPG-miniworld-gymnasium
`lpg_envs/configs/grid_world_configs.py`):

  dense          11 x 11, 2 x [1, 0, 0.05], [-1, 0.5, 0.1], [-1, 0, 0.5], 500 steps
  sparse         13 x 13, [1, 1, 0], [-1, 1, 0], 50 steps
  long_horizon   11 x 11, 2 x [1, 0, 0.01], 2 x [-1, 0.5, 1], 1000 steps
  longer_horizon  7 x 9,  2 x [1, 0.1, 0.01], 5 x [-1, 0.8, 1], 2000 steps
  long_dense     11 x 11, 4 x [1, 0, 0.005], 2000 steps (held out from the training set here)

Not from the paper's text (its layouts are figures, which we could not read): the walls. dense,
sparse and long_horizon are open grids (both re-implementations); long_dense's four rooms (a wall
down column 5 open at rows 0 and 7, a wall along row 4 open at columns 2 and 8) is where both
re-implementations agree; longer_horizon's walls (column 4 walled at rows 0, 2-4, 6; row 3 walled at
columns 3-5) follow jinPrelude's map alone (GROOVE draws a different one). The 9 moving actions
follow jinPrelude; LPG's optional explicit "collect" actions are not implemented.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from inner_algos.envs.sources import TaskSource, register_source

VERSION = "1"  # of the worlds below: raise it when a change alters their numbers

# (row, col) steps of the 9 actions: stay, N, NE, E, SE, S, SW, W, NW
MOVES = np.array([(0, 0), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)], np.int32)


@dataclasses.dataclass(frozen=True)
class Layout:
    """One grid world: height x width cells, wall cells (row, col), objects (reward, termination
    probability, respawn probability), and the time limit in steps."""

    height: int
    width: int
    objects: tuple[tuple[float, float, float], ...]
    episode_length: int
    walls: tuple[tuple[int, int], ...] = ()

    @property
    def num_cells(self) -> int:
        return self.height * self.width

    @property
    def num_states(self) -> int:
        """Size of the tabular observation: 2^objects x cells."""
        return (2 ** len(self.objects)) * self.num_cells

    def wall_mask(self) -> np.ndarray:
        """`[H, W]` bool, True on walls."""
        mask = np.zeros((self.height, self.width), bool)
        for row, col in self.walls:
            mask[row, col] = True
        return mask


def _four_rooms() -> tuple[tuple[int, int], ...]:
    column = [(row, 5) for row in range(11) if row not in (0, 4, 7)]
    row = [(4, col) for col in range(11) if col not in (2, 8)]
    return tuple(column + row)


def _longer_horizon_walls() -> tuple[tuple[int, int], ...]:
    return ((0, 4), (2, 4), (3, 3), (3, 4), (3, 5), (4, 4), (6, 4))


LAYOUTS: dict[str, Layout] = {
    "dense": Layout(11, 11, ((1.0, 0.0, 0.05),) * 2 + ((-1.0, 0.5, 0.1), (-1.0, 0.0, 0.5)), 500),
    "sparse": Layout(13, 13, ((1.0, 1.0, 0.0), (-1.0, 1.0, 0.0)), 50),
    "long_horizon": Layout(11, 11, ((1.0, 0.0, 0.01),) * 2 + ((-1.0, 0.5, 1.0),) * 2, 1000),
    "longer_horizon": Layout(
        7, 9, ((1.0, 0.1, 0.01),) * 2 + ((-1.0, 0.8, 1.0),) * 5, 2000, _longer_horizon_walls()
    ),
    "long_dense": Layout(11, 11, ((1.0, 0.0, 0.005),) * 4, 2000, _four_rooms()),
}


def env_names() -> tuple[str, ...]:
    """The grid worlds: LPG's five tabular ones."""
    return tuple(LAYOUTS)


def default_episode_length(env_name: str) -> int:
    """The published time limit of the world (dense: 500, sparse: 50, ...)."""
    return LAYOUTS[env_name].episode_length


def sample_layout(env_name: str, key: jax.Array) -> dict:
    """One lifetime's object cells `{"object_cells": [m] int32}` (flat `row * W + col`), distinct
    cells drawn uniformly among the free (non-wall) cells."""
    layout = LAYOUTS[env_name]
    free = jnp.asarray(~layout.wall_mask().ravel(), jnp.float32)
    cells = jax.random.choice(
        key, layout.num_cells, (len(layout.objects),), replace=False, p=free / free.sum()
    )
    return {"object_cells": cells.astype(jnp.int32)}


@struct.dataclass
class GridworldState:
    """One world's state in brax's reading (as `inner_algos.envs.gymnax.GymnaxState`): cell `[]`
    int32 (flat), present `[m]` float32 (1 where the object is there), time `[]` steps into the
    episode; episode_return / episode_length accumulate the running episode."""

    cell: jax.Array
    present: jax.Array
    time: jax.Array
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    info: dict
    key: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array


class GridworldEnv:
    """A grid world of `LAYOUTS` behind the env interface (module docstring). Always auto-resets,
    as gymnax's envs do; the time limit is the task's `episode_length`."""

    discrete = True
    action_size = len(MOVES)

    def __init__(self, task, auto_reset: bool = True):
        del auto_reset  # a grid world always auto-resets (as gymnax's envs)
        self.layout = LAYOUTS[task.env_name]
        self.env_name = task.env_name
        self.episode_length = task.episode_length
        self.observation_size = self.layout.num_states
        self._walls = jnp.asarray(self.layout.wall_mask().ravel())
        objects = np.array(self.layout.objects, np.float32)
        self._reward, self._p_term, self._p_respawn = (jnp.asarray(objects[:, i]) for i in range(3))
        self._default = sample_layout(task.env_name, jax.random.PRNGKey(0))

    def _cells(self, params: dict) -> jax.Array:
        return params["object_cells"] if "object_cells" in params else self._default["object_cells"]

    def observe(self, cell: jax.Array, present: jax.Array) -> jax.Array:
        """The one-hot tabular observation `[2^m * H * W]` of the agent's cell and the present objects."""
        bits = jnp.sum(present.astype(jnp.int32) * (2 ** jnp.arange(present.shape[0])))
        return jax.nn.one_hot(bits * self.layout.num_cells + cell, self.observation_size, dtype=jnp.float32)

    def _start(self, key: jax.Array, cells: jax.Array):
        """(start cell, all objects present): a uniform cell that is neither wall nor object."""
        free = (~self._walls).astype(jnp.float32).at[cells].set(0.0)
        cell = jax.random.choice(key, self.layout.num_cells, p=free / free.sum()).astype(jnp.int32)
        return cell, jnp.ones(len(self.layout.objects), jnp.float32)

    def reset(self, key: jax.Array, params: dict) -> GridworldState:
        key, k_start = jax.random.split(key)
        cell, present = self._start(k_start, self._cells(params))
        zero = jnp.zeros((), jnp.float32)
        info = {"truncation": zero, "episode_metrics": {"sum_reward": zero, "length": zero}}
        return GridworldState(
            cell,
            present,
            jnp.zeros((), jnp.int32),
            self.observe(cell, present),
            zero,
            zero,
            info,
            key,
            zero,
            zero,
        )

    def move(self, cell: jax.Array, action: jax.Array) -> jax.Array:
        """The cell after `action` from `cell` (flat indices): unchanged into a wall or off the grid."""
        width, height = self.layout.width, self.layout.height
        row = cell // width + jnp.asarray(MOVES[:, 0])[action]
        col = cell % width + jnp.asarray(MOVES[:, 1])[action]
        inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
        target = jnp.clip(row, 0, height - 1) * width + jnp.clip(col, 0, width - 1)
        return jnp.where(inside & ~self._walls[target], target, cell).astype(jnp.int32)

    def step(self, state: GridworldState, action, params: dict) -> GridworldState:
        cells = self._cells(params)
        key, k_term, k_respawn, k_reset = jax.random.split(state.key, 4)
        cell = self.move(state.cell, action)
        collected = state.present * (cells == cell)
        respawned = (1.0 - state.present) * jax.random.bernoulli(k_respawn, self._p_respawn)
        present = state.present - collected + respawned
        reward = jnp.dot(collected, self._reward)
        terminated = jax.random.bernoulli(k_term, jnp.dot(collected, self._p_term)).astype(jnp.float32)
        time = state.time + 1
        truncated = (time >= self.episode_length).astype(jnp.float32) * (1.0 - terminated)
        done = jnp.maximum(terminated, truncated)
        ret, length = state.episode_return + reward, state.episode_length + 1.0
        info = {"truncation": truncated, "episode_metrics": {"sum_reward": ret, "length": length}}
        start_cell, start_present = self._start(k_reset, cells)
        ended = done > 0
        cell = jnp.where(ended, start_cell, cell)
        present = jnp.where(ended, start_present, present)
        return GridworldState(
            cell=cell,
            present=present,
            time=jnp.where(ended, 0, time),
            obs=self.observe(cell, present),
            reward=reward,
            done=done,
            info=info,
            key=key,
            episode_return=ret * (1.0 - done),
            episode_length=length * (1.0 - done),
        )


register_source(
    TaskSource(
        name="gridworld",
        make_env=GridworldEnv,
        env_names=env_names,
        randomizable=lambda env_name: (),  # the object cells are drawn per lifetime instead
        default_episode_length=default_episode_length,
        version=lambda: VERSION,
        sample_params=lambda task, key: sample_layout(task.env_name, key),
        one_hot_observations=True,
    )
)
