"""One validator for the settings dataclasses of every spec section ([ppo], [rule],
[meta_objective], [meta_optimizer], [job], [train], ...).

A class lists its fields' constraints once and calls `check_fields` from `__post_init__`:

    check_fields(self, "ppo", num_envs=POSITIVE_INT, gamma=Interval(0, 1, low_open=True),
                 activation=OneOf(ACTIVATIONS))

Each failure raises ValueError("<section>.<field> = <value> <what it must be>"); `spec.build`
turns it into a SpecError. Checks that relate several fields stay in the class.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


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
        return (f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}"
                f"{')' if self.high_open else ']'}")


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
        return None if value in self.choices else f"is unknown; valid: {', '.join(map(str, self.choices))}"


@dataclasses.dataclass(frozen=True)
class Widths:
    """A list of positive integers (layer widths)."""

    def problem(self, value: Any) -> str | None:
        ok = all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value)
        return None if ok else "must be a list of positive integers"


POSITIVE = Interval(0, None, low_open=True)
NON_NEGATIVE = Interval(0, None)
POSITIVE_INT = Integer(1)
NON_NEGATIVE_INT = Integer(0)
UNIT_OPEN_CLOSED = Interval(0, 1, low_open=True)  # (0, 1]: decays, discount factors
UNIT = Interval(0, 1)


def check_fields(obj: Any, section: str, **constraints: Any) -> None:
    """Raises ValueError naming `section.field` and the value for the first field of `obj` that
    breaks its constraint (an object with `problem(value) -> str | None`)."""
    for field, constraint in constraints.items():
        value = getattr(obj, field)
        problem = constraint.problem(value)
        if problem is not None:
            raise ValueError(f"{section}.{field} = {value!r} {problem}")


def _num(x: float) -> str:
    """0 for 0 and 0.0, 0.5 for 0.5: bounds print as a person writes them."""
    return str(int(x)) if float(x).is_integer() else repr(x)

