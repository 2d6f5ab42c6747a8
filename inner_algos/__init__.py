"""Inner RL algorithms (PPO, the LPG agent), their rule slots, and the environments they train
on (`inner_algos.envs`). Importing it sets nothing process-wide: XLA's flags are set by the entry
points (`discovery.xla_flags.apply_defaults`)."""
