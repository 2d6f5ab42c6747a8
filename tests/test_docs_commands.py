"""Every `discover ...` command shown in README.md and docs/*.md (```bash blocks) is accepted by the
real command line, and the spec it names, with its `--set` overrides, passes validation. Nothing
is compiled or trained: this catches a renamed flag, spec or key in the documentation."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from discovery import cli
from discovery.spec import apply_overrides, load_toml, parse_job_spec, parse_ppo, parse_rule, parse_task

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.fast  # parses text and specs only: 26 cases in ~3 s


def _commands() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text().replace("\\\n", " ")
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            for line in block.splitlines():
                for part in re.split(r"&&|;", _first_pass(line.split("#")[0])):
                    part = part.strip()
                    if "discover " in part and not part.startswith("discover "):  # srun ... discover
                        part = part[part.index("discover ") :]
                    if part.startswith("discover "):
                        found.append((path.relative_to(ROOT).as_posix(), part))
    return found


def _first_pass(line: str) -> str:
    """The body of a one-line `for VAR in A B ...; do BODY; done` loop with $VAR and ${VAR} set
    to A (the first pass); any other line unchanged."""
    loop = re.fullmatch(r"\s*for (\w+) in (\S+)[^;]*; do (.*); done\s*", line)
    if loop is None:
        return line
    name, first, body = loop.groups()
    return re.sub(r"\$\{" + name + r"\}|\$" + name + r"\b", first, body)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="discover")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in cli.COMMANDS:
        command.register(subparsers)
    return parser


def test_the_docs_show_commands():
    assert len(_commands()) >= 20


@pytest.mark.parametrize("page, command", _commands())
def test_documented_command_parses_and_its_spec_validates(page, command, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = _parser().parse_args(shlex.split(command)[1:])
    spec = getattr(args, "spec", None)
    if spec is None:
        return
    table = apply_overrides(load_toml(spec), args.set)
    if args.command == "run":
        parse_job_spec(table)
    else:
        parse_task(table.get("task", {}))
        parse_ppo(table.get("ppo", {}))
        parse_rule(table.get("rule", {"name": "ppo_clip"}))


def test_a_one_line_loop_is_read_as_its_first_pass():
    line = "for K in 0 1 2; do discover run a.toml --set job.seed=$K --out out/r${K}_x; done"
    assert _first_pass(line) == "discover run a.toml --set job.seed=0 --out out/r0_x"
    assert _first_pass("discover run a.toml") == "discover run a.toml"
