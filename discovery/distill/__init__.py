"""Distillation of a rule into a formula or a smaller network of its family (`discover distill`).

A distiller registers per rule family: for each target it offers ("symbolic", "mlp"), a function
fitting a student rule of the same family to samples of the teacher (`DISTILLERS`), and once per
family how those samples are drawn, the options read, the fidelity measured and the result
printed (`FAMILIES`). The drift family's are in `discovery.distill.drift` (its data in
`discovery.distill.data`), the hyperparams family's in `discovery.distill.hyperparams`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from discovery.distill import drift, hyperparams, symbolic

# family -> target -> (teacher, training samples, options) -> (student rule, student meta-params)
DISTILLERS: dict[str, dict[str, Callable[..., tuple[Any, Any]]]] = {}


class Family(NamedTuple):
    """How `discover distill` treats one rule family.

    samples(source, args) -> (train, held-out, notes: lines saying what was sampled);
    options(args) -> the fit's options; fidelity(student, student_params, samples) -> {measure:
    value}, written to the report; describe(report) -> the lines printed (student, fidelity);
    flags: the command's options that apply to this family only (`args` attribute names; given
    for a rule of another family, they are refused).
    """

    samples: Callable[..., tuple[Any, Any, list[str]]]
    options: Callable[[Any], Any]
    fidelity: Callable[..., dict[str, Any]]
    describe: Callable[[dict], list[str]]
    flags: tuple[str, ...] = ()


FAMILIES: dict[str, Family] = {}


def register_distiller(family: str, target: str, fit: Callable[..., tuple[Any, Any]]) -> None:
    """Registers `fit` as the distiller of rule family `family` into `target`."""
    DISTILLERS.setdefault(family, {})[target] = fit


def register_family(family: str, steps: Family) -> None:
    """Registers how `discover distill` samples, measures and prints rule family `family`."""
    FAMILIES[family] = steps


def distiller(family: str, target: str) -> Callable[..., tuple[Any, Any]]:
    """The registered distiller; ValueError naming what is registered."""
    if family not in DISTILLERS:
        raise ValueError(
            f"rules of family {family!r} cannot be distilled yet; families with a distiller: "
            f"{', '.join(sorted(DISTILLERS))}"
        )
    if target not in DISTILLERS[family]:
        raise ValueError(
            f"--to {target!r} is not available for family {family!r}; available: "
            f"{', '.join(sorted(DISTILLERS[family]))}"
        )
    return DISTILLERS[family][target]


register_distiller("drift", "symbolic", drift.fit_symbolic)
register_distiller("drift", "mlp", drift.fit_mlp)
register_family(
    "drift",
    Family(
        drift.samples,
        drift.options,
        drift.fidelity,
        drift.describe,
        ("grad_weight", "no_collect", "hidden_size", "steps", "learning_rate"),
    ),
)
register_distiller("hyperparams", "symbolic", hyperparams.fit_symbolic)
register_distiller("hyperparams", "mlp", hyperparams.fit_polynomial)
register_family(
    "hyperparams",
    Family(hyperparams.samples, hyperparams.options, hyperparams.fidelity, hyperparams.describe, ("degree",)),
)

__all__ = [
    "DISTILLERS",
    "FAMILIES",
    "Family",
    "distiller",
    "drift",
    "hyperparams",
    "register_distiller",
    "register_family",
    "symbolic",
]
