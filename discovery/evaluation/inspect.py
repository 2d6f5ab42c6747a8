"""`discover inspect SOURCE [SOURCE ...]`: what a discovered rule is, without running any training
(but for learned targets, whose picture trains one short agent lifetime under the rule).

Prints a summary (source, rule, content hash, spec, generations, fitness, its mean split-half
reliability and the paired baseline's scores when the job measured them, wall time, env steps,
checkpoint steps, versions), draws the fitness curve (`fitness.png`) and a picture of the rule
by family (`rule_<family>.png`):
  drift        drift(r, A) on r in [0.5, 1.5] x A in [-2, 2] beside PPO-clip and DPO, and the
               implied policy-gradient weight d/dr (r*A - drift) (via jax.grad); a temporally-
               aware drift is drawn at lifetime fractions n/N = 0, 0.5 and 1; a distilled
               rule (`discover distill`) beside its teacher, and its formula printed;
  hyperparams  each hyperparameter over the lifetime fraction, beside its initial value (a rule
               with meta-parameters) or its teacher's (a distilled rule, whose formulas are
               printed);
  optimizer    the update direction as a function of the current gradient and the gradient
               history ("momentum"), beside Adam;
  targets      trains the LPG agent under the rule (the run's [lpg] config, the spec's first
               task) and, after 1/4, 1/2 and all of its updates, draws on a fresh batch the
               rule's pi_hat against the side critic's advantage (A2C's pi_hat) and the
               Monte-Carlo return against the one a linear fit reads from the agent's
               prediction y; prints their correlation and the fit's held-out R^2 (LPG, Oh et
               al. 2020, section 5). Seconds to a minute on CPU;
  disco        trains the DiscoRL agent under the rule (the run's [disco] config and first task;
               without a task in the spec, as for zoo:disco/disco103, a small agent on
               Catch-8x8) and, after 5%, 25% and all of its updates, draws on a fresh batch where
               pi_hat moves the policy (log pi_hat - log pi, centred over the actions) against the
               agent's q-head advantage, and the Monte-Carlo return read linearly from y and from
               z(s, a) (all entries, and their top 8 principal directions) beside the same read
               from the untrained agent's y and z; prints the numbers. Minutes on CPU for Disco103.
A registered family without a picture (`PICTURES`) gets the line "no picture for this family
(<name>)". Up to four SOURCEs (replicates, say) are drawn side by side in the same figures;
sources whose labels collide are told apart by their run directories' names.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from discovery import figures
from discovery.evaluation import plots
from discovery.evaluation.sources import Source, add_source_command, resolve_source, spec_tasks
from discovery.job.records import RELIABILITY_FLOOR
from discovery.rule_io import load_rule
from discovery.spec import parse_inner, parse_inner_config
from inner_algos.disco import DiscoConfig
from inner_algos.disco import analysis as disco_analysis
from inner_algos.envs import Task, task_from_table
from inner_algos.lpg import LPGConfig, analysis
from inner_algos.lpg import example as lpg_example
from inner_algos.rules import DriftInputs, Rule, has_meta_params, make_rule
from inner_algos.rules.hyperparams import UNIT_INTERVAL
from meta_objectives import pooled_reliability


class DriftGrid(NamedTuple):
    """A drift rule on a grid: ratio `[R]`, advantage `[A]`, drift(r, A) and the implied
    policy-gradient weight d/dr (r*A - drift), both `[A, R]` (rows: advantage)."""

    ratio: np.ndarray
    advantage: np.ndarray
    drift: np.ndarray
    weight: np.ndarray


def drift_grid(
    rule: Rule, meta_params, ratio_range=(0.5, 1.5), adv_range=(-2.0, 2.0), num=101, progress: float = 0.0
) -> DriftGrid:
    """Tabulates a drift rule on `num` x `num` evenly spaced points (the grid of the picture), at
    lifetime fraction `progress` (only temporally-aware rules depend on it)."""
    ratio = jnp.linspace(ratio_range[0], ratio_range[1], num)
    adv = jnp.linspace(adv_range[0], adv_range[1], num)
    r, a = jnp.meshgrid(ratio, adv)  # [A, R]

    def objective(r):
        return r * a - rule.apply(meta_params, DriftInputs(r, a, progress))

    drift = rule.apply(meta_params, DriftInputs(r, a, progress))
    weight = jax.grad(lambda r: objective(r).sum())(r)  # elementwise: each r[i, j] is its own input
    return DriftGrid(*(np.asarray(x) for x in (ratio, adv, drift, weight)))


def hyperparams_curve(rule: Rule, meta_params, num=51) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`rule.apply(meta_params, progress)` for progress on `num` points of [0, 1]:
    returns (progress `[P]`, {hyperparameter name: values `[P]`})."""
    progress = jnp.linspace(0.0, 1.0, num)
    values = jax.vmap(lambda p: rule.apply(meta_params, p))(progress)
    return np.asarray(progress), {k: np.asarray(v) for k, v in values._asdict().items()}


class OptimizerGrid(NamedTuple):
    """An optimizer rule's update direction `[M, G]` for current gradient g `[G]` (columns) after
    `history` steps of constant gradient m `[M]` (rows), as at `progress`."""

    grad: np.ndarray
    momentum: np.ndarray
    update: np.ndarray


def optimizer_grid(
    rule: Any, meta_params, grad_range=(-1.0, 1.0), num=41, history=10, progress=0.5
) -> OptimizerGrid:
    """Feeds every grid point as one parameter element: `history` steps of gradient m, then g.

    Uses only the optimizer family's `init_state(params)` and `apply(meta_params, inputs)`; each
    element is updated independently, so one call covers the whole grid.
    """
    from inner_algos.rules.learned_optimizer import OptimizerInputs

    values = jnp.linspace(grad_range[0], grad_range[1], num)
    m, g = jnp.meshgrid(values, values, indexing="ij")  # [M, G]
    params = {"w": jnp.zeros_like(g)}
    state = rule.init_state(params)
    t = jnp.asarray(progress, jnp.float32)
    for _ in range(history):
        _, state = rule.apply(meta_params, OptimizerInputs({"w": m}, state, t))
    update, _ = rule.apply(meta_params, OptimizerInputs({"w": g}, state, t))
    return OptimizerGrid(np.asarray(values), np.asarray(values), np.asarray(update["w"]))


LIFETIME_FRACTIONS = (0.0, 0.5, 1.0)  # where a temporally-aware drift is drawn


def _drift_picture(path: Path, sources: list[Source]) -> Path:
    """One column per source (one per lifetime fraction n/N for a temporally-aware rule), then
    PPO-clip and DPO."""
    eps = next((s.rule.options()["eps"] for s in sources if "eps" in s.rule.options()), 0.2)
    entries = [(s.label, s.rule, s.meta_params) for s in sources]
    entries += [(f"teacher of {s.label}", *t) for s in sources for t in [teacher_of(s)] if t]
    columns = []
    for label, rule, meta in entries:  # a formula reading p is temporally aware too
        fractions = LIFETIME_FRACTIONS if getattr(rule, "temporal", False) else (None,)
        columns += [
            (label if p is None else f"{label}\nn/N = {p:g}", rule, meta, p or 0.0) for p in fractions
        ]
    columns += [
        (f"ppo_clip (eps={eps:g})", make_rule("ppo_clip", eps=eps), {}, 0.0),
        ("dpo", make_rule("dpo"), {}, 0.0),
    ]
    grids = [(title, drift_grid(rule, meta, progress=p)) for title, rule, meta, p in columns]
    first = grids[0][1]
    return plots.heatmaps_figure(
        path,
        first.ratio,
        first.advantage,
        [(title, {"drift": g.drift, "weight": g.weight}) for title, g in grids],
        [("drift", "drift(r, A)", "sequential"), ("weight", "d/dr [r·A − drift]", "diverging")],
        "probability ratio r = π / π_old",
        "advantage A",
        "Policy-objective drift (top) and implied policy-gradient weight (bottom)",
        x_mark=1.0,
    )


def teacher_of(source: Source) -> tuple[Rule, dict] | None:
    """The rule a distilled rule was distilled from (its header's `teacher_rule`, an exported rule
    beside it; `discover distill`), or None."""
    name = source.header.get("teacher_rule")
    if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", ".."):
        return None
    rule, meta, _ = load_rule(source.rule_path.parent / name)
    return rule, meta


def _hyperparams_picture(path: Path, sources: list[Source]) -> Path:
    """One panel per hyperparameter: each source's schedule, beside its initial one (a rule with
    meta-parameters) or its teacher's (a distilled rule)."""
    panels: dict[str, dict] = {}
    for s in sources:
        curves = [(s.label, s.rule, s.meta_params)]
        if has_meta_params(s.rule):
            curves.append((f"{s.label}: initial", s.rule, s.rule.init(jax.random.PRNGKey(0))))
        curves += [(f"teacher of {s.label}", *t) for t in [teacher_of(s)] if t]
        for label, rule, meta in curves:
            progress, values = hyperparams_curve(rule, meta)
            for name, v in values.items():
                panels.setdefault(name, {})[label] = (progress, v)
    return plots.lines_figure(
        path,
        "lifetime fraction (update / lifetime)",
        panels,
        "Meta-learned hyperparameters over the inner lifetime",
    )


def _optimizer_picture(path: Path, sources: list[Source]) -> Path:
    columns = [(s.label, s.rule, s.meta_params) for s in sources] + [("adam", make_rule("adam"), {})]
    grids = [(title, optimizer_grid(rule, meta)) for title, rule, meta in columns]
    first = grids[0][1]
    return plots.heatmaps_figure(
        path,
        first.grad,
        first.momentum,
        [(title, {"update": g.update}) for title, g in grids],
        [("update", "update direction (params −= lr × this)", "diverging")],
        "current gradient g",
        "gradient of the previous 10 steps m",
        "Optimizer update for one parameter (lifetime fraction 0.5)",
    )


TARGETS_FRACTIONS = (0.25, 0.5, 1.0)  # lifetime points of the targets picture
TARGETS_MAX_UPDATES = 500  # a longer lifetime is cut to this (about a minute on 2 CPU cores)


Config = TypeVar("Config", LPGConfig, DiscoConfig)


class PictureSetting(NamedTuple, Generic[Config]):
    """What a picture of learned targets trains: the agent's config (`[lpg]` or `[disco]`), the
    task, the analysis batch's length in rollouts, and a line saying where they came from."""

    config: Config
    task: Task
    rollouts: int
    note: str


def picture_setting(
    source: Source, inner: str, default: tuple[Config, Task, str], max_updates: int
) -> PictureSetting[Config]:
    """The run's config of inner algorithm `inner` and its spec's first task; for a source whose
    spec names no task (an exported rule, a zoo entry) `default`, (config, task, what they are).
    At most max_updates updates; the analysis batch spans two episode lengths (whole rollouts),
    so most steps see their episode end."""
    tasks = [task_from_table(t) for t in spec_tasks(source.spec)]
    if tasks:
        name, section = parse_inner(source.spec.get("inner", {}))
        if name != inner:
            raise ValueError(
                f"the spec of {source.label} has inner.name = {name!r}; the picture of its rule "
                f"trains inner algorithm {inner!r} (inner.name = {inner!r})"
            )
        config = parse_inner_config(name, source.spec.get(section, {}))
        task, origin = tasks[0], f"the spec's [{section}] and its first task of {len(tasks)}"
    else:
        config, task, what = default
        origin = f"{'its spec names no task' if source.spec else 'no spec with this source'}: {what}"
    updates = min(config.num_updates, max_updates)
    cut = f" (of {config.num_updates}; cut to {max_updates})" if updates < config.num_updates else ""
    config = dataclasses.replace(config, num_updates=updates)
    rollouts = -(-2 * cast(int, task.episode_length) // config.rollout_length)  # set by Task
    note = (
        f"{task.label}, {origin}; {updates} updates{cut} of {config.num_envs} envs x "
        f"{config.rollout_length} steps; analysis batches of {rollouts} rollouts "
        f"({rollouts * config.rollout_length} steps x {config.num_envs} envs)"
    )
    return PictureSetting(config, task, rollouts, note)


def targets_setting(source: Source) -> PictureSetting[LPGConfig]:
    """`picture_setting` of the LPG agent; without a task, the LPG example's
    (`inner_algos.lpg.example`) with the rule's y_size."""
    config, task, _ = lpg_example()
    config = dataclasses.replace(config, y_size=getattr(source.rule, "y_size", config.y_size))
    what = "the LPG example's config and task (inspect its run directory for the run's own)"
    return picture_setting(source, "lpg", (config, task, what), TARGETS_MAX_UPDATES)


def targets_lines(points: list[analysis.PointSummary]) -> list[str]:
    """The printed numbers of the targets picture, one line per lifetime point."""
    return [
        f"  update {p.update}: corr(pi_hat, advantage) {p.correlation:.3f} (std pi_hat / std advantage "
        f"{p.scale:.3g}); held-out R^2 of return ~ y "
        f"{p.r2:.3f} ({p.steps} steps whose episode ended in the batch); mean episode return "
        f"{p.episode_return:.3g}"
        for p in points
    ]


PI_HAT = r"$\hat\pi$"  # pi_hat in matplotlib's mathtext


def targets_panels(label: str, task: Task, points: list[analysis.PointSummary]) -> list[plots.Panel]:
    """(a) pi_hat against the advantage, (b) the actual return against the one predicted from y."""
    updates = ", ".join(str(p.update) for p in points)
    corr = ", ".join(f"{p.correlation:.2f}" for p in points)
    r2 = ", ".join(f"{p.r2:.2f}" for p in points)
    scaled = {f"update {p.update} (std {PI_HAT} / std A {p.scale:.2g})": p.pi_hat_curve for p in points}
    returns = {f"update {p.update}": p.return_curve for p in points if p.return_curve is not None}
    return [
        plots.Panel(
            f"{label} on {task.label}: {PI_HAT} vs the critic's advantage\ncorr {corr} (updates {updates})",
            f"advantage A (what A2C's {PI_HAT} would be)",
            f"{PI_HAT} of the rule (binned mean)",
            scaled,
            zero_lines=True,
        ),
        plots.Panel(
            f"{label}: return read linearly from y\nheld-out $R^2$ {r2} (updates {updates})",
            "return predicted from y (held-out steps)",
            "Monte-Carlo return (binned mean)",
            returns,
        ),
    ]


def _targets_picture(path: Path, sources: list[Source]) -> Path:
    """Trains the agent under each source's rule and draws one row of `targets_panels` per source."""
    rows = []
    for s in sources:
        setting = targets_setting(s)
        snapshots = analysis.lifetime_snapshots(
            s.rule,
            s.meta_params,
            setting.config,
            setting.task,
            jax.random.PRNGKey(0),
            TARGETS_FRACTIONS,
            setting.rollouts,
        )
        points = [analysis.summarize(snapshot) for snapshot in snapshots]
        print("\n".join([f"targets picture of {s.label}: {setting.note}", *targets_lines(points)]))
        rows.append(targets_panels(s.label, setting.task, points))
    return plots.binned_curves_figure(
        path, rows, "What the targets rule teaches: its policy target, and what the prediction y learned"
    )


DISCO_FRACTIONS = (0.05, 0.25, 1.0)  # lifetime points of the disco picture (Disco103 acts early)
DISCO_MAX_UPDATES = 200  # a longer lifetime is cut to this
# the disco picture's agent where the source's spec names no task: the agent of
# runs/disco_from_disco103.toml, for 200 updates
DISCO_PICTURE_CONFIG = DiscoConfig(
    num_envs=16,
    rollout_length=16,
    num_updates=200,
    torso=(64, 64),
    model_lstm_size=32,
    model_head_hiddens=(32,),
)
DISCO_PICTURE_TASK = {"source": "gymnax", "env_name": "Catch-8x8"}  # where DiscoRL's colab evaluates


def disco_setting(source: Source) -> PictureSetting[DiscoConfig]:
    """`picture_setting` of the DiscoRL agent; without a task, DISCO_PICTURE_CONFIG on
    DISCO_PICTURE_TASK (a table: a gymnax Task built at import would start jax before the
    command line sets XLA's flags)."""
    what = "the disco picture's agent (torso 64 x 64, lr 1e-2) on DiscoRL's Catch board"
    default = (DISCO_PICTURE_CONFIG, task_from_table(DISCO_PICTURE_TASK), what)
    return picture_setting(source, "disco", default, DISCO_MAX_UPDATES)


def disco_lines(points: list[disco_analysis.PointSummary]) -> list[str]:
    """The printed numbers of the disco picture, one line per lifetime point."""
    k = disco_analysis.READOUT_COMPONENTS

    def read(r: disco_analysis.Readout, r0: disco_analysis.Readout) -> str:
        untrained = f"untrained: {r0.wide.r2:.3f}, {r0.narrow.r2:.3f}"
        return f"{r.wide.r2:.3f}, top {k} directions {r.narrow.r2:.3f} ({untrained})"

    return [
        f"  update {p.update}: corr(logit change of pi_hat, q advantage) {p.follow.correlation:.3f} "
        f"(std ratio {p.follow.scale:.3g}), mean KL(pi_hat || pi) {p.kl:.3g}; held-out R^2 of return "
        f"~ y {read(p.y, p.y0)}; ~ z(s, a) {read(p.z, p.z0)}; {p.y.wide.steps} steps whose episode ended "
        f"in the batch; mean episode return {p.episode_return:.3g}"
        for p in points
    ]


def readout_panel(
    label: str, vector: str, readouts: list[tuple[int, disco_analysis.Readout, disco_analysis.Readout]]
) -> plots.Panel:
    """The return against the one read from the top principal directions of `vector`, one curve per
    (update, Readout, the untrained agent's Readout), and the untrained agent's at the last update."""
    k = disco_analysis.READOUT_COMPONENTS
    narrow = ", ".join(f"{r.narrow.r2:.2f}" for _, r, _ in readouts)
    untrained = ", ".join(f"{r0.narrow.r2:.2f}" for _, _, r0 in readouts)
    wide = ", ".join(f"{r.wide.r2:.2f}" for _, r, _ in readouts)
    curves = {f"update {u}": r.narrow.curve for u, r, _ in readouts if r.narrow.curve is not None}
    last, _, last0 = readouts[-1]
    if last0.narrow.curve is not None:
        curves[f"untrained agent, update {last}"] = last0.narrow.curve
    return plots.Panel(
        f"{label}: return read from {vector}'s top {k} directions\nheld-out $R^2$ {narrow} "
        f"(untrained agent: {untrained})\nfrom all its entries: {wide}",
        f"return predicted from {vector} (held-out steps)",
        "Monte-Carlo return (binned mean)",
        curves,
    )


def disco_panels(label: str, task: Task, points: list[disco_analysis.PointSummary]) -> list[plots.Panel]:
    """(a) the logit change of pi_hat against the q head's advantage, (b, c) the return read from y, z."""
    updates = ", ".join(str(p.update) for p in points)
    corr = ", ".join(f"{p.follow.correlation:.2f}" for p in points)
    kl = ", ".join(f"{p.kl:.2g}" for p in points)
    changes = {f"update {p.update} (std ratio {p.follow.scale:.2g})": p.follow.curve for p in points}
    return [
        plots.Panel(
            f"{label} on {task.label}: where {PI_HAT} moves the policy\n"
            f"corr {corr}, KL {kl} (updates {updates})",
            "q head's advantage Q(s, a) − mean$_a$ Q (every action)",
            f"log {PI_HAT} − log π, centred over actions (binned mean)",
            changes,
            zero_lines=True,
            identity=False,  # logit changes need not be on the advantages' scale (Disco103's: ~10x)
        ),
        readout_panel(label, "y", [(p.update, p.y, p.y0) for p in points]),
        readout_panel(label, "z(s, a)", [(p.update, p.z, p.z0) for p in points]),
    ]


def _disco_picture(path: Path, sources: list[Source]) -> Path:
    """Trains the DiscoRL agent under each source's rule and draws one row of `disco_panels` per source."""
    rows = []
    for s in sources:
        setting = disco_setting(s)
        snapshots = disco_analysis.lifetime_snapshots(
            s.rule,
            s.meta_params,
            setting.config,
            setting.task,
            jax.random.PRNGKey(0),
            DISCO_FRACTIONS,
            setting.rollouts,
        )
        points = [disco_analysis.summarize(snapshot) for snapshot in snapshots]
        print("\n".join([f"disco picture of {s.label}: {setting.note}", *disco_lines(points)]))
        rows.append(disco_panels(s.label, setting.task, points))
    return plots.binned_curves_figure(
        path,
        rows,
        "What the disco rule teaches: where its policy target moves the policy, and what y and z learned",
    )


# family -> a function drawing `rule_<family>.png` from the sources of that family; a registered
# family (`inner_algos.rules.FAMILIES`) absent here gets `no_picture`'s line instead
PICTURES = {
    "drift": _drift_picture,
    "hyperparams": _hyperparams_picture,
    "optimizer": _optimizer_picture,
    "targets": _targets_picture,
    "disco": _disco_picture,
}


def no_picture(family: str) -> str:
    """What inspect prints for a family without a picture."""
    return f"no picture for this family ({family})"


FIDELITY_NAMES = {"loss_grad": "d loss / d r"}  # a fidelity's key as printed, where not its own


def formula_lines(rule: Rule) -> list[str]:
    """'formula: ...' for a rule written as formulas (`symbolic`, `hyperparams_formula`), else []."""
    expression = getattr(rule, "expression", None)
    if isinstance(expression, str):
        return [f"formula: drift = {expression}"]
    formulas = rule.options().get("formulas") if rule.family == "hyperparams" else None
    if isinstance(formulas, dict):
        return [
            f"formula: {name}(p) = {'sigmoid' if name in UNIT_INTERVAL else 'exp'}({text})"
            for name, text in formulas.items()
        ]
    return []


def summary(source: Source) -> str:
    """Human-readable description of a source (multi-line)."""
    rule, header, history = source.rule, source.header, source.fitness_history
    lines = [
        f"== {source.label} ==",
        f"source: {source.text} ({source.kind}; rule file {source.rule_path})",
        f"rule: {rule.name} (family {rule.family}) options {rule.options()}",
        f"content hash: sha256:{source.hash}",
    ]
    if "about" in header:
        lines.append(f"about: {header['about']}")
    lines += formula_lines(rule)
    distilled = header.get("distilled")
    if isinstance(distilled, dict) and isinstance(distilled.get("fidelity_held_out"), dict):
        f = distilled["fidelity_held_out"]
        measures = [(k[: -len("_r2")], v) for k, v in f.items() if k.endswith("_r2")]
        lines.append(
            f"distilled from {distilled.get('teacher', {}).get('label')} into {distilled.get('to')}: "
            "held-out " + ", ".join(f"{FIDELITY_NAMES.get(name, name)} R^2 {_r2(v)}" for name, v in measures)
        )
    prov = {k: header[k] for k in ("kind", "generation", "fitness", "spec_hash") if k in header}
    if prov:
        lines.append("exported: " + ", ".join(f"{k} {v}" for k, v in prov.items()))
    if source.spec:
        tasks = [task_from_table(t).label for t in spec_tasks(source.spec)]
        lines.append(f"spec: tasks {', '.join(tasks) or '?'}; sections {', '.join(sorted(source.spec))}")
        meta_opt = source.spec.get("meta_optimizer")
        if isinstance(meta_opt, dict):
            lines.append(f"meta-optimizer: {meta_opt}")
    if history:
        last = history[-1]
        best = np.nanmax([_num(h.get("best_so_far")) for h in history] + [-np.inf])
        lines += [
            f"generations done: {last.get('generation', len(history))} ({len(history)} records)",
            f"fitness: best so far {best:.4g}; last generation: population mean "
            f"{_num(last.get('fitness_mean')):.4g}, max {_num(last.get('fitness_max')):.4g}, "
            f"ES mean {_num(last.get('mean_fitness')):.4g}",
            f"wall time: {_num(last.get('wall_time')):.1f} s; env steps: {int(last.get('env_steps') or 0):,}",
        ]
        lines += _signal_lines(history)
    if source.run_dir is not None:
        lines.append(f"checkpoint steps: {source.checkpoint_steps or 'none'}")
    if source.train_tasks:
        lines.append(f"trained on: {', '.join(source.train_tasks)}")
    versions = header.get("versions")
    if isinstance(versions, dict):
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return "\n".join(lines)


def _signal_lines(history: list[dict]) -> list[str]:
    """The summary's lines on the fitness signal: the mean split-half reliability (when measured:
    ES with >= 2 seeds per member) and the paired baseline's mean raw score per task."""
    lines = []
    reliability = np.asarray([_num(h.get("fitness_reliability")) for h in history])
    if np.isfinite(reliability).any():
        low = np.sum(reliability < RELIABILITY_FLOOR)
        lines.append(
            f"fitness reliability (split-half, Spearman-Brown): mean "
            f"{np.nanmean(reliability):.3f}, pooled {float(pooled_reliability(reliability)):.3f} "
            f"(stepped-up mean split-half r) over {np.isfinite(reliability).sum()} "
            f"generations, {low} below {RELIABILITY_FLOOR:g}"
        )
    baselines = [h["baseline_scores"] for h in history if h.get("baseline_scores")]
    if baselines:
        scores = {label: [_num(b.get(label)) for b in baselines] for label in baselines[0]}
        lines.append(
            "paired baseline, mean raw score: "
            + ", ".join(
                f"{label} {np.mean([v for v in values if np.isfinite(v)]):.4g}"
                for label, values in scores.items()
                if np.isfinite(values).any()
            )
        )
    return lines


def _r2(x) -> str:
    """A fidelity's R^2 as printed: None is a constant teacher's (R^2 undefined)."""
    return "n/a (constant teacher)" if x is None else f"{_num(x):.4f}"


def _num(x) -> float:
    """A record's number as float; None (non-finite in metrics.jsonl) or absent -> nan."""
    return float(x) if isinstance(x, (int, float)) else np.nan


def _headline(series: dict[str, tuple]) -> dict[str, tuple]:
    """The series drawn for one of three or more sources (replicates side by side): the ES mean's
    score and its running mean (the population mean's where there is no ES mean); all six series
    of each would not read."""
    main = "ES mean" if "ES mean" in series else "population mean"
    return {name: xy for name, xy in series.items() if main in name}


def fitness_picture(path: Path, sources: list[Source]) -> Path | None:
    """Fitness per generation (population mean and max, the ES mean's score, best so far; with
    three or more sources the ES mean's alone, `_headline`), and the fitness reliability below it
    where measured; None without history."""
    names = {s.label: s.tag or s.label for s in sources}  # replicates: their run directories' names
    histories = {names[s.label]: figures.fitness_series(s.fitness_history) for s in sources}
    histories = {label: series for label, series in histories.items() if series}
    if len(histories) > 2:
        histories = {label: _headline(series) for label, series in histories.items()}
    measured = {names[s.label]: figures.reliability_series(s.fitness_history) for s in sources}
    reliability = {label: r for label, r in measured.items() if r is not None and label in histories}
    if not histories:
        return None
    units = {
        figures.fitness_unit(s.spec.get("meta_objective", {}), s.spec.get("inner", {}).get("name", "ppo"))
        for s in sources
        if s.spec
    }
    unit = units.pop() if len(units) == 1 else "fitness (each source in its meta-objective's unit)"
    return figures.fitness_figure(path, histories, reliability or None, RELIABILITY_FLOOR, unit)


def run_inspect(sources: list[Source], out: Path) -> list[Path]:
    """Prints each source's summary and writes the pictures to `out`; returns the files written."""
    for s in sources:
        print(summary(s), end="\n\n")
    written = []
    fitness = fitness_picture(out / "fitness.png", sources)
    if fitness is not None:
        written.append(fitness)
    families = list(dict.fromkeys(s.rule.family for s in sources))
    for family in families:
        group = [s for s in sources if s.rule.family == family and not s.rule.owns_update]
        for s in sources:
            if s.rule.family == family and s.rule.owns_update:
                # OPEN-style: an element's update depends on its whole tensor, so no per-element grid
                print(f"no picture for {s.label}: its rule ({s.rule.name}) owns the whole update")
        if not group:
            continue
        if family in PICTURES:
            written.append(PICTURES[family](out / f"rule_{family}.png", group))
        else:
            print(no_picture(family))
    for path in written:
        print(f"wrote {path}")
    return written


def register(subparsers) -> None:
    parser = add_source_command(
        subparsers,
        "inspect",
        "summarise a run or exported rule and draw its fitness curve and rule",
        __doc__,
        nargs="+",
    )
    parser.add_argument("--out", default="discover_inspect", help="folder for the PNGs")
    parser.set_defaults(func=main)


MAX_SOURCES = 4  # a drift picture draws 3 columns per temporally-aware rule: 14 at most


def distinct_labels(sources: list[Source]) -> list[Source]:
    """The sources, tagged where their labels collide (replicates of one spec all read 'lpo gen
    80 mean'): by their run directories' names when those differ, else by A, B, C, D."""
    if len({s.label for s in sources}) == len(sources):
        return sources
    names = [s.run_dir.name if s.run_dir is not None else "" for s in sources]
    tags = names if all(names) and len(set(names)) == len(names) else "ABCD"[: len(sources)]
    return [dataclasses.replace(s, tag=tag) for s, tag in zip(sources, tags)]


def main(args) -> int:
    if len(args.source) > MAX_SOURCES:
        raise ValueError(
            f"inspect draws at most {MAX_SOURCES} SOURCEs side by side; got {len(args.source)}: "
            "inspect the others in a second call"
        )
    sources = [resolve_source(text, args.generation, args.which) for text in args.source]
    run_inspect(distinct_labels(sources), Path(args.out))
    return 0
