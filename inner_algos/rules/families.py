"""The registry of rule families: which slot of an inner algorithm a family's rules fill, and
which inner algorithms have that slot.

A family registers once, in the module of its rules (as meta-optimizers register in theirs):

    register_family("drift", slot="the policy-objective drift(r, A) in the loss", inner_algos=("ppo",))

`get_family(name)` looks one up (a ValueError lists the registered ones) and
`check_supported(rule, inner)` raises when the inner algorithm has no slot for the rule's family.
The inner algorithm decides how it fills the slot (PPO: `inner_algos.ppo.slots.SLOTS`).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Family:
    """name: what rules set as `family`; slot: what a rule of the family computes and where the
    inner algorithm uses it (one line, for errors and docs); inner_algos: the registered inner
    algorithms with this slot."""

    name: str
    slot: str
    inner_algos: tuple[str, ...]


FAMILIES: dict[str, Family] = {}


def register_family(name: str, slot: str, inner_algos: tuple[str, ...]) -> Family:
    """Adds a family to FAMILIES (registering the same family twice must say the same thing)."""
    family = Family(name, slot, tuple(inner_algos))
    if FAMILIES.get(name, family) != family:
        raise ValueError(f"rule family {name!r} is registered twice, differently")
    FAMILIES[name] = family
    return family


def get_family(name: str) -> Family:
    """The registered family `name`; ValueError listing the registered ones."""
    if name not in FAMILIES:
        raise ValueError(f"rule family {name!r} is not registered; registered: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def check_supported(rule, inner: str) -> None:
    """ValueError when inner algorithm `inner` has no slot for `rule`'s family."""
    family = get_family(rule.family)
    if inner not in family.inner_algos:
        supported = [n for n, f in sorted(FAMILIES.items()) if inner in f.inner_algos]
        raise ValueError(
            f"rule {rule.name!r} is of family {family.name!r} ({family.slot}), which inner "
            f"algorithm {inner!r} has no slot for; {family.name!r} works with "
            f"{', '.join(family.inner_algos) or 'no inner algorithm'}, and {inner!r} takes "
            f"the families {', '.join(supported) or 'none'}"
        )
