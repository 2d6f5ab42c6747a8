"""The discovery job and its runtime: `runner` (build -> restore -> loop with callbacks), run
directory files (`files`), console (`console`), metrics records (`records`), signals (`signals`),
the watchdog, fault injection (`faults`), checkpoints (`checkpoint`, the only orbax importer),
the memory check (`memory`), and multi-process jobs (`distributed`, `launch`).

May import: the core modules of `discovery`, `discovery.meta_opt`, `discovery.spec`,
`meta_objectives`, `inner_algos`; never `discovery.evaluation` or the cli.
"""
