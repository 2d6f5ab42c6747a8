"""The memory estimate checked before compiling: how it counts runs, that it is a lower bound of
what XLA allocates, and that it refuses only what cannot fit (shipped specs: test_shipped_specs)."""

from pathlib import Path

import jax
import pytest

from discovery.job import memory
from discovery.spec import SpecError, apply_overrides, load_toml, parse_job_spec
from tests.support import tiny_job
from tests.support.builders import spec_problem

QUICKSTART = Path(__file__).resolve().parents[3] / "runs" / "quickstart.toml"


def _quickstart(*overrides: str):
    return parse_job_spec(apply_overrides(load_toml(QUICKSTART), list(overrides)))


@pytest.mark.fast
def test_runs_at_once_are_the_device_share_of_the_population_in_batches_times_seeds():
    spec = _quickstart()  # population 16 + the ES mean = 17 members, 2 seeds each
    on_four = memory.estimate(spec, num_devices=4)
    assert (on_four.members, on_four.at_once, on_four.runs) == (17, 5, 10)  # ceil(17 / 4) = 5
    batched = memory.estimate(_quickstart("job.population_batch=2"), num_devices=4)
    assert (batched.at_once, batched.runs) == (2, 4)
    assert batched.run_bytes == on_four.run_bytes
    assert batched.bytes == 4 * batched.run_bytes + batched.population_bytes
    # the rollout grows linearly with num_envs x rollout_length: 2 x the envs, 2 x the rollout
    # part (inverted_pendulum: observation 4, action 1 -> 2*4 + 1 + 6 float32 per transition)
    doubled = memory.estimate(_quickstart("ppo.num_envs=64"), num_devices=4)
    rollout = 4 * 16 * 32 * (2 * 4 + 1 + 6)
    assert doubled.run_bytes - on_four.run_bytes >= rollout


@pytest.mark.fast
def test_a_job_that_cannot_fit_is_refused_naming_the_knobs():
    spec = _quickstart("ppo.num_envs=1000000")  # the quickstart with a million environments
    with pytest.raises(
        SpecError,
        match=r"at least [\d.,]+ GiB .*ppo.num_envs = 1,000,000 .*"
        r"Lower job.population_batch .*ppo.num_envs",
    ):
        memory.check(spec, 1, [_Device(16 * 2**30)])
    assert memory.check(_quickstart(), 1, [_Device(16 * 2**30)]).bytes < 2**30


class _Device:
    """An accelerator with `bytes_limit` bytes, as `jax.Device.memory_stats` reports it."""

    platform = "gpu"

    def __init__(self, limit: int):
        self.limit = limit

    def memory_stats(self):
        return {"bytes_limit": self.limit}


@pytest.mark.fast
def test_host_memory_is_at_most_the_physical_memory():
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        pytest.skip("no /proc/meminfo on this system")
    total_kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
    assert 0 < memory.host_memory() <= total_kib * 1024


@pytest.mark.slow
def test_the_estimate_is_below_what_xla_allocates_for_the_step(tmp_path):
    """XLA's own accounting of the compiled generation (arguments, outputs and temporaries) is
    the reference; the estimate must not exceed it (it is a lower bound), and stays within 4x."""
    from discovery.meta_opt import make_meta_optimizer

    spec = parse_job_spec(tiny_job.table(tmp_path, ppo={"num_envs": 64}))
    device = jax.devices()[:1]
    problem = spec_problem(spec, devices=device)
    optimizer = make_meta_optimizer(spec.meta_optimizer, spec.meta_optimizer_options, problem)
    state = jax.jit(optimizer.init)(jax.random.PRNGKey(0))
    analysis = jax.jit(optimizer.step).lower(state).compile().memory_analysis()
    xla = analysis.temp_size_in_bytes + analysis.argument_size_in_bytes + analysis.output_size_in_bytes
    estimate = memory.estimate(spec, 1).bytes
    assert estimate <= xla < 4 * estimate
