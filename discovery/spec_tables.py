"""Spec tables into checked dataclasses: `build(cls, table, section)` refuses unknown keys, wrong
types and numbers a run cannot use, with a SpecError naming the key; the field constraints of
each class are its own (`inner_algos.config_checks.check_fields` in its `__post_init__`)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from inner_algos.config_checks import SpecError, did_you_mean, respell


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(_type_ok(v, args[0]) for v in value)
    if annotation is Any:
        return True
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


# Every integer of a spec is a size, a count or an index that ends up in an int32 array or shape.
INT_RANGE = (-(2**31), 2**31)
# jax.random.PRNGKey keeps 32 bits of a seed (without jax_enable_x64): 2**32 would repeat seed 0.
SEED_RANGE = (0, 2**32)


def check_numbers(value: Any, name: str) -> None:
    """Raises a SpecError naming the key if a number in `value` (a scalar, or one inside arrays
    and inline tables, e.g. tasks[0].randomize.mass_scale[1]) is a non-finite float, an integer
    outside INT_RANGE, or a seed (key `seed` or `*_seed`) outside SEED_RANGE."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_numbers(item, f"{name}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_numbers(item, f"{name}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{name} = {value!r} is not a finite number; give a finite value")
    elif isinstance(value, int) and not isinstance(value, bool):
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "seed" or leaf.endswith("_seed"):
            low, high = SEED_RANGE
            if not low <= value < high:
                raise SpecError(
                    f"{name} = {value!r} is out of range for a seed: jax.random.PRNGKey "
                    f"uses 32 bits of it, so seeds must be in [{low}, {high})"
                )
        elif not INT_RANGE[0] <= value < INT_RANGE[1]:
            raise SpecError(
                f"{name} = {value!r} is out of range; integers in a spec must be in "
                f"[{INT_RANGE[0]}, {INT_RANGE[1]}) (they become int32 sizes and counts)"
            )


def build(cls, table: dict, section: str):
    """Instantiates dataclass `cls` from `table` (keys = field names) with checked types and
    numbers (`check_numbers`: finite floats, integers in range, seeds PRNGKey can take). Old
    spellings of renamed keys are read as the new ones (`respell`)."""
    if not isinstance(table, dict):
        raise SpecError(f"[{section}] must be a table, got {table!r}")
    table = respell(cls, table, section)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(table) - fields)
    if unknown:
        raise SpecError(
            f"unknown key(s) {', '.join(f'{section}.{k}' for k in unknown)}"
            f"{did_you_mean(unknown[0], fields)}; allowed keys in [{section}]: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for key, value in table.items():
        check_numbers(value, f"{section}.{key}")
        if not _type_ok(value, hints[key]):
            raise SpecError(
                f"{section}.{key} = {value!r} has the wrong type; expected {_type_name(hints[key])}"
            )
        if hints[key] is float and isinstance(value, int):
            value = float(value)
        if typing.get_origin(hints[key]) is tuple:
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise SpecError(f"[{section}]: {err}") from err
