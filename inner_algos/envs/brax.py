"""The brax task source: brax environments behind our env interface, the only module of ours
that imports brax.

`BraxEnv(task)` wraps a single (unbatched) brax env with brax's `EpisodeWrapper` (time limit,
action repeat, per-episode return and length in `state.info['episode_metrics']`) and, unless
told otherwise, `AutoResetWrapper`. Callers `vmap` it over environments themselves, so the batch
axis is ours to compose with populations and seeds.

Randomised physics: `params` (from `inner_algos.envs.sample_params`) holds traced scale factors
`{name: []}`; while a step or reset is traced, the unwrapped env's system is swapped for the
scaled one (as brax's own `DomainRandomizationVmapWrapper` does), so one compiled program serves
every sample. With no randomisation `params` is `{}` and the brax env runs untouched.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import io
import logging
import warnings
from typing import Any

from inner_algos.envs.sources import TaskSource, register_source

BACKENDS = ("spring", "positional", "generalized", "mjx")

# randomize key -> the System fields it scales (brax pipelines read the first, mjx the others)
PHYSICS_FIELDS = {
    "mass_scale": ("link.inertia.mass", "link.inertia.i", "body_mass", "body_inertia"),
    "friction_scale": ("geom_friction",),
    "gravity_scale": ("gravity", "opt.gravity"),
    "actuator_scale": ("actuator.gear", "actuator_gear"),
}


def _brax_envs():
    # brax and mujoco print notices for optional GPU extras (warp: a bare print at import) and
    # a maintenance warning at every model load; keep them out of the user's log.
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Brax System, piplines and environments")
    with contextlib.redirect_stdout(io.StringIO()):
        from brax import envs

    return envs


@functools.cache
def env_names() -> tuple[str, ...]:
    """All environment names brax registers (e.g. 'ant', 'hopper', 'inverted_pendulum')."""
    return tuple(sorted(_brax_envs()._envs.keys()))


def scaled_system(sys, params: dict):
    """`sys` with each field of PHYSICS_FIELDS[name] multiplied by params[name] (a traced scalar)."""
    replacements = {}
    for name, scale in params.items():
        for path in PHYSICS_FIELDS[name]:
            node = sys
            for part in path.split("."):
                node = getattr(node, part)
            replacements[path] = node * scale
    return sys.tree_replace(replacements)


class BraxEnv:
    """A brax task behind the env interface of `inner_algos.envs` (see its docstring).

    Continuous actions in [-1, 1] (clipped here); observations `[observation_size]`.
    """

    discrete = False

    def __init__(self, task, auto_reset: bool = True):
        envs = _brax_envs()
        from brax.envs.wrappers import training as wrappers

        env = envs.get_environment(task.env_name, backend=task.backend)
        # brax's EpisodeWrapper counts physics frames (action_repeat per agent step)
        env = wrappers.EpisodeWrapper(env, task.episode_length * task.action_repeat, task.action_repeat)
        if auto_reset:
            env = wrappers.AutoResetWrapper(env)
        self._env = env
        self.observation_size = env.observation_size
        self.action_size = env.action_size

    @contextlib.contextmanager
    def _physics(self, params: dict):
        """Swaps in the system scaled by `params` while the body traces (nothing when empty)."""
        if not params:
            yield
            return
        inner = self._env.unwrapped
        base = inner.sys
        try:
            inner.sys = scaled_system(base, params)
            yield
        finally:
            inner.sys = base

    def reset(self, key, params: dict):
        with self._physics(params):
            return self._env.reset(key)

    def step(self, state, action, params: dict):
        import jax.numpy as jnp

        with self._physics(params):
            return self._env.step(state, jnp.clip(action, -1.0, 1.0))


def label(env_name: str, backend: str) -> str:
    """'hopper/spring': brax labels carry no source prefix (as before sources existed)."""
    return f"{env_name}/{backend}"


def parse_label(rest: str) -> dict[str, Any]:
    """'hopper/positional' -> {env_name, backend}; 'hopper' -> the default backend, spring."""
    env, _, backend = rest.partition("/")
    return {"env_name": env, "backend": backend or BACKENDS[0]}


register_source(
    TaskSource(
        name="brax",
        make_env=BraxEnv,
        env_names=env_names,
        randomizable=lambda env_name: tuple(PHYSICS_FIELDS),
        default_episode_length=lambda env_name: 1000,
        version=lambda: importlib.metadata.version("brax"),
        backends=BACKENDS,
        action_repeat=True,
        label=label,
        parse_label=parse_label,
    )
)
