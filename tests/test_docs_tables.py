"""The documentation's tables that restate code are checked against the code, so that a key, a
default, a rule option, an estimator, a task source or a resumable key that changes in one place
and not the other fails here: docs/specs.md (every spec section's keys and defaults, the
estimators' options, the resumable keys), docs/rules.md (every rule's options), docs/tasks.md
(every task source and its environments) and docs/estimators.md (every registered estimator)."""

from __future__ import annotations

import dataclasses
import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from discovery.job.files import RESUMABLE
from discovery.meta_opt import META_OPTIMIZERS
from discovery.meta_opt.truncated import SegmentOptions
from inner_algos.envs import SOURCES
from inner_algos.registry import INNER_ALGOS
from inner_algos.rules import RULES

pytestmark = pytest.mark.fast

DOCS = Path(__file__).resolve().parents[1] / "docs"
NO_VALUE = object()

# Defaults a table states in words because they are resolved from other keys: (section, key) -> why.
IN_WORDS = {
    ("tasks", "backend"): "the source's first backend (brax: spring); empty for sources without",
    ("tasks", "episode_length"): "each source's own default",
    ("tasks", "randomize"): "none",
    ("job", "wandb"): "a table of its own",
}


def _sections(text: str) -> dict[str, tuple[str, str]]:
    """{section: (dotted class, the section's text up to the next heading)} of the headings
    '### `[section]` (`module.Class`)' (or '[[section]]')."""
    found = {}
    pattern = r"^### `\[\[?([\w.]+)\]?\]` \(`([\w.]+)`\)\n(.*?)(?=^#)"
    for match in re.finditer(pattern, text + "\n#", flags=re.S | re.M):
        found[match.group(1)] = (match.group(2), match.group(3))
    return found


def _rows(text: str) -> list[list[str]]:
    """The body rows of the markdown tables in `text`, as lists of cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows[1:] if rows else rows


def _value(text: str) -> Any:
    """A table's default as TOML reads it ("run", 0, true, [64, 64], 3e-4), else NO_VALUE."""
    try:
        return tomllib.loads(f"x = {text}")["x"]
    except tomllib.TOMLDecodeError:
        return NO_VALUE


def _plain(value: Any) -> Any:
    return list(map(_plain, value)) if isinstance(value, (tuple, list)) else value


def _class(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _defaults(cls: type) -> dict[str, Any]:
    return {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(cls)
        if f.init
    }


SPECS = (DOCS / "specs.md").read_text()
SECTIONS = {k: v for k, v in _sections(SPECS).items() if k not in ("rule", "inner", "meta_optimizer")}


def test_the_spec_sections_with_tables_are_found():
    inner = {entry.section for entry in INNER_ALGOS.values()}  # every registered inner algorithm's
    assert set(SECTIONS) == {"job", "tasks", "meta_objective", *inner}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_spec_tables_list_every_key_with_its_default(section):
    dotted, text = SECTIONS[section]
    defaults = _defaults(_class(dotted))
    documented = {}
    for row in _rows(text):
        keys = re.findall(r"`\[?(?:job\.)?([\w]+)\]?`", re.sub(r"\(.*?\)", "", row[0]))
        for key in keys:
            documented[key] = row[1]
    assert set(documented) == set(defaults), f"[{section}] documents {sorted(documented)}"
    for key, text in documented.items():
        if (section, key) in IN_WORDS:
            continue
        value = _value(text)
        assert value is not NO_VALUE, f"[{section}] {key}: default {text!r} is not a TOML value"
        assert value == _plain(defaults[key]), f"[{section}] {key}: documented {text}, code {defaults[key]!r}"


def test_the_resumable_keys_are_those_the_code_lets_change():
    paragraph = re.search(
        r"^Only these keys may differ when a run directory is resumed.*?\n\n", SPECS, re.S | re.M
    )
    assert paragraph, "docs/specs.md: the paragraph listing the resumable keys is missing"
    assert set(re.findall(r"`(job\.[\w.]+)`", paragraph.group(0))) == set(RESUMABLE)


def _bracketed(text: str) -> dict[str, Any]:
    """{option: default} of the "`option` [default]" pairs in `text` whose default is a value."""
    pairs = re.findall(r"`(\w+)` \[([^\]]*?)[;\]]", text)
    return {name: value for name, raw in pairs if (value := _value(raw)) is not NO_VALUE}


def _check_options(where: str, cls: type, text: str) -> None:
    defaults = _defaults(cls)
    missing = [f for f in defaults if f"`{f}`" not in text]
    assert not missing, f"{where}: options {missing} are not documented"
    for name, value in _bracketed(text).items():
        if name in defaults:
            assert value == _plain(defaults[name]), (
                f"{where}: {name} documented {value!r}, code {defaults[name]!r}"
            )


def test_every_estimator_and_its_options_are_documented():
    section = _sections(SPECS)["meta_optimizer"][1]
    segment = re.search(r"Segment options.*?\n\n", section, re.S)
    assert segment, "the segment options paragraph is missing"
    rows = {name: row[1] for row in _rows(section) for name in re.findall(r"`(\w+)`", row[0].split("(")[0])}
    assert set(rows) == set(META_OPTIMIZERS), f"documented estimators {sorted(rows)}"
    for name, text in rows.items():
        options = META_OPTIMIZERS[name].options
        own = {f.name for f in dataclasses.fields(options)} - {
            f.name for f in dataclasses.fields(SegmentOptions)
        }
        if issubclass(options, SegmentOptions):
            _check_options(f"{name} (segment)", SegmentOptions, segment.group(0))
        assert all(f"`{f}`" in text for f in own), f"{name}: not all of {sorted(own)} documented"
    estimators = (DOCS / "estimators.md").read_text()
    listed = {m for m in re.findall(r"^\| `(\w+)` \|", estimators, re.M)}
    assert set(META_OPTIMIZERS) <= listed, f"docs/estimators.md lacks {set(META_OPTIMIZERS) - listed}"


def test_every_rule_and_its_options_are_documented():
    text = (DOCS / "rules.md").read_text()
    table = text.split("## Options of each rule", 1)[1]
    rows = {re.findall(r"`(\w+)`", row[0])[0]: row[1] for row in _rows(table) if row[0].startswith("`")}
    assert set(rows) == set(RULES), f"docs/rules.md lists options of {sorted(rows)}"
    for name, cell in rows.items():
        _check_options(f"rule {name}", RULES[name], cell)


def test_every_task_source_and_environment_is_documented():
    text = (DOCS / "tasks.md").read_text()
    table = re.search(r"^## Sources\n.*?(^\|.*?)\n\n", text, re.S | re.M)
    assert table, "docs/tasks.md: the '## Sources' table is missing"
    rows = {row[0].strip("`"): row for row in _rows(table.group(1))}
    assert set(rows) == set(SOURCES), f"docs/tasks.md's table lists {sorted(rows)}"
    for name, source in SOURCES.items():
        row = " | ".join(rows[name])
        if name != "brax":  # brax's registry is brax's own (its names: `inner_algos.envs.env_names()`)
            missing = [env for env in source.env_names() if f"`{env}`" not in row]
            assert not missing, f"source {name}: environments {missing} are not in docs/tasks.md"
        for field in source.randomizable(source.env_names()[0]) if name == "brax" else ():
            assert f"`{field}`" in row, f"source {name}: randomizable {field} not documented"


def _layout() -> dict[str, str]:
    """{directory: its entry} of docs/architecture.md's layout block (an entry starts at column 0
    with 'dir/' and runs over its indented continuation lines)."""
    text = (DOCS / "architecture.md").read_text()
    block = re.search(r"^```\n(inner_algos/.*?)^```", text, re.S | re.M)
    assert block, "docs/architecture.md: the layout block is missing"
    entries: dict[str, str] = {}
    current = ""
    for line in block.group(1).splitlines():
        if line and not line[0].isspace():
            current, _, line = line.partition(" ")
            entries[current] = ""
        entries[current] += " " + line
    return entries


def test_the_architecture_layout_lists_every_module():
    root = DOCS.parent
    entries = _layout()
    for package in ("inner_algos", "meta_objectives", "discovery"):
        for init in sorted((root / package).rglob("__init__.py")):
            folder = init.parent.relative_to(root).as_posix() + "/"
            assert folder in entries, f"docs/architecture.md's layout has no entry for {folder}"
            modules = {p.name for p in init.parent.glob("*.py") if p.name != "__init__.py"}
            listed = set(re.findall(r"\b(\w+\.py)\b", entries[folder]))
            assert listed == modules, (
                f"{folder}: the layout lists {sorted(listed)}, the code has {sorted(modules)}"
            )
