"""`discover run SPEC [--set key=value ...]` and `discover resume RUN_DIR`: the command line of
the discovery job (`discovery.job.runner`), with its exit codes (`run_from_cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

from discovery.job import distributed, launch
from discovery.job.files import SPEC_FILE, JobFailed
from discovery.job.runner import JobInterrupted, run_job
from discovery.spec import SpecError, add_override_argument, apply_overrides, load_toml


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run", help="run (or continue) a discovery job: meta-learn a rule with a meta-optimizer"
    )
    run.add_argument("spec", help="run spec TOML (see runs/quickstart.toml)")
    add_override_argument(run, "override a spec key, e.g. --set job.generations=50 (repeatable)")
    add_restart_argument(run)
    distributed.add_arguments(run)
    run.set_defaults(func=main_run)
    resume = subparsers.add_parser("resume", help="continue the job in a run directory")
    resume.add_argument("run_dir", help="directory written by `discover run`")
    add_override_argument(resume, "e.g. --set job.generations=200 to extend the budget")
    add_restart_argument(resume)
    distributed.add_arguments(resume)
    resume.set_defaults(func=main_resume)


def add_restart_argument(parser) -> None:
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start from generation 0: first move the run directory's files into "
        "RUN_DIR/replaced-<UTC time>/ (nothing is deleted)",
    )


def child_flags(args) -> list[str]:
    """The --set and --restart flags of `args` again, for the local launcher's children."""
    return [*launch.set_flags(args.set), *(["--restart"] if args.restart else [])]


def main_run(args) -> int:
    if args.processes > 1:
        return launch.launch_local(["run", args.spec, *child_flags(args)], args.processes)
    table = load_toml(args.spec)
    if not table:
        raise SpecError(
            f"run spec {args.spec} is empty; a discovery spec needs [[tasks]] and "
            f"[rule] at least (runs/quickstart.toml shows every key)"
        )
    return run_from_cli(apply_overrides(table, args.set), args)


def main_resume(args) -> int:
    if args.processes > 1:
        return launch.launch_local(["resume", args.run_dir, *child_flags(args)], args.processes)
    run_dir = Path(args.run_dir)
    if not (run_dir / SPEC_FILE).exists():
        raise SpecError(
            f"{run_dir} is not a run directory: it holds no {SPEC_FILE}; start a job with `discover run SPEC`"
        )
    table = apply_overrides(load_toml(run_dir / SPEC_FILE), args.set)
    table.setdefault("job", {})["run_dir"] = str(run_dir)
    return run_from_cli(table, args)


def run_from_cli(table: dict, args) -> int:
    """Runs the job; the exit code: 0 finished, 128 + signal number interrupted (130 SIGINT,
    143 SIGTERM: saved, unless a second signal cut the generation short), 1 failed (one line)."""
    try:
        with distributed.session(distributed.settings(args)):
            return run_job(table, restart=args.restart).exit_code
    except JobInterrupted as err:
        print(f"discover {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except JobFailed as err:
        print(f"discover {args.command}: error: {err}", file=sys.stderr)
        return 1
