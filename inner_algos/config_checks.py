"""Field checks for the settings dataclasses of every spec section ([ppo], [rule],
[meta_objective], [meta_optimizer], [job], [train], ...), and the reading of renamed keys.

Every layer's settings use these (the inner algorithms' configs, the rules, the tasks, the
meta-objective, the meta-optimizers), so they live in the lowest package; turning a whole spec
table into a checked dataclass (`discovery.spec_tables.build`) is the spec's business and lives
in `discovery/`.

A class lists its fields' constraints once and calls `check_fields` from `__post_init__`:

    check_fields(self, "ppo", num_envs=POSITIVE_INT, gamma=Interval(0, 1, low_open=True),
                 activation=OneOf(ACTIVATIONS))

Each failure raises ValueError("<section>.<field> = <value> <what it must be>");
`discovery.spec_tables.build` turns it into a SpecError. Checks that relate several fields stay in the class.

Renamed keys: a class lists `OLD_SPELLINGS = {"old": "new"}`; `respell` (called by `build`)
reads an old key as the new one with a one-time note (an `OldSpelling` warning), so existing
specs and run directories keep working, and refuses a table that gives both.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
import warnings
from typing import Any


def did_you_mean(value: Any, choices: typing.Iterable[Any]) -> str:
    """ " (did you mean 'x'?)" naming the choices closest to `value` (difflib, at most 3), or ""
    when none is close; appended to an "unknown ..." message."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


@dataclasses.dataclass(frozen=True)
class Interval:
    """low <= x <= high (either bound may be None = unbounded; *_open makes it strict)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return f"must be {self._text()}"
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return None if low_ok and high_ok else f"must be {self._text()}"

    def _text(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return (
            f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}"
            f"{')' if self.high_open else ']'}"
        )


@dataclasses.dataclass(frozen=True)
class Integer:
    """An int (not a bool) >= low."""

    low: int = 1

    def problem(self, value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= self.low:
            return None
        return "must be a positive integer" if self.low == 1 else f"must be an integer >= {self.low}"


@dataclasses.dataclass(frozen=True)
class OneOf:
    """One of a fixed set of names."""

    choices: tuple

    def problem(self, value: Any) -> str | None:
        if value in self.choices:
            return None
        return f"is unknown{did_you_mean(value, self.choices)}; valid: {', '.join(map(str, self.choices))}"


@dataclasses.dataclass(frozen=True)
class Widths:
    """A list of positive integers (layer widths)."""

    def problem(self, value: Any) -> str | None:
        ok = all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value)
        return None if ok else "must be a list of positive integers"


@dataclasses.dataclass(frozen=True)
class Noted:
    """A constraint whose message ends with a note, e.g. what 0 means."""

    constraint: Any
    note: str

    def problem(self, value: Any) -> str | None:
        problem = self.constraint.problem(value)
        return None if problem is None else f"{problem} {self.note}"


@dataclasses.dataclass(frozen=True)
class FactorOrOff:
    """A factor >= 1, or 0 to turn the feature off."""

    def problem(self, value: Any) -> str | None:
        return None if value == 0 or value >= 1 else "must be >= 1 (a factor) or 0 (off)"


POSITIVE = Interval(0, None, low_open=True)
NON_NEGATIVE = Interval(0, None)
POSITIVE_INT = Integer(1)
NON_NEGATIVE_INT = Integer(0)
UNIT_OPEN_CLOSED = Interval(0, 1, low_open=True)  # (0, 1]: decays, discount factors
UNIT = Interval(0, 1)
FACTOR_OR_OFF = FactorOrOff()


def check_fields(obj: Any, section: str, **constraints: Any) -> None:
    """Raises ValueError naming `section.field` and the value for the first field of `obj` that
    breaks its constraint (an object with `problem(value) -> str | None`)."""
    for field, constraint in constraints.items():
        value = getattr(obj, field)
        problem = constraint.problem(value)
        if problem is not None:
            raise ValueError(f"{section}.{field} = {value!r} {problem}")


def _num(x: float | None) -> str:
    """0 for 0 and 0.0, 0.5 for 0.5: bounds print as a person writes them ("any" for no bound)."""
    if x is None:
        return "any"
    return str(int(x)) if float(x).is_integer() else repr(x)


class SpecError(ValueError):
    """A run spec (file or override) is invalid; the message names the key and the fix."""


class OldSpelling(FutureWarning):
    """A spec used the old spelling of a renamed key (still read; see `respell`)."""


_NOTED: set = set()  # the old keys `respell` has noted in this process


def respell(cls, table: dict, section: str) -> dict:
    """`table` with the old spellings of `cls.OLD_SPELLINGS` ({old: new}) replaced by the new
    ones; each old key used gives one note per process (an `OldSpelling` warning). A table
    that gives a key in both spellings is a SpecError."""
    renamed = getattr(cls, "OLD_SPELLINGS", {})
    if not isinstance(table, dict) or not renamed.keys() & table.keys():
        return table
    table = dict(table)
    for old, new in renamed.items():
        if old not in table:
            continue
        if new in table:
            raise SpecError(
                f"{section}.{old} and {section}.{new} are one key in two spellings; keep only {section}.{new}"
            )
        if old not in _NOTED:
            _NOTED.add(old)
            warnings.warn_explicit(
                f"spec key `{old}` is the old spelling of `{new}`; it is read as "
                f"`{new}` (write `{new}` in new specs)",
                OldSpelling,
                "run spec",
                0,
            )
        table[new] = table.pop(old)
    return table
