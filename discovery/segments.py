"""Old import path of `discovery.meta_opt.segments` (kept for callers outside the meta-optimizers;
import from `discovery.meta_opt.segments`)."""

from discovery.meta_opt.segments import TruncationSchedule, make_runs  # noqa: F401
