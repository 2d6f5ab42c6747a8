"""Distillation of a rule into a formula or a smaller network of its family (`discover distill`).

A distiller registers per rule family (`DISTILLERS`): for each target it offers ("symbolic",
"mlp"), a function fitting a student rule of the same family to samples of the teacher. The drift
family's are in `discovery.distill.drift`; the data they fit in `discovery.distill.data`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from discovery.distill import drift, symbolic

# family -> target -> (teacher, training samples, options) -> (student rule, student meta-params)
DISTILLERS: dict[str, dict[str, Callable[..., tuple[Any, Any]]]] = {}


def register_distiller(family: str, target: str, fit: Callable[..., tuple[Any, Any]]) -> None:
    """Registers `fit` as the distiller of rule family `family` into `target`."""
    DISTILLERS.setdefault(family, {})[target] = fit


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

__all__ = ["DISTILLERS", "distiller", "drift", "register_distiller", "symbolic"]
