"""Inner RL algorithms (PPO over brax), their rule slots and environments.

Importing the package first sets XLA's default flags (`inner_algos.xla_flags`), before jax runs.
"""

from inner_algos import xla_flags

xla_flags.apply_defaults()
