"""Published rules, addressed by name: `zoo:<name>` wherever a rule file is accepted.

A `Published` entry says what the rule is, where its numbers came from (repository and commit),
its paper and licence, and how to build it: `load() -> (rule, meta_params)`. Weights ship as
package data under `discovery/zoo/data/<source>/` with their licence and a SOURCE.md beside them.

  get_published("open/breakout").load()   # OPEN's Breakout optimizer (rule "open")
  published_names()                        # every registered name, sorted

Entries of any rule family register with `register_published`; the shipped ones are in
`discovery.zoo.entries`.
"""

from discovery.zoo import entries  # noqa: F401  (registers the shipped entries)
from discovery.zoo.registry import (
    PREFIX,
    PUBLISHED,
    Published,
    data_path,
    get_published,
    published_names,
    register_published,
)

__all__ = [
    "PREFIX",
    "PUBLISHED",
    "Published",
    "data_path",
    "get_published",
    "published_names",
    "register_published",
]
