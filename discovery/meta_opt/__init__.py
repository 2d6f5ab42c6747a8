"""Meta-optimizers behind one interface (`base.MetaOptimizer`), chosen by name from a run spec.

Importing an estimator's module registers it; add new estimators to the import list below.
"""

from discovery.meta_opt import es  # noqa: F401  (registers "es")
from discovery.meta_opt import metagrad, truncated  # noqa: F401  (registers pes, truncated_es, metagrad)
from discovery.meta_opt import online_metagrad  # noqa: F401  (registers online_metagrad)
from discovery.meta_opt.base import (
    META_OPTIMIZERS, MetaOptimizer, make_meta_optimizer, register, validate_options,
)

__all__ = ["META_OPTIMIZERS", "MetaOptimizer", "make_meta_optimizer", "register", "validate_options"]
