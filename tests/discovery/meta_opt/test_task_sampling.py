"""tasks_per_generation: K of the spec's tasks drawn per generation, common to all members,
logged, one compile for every draw; bad values fail before any work."""

import pytest

from discovery.job.runner import run_job
from discovery.spec import SpecError, parse_job_spec
from tests.support import tiny_job

TASKS = [
    {"env_name": "inverted_pendulum", "episode_length": 50},
    {"source": "gymnax", "env_name": "CartPole-v1", "episode_length": 50},
]
LABELS = ["inverted_pendulum/spring", "gymnax:CartPole-v1"]


def test_one_task_per_generation_is_drawn_logged_and_compiled_once(tmp_path):
    table = {
        **tiny_job.table(
            tmp_path / "run", job={"generations": 4, "tasks_per_generation": 1, "evaluate_mean": False}
        ),
        "tasks": TASKS,
    }
    result = run_job(table, progress=False)
    assert result.traces == 1  # one program serves every draw
    drawn = [r["tasks"] for r in result.history]
    assert all(len(d) == 1 and d[0] in LABELS for d in drawn)
    assert len({d[0] for d in drawn}) == 2  # both tasks come up in 4 generations (this seed)
    for record in result.history:
        used = record["tasks"][0]
        other = next(label for label in LABELS if label != used)
        assert record["task_scores"][other] is None  # not trained this generation
        # fitness (normalize = "none") is the drawn task's raw score, member by member
        assert record["fitness_mean"] == pytest.approx(record["task_scores"][used], rel=1e-6)


@pytest.mark.parametrize(
    "job, meta_optimizer, message",
    [
        ({"tasks_per_generation": 3}, {}, r"job.tasks_per_generation = 3 exceeds the 2 \[\[tasks\]\] listed"),
        ({"tasks_per_generation": -1}, {}, r"job.tasks_per_generation = -1 must be >= 0"),
        ({"tasks_per_generation": 1}, {"name": "pes"}, r"only meta_optimizer.name = \"es\" supports"),
    ],
)
def test_bad_task_sampling_fails_before_any_work(tmp_path, job, meta_optimizer, message):
    table = {**tiny_job.table(tmp_path / "run", job=job), "tasks": TASKS}
    if meta_optimizer:
        table["meta_optimizer"] = meta_optimizer
    with pytest.raises(SpecError, match=message):
        parse_job_spec(table)
    with pytest.raises(SpecError, match=message):
        run_job(table, progress=False)
    assert not (tmp_path / "run").exists()
