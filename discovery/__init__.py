"""Discovery jobs, meta-optimizers, evaluation and the `discover` command line.

`inner_algos` is imported first so that its XLA flags are set before jax starts.
"""

import inner_algos  # noqa: F401
