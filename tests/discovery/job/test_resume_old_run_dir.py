"""A run directory written by the code before the package layout changed (tiny job, 2 generations,
checkpoint at 2; made with commit f87de28) resumes on today's code and continues with exactly the
generation the old code computed next (`generation_3_of_the_old_code.jsonl`, from the same spec run
for 3 generations by the old code, on an AMD EPYC; 3 tiny generations reproduce across CPU models
as the golden histories do)."""

import json
import shutil
from pathlib import Path

from tests.support import tiny_job

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_run_directory_of_the_old_layout_resumes_bit_for_bit(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "run_written_before_the_layout", run_dir)
    proc = tiny_job.discover(["resume", str(run_dir), "--set", "job.generations=3"])
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    expected = json.loads((FIXTURES / "generation_3_of_the_old_code.jsonl").read_text())
    history = tiny_job.fitness_history(run_dir)
    assert [h["generation"] for h in history] == [1, 2, 3]
    assert history[2] == {key: expected[key] for key in tiny_job.FITNESS_KEYS}
