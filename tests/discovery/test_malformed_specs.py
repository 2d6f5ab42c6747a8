"""A corpus of malformed run specs: `discover run` refuses each with one line that names the key
or the file, exit code 2, no traceback, and nothing written anywhere.

Most cases run in this process through the real command line (`discovery.cli.main`), with the
job's first heavy step (building the problem) replaced by an error, so a spec that were wrongly
accepted fails its test instead of training; a few run as `discover run` subprocesses to show the
same end to end.
"""

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from discovery import cli
from discovery.job import memory
from discovery.meta_opt import problem
from discovery.spec import dump_toml
from tests.support import tiny_job

RUN_DIR, RUN_FILE = "RUN_DIR", "RUN_FILE"  # replaced by tmp/run and tmp/run_file in a spec's text
MACHINE_BYTES = 16 * 2**30  # the memory of the machine the in-process cases pretend to run on


def spec_text(drop: tuple[str, ...] = (), **sections) -> str:
    """tiny_job's spec with `sections` merged in and the `drop`ped sections removed, as TOML."""
    table = tiny_job.table(RUN_DIR, **sections)
    for name in drop:
        del table[name]
    return dump_toml(table)


@dataclasses.dataclass(frozen=True)
class Case:
    """One malformed spec: its text (or bytes), extra command-line arguments, a setup of the
    working directory (tmp) returning the spec path to use instead of tmp/spec.toml, and the
    pattern the one-line message must match."""

    name: str
    message: str
    text: str | bytes = ""
    args: tuple[str, ...] = ()
    setup: Callable[[Path], Path | None] | None = None

    def write(self, tmp: Path) -> Path:
        """Writes tmp/spec.toml and runs the setup; the path of the spec to run."""
        path = tmp / "spec.toml"
        text = self.text
        if isinstance(text, str):
            text = text.replace(RUN_DIR, str(tmp / "run")).replace(RUN_FILE, str(tmp / "run_file"))
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return (self.setup(tmp) if self.setup else None) or path


def _spec_dir(tmp: Path) -> Path:
    (tmp / "a_directory").mkdir()
    return tmp / "a_directory"


def _file_at(name: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / name).write_text("not a directory\n")

    return setup


def _existing_run(tmp: Path) -> None:
    """tmp/run holds tiny_job's run: its spec, metrics and a (stand-in) checkpoint step."""
    run = tmp / "run"
    (run / "checkpoints" / "2").mkdir(parents=True)
    (run / "spec.toml").write_text(spec_text().replace(RUN_DIR, str(run)))
    (run / "metrics.jsonl").write_text('{"generation": 1}\n{"generation": 2}\n')


def _run_dir(text: str, run_dir: str) -> str:
    return text.replace(f'run_dir = "{RUN_DIR}"', f'run_dir = "{run_dir}"')


VALID = spec_text()
CASES = [
    # the file itself
    Case("empty_file", r"run spec .*spec.toml is empty", ""),
    Case("binary_file", r"run spec .*spec.toml is not UTF-8 text", b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01"),
    Case("invalid_toml", r"run spec .*spec.toml is not valid TOML", "[job\nname = 1"),
    Case("spec_is_a_directory", r"run spec .*a_directory is a directory", VALID, setup=_spec_dir),
    Case(
        "spec_missing",
        r"run spec .*missing.toml does not exist",
        VALID,
        setup=lambda tmp: tmp / "missing.toml",
    ),
    Case("comments_only", r"run spec .*spec.toml is empty", "# nothing here\n"),
    # required sections
    Case("no_tasks", r"no \[\[tasks\]\]", spec_text(drop=("tasks",))),
    Case("no_rule", r"no \[rule\]", spec_text(drop=("rule",))),
    Case(
        "tasks_empty_list",
        r"tasks = \[\] must be a non-empty list",
        "tasks = []\n" + spec_text(drop=("tasks",)),
    ),
    Case(
        "tasks_a_table",
        r"tasks = .* must be a non-empty list of \[\[tasks\]\]",
        spec_text().replace("[[tasks]]", "[tasks]"),
    ),
    Case(
        "meta_optimizer_not_a_table",
        r"\[meta_optimizer\] must be a table, got 5",
        "meta_optimizer = 5\n" + spec_text(drop=("meta_optimizer",)),
    ),
    Case(
        "meta_optimizer_a_string",
        r"\[meta_optimizer\] must be a table, got 'es'",
        'meta_optimizer = "es"\n' + spec_text(drop=("meta_optimizer",)),
    ),
    Case("job_not_a_table", r"\[job\] must be a table, got 5", "job = 5\n" + spec_text(drop=("job",))),
    Case(
        "ppo_not_a_table", r"\[ppo\] must be a table, got 'fast'", 'ppo = "fast"\n' + spec_text(drop=("ppo",))
    ),
    Case("rule_a_string", r"\[rule\] needs a `name` key", 'rule = "lpo"\n' + spec_text(drop=("rule",))),
    Case(
        "task_not_a_table",
        r"\[tasks\[0\]\] must be a table, got 1",
        "tasks = [1]\n" + spec_text(drop=("tasks",)),
    ),
    # non-finite floats, in every section
    Case(
        "sigma_limit_inf",
        r"meta_optimizer.sigma_limit = inf is not a finite number",
        spec_text(meta_optimizer={"sigma_limit": float("inf")}),
    ),
    Case(
        "sigma_init_nan",
        r"meta_optimizer.sigma_init = nan is not a finite number",
        spec_text(meta_optimizer={"sigma_init": float("nan")}),
    ),
    Case(
        "es_learning_rate_inf",
        r"meta_optimizer.learning_rate = inf is not a finite",
        spec_text(meta_optimizer={"learning_rate": float("inf")}),
    ),
    Case(
        "ppo_learning_rate_inf",
        r"ppo.learning_rate = inf is not a finite number",
        spec_text(ppo={"learning_rate": float("inf")}),
    ),
    Case(
        "ppo_learning_rate_nan",
        r"ppo.learning_rate = nan is not a finite number",
        spec_text(ppo={"learning_rate": float("nan")}),
    ),
    Case(
        "ppo_gamma_minus_inf",
        r"ppo.gamma = -inf is not a finite number",
        spec_text(ppo={"gamma": float("-inf")}),
    ),
    Case(
        "ppo_max_grad_norm_inf",
        r"ppo.max_grad_norm = inf is not a finite number",
        spec_text(ppo={"max_grad_norm": float("inf")}),
    ),
    Case(
        "ppo_ent_coef_nan",
        r"ppo.ent_coef = nan is not a finite number",
        spec_text(ppo={"ent_coef": float("nan")}),
    ),
    Case(
        "reward_scale_inf",
        r"tasks\[0\].reward_scale = inf is not a finite number",
        spec_text().replace("[[tasks]]", "[[tasks]]\nreward_scale = inf", 1),
    ),
    Case(
        "randomize_bound_inf",
        r"tasks\[0\].randomize.mass_scale\[1\] = inf is not a finite",
        spec_text().replace("[[tasks]]", "[[tasks]]\nrandomize = { mass_scale = [0.5, inf] }", 1),
    ),
    Case(
        "watchdog_inf",
        r"job.watchdog = inf is not a finite number",
        spec_text(job={"watchdog": float("inf")}),
    ),
    Case(
        "watchdog_min_seconds_nan",
        r"job.watchdog_min_seconds = nan is not a finite number",
        spec_text(job={"watchdog_min_seconds": float("nan")}),
    ),
    Case("rule_eps_nan", r"rule.eps = nan is not a finite number", spec_text(rule={"eps": float("nan")})),
    Case(
        "baselines_nan",
        r"meta_objective.baselines\[0\] = nan is not a finite number",
        spec_text(meta_objective={"baselines": [float("nan")]}),
    ),
    Case(
        "paired_baseline_learned",
        r"meta_objective.baseline_rule = 'lpo' has meta-parameters",
        spec_text(meta_objective={"normalize": "paired", "baseline_rule": "lpo"}),
    ),
    Case(
        "override_inf",
        r"ppo.learning_rate = inf is not a finite number",
        VALID,
        args=("--set", "ppo.learning_rate=inf"),
    ),
    # integers out of range
    Case(
        "num_envs_float_1e9",
        r"ppo.num_envs = 1000000000.0 has the wrong type; expected int",
        spec_text(ppo={"num_envs": 1e9}),
    ),
    Case(
        "num_envs_10_to_12",
        r"ppo.num_envs = 1000000000000 is out of range",
        spec_text(ppo={"num_envs": 10**12}),
    ),
    Case(
        "generations_2_to_63",
        r"job.generations = 9223372036854775808 is out of range",
        spec_text(job={"generations": 2**63}),
    ),
    Case(
        "episode_length_2_to_31",
        r"tasks\[0\].episode_length = 2147483648 is out of range",
        spec_text().replace("episode_length = 50", f"episode_length = {2**31}"),
    ),
    Case(
        "hidden_width_huge",
        r"ppo.actor_hidden\[1\] = 1099511627776 is out of range",
        spec_text(ppo={"actor_hidden": [16, 2**40]}),
    ),
    Case(
        "seed_2_to_70",
        r"job.seed = 1180591620717411303424 .*PRNGKey.*\[0, 4294967296\)",
        spec_text(job={"seed": 2**70}),
    ),
    Case("seed_2_to_32", r"job.seed = 4294967296 .*\[0, 4294967296\)", spec_text(job={"seed": 2**32})),
    Case("seed_negative", r"job.seed = -1 .*\[0, 4294967296\)", spec_text(job={"seed": -1})),
    Case(
        "init_seed_2_to_40",
        r"meta_optimizer.init_seed = 1099511627776 .*PRNGKey",
        spec_text(meta_optimizer={"init_seed": 2**40}),
    ),
    Case(
        "override_seed_huge",
        r"job.seed = 99999999999999999999999 ",
        VALID,
        args=("--set", "job.seed=99999999999999999999999"),
    ),
    # sizes that cannot fit in memory: refused before compiling, naming the knobs
    Case(
        "num_envs_1e6",
        r"memory.*job.population_batch.*ppo.num_envs",
        VALID,  # quickstart's sizes
        args=(
            "--set",
            "ppo.num_envs=1000000",
            "--set",
            "meta_optimizer.population_size=16",
            "--set",
            "job.seeds_per_member=2",
        ),
    ),
    Case(
        "num_envs_10_to_9",
        r"memory.*job.population_batch.*ppo.num_envs",
        VALID,
        args=("--set", "ppo.num_envs=1000000000"),
    ),
    Case(
        "population_10_to_9",
        r"memory.*population of 1,000,000,001 members",
        VALID,
        args=("--set", "meta_optimizer.population_size=1000000000"),
    ),
    Case(
        "seeds_per_member_10_to_8",
        r"memory.*job.seeds_per_member",
        VALID,
        args=("--set", "job.seeds_per_member=100000000"),
    ),
    # unsafe job names: the default run directory is out/<name>
    Case("name_dotdot", r"job.name = '\.\.' .*path", _run_dir(spec_text(job={"name": ".."}), "")),
    Case("name_dot", r"job.name = '\.' .*path", _run_dir(spec_text(job={"name": "."}), "")),
    Case("name_slash", r"job.name = '/' .*path", _run_dir(spec_text(job={"name": "/"}), "")),
    Case(
        "name_escapes", r"job.name = '\.\./\.\./x' .*path", _run_dir(spec_text(job={"name": "../../x"}), "")
    ),
    Case("name_backslash", r"job.name = 'a\\\\b' .*path", _run_dir(spec_text(job={"name": "a\\b"}), "")),
    Case("name_empty", r"job.name = '' ", _run_dir(spec_text(job={"name": ""}), "")),
    # a run directory that holds a run stays as it was
    Case(
        "bad_spec_for_an_existing_run",
        r"meta_optimizer.sigma_limit = inf",
        spec_text(meta_optimizer={"sigma_limit": float("inf")}),
        setup=_existing_run,
    ),
    # unusable run directories
    Case(
        "run_dir_is_a_file",
        r"job.run_dir = .*run_file.* is a file",
        _run_dir(VALID, RUN_FILE),
        setup=_file_at("run_file"),
    ),
    Case(
        "run_dir_under_a_file",
        r"job.run_dir = .*run_file/sub.* is a file",
        _run_dir(VALID, f"{RUN_FILE}/sub"),
        setup=_file_at("run_file"),
    ),
]


def _tree(root: Path) -> dict:
    """Every path under root -> its bytes (files) or None (directories)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def cli_in_process(monkeypatch, tmp_path):
    """`discover` in this process: one device, no compilation cache set up, cwd = tmp_path, and
    an error instead of a job if a spec gets past validation."""
    monkeypatch.setenv("DISCOVER_HOST_DEVICES", "1")
    monkeypatch.setenv("DISCOVER_COMPILATION_CACHE", "0")
    monkeypatch.chdir(tmp_path)

    def accepted(*args, **kwargs):
        raise AssertionError("the malformed spec was accepted: a job started")

    monkeypatch.setattr(memory, "available_bytes", lambda devices: MACHINE_BYTES)
    monkeypatch.setattr(problem, "Problem", accepted)
    monkeypatch.setattr(problem, "measure_baselines", accepted)
    return cli.main


def _assert_refused(code: int, stderr: str, message: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert code == 2, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("discover run: error: ")]
    assert len(errors) == 1, stderr
    assert re.search(message, errors[0]), errors[0]


@pytest.mark.fast
def test_the_corpus_is_large_and_distinct():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.fast
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_malformed_spec_is_refused_with_a_clear_message(case, tmp_path, cli_in_process, capsys):
    path = case.write(tmp_path)
    before = _tree(tmp_path)
    code = cli_in_process(["run", str(path), *case.args])
    stderr = capsys.readouterr().err
    _assert_refused(code, stderr, case.message)
    assert stderr.strip().count("\n") == 0, stderr  # one line
    assert _tree(tmp_path) == before  # nothing written: no run directory, no out/, no spec.toml


def _unwritable(tmp_path: Path) -> Path:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked


@pytest.mark.fast
def test_run_dir_in_a_read_only_directory_is_refused(tmp_path, cli_in_process, capsys):
    locked = _unwritable(tmp_path)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip(
                "running as root: chmod does not stop root from writing (see the "
                "/proc/sys case below for an unwritable place that does)"
            )
        path = tmp_path / "spec.toml"
        path.write_text(_run_dir(VALID, str(locked / "run")))
        before = _tree(tmp_path)
        code = cli_in_process(["run", str(path)])
        _assert_refused(code, capsys.readouterr().err, r"job.run_dir = .*locked/run.* cannot be written")
        assert _tree(tmp_path) == before
    finally:
        locked.chmod(0o700)


@pytest.mark.fast
def test_run_dir_on_a_read_only_filesystem_is_refused(tmp_path, cli_in_process, capsys):
    """/proc/sys is read-only to everyone, root included, in the usual Linux container."""
    target = Path("/proc/sys/discover-test-run")
    try:
        target.mkdir()
    except OSError:
        pass
    else:
        target.rmdir()
        pytest.skip("/proc/sys is writable here")
    path = tmp_path / "spec.toml"
    path.write_text(_run_dir(VALID, str(target)))
    code = cli_in_process(["run", str(path)])
    _assert_refused(code, capsys.readouterr().err, r"job.run_dir = .*discover-test-run.* cannot be written")
    assert not target.exists()


END_TO_END = ("binary_file", "sigma_limit_inf", "name_dotdot")  # the file, a key, the run directory


@pytest.mark.parametrize("name", END_TO_END)
def test_discover_run_refuses_without_a_traceback(name, tmp_path):
    """The real `discover run` in a subprocess (imports jax: seconds each, so only a few cases)."""
    case = next(case for case in CASES if case.name == name)
    path = case.write(tmp_path)
    before = _tree(tmp_path)
    env = {**os.environ, "DISCOVER_HOST_DEVICES": "1", "DISCOVER_COMPILATION_CACHE": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "discovery.cli", "run", str(path), *case.args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    _assert_refused(result.returncode, result.stderr, case.message)
    assert _tree(tmp_path) == before


@pytest.mark.fast
def test_a_binary_metrics_file_is_skipped_line_by_line_with_a_warning_naming_it(tmp_path, capsys):
    """A garbage metrics.jsonl (bytes that are not UTF-8, JSON that is not a record) costs its
    bad lines, not the command."""
    from discovery.evaluation.sources import read_run

    (tmp_path / "metrics.jsonl").write_bytes(
        b'{"generation": 1}\n\xff\xfe\x00garbage\n[1, 2]\n{"generation": 2}\n'
    )
    run = read_run(tmp_path)
    assert [r["generation"] for r in run["fitness_history"]] == [1, 2]
    err = capsys.readouterr().err
    assert re.search(r"warning: .*metrics.jsonl line 2 is not a JSON record; skipped", err)
    assert re.search(r"warning: .*metrics.jsonl line 3 is not a JSON record; skipped", err)


@pytest.mark.fast
def test_a_binary_spec_in_a_run_directory_is_named(tmp_path):
    from discovery.evaluation.sources import read_run
    from discovery.spec import SpecError

    (tmp_path / "spec.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match=r"run spec .*spec.toml is not UTF-8 text"):
        read_run(tmp_path)
