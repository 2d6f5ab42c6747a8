"""The discovery job: exact resume after SIGKILL, compile-once, NaN members, spec checks, checkpoints."""

import dataclasses
import json
import signal
import time
import warnings
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discovery.job import checkpoint
from discovery.job.runner import Job, run_job
from discovery.rule_io import load_rule
from discovery.spec import SpecError, dump_toml, parse_job_spec
from inner_algos.rules import RULES, Rule
from tests.support import tiny_job
from tests.support.tiny_job import META_OPTIMIZERS


@dataclasses.dataclass(frozen=True)
class NaNWhenPositive(Rule):
    """Test rule: zero drift if its one meta-parameter x <= 0, NaN drift (a diverging run) if x > 0."""

    name: ClassVar[str] = "nan_when_positive"
    family: ClassVar[str] = "drift"

    def init(self, key):
        del key
        return {"x": jnp.zeros(())}

    def apply(self, meta_params, inputs):
        return jnp.where(meta_params["x"] > 0, jnp.nan, 0.0) * inputs.ratio


def test_diverging_members_rank_last_are_counted_and_the_job_compiles_once(tmp_path, monkeypatch):
    """Antithetic pairs (x, -x) around 0: about half the members' PPO runs diverge (NaN
    parameters) in every generation; their fitness is the finite penalty of a diverged lifetime,
    below every other member's, and each record counts them."""
    monkeypatch.setitem(RULES, NaNWhenPositive.name, NaNWhenPositive)
    run_dir = tmp_path / "run"
    spec = {**tiny_job.table(run_dir, job={"checkpoint_every": 1}), "rule": {"name": NaNWhenPositive.name}}
    result = run_job(spec, progress=False)
    assert result.generation == 3 and not result.interrupted
    assert result.traces == 1  # one trace, one compile, for all generations
    counts = [r["diverged"] for r in result.history]
    assert counts[0] == 2  # mean exactly 0: one member of each antithetic pair diverges
    assert all(0 < n < 4 for n in counts)  # sigma (1.0) >> |mean|: some diverge, some don't
    for record in result.history:  # one seed: a diverged lifetime is a diverged member
        assert record["diverged_members"] == record["diverged"] and record["lifetimes"] == 4
        assert record["num_nonfinite"] == 0  # scored, not NaN
        # the diverged members' fitness (the lowest) is far below the finished ones' (the highest)
        assert record["fitness_min"] <= record["fitness_max"] - 1.0
    assert float(result.params["mean"]["x"]) < 0.0  # moved away from the diverging side
    assert float(result.params["best"]["x"]) < 0.0
    assert checkpoint.available_steps(run_dir) == [1, 2, 3]
    assert (run_dir / "fitness.png").is_file()
    header = json.loads((run_dir / "rules" / "gen_000003_mean.json").read_text())
    assert header["kind"] == "mean" and header["generation"] == 3
    assert header["train_tasks"] == ["inverted_pendulum/spring"]
    assert header["versions"]["evosax"] == "0.3.2"

    # the same directory with a different spec is refused, naming every differing key
    changed = {
        **tiny_job.table(
            run_dir,
            job={"checkpoint_every": 1, "generations": 9},
            ppo={"learning_rate": 0.02},
            meta_optimizer={"sigma_init": 0.5},
        ),
        "rule": {"name": NaNWhenPositive.name},
    }
    with pytest.raises(
        SpecError,
        match=r"Differing keys: meta_optimizer.sigma_init: 1.0 -> 0.5; "
        r"ppo.learning_rate: 0.01 -> 0.02\. ",
    ):
        run_job(changed, progress=False)

    # corrupt the newest info: readers warn, name the file, and fall back to step 2
    (run_dir / "checkpoints" / "3" / "info" / "metadata").write_text("{not json")
    with pytest.warns(UserWarning, match=r"checkpoints/3/info/metadata"):
        info = checkpoint.read_run_info(run_dir)
    assert info["step"] == 2 and info["generation"] == 2 and len(info["fitness_history"]) == 2
    with pytest.raises(ValueError, match=r"checkpoints/3/info/metadata"):
        checkpoint.read_run_info(run_dir, step=3)


def test_a_user_callback_sees_each_generation_as_logged_after_its_checkpoint(tmp_path):
    """A notebook's way: Job.build -> restore -> loop with one callback of its own."""
    run_dir = tmp_path / "run"
    job = Job(tiny_job.table(run_dir), progress=False)  # 3 generations, checkpoints at 2 and 3
    seen = []

    def collect(record, state):
        rules = jax.device_get(job.optimizer.params(state))
        seen.append((record, checkpoint.available_steps(run_dir), rules))

    job.build()
    result = job.loop(job.restore(), callbacks=[collect])
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [record for record, _, _ in seen] == logged
    assert [r["generation"] for r in logged] == [1, 2, 3] and result.history == logged
    assert [steps for _, steps, _ in seen] == [[], [2], [2, 3]]  # called after the save
    _, exported, _ = load_rule(run_dir / "rules" / "latest_mean")  # it got the saved state
    jax.tree.map(np.testing.assert_array_equal, seen[-1][2]["mean"], exported)


@pytest.mark.fast
def test_checkpointer_falls_back_to_the_newest_intact_step(tmp_path):
    ckpt = checkpoint.Checkpointer(tmp_path)
    info = {"spec": {}, "versions": {}, "fitness_history": [], "wall_time": 0.0, "env_steps": 0}
    for step in (1, 2):
        ckpt.save(
            step,
            {"w": jnp.full(3, float(step)), "key": jax.random.PRNGKey(step)},
            {**info, "generation": step},
        )
    for path in (tmp_path / "checkpoints" / "2" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    template = {"w": jnp.zeros(3), "key": jax.random.PRNGKey(0)}
    with pytest.warns(UserWarning, match=r"checkpoints/2 cannot be restored"):
        state, restored = ckpt.restore_latest(template)
    np.testing.assert_array_equal(state["w"], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(state["key"], jax.random.PRNGKey(1))
    assert restored["generation"] == 1
    assert checkpoint.available_steps(tmp_path) == [1]  # the bad step was moved aside
    ckpt.save(2, {"w": jnp.zeros(3), "key": jax.random.PRNGKey(0)}, {**info, "generation": 2})
    ckpt.close()


@pytest.mark.fast
@pytest.mark.parametrize(
    "section, values, message",
    [
        ("job", {"generatons": 5}, r"job.generatons \(did you mean 'generations'.*; allowed keys in \[job\]"),
        ("job", {"generations": 0}, r"job.generations = 0 must be >= 1"),
        ("job", {"seed": "zero"}, r"job.seed = 'zero' has the wrong type; expected int"),
        ("ppo", {"num_minibatches": 3}, r"ppo.num_minibatches = 3 does not divide"),
        ("rule", {"name": "lpx"}, r"rule.name = 'lpx' is unknown \(did you mean .*'lpo'.*; valid rules"),
        ("meta_objective", {"kind": "median"}, r"meta_objective.kind = 'median' is unknown"),
        ("meta_objective", {"baselines": [1.0, 2.0]}, r"has 2 values; expected one per task \(1\)"),
    ],
)
def test_bad_spec_keys_are_rejected(tmp_path, section, values, message):
    with pytest.raises(SpecError, match=message):
        parse_job_spec(tiny_job.table(tmp_path, **{section: values}))


@pytest.mark.fast
def test_bad_sections_and_tasks_are_rejected(tmp_path):
    with pytest.raises(SpecError, match=r"\[task\] \(did you mean 'tasks'\?\); allowed sections"):
        parse_job_spec({**tiny_job.table(tmp_path), "task": {}})
    bad_task = {**tiny_job.table(tmp_path), "tasks": [{"env_name": "pendulum"}]}
    with pytest.raises(SpecError, match=r"\[tasks\[0\]\].*task.env_name = 'pendulum'"):
        parse_job_spec(bad_task)


@pytest.mark.fast
def test_bad_meta_optimizer_option_is_rejected_before_compiling(tmp_path):
    spec = tiny_job.table(tmp_path / "run", meta_optimizer={"popsize": 8})
    with pytest.raises(SpecError, match=r"meta_optimizer.popsize"):
        run_job(spec, progress=False)
    assert not (tmp_path / "run").exists()


# es and pes (persistent inner states, PES accumulators, the shared Adam state of the gradient
# estimators) run in the default suite; metagrad and online_metagrad add 2-3 minutes of compiling.
@pytest.mark.parametrize(
    "meta_optimizer",
    [
        "es",
        pytest.param("pes", marks=pytest.mark.slow),  # exact PES resume: meta_opt/test_contracts.py
        pytest.param("metagrad", marks=pytest.mark.slow),
        pytest.param("online_metagrad", marks=pytest.mark.slow),
    ],
)
def test_resume_after_sigkill_is_exact(tmp_path, meta_optimizer):
    """Uninterrupted run vs. run killed with SIGKILL mid-way and resumed: identical numbers."""
    generations = {"generations": 10, "checkpoint_every": 2}
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    table = tiny_job.table(killed_dir, job=generations)
    table.update(META_OPTIMIZERS[meta_optimizer])
    if meta_optimizer != "es":
        table["job"]["evaluate_mean"] = False
    spec = tmp_path / "spec.toml"
    spec.write_text(dump_toml(table))
    reference = tiny_job.discover(["run", str(spec), "--set", f"job.run_dir={reference_dir}"])
    killed = tiny_job.discover(["run", str(spec)])
    metrics = killed_dir / "metrics.jsonl"
    deadline = time.time() + 400
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
        assert killed.poll() is None and time.time() < deadline, killed.communicate()[0]
        time.sleep(0.02)
    assert killed.poll() is None, "the job finished before it could be killed"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    steps = checkpoint.available_steps(killed_dir)
    assert steps and max(steps) < 10
    resumed = tiny_job.discover(["resume", str(killed_dir)])
    out = resumed.communicate(timeout=400)[0]
    assert resumed.returncode == 0, out
    assert f"resuming at generation {max(steps)}" in out
    ref_out = reference.communicate(timeout=400)[0]
    assert reference.returncode == 0, ref_out

    assert tiny_job.fitness_history(killed_dir) == tiny_job.fitness_history(reference_dir)
    assert len(tiny_job.fitness_history(reference_dir)) == 10
    for kind in ("mean", "best"):
        with (
            np.load(killed_dir / "rules" / f"latest_{kind}.npz") as a,
            np.load(reference_dir / "rules" / f"latest_{kind}.npz") as b,
        ):
            assert sorted(a.files) == sorted(b.files)
            for name in a.files:
                np.testing.assert_array_equal(a[name], b[name])
    history = tiny_job.fitness_history(reference_dir)
    assert history[0]["fitness_mean"] != history[-1]["fitness_mean"]  # equality is not trivial
    if meta_optimizer == "online_metagrad":  # the hyperparameter trajectory is logged and moves
        records = [json.loads(line) for line in (reference_dir / "metrics.jsonl").read_text().splitlines()]
        gammas = [r["hyperparams"]["gamma"] for r in records]
        assert sorted(records[0]["hyperparams"]) == ["gae_lambda", "gamma"]
        assert all(0 < g < 1 for g in gammas) and len(set(gammas)) == len(gammas)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoint.read_run_info(killed_dir)["generation"] == 10
