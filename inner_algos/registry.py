"""The registry of inner algorithms: what a run spec's `[inner] name` selects.

An inner algorithm is registered once, at the bottom of this module, after importing its
package (which never imports this module, so there is no import cycle):

    register_inner_algo(
        "ppo", ppo.make_ppo, ppo.PPOConfig, example=ppo.example, size_note=..., baselines=("ppo_clip", "dpo")
    )

(`baselines`: the fixed rules `discover eval` compares with by default, the first the reference.)

Everything in the outer loop builds
inner algorithms through `make_inner_algo(name, config, task, rule)`, which checks that the
rule's family has a slot in it (`inner_algos.rules.families`); what it may read of the result is
`inner_algos.contract`; `discovery.spec` builds its config from the registered section.
Unknown names are a ValueError listing the registered ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from inner_algos.config_checks import did_you_mean
from inner_algos.contract import InnerAlgo
from inner_algos.rules import check_supported, make_rule

DEFAULT = "ppo"  # what a spec without [inner] runs


@dataclasses.dataclass(frozen=True)
class InnerAlgoEntry:
    """A registered inner algorithm.

    make(config, task, rule) -> InnerAlgo; config_cls: its config dataclass (an `InnerConfig`);
    section: the spec section holding the config (its errors name `<section>.<key>`);
    example() -> (config, task, rule): a seconds-sized instance (the contract tests build every
    registered algorithm from it); size_note(config) -> str: what sets the size of one run, for
    the memory check's message (e.g. "ppo.num_envs = 64 environments x ...");
    baselines: the fixed rules `discover eval` compares its rules with by default, the first the
    reference its normalised scores are in units of (each of a family it has a slot for);
    rollout_loss: whether its InnerAlgo provides `rollout_loss` (the meta-gradient estimators'
    meta-loss reads it).
    """

    name: str
    make: Callable[..., InnerAlgo]
    config_cls: type
    section: str
    example: Callable[[], tuple[Any, Any, Any]]
    size_note: Callable[[Any], str] | None = None
    baselines: tuple[str, ...] = ()
    rollout_loss: bool = True


INNER_ALGOS: dict[str, InnerAlgoEntry] = {}


def register_inner_algo(
    name: str,
    make: Callable[..., InnerAlgo],
    config_cls: type,
    *,
    example: Callable[[], tuple[Any, Any, Any]],
    section: str | None = None,
    size_note: Callable[[Any], str] | None = None,
    baselines: tuple[str, ...] = (),
    rollout_loss: bool = True,
) -> InnerAlgoEntry:
    """Adds an inner algorithm to INNER_ALGOS (section defaults to its name); ValueError when a
    default baseline is no rule or of a family the algorithm has no slot for."""
    entry = InnerAlgoEntry(
        name, make, config_cls, section or name, example, size_note, tuple(baselines), rollout_loss
    )
    for baseline in entry.baselines:
        try:
            check_supported(make_rule(baseline), name)
        except ValueError as error:
            raise ValueError(f"inner algorithm {name!r}: default baseline {baseline!r}: {error}") from None
    taken = {e.section: e.name for e in INNER_ALGOS.values() if e.name != name}
    if entry.section in taken:
        raise ValueError(
            f"spec section [{entry.section}] already configures inner algorithm {taken[entry.section]!r}"
        )
    INNER_ALGOS[name] = entry
    return entry


def inner_algo_entry(name: str, field: str = "inner.name") -> InnerAlgoEntry:
    """The registered entry of `name`; ValueError naming `field` and the registered algorithms."""
    if name not in INNER_ALGOS:
        raise ValueError(
            f"{field} = {name!r} is unknown{did_you_mean(name, INNER_ALGOS)}; "
            f"registered inner algorithms: {', '.join(sorted(INNER_ALGOS))}"
        )
    return INNER_ALGOS[name]


def default_baseline(name: str) -> str:
    """The reference baseline of inner algorithm `name`: its first registered baseline (PPO:
    ppo_clip, LPG: a2c), the rule a meta-objective and `discover train` use when none is given."""
    entry = inner_algo_entry(name)
    if not entry.baselines:
        raise ValueError(f"inner algorithm {name!r} registers no baseline rule; name one explicitly")
    return entry.baselines[0]


def config_entry(config) -> InnerAlgoEntry:
    """The registered inner algorithm whose config `config` is; TypeError for none."""
    for entry in INNER_ALGOS.values():
        if type(config) is entry.config_cls:
            return entry
    raise TypeError(f"{type(config).__name__} is the config of no registered inner algorithm")


def config_section(config) -> str:
    """The spec section of an inner algorithm's config ("ppo" for a PPOConfig): the key under
    which results and manifests record it. TypeError for a config no algorithm registered."""
    return config_entry(config).section


def make_inner_algo(name: str, config, task, rule) -> InnerAlgo:
    """Builds inner algorithm `name` for `task` with `rule` in the slot of its family.

    ValueError for an unknown name, a rule family the algorithm has no slot for, or a config of
    another algorithm."""
    entry = inner_algo_entry(name)
    if not isinstance(config, entry.config_cls):
        raise TypeError(
            f"inner algorithm {name!r} takes a {entry.config_cls.__name__}, got {type(config).__name__}"
        )
    check_supported(rule, name)
    return entry.make(config, task, rule)


# The registered inner algorithms (their packages never import this module: no import cycle);
# add new ones here.
from inner_algos import disco, lpg, ppo  # noqa: E402

register_inner_algo(
    "ppo",
    ppo.make_ppo,
    ppo.PPOConfig,
    example=ppo.example,
    size_note=ppo.size_note,
    baselines=("ppo_clip", "dpo"),
)
register_inner_algo(
    "lpg", lpg.make_lpg, lpg.LPGConfig, example=lpg.example, size_note=lpg.size_note, baselines=("a2c",)
)
register_inner_algo(
    "disco",
    disco.make_disco,
    disco.DiscoConfig,
    example=disco.example,
    size_note=disco.size_note,
    baselines=("disco_ac",),
)
