"""Transfer evaluation and inspection: `discover eval` (`evaluate`, its inner runs `runs`, its
results `results`, statistics `stats`), where rules come from (`sources`: exported files, run
directories, specs), `discover train` (`train`), `discover inspect` (`inspect`) and their figures
(`plots`).

May import everything below it: `discovery.job` (to read checkpoints and for the watchdog),
`discovery.spec`, `discovery.meta_opt`, the core modules, `meta_objectives`, `inner_algos`;
never the cli.
"""
