"""`discover train SPEC`: one inner training run per seed with a fixed rule, no meta-learning.

Reads the spec's [task], [ppo] and [rule] tables (no [rule]: the inner algorithm's reference
baseline, ppo_clip for PPO, a2c for LPG) (plus optional [train] seeds/seed, and [inner]
name for another registered inner algorithm than PPO, its config then in its own section), trains all
seeds in one jitted `vmap`, with the [rule] at its initial meta-parameters or, given `--rule SOURCE`,
with a discovered rule and its meta-parameters (`discovery.evaluation.sources.resolve_source`: an
exported rule file, a run directory's latest rule or a checkpoint step; it replaces [rule]),
prints the learning curve (mean return of the episodes completed in
each update), evaluates the final deterministic policies on full episodes, and writes
`learning_curve.png` and `results.json` to --out.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from discovery.spec import (
    AT_LEAST_ONE,
    add_override_argument,
    apply_overrides,
    build,
    check_rule_fits,
    load_toml,
    parse_inner,
    parse_inner_config,
    parse_rule,
    parse_task,
)
from inner_algos.config_checks import check_fields
from inner_algos.registry import default_baseline


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """The [train] table: how many seeds, the master seed, where to write."""

    seeds: int = 3
    seed: int = 0
    out: str = "out/train"

    def __post_init__(self):
        check_fields(self, "train", seeds=AT_LEAST_ONE)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an inner algorithm (PPO, ...) with a fixed rule (its reference baseline, dpo, ..., or "
        "--rule SOURCE: a discovered or published one) on one task",
    )
    parser.add_argument("spec", help="TOML spec with [task], [ppo], [rule] and optional [train]")
    add_override_argument(parser, "override a spec key, e.g. --set rule.name=dpo (repeatable)")
    parser.add_argument(
        "--rule",
        metavar="SOURCE",
        default=None,
        help="train with this rule and its meta-parameters instead of the spec's [rule]: an exported "
        "rule (stem, .json or .npz), a run directory (its latest ES-mean rule) or RUN_DIR/checkpoints/<G>",
    )
    parser.set_defaults(func=main)


def rule_and_params(table: dict, source: str | None, inner: str, seed: int):
    """(rule, meta-params, where they come from): the spec's [rule] (default: the inner algorithm's
    reference baseline) at
    `rule.init(PRNGKey(seed))`, or the rule SOURCE names with its stored meta-parameters."""
    import jax

    if source is None:
        rule = parse_rule(table.get("rule", {"name": default_baseline(inner)}))
        check_rule_fits(rule, inner)
        return rule, rule.init(jax.random.PRNGKey(seed)), "its initial meta-parameters"
    from discovery.evaluation.sources import resolve_source

    loaded = resolve_source(source)
    check_rule_fits(loaded.rule, inner, "--rule")
    if "rule" in table:
        print(f"--rule {source}: replaces the spec's [rule] ({table['rule'].get('name')!r})")
    return loaded.rule, loaded.meta_params, f"meta-parameters from {source} ({loaded.label})"


def run_training(task, ppo_config, rule, meta_params, seeds: int, seed: int, inner: str = "ppo"):
    """Trains `seeds` runs of inner algorithm `inner` (its config `ppo_config`) in one vmapped,
    jitted call.

    Returns (curves: dict of `[seeds, num_updates]` numpy arrays, eval_returns `[seeds]`,
    wall seconds including compilation, the InnerAlgo).
    """
    import jax
    import numpy as np

    from inner_algos.registry import make_inner_algo

    algo = make_inner_algo(inner, ppo_config, task, rule)

    def train_and_eval(key):
        k_train, k_eval = jax.random.split(key)
        state, metrics = algo.train(meta_params, k_train)
        eval_return, _ = algo.evaluate(state, k_eval)
        return metrics, eval_return

    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    start = time.perf_counter()
    metrics, eval_returns = jax.jit(jax.vmap(train_and_eval))(keys)
    metrics, eval_returns = jax.device_get((metrics, eval_returns))
    wall = time.perf_counter() - start
    return {k: np.asarray(v) for k, v in metrics.items()}, np.asarray(eval_returns), wall, algo


def main(args) -> int:
    import numpy as np

    from discovery.evaluation.plots import seed_curves_figure

    table = apply_overrides(load_toml(args.spec), args.set)
    task = parse_task(table.get("task", {}))
    inner, section = parse_inner(table.get("inner", {}))
    ppo_config = parse_inner_config(inner, table.get(section, {}))
    settings = build(TrainSettings, table.get("train", {}), "train")
    rule, meta_params, origin = rule_and_params(table, args.rule, inner, settings.seed)
    from inner_algos.registry import make_inner_algo

    total = ppo_config.num_updates * make_inner_algo(inner, ppo_config, task, rule).env_steps_per_update
    print(
        f"training {inner.upper() if inner == 'ppo' else inner} with rule {rule.name!r} ({origin}) on "
        f"{task.label}: {settings.seeds} seeds x {total:,} env steps (compiling first, ~10-60 s)",
        flush=True,
    )
    curves, eval_returns, wall, algo = run_training(
        task, ppo_config, rule, meta_params, settings.seeds, settings.seed, inner
    )
    env_steps = np.arange(1, ppo_config.num_updates + 1) * algo.env_steps_per_update
    mean_curve = np.nanmean(curves["episode_return"], axis=0)
    print(f"{'env steps':>12} {'mean return':>12}")
    for i in np.unique(np.linspace(0, len(env_steps) - 1, 11).astype(int)):
        print(f"{env_steps[i]:>12,} {mean_curve[i]:>12.1f}")
    print(
        "evaluation return per seed (deterministic, full episodes):",
        ", ".join(f"{r:.1f}" for r in eval_returns),
    )
    steps_per_s = settings.seeds * env_steps[-1] / wall
    print(f"wall {wall:.1f} s (compile included), {steps_per_s:,.0f} env-steps/s")

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    title = f"{inner.upper() if inner == 'ppo' else inner} + {rule.name} on {task.label}"
    seed_curves_figure(out / "learning_curve.png", env_steps, curves["episode_return"], title)
    results = {
        "task": dataclasses.asdict(task),
        section: dataclasses.asdict(ppo_config),
        "rule": {"name": rule.name, "options": rule.options(), "source": args.rule},
        "seeds": settings.seeds,
        "seed": settings.seed,
        "env_steps": env_steps.tolist(),
        "curves": {k: np.asarray(v).tolist() for k, v in curves.items()},
        "eval_returns": eval_returns.tolist(),
        "wall_seconds": wall,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    print(f"wrote {out / 'learning_curve.png'} and {out / 'results.json'}")
    return 0
