"""Discovery jobs, meta-optimizers, evaluation and the `discover` command line.

Layers, each importing only the ones before it (tests/discovery/test_layers.py checks it):

1. core modules: `figures` (figure plumbing, the fitness figure), `rule_io` (exported rule
   files), `versions`, `xla_flags` (XLA's flags, set by each entry point before jax starts),
   `spec_tables` (spec tables into checked dataclasses), `zoo/` (published rules by name);
2. `meta_opt/`: the meta-learning problem and the meta-optimizers over it;
3. `spec`: run specs validated once into typed option objects;
4. `job/`: the discovery job and its runtime (checkpoints, signals, watchdog, processes), and
   `evaluation/sources` (what a rule SOURCE names), which a job reads its [rule] init_from with;
5. `evaluation/`: transfer evaluation, its statistics, `discover train` and `inspect`;
6. `cli`: the `discover` command line.

Below them all: `meta_objectives`, then `inner_algos`.
"""
