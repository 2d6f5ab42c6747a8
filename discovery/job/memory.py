"""A lower bound on the memory a discovery job needs, checked before anything compiles.

XLA allocates a generation's buffers only when the compiled step runs, so a spec far too large for
the machine would compile for a minute and then die out of memory (or abort inside XLA with a C++
stack). `check` refuses such a spec at once, naming the knobs that shrink it.

The estimate counts what must be live at once on one device while the population is scored:

  runs at once = members on the device at once (its share of the population, at most
                 job.population_batch when set) x job.seeds_per_member
  bytes per run = its inner state (network parameters, optimizer state, environment states, e.g.
                 ppo.num_envs of them: sizes from `jax.eval_shape`, nothing is computed) + one
                 update's rollout of env_steps_per_update / action_repeat float32 transitions
                 (PPO: ppo.rollout_length x ppo.num_envs; each an observation, next observation,
                 action, and 6 scalars: reward, done, value, log-prob, advantage, target), for
                 the largest task
  + the population's meta-parameters and their noise (2 x population x rule size, float32).

XLA's temporaries (activations, gradients, copies) come on top, so a spec that passes can still
run out of memory, but one that fails cannot fit. Memory available per device: an accelerator's
`bytes_limit`; on CPUs the host's physical memory (or its cgroup limit when lower) shared by the
process's host devices.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

from discovery.spec import JobSpec, SpecError

ROLLOUT_SCALARS = 6  # reward, done, value, log-prob, advantage, value target per transition
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


class Estimate(NamedTuple):
    """bytes: per device; members: population size scored per generation (mean included);
    at_once: members on one device at once; runs: inner runs at once on one device;
    run_bytes: one inner run's state and rollout; population_bytes: meta-params and noise."""

    bytes: int
    members: int
    at_once: int
    runs: int
    run_bytes: int
    population_bytes: int


def _nbytes(tree) -> int:
    import jax

    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def run_bytes(spec: JobSpec, task) -> int:
    """Bytes of one inner run of `task`: its state `jax.eval_shape`d, plus one rollout."""
    import jax

    from inner_algos.envs import make_env
    from inner_algos.registry import make_inner_algo

    env = make_env(task)
    algo = make_inner_algo(spec.inner, spec.inner_config, task, spec.rule)
    state = jax.eval_shape(algo.init, None, jax.random.PRNGKey(0))
    per_transition = 2 * env.observation_size + env.action_size + ROLLOUT_SCALARS
    transitions = algo.env_steps_per_update // task.action_repeat
    return _nbytes(state) + 4 * transitions * per_transition


def estimate(spec: JobSpec, num_devices: int) -> Estimate:
    """The lower bound of the module docstring for `spec` on `num_devices` devices."""
    import jax

    members = spec.meta_optimizer_options.population_size + int(spec.job.evaluate_mean)
    at_once = -(-members // num_devices)
    if spec.job.population_batch:
        at_once = min(at_once, spec.job.population_batch)
    runs = at_once * spec.job.seeds_per_member
    per_run = max(run_bytes(spec, task) for task in spec.tasks)
    population = 2 * members * _nbytes(jax.eval_shape(spec.rule.init, jax.random.PRNGKey(0)))
    return Estimate(runs * per_run + population, members, at_once, runs, per_run, population)


def host_memory() -> int:
    """Physical memory of this host in bytes, or the cgroup's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in CGROUP_LIMITS:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def available_bytes(devices: list) -> int:
    """Memory one of `devices` (this process's, all of one kind) can use."""
    stats = devices[0].memory_stats() if devices[0].platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return host_memory() // len(devices)


def _size(n: float) -> str:
    """1536 -> '1.5 KiB', 3 * 2**30 -> '3.0 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:,.1f} TiB"


def check(spec: JobSpec, num_devices: int, local_devices: list) -> Estimate:
    """The estimate; a SpecError naming the knobs if it exceeds what one device has."""
    need = estimate(spec, num_devices)
    have = available_bytes(local_devices)
    if need.bytes <= have:
        return need
    from inner_algos.registry import inner_algo_entry

    batch = spec.job.population_batch or "0 = all"
    entry = inner_algo_entry(spec.inner)
    size = entry.size_note(spec.inner_config) if entry.size_note else f"the [{entry.section}] settings"
    raise SpecError(
        f"the job needs at least {_size(need.bytes)} of memory per device, more than the "
        f"{_size(have)} a {local_devices[0].platform} device has here: {need.runs:,} inner runs at "
        f"once ({need.at_once:,} of the population of {need.members:,} members x "
        f"{spec.job.seeds_per_member:,} seed(s)), each ~{_size(need.run_bytes)} for "
        f"{size}, plus {_size(need.population_bytes)} of meta-parameters. "
        f"Lower job.population_batch (members evaluated at once per device, now {batch}), "
        f"the size of one run ({size}), job.seeds_per_member or the population size"
    )
