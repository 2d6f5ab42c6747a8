"""Experiment trackers (`discovery.job.loggers`): TensorBoard's event files and the offline wandb
run hold metrics.jsonl's values for every generation, also across a SIGKILL and resume; a failing
tracker warns once and the job goes on; a tracker that is not installed is refused before
anything is written; `discover eval --loggers` logs its tables, curves and figures.

The event files are read back with TensorBoard's own reader (EventAccumulator, which applies
the purge of a resumed run), the wandb run from its .wandb file (a LevelDB-format log of
protobuf records, wandb's offline store).
"""

import importlib.util
import json
import re
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from discovery.job.loggers import JobTrackers, scalars
from discovery.spec import JobSettings, SpecError, WandbSettings, parse_job_spec
from tests.support import tiny_job

EXTRA = "pip install -e '.[tracking]'"


def needs(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} ({EXTRA})")


def tensorboard_scalars(directory: Path) -> dict[int, dict[str, float]]:
    """{step: {tag: value}} as TensorBoard shows the run in `directory` (purges applied); a
    (tag, step) seen twice fails."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    out: dict[int, dict[str, float]] = {}
    for tag in acc.Tags()["scalars"]:
        for event in acc.Scalars(tag):
            assert tag not in out.setdefault(event.step, {}), (tag, event.step)
            out[event.step][tag] = event.value
    return out


def tensorboard_texts(directory: Path) -> dict[str, str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(directory), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: acc.Tensors(tag)[-1].tensor_proto.string_val[0].decode() for tag in acc.Tags()["tensors"]}


def wandb_records(path: Path):
    """The protobuf records of a .wandb file: a 7-byte header (':W&B', magic, version), then
    32 KiB blocks of chunks (crc32c, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, pending = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # too small for a chunk header: padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def wandb_history(run_dir: Path) -> tuple[dict[int, dict], str]:
    """({step: {key: value}}, run id) of the newest offline run under run_dir/wandb (the one to
    sync: each start logs the whole history); a step logged twice fails."""
    (path,) = (run_dir / "wandb" / "latest-run").glob("run-*.wandb")
    history = {}
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            step = record.history.step.num
            assert step not in history, f"step {step} logged twice"
            items = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }  # a key with '/' is a nested_key
            history[step] = {k: v for k, v in items.items() if not k.startswith("_")}
    return history, path.stem.removeprefix("run-")


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_tensorboard_equals_metrics(run_dir: Path) -> None:
    """Every generation's numeric fields, exactly (as float32, TensorBoard's scalar type)."""
    records = metrics(run_dir)
    got = tensorboard_scalars(run_dir / "tb")
    assert sorted(got) == [r["generation"] for r in records]
    for record in records:
        want = {k: np.float32(v) for k, v in scalars(record).items()}
        assert got[record["generation"]] == want, record["generation"]


def test_scalars_are_the_numeric_fields_flattened_with_slashes():
    record = {
        "generation": 4,
        "fitness_max": 2.5,
        "num_nonfinite": 1,
        "sigma": None,
        "task_scores": {"hopper/spring": 0.5, "ant/spring": None},
        "hyperparams": {"gamma": 0.99},
        "tasks": ["hopper/spring"],
        "flag": True,
        "device_change": {"from": 1, "to": 2, "generation": 5},
    }
    assert scalars(record) == {
        "fitness_max": 2.5,
        "num_nonfinite": 1.0,
        "task_scores/hopper/spring": 0.5,
        "hyperparams/gamma": 0.99,
        "device_change/from": 1.0,
        "device_change/to": 2.0,
        "device_change/generation": 5.0,
    }


@needs("tensorboardX", "tensorboard", "wandb")
@pytest.mark.slow  # minutes of the default suite; run with -m slow
def test_trackers_hold_metrics_values_across_a_failure_a_kill_and_a_resume(tmp_path, monkeypatch):
    """The wandb write of generation 2 hits a full disk (warned once, the job goes on); the job
    is SIGKILLed in generation 5, after generation 4 is logged and checkpoint 3 saved. The
    resume recomputes 4 and 5: TensorBoard logs them again over a purge of the killed run's 4;
    the same wandb run gets 1-3 from the history, then 4 and 5, in a new offline-run directory."""
    run_dir = tmp_path / "run"
    spec = tiny_job.write_spec(
        tmp_path / "spec.toml",
        run_dir,
        job={"generations": 5, "checkpoint_every": 3, "loggers": ["jsonl", "tensorboard", "wandb"]},
    )
    monkeypatch.setenv("DISCOVER_FAULT", "wandb:2:enospc,mid_generation:5:kill")
    killed = tiny_job.discover(["run", str(spec)])
    out = killed.communicate(timeout=500)[0]
    assert killed.returncode == -9, out
    assert out.count("logger failed") == 1, out  # the line may follow the progress bar's
    assert "warning: the wandb logger failed (OSError: [Errno 28] No space left on device" in out
    state = json.loads((run_dir / "trackers.json").read_text())
    assert state["tensorboard"]["logged"] == 4 and state["wandb"]["logged"] == 1
    assert len(metrics(run_dir)) == 4

    monkeypatch.delenv("DISCOVER_FAULT")
    resumed = tiny_job.discover(["resume", str(run_dir)])
    out = resumed.communicate(timeout=500)[0]
    assert resumed.returncode == 0, out
    assert "resuming at generation 3" in out and "Traceback" not in out and "warning" not in out

    assert_tensorboard_equals_metrics(run_dir)
    config = tensorboard_texts(run_dir / "tb")["config/text_summary"]
    assert json.loads(config.removeprefix("```json").removesuffix("```"))["job"]["name"] == "tiny"
    history, run_id = wandb_history(run_dir)
    assert run_id == json.loads((run_dir / "trackers.json").read_text())["wandb"]["id"]
    assert len(list((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))) == 2  # one run, two starts
    assert history == {r["generation"]: scalars(r) for r in metrics(run_dir)}
    assert sorted(history) == [1, 2, 3, 4, 5]
    for kind in ("mean", "best"):  # the rules exported with checkpoint 5
        saved = run_dir / "wandb" / "latest-run" / "files" / "rules" / f"gen_000005_{kind}.npz"
        assert saved.read_bytes() == (run_dir / "rules" / saved.name).read_bytes()


@needs("tensorboardX", "tensorboard", "wandb")
@pytest.mark.parametrize("name", ["tensorboard", "wandb"])
def test_a_failing_tracker_is_warned_once_and_resume_logs_what_it_missed(tmp_path, monkeypatch, name):
    """Generation 2's write hits a full disk: one warning, the tracker is dropped, the records
    after it are not logged and nothing raises; a resume at generation 3 logs them."""
    settings = JobSettings(loggers=("jsonl", name))
    records = [{"generation": g, "fitness_max": float(g), "task_scores": {"a": g / 2}} for g in (1, 2, 3)]
    monkeypatch.setenv("DISCOVER_FAULT", f"{name}:2:enospc")
    trackers = JobTrackers(tmp_path, settings, {"job": {"name": "x"}}, [])
    with pytest.warns(RuntimeWarning, match=rf"the {name} logger failed \(OSError: \[Errno 28\]") as seen:
        for record in records:
            trackers(record, None)
    trackers.close()
    assert len(seen) == 1
    assert json.loads((tmp_path / "trackers.json").read_text())[name]["logged"] == 1

    monkeypatch.delenv("DISCOVER_FAULT")
    JobTrackers(tmp_path, settings, {"job": {"name": "x"}}, records).close()  # a resume at 3
    want = {r["generation"]: scalars(r) for r in records}
    if name == "wandb":
        import wandb

        wandb.teardown()  # as at the end of a process: wandb has written all it was given
        assert wandb_history(tmp_path)[0] == want
    else:
        assert tensorboard_scalars(tmp_path / "tb") == {
            g: {k: np.float32(v) for k, v in values.items()} for g, values in want.items()
        }


@pytest.mark.parametrize(
    "missing, loggers", [("tensorboardX", ["jsonl", "tensorboard"]), ("wandb", ["jsonl", "wandb"])]
)
def test_a_tracker_that_is_not_installed_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, missing, loggers
):
    from discovery.job.runner import run_job

    monkeypatch.setitem(sys.modules, missing, None)  # what importlib finds for a missing package
    table = tiny_job.table(tmp_path / "run", job={"loggers": loggers})
    with pytest.raises(
        SpecError,
        match=rf"asks for {loggers[1]}, but {missing} is not installed: "
        rf"install the tracking extra \({re.escape(EXTRA)}\)",
    ):
        run_job(table, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "loggers, message",
    [
        (["jsonl", "tb"], r"'tb' is not a logger; choose from jsonl, tensorboard, wandb"),
        (["wandb"], r"lacks 'jsonl'"),
        (["jsonl", "jsonl"], r"names a logger twice"),
    ],
)
def test_bad_loggers_are_named(tmp_path, loggers, message):
    with pytest.raises(SpecError, match=rf"job.loggers = .*{message}"):
        parse_job_spec(tiny_job.table(tmp_path, job={"loggers": loggers}))
    with pytest.raises(SpecError, match=r"job.wandb.mode = 'cloud' must be one of offline, online"):
        parse_job_spec(tiny_job.table(tmp_path, job={"wandb": {"mode": "cloud"}}))


def test_the_new_keys_leave_older_specs_unchanged_and_may_change_on_resume(tmp_path):
    from discovery.job.files import RESUMABLE, spec_differences

    plain = parse_job_spec(tiny_job.table(tmp_path)).table
    assert "loggers" not in plain["job"] and "wandb" not in plain["job"]  # spec.toml as before
    tracked = parse_job_spec(
        tiny_job.table(tmp_path, job={"loggers": ["jsonl"], "wandb": {"project": "p", "mode": "online"}})
    ).table
    assert tracked["job"]["wandb"] == {"project": "p", "entity": "", "group": "", "mode": "online"}
    assert spec_differences(plain, tracked, ignore=RESUMABLE) == []


@needs("tensorboardX")
def test_only_the_primary_process_logs(tmp_path):
    settings = JobSettings(loggers=("jsonl", "tensorboard"))
    trackers = JobTrackers(tmp_path, settings, {}, [{"generation": 1, "fitness_max": 1.0}], primary=False)
    trackers({"generation": 2, "fitness_max": 2.0}, None)
    trackers.exported(2)
    trackers.close()
    assert list(tmp_path.iterdir()) == []


@needs("tensorboardX", "tensorboard", "wandb")
def test_eval_logs_tables_curves_and_figures(tmp_path):
    from discovery.evaluation import plots, tracking
    from discovery.evaluation import results as eval_results
    from inner_algos.envs import Task
    from inner_algos.ppo import PPOConfig

    curves = {
        "lpo": np.array([[10.0, 30.0, 50.0], [10.0, 20.0, np.nan]]),
        "ppo_clip": np.array([[10.0, 20.0, 30.0], [10.0, 30.0, 40.0]]),
    }
    task = eval_results.task_results(
        curves, np.array([0, 2, 4]), 128, False, PPOConfig(), Task(), random_return=5.0, reference="ppo_clip"
    )
    label = "inverted_pendulum/spring"
    results = {
        "evaluated": "lpo",
        "tasks": {label: task},
        "pooled_normalized": eval_results.pooled({label: task}),
    }
    plots.scores_figure(
        tmp_path / "summary.png", {label: {"lpo": {"value": 1.3, "ci": [1.0, 1.5]}}}, "score", "title"
    )
    with pytest.raises(
        ValueError,
        match=r"--loggers = \['tb'\]: 'tb' is not a logger; choose from "
        r"tensorboard, wandb",
    ):
        tracking.parse_loggers("tb")
    manifest = {"rule": {"name": "lpo"}, "train_tasks": [label], "python": "3.11", "spec": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no tracker may fail
        for pooled in (9.0, None):  # an evaluation again into the same --out replaces the first
            results["pooled_normalized"] = (
                {"lpo": {"iqm": {"value": pooled}}} if pooled else (eval_results.pooled({label: task}))
            )
            tracking.log_evaluation(
                tracking.parse_loggers("tensorboard,wandb"), tmp_path, results, manifest, WandbSettings()
            )

    got = tensorboard_scalars(tmp_path / "tb")
    assert {
        step: values[f"{label}/return/lpo"] for step, values in got.items() if f"{label}/return/lpo" in values
    } == {0: 10.0, 256: 30.0, 512: 50.0}  # finite seeds
    assert got[0][f"{label}/return/ppo_clip"] == 10.0 and got[512][f"{label}/return/ppo_clip"] == 35.0
    assert got[0]["pooled_normalized_iqm/lpo"] == pytest.approx(
        results["pooled_normalized"]["lpo"]["iqm"]["value"]
    )
    texts = tensorboard_texts(tmp_path / "tb")
    assert json.loads(texts["config/text_summary"].removeprefix("```json").removesuffix("```")) == manifest
    table = texts[f"{label}/table/text_summary"]
    assert "| lpo | 50.0 |" in table and "| 1/2 |" in table
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert set(acc.Tags()["images"]) == {"summary"}  # no curves PNG was drawn here
    import wandb

    wandb.teardown()  # as at the end of a process: wandb has written all it was given
    history, _ = wandb_history(tmp_path)  # media are logged as {key}/_type, path, ...
    assert history[0][f"{label}/table/_type"] == history[0][f"{label}/return_table/_type"] == "table-file"
    assert history[0]["summary/_type"] == "image-file"
    assert history[0]["pooled_normalized_iqm/lpo"] == pytest.approx(got[0]["pooled_normalized_iqm/lpo"])
