"""The population axis sharded over 2 forced host devices gives the 1-device numbers.

Population 4 + the ES mean = 5 members: on 2 devices they are padded to 6, so this also checks
that a population that does not divide the device count works.
"""

import numpy as np
import tiny_job

TOLERANCE = 1e-4  # relative; XLA may vectorise a 3-member and a 5-member batch differently


def test_two_devices_match_one_device(tmp_path):
    spec = tiny_job.write_spec(tmp_path / "spec.toml", tmp_path / "unused")
    runs = {}
    for devices in (1, 2):
        run_dir = tmp_path / f"devices{devices}"
        runs[devices] = (run_dir, tiny_job.discover(
            ["run", str(spec), "--set", f"job.run_dir={run_dir}"], devices=devices))
    for devices, (run_dir, proc) in runs.items():
        out = proc.communicate(timeout=500)[0]
        assert proc.returncode == 0, out
        assert f"on {devices} device(s)" in out
    one, two = (tiny_job.fitness_history(runs[d][0]) for d in (1, 2))
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        for key in ("fitness_mean", "fitness_max", "fitness_min", "mean_fitness", "best_so_far"):
            np.testing.assert_allclose(b[key], a[key], rtol=TOLERANCE, err_msg=key)
        assert a["num_nonfinite"] == b["num_nonfinite"]
    with np.load(runs[1][0] / "rules" / "latest_mean.npz") as a, \
            np.load(runs[2][0] / "rules" / "latest_mean.npz") as b:
        for name in a.files:
            np.testing.assert_allclose(b[name], a[name], rtol=TOLERANCE, atol=1e-6)
