"""Meta-optimizers as flat siblings over one base (`base`): whole-lifetime ES (`es`, the only
evosax importer), PES and truncated ES (`pes`), truncated meta-gradients (`metagrad`) and online
meta-gradients (`online_metagrad`), the truncated ones over the segmented inner runs of
`truncated`; the meta-learning problem they solve (`problem`: the population of inner runs and
its fitness).

May import: the core modules of `discovery`, `meta_objectives`, `inner_algos`; never
`discovery.spec`, `discovery.job`, `discovery.evaluation` or the cli.

Importing an estimator's module registers it; add new estimators to the import list below.
"""

from discovery.meta_opt import es, metagrad, online_metagrad, pes  # noqa: F401  (register them)
from discovery.meta_opt.base import (
    META_OPTIMIZERS,
    METRIC_KEYS,
    MetaOptimizer,
    MetaOptimizerEntry,
    estimators_with,
    make_meta_optimizer,
    meta_optimizer_entry,
    parse_options,
    register,
    validate_options,
)

__all__ = [
    "META_OPTIMIZERS",
    "METRIC_KEYS",
    "MetaOptimizerEntry",
    "MetaOptimizer",
    "meta_optimizer_entry",
    "estimators_with",
    "make_meta_optimizer",
    "parse_options",
    "register",
    "validate_options",
]
