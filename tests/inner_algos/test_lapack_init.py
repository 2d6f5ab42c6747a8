"""The networks' orthogonal initialiser never runs a batched LAPACK QR, which can hang XLA's CPU
runtime for good (jaxlib 0.10.2).

Under `vmap` flax's orthogonal initialiser is one batched QR (LAPACK geqrf / orgqr custom calls).
jaxlib's CPU kernels split a batch over XLA's intra-op thread pool and block their thread until
the pieces are done; when every thread of that pool is inside such a call (independent layers'
QRs run concurrently), nobody runs the pieces and the process waits forever at 0% CPU (native
stacks: each `tf_XLAEigen` thread in `jax::ParallelBatchMap` -> `BlockingCounter::Wait` under
`lapack_sgeqrf_ffi`). `inner_algos.networks.orthogonal` draws the matrices one at a time instead.

The regression case draws six independent kernels under `jit(vmap)` over 8 keys again and again,
in a subprocess pinned to 2 CPUs (a 2-thread intra-op pool), under XLA's concurrency-optimised
scheduler (which runs the independent QRs at once; the package turns it off by default against
another hang, but whole PPO programs hung without it, so the cure must not depend on it). The
same program with flax's initializer hung on a loaded 2-core machine in 4 of 4 tries with
progress output (within 3-16 s), and in 2 of 3 with `--xla_cpu_multi_thread_eigen=false`; with
`inner_algos.networks.orthogonal` it finished 3000 draws in 3 of 3 tries. (An actor and a
critic of `MLP`s under vmap, the same 2-thread pool and a busy process beside, did not hang in 4
tries: too little concurrent LAPACK work.)

The second case is `benchmarks/inner_throughput.py`'s population: LPO members vmapped and sharded
over 2 host devices (`shard_map`), initialised under the package's default flags. With flax's
initializer it hung at its first call in 2 of 2 tries on a loaded 2-core machine, at 0% CPU, both
`tf_XLAEigen` threads in `lapack_sgeqrf_ffi` -> `jax::ParallelBatchMap` -> `BlockingCounter::Wait`
(gdb): each device's thread runs its members' batched QR on the same 2-thread pool.
"""

import os
import subprocess
import sys
import textwrap
import time

import flax.linen as nn
import jax
import numpy as np
import pytest

from discovery import xla_flags
from inner_algos import networks

STRESS_S = 15  # how long the child initialises, again and again
STALL_S = 30  # no progress for this long (one initialisation takes well under a second): hung
START_S = 600  # imports and the compile, on a busy machine

STRESS = """
    import os, sys, time
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    import jax
    from inner_algos.networks import orthogonal

    init = orthogonal(1.4)

    def draw(key):  # six independent kernels, as the layers of an actor and a critic
        keys = jax.random.split(key, 6)
        return [init(k, (32 + 8 * i, 64)) for i, k in enumerate(keys)]

    run = jax.jit(jax.vmap(draw))
    print("compiled", len(jax.block_until_ready(run(jax.random.split(jax.random.PRNGKey(0), 8)))),
          flush=True)
    start, i = time.monotonic(), 0
    while time.monotonic() - start < float(sys.argv[1]):
        i += 1
        jax.block_until_ready(run(jax.random.split(jax.random.PRNGKey(i), 8)))
        print(i, flush=True)
    print("done", flush=True)
"""

# benchmarks/inner_throughput.py's population: LPO members vmapped and sharded over 2 host devices
# (the package's default XLA flags); each device's thread runs its members' batched init at once
SHARDED = """
    import os, sys, time
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    import jax
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec
    from inner_algos.envs import Task, parse_label
    from inner_algos.ppo import PPOConfig, make_ppo
    from inner_algos.rules import make_rule

    rule = make_rule("lpo")
    config = PPOConfig(num_envs=64, rollout_length=16, num_updates=8, num_epochs=4, num_minibatches=8)
    algo = make_ppo(config, Task(**parse_label("gymnax:CartPole-v1")), rule)
    meta = rule.init(jax.random.PRNGKey(1))
    mesh = Mesh(np.asarray(jax.local_devices()), ("pop",))
    assert mesh.size == 2, jax.local_devices()
    init = jax.jit(jax.shard_map(
        jax.vmap(algo.init, in_axes=(None, 0)),
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec("pop")),
        out_specs=PartitionSpec("pop"),
        check_vma=False,
    ))
    jax.block_until_ready(init(meta, jax.random.split(jax.random.PRNGKey(0), 16)))
    print("compiled", flush=True)
    start, i = time.monotonic(), 0
    while time.monotonic() - start < float(sys.argv[1]):
        i += 1
        jax.block_until_ready(init(meta, jax.random.split(jax.random.PRNGKey(i), 16)))
        print(i, flush=True)
    print("done", flush=True)
"""


def _concurrent_env() -> dict:
    """os.environ with XLA's concurrency-optimised CPU scheduler on (a user's setting, kept)."""
    flags = xla_flags.with_flag(os.environ.get("XLA_FLAGS", ""), xla_flags.CPU_SCHEDULER_FLAG, "true")
    return {**os.environ, "XLA_FLAGS": flags}


def test_orthogonal_is_flax_orthogonal_bit_for_bit_under_nested_vmap():
    ours, flax_init = networks.orthogonal(1.4), nn.initializers.orthogonal(1.4)
    keys = jax.random.split(jax.random.PRNGKey(0), 6).reshape(2, 3, -1)
    for shape in [(17, 64), (64, 6)]:

        def draw(key, init, shape=shape):
            return init(key, shape)

        batched = jax.jit(jax.vmap(jax.vmap(draw, in_axes=(0, None)), in_axes=(0, None)), static_argnums=1)
        np.testing.assert_array_equal(batched(keys, ours), batched(keys, flax_init))
        np.testing.assert_array_equal(draw(keys[0, 0], ours), draw(keys[0, 0], flax_init))


def _assert_the_child_progresses(tmp_path, script: str, env: dict, seconds: float = STRESS_S) -> None:
    """Runs `script` (argv[1] = `seconds` of repeated calls) and fails when it prints nothing new
    for STALL_S after "compiled" (START_S before), or exits badly."""
    log = tmp_path / "stdout.txt"
    with open(log, "w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), str(seconds)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    seen, last, limit = "", time.monotonic(), START_S
    while child.poll() is None:
        time.sleep(0.5)
        text = log.read_text()
        if text != seen:
            seen, last, limit = text, time.monotonic(), STALL_S if "compiled" in text else START_S
        elif time.monotonic() - last > limit:
            child.kill()
            child.wait()
            pytest.fail(f"hung: no progress for {limit} s after {seen.splitlines()[-1:]}")
    assert child.returncode == 0, seen[-3000:]
    assert seen.splitlines()[-1] == "done"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs for a 2-thread pool")
def test_batched_orthogonal_init_never_hangs(tmp_path):
    _assert_the_child_progresses(tmp_path, STRESS, _concurrent_env())


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs for a 2-thread pool")
def test_a_population_sharded_over_two_host_devices_initialises_without_hanging(tmp_path):
    flags = xla_flags.with_flag(os.environ.get("XLA_FLAGS", ""), "xla_force_host_platform_device_count", 2)
    # the code before the cure hung at the first call (2 of 2 tries on a loaded 2-core machine)
    _assert_the_child_progresses(tmp_path, SHARDED, {**os.environ, "XLA_FLAGS": flags}, seconds=5)
