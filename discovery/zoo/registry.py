"""The zoo's registry: `Published` entries by name (see `discovery.zoo`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from inner_algos.config_checks import did_you_mean
from inner_algos.rules import Rule

PREFIX = "zoo:"


@dataclasses.dataclass(frozen=True)
class Published:
    """A published rule.

    name: "open/breakout" (addressed as "zoo:open/breakout"); rule: builds the rule (its family is
    the entry's); meta_params: loads its meta-params given the rule (package data read here,
    nothing downloaded); about: what it is, where it came from (repository + commit),
    paper and licence, printed by `discover inspect`; data: the package-data file of its numbers
    (relative to `discovery/zoo/data/`), or None for a rule without meta-params; spec: the run
    spec sections it was trained with, as far as known ([ppo], [[tasks]]): `discover eval`
    starts its inner config from them, as it does from a run directory's spec.
    """

    name: str
    rule: Callable[[], Rule]
    meta_params: Callable[[Rule], Any]
    about: str
    data: str | None = None
    spec: dict = dataclasses.field(default_factory=dict)

    def load(self) -> tuple[Rule, Any]:
        rule = self.rule()
        return rule, self.meta_params(rule)

    @property
    def family(self) -> str:
        """The rule's family."""
        return self.rule().family

    @property
    def path(self) -> Path | None:
        """The package-data file holding the numbers, if any."""
        return None if self.data is None else data_path(self.data)


PUBLISHED: dict[str, Published] = {}


def data_path(relative: str) -> Path:
    """A file under discovery/zoo/data/ (package data)."""
    return Path(str(resources.files("discovery.zoo") / "data" / relative))


def register_published(entry: Published) -> Published:
    """Adds `entry` to the registry; a second entry of the same name is an error."""
    if entry.name in PUBLISHED:
        raise ValueError(f"zoo name {entry.name!r} is already registered")
    PUBLISHED[entry.name] = entry
    return entry


def published_names() -> list[str]:
    return sorted(PUBLISHED)


def get_published(name: str) -> Published:
    """The entry called `name` ("open/breakout" or "zoo:open/breakout"); ValueError listing the
    registered names, with the closest ones first when the name looks like a typo."""
    key = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if key in PUBLISHED:
        return PUBLISHED[key]
    names = [PREFIX + n for n in published_names()]
    raise ValueError(
        f"zoo rule {name!r} is unknown{did_you_mean(PREFIX + key, names)}; registered: {', '.join(names)}"
    )
