"""Distillers of the drift family: into a formula (`symbolic` rule) or a smaller LPO network.

Both fit the teacher's drift on the training samples (`samples`: `discovery.distill.data`) and,
with grad_weight > 0, its d drift / d r too; `fidelity` measures both on held-out samples
whatever was fitted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from discovery.distill import data, symbolic
from discovery.distill.data import Samples, drift_and_grad, is_temporal
from inner_algos.rules import Rule, formula, make_rule

MAX_ROWS = 2000  # training samples the symbolic search scores each program on (a seeded subset)
CANDIDATES = 12  # programs of the last generation whose formulas are compared (`fit_symbolic`)


def samples(source, args) -> tuple[Samples, Samples, list[str]]:
    """(train, held-out, notes): the grid, plus 80 % of the collected inputs when the source has
    a spec and not args.no_collect; held out: uniform points in the ranges and the other 20 %."""
    rule, meta, seed = source.rule, source.meta_params, args.seed
    train, held_out = data.grid(rule, meta), data.held_out(rule, meta, seed)
    notes = [f"grid: {len(train.ratio)} points; held out: {len(held_out.ratio)} uniform points"]
    if source.spec and not args.no_collect:
        collected, lines = data.collect(rule, meta, source.spec, seed)
        order = np.random.default_rng(seed).permutation(len(collected.ratio))
        cut = int(0.8 * len(order))
        train = Samples.join(train, collected.subset(order[:cut]))
        held_out = Samples.join(held_out, collected.subset(order[cut:]))
        notes += [f"collected {len(order)} inputs in short inner runs:", *(f"  {x}" for x in lines)]
    return train, held_out, notes


def options(args) -> symbolic.SearchOptions | MLPOptions:
    """The fit's options from the command line (the options not given take their defaults)."""
    grad_weight = args.grad_weight or 0.0
    if args.to == "symbolic":
        return symbolic.SearchOptions(
            args.population, args.generations, args.parsimony, args.seed, grad_weight
        )
    given = {k: getattr(args, k) for k in ("hidden_size", "steps", "learning_rate")}
    return MLPOptions(
        **{k: v for k, v in given.items() if v is not None}, seed=args.seed, grad_weight=grad_weight
    )


def describe(report: dict) -> list[str]:
    """The lines `discover distill` prints: the formula or network, then both fidelities."""
    student = report["student"]
    if getattr(student, "expression", None) is not None:
        lines = [f"formula: drift(r, A{', p' if student.temporal else ''}) = {student.expression}"]
    else:
        lines = [f"network: {student.name} with options {student.options()}"]
    for name in ("held_out", "train"):
        f = report[f"fidelity_{name}"]
        lines.append(
            f"fidelity ({name.replace('_', '-')}): drift R^2 {f['drift_r2']:.4f}, max error "
            f"{f['drift_max_error']:.3g}; d loss / d r R^2 {f['loss_grad_r2']:.4f}, max error "
            f"{f['loss_grad_max_error']:.3g}"
        )
    return lines


def r_squared(target: np.ndarray, fitted: np.ndarray) -> float:
    """1 - mean squared error / variance of the target (1 for an exact fit)."""
    return float(1.0 - np.mean((target - fitted) ** 2) / max(float(np.var(target)), 1e-12))


def fidelity(student: Rule, student_params: Any, samples: Samples) -> dict[str, float]:
    """R^2 and max |error| of the student's drift and of the gradient PPO follows, d loss / d r =
    d drift / d r - A (the loss being -(r A - drift)), against the teacher's on `samples`."""
    drift, grad = drift_and_grad(student, student_params, samples.ratio, samples.advantage, samples.progress)
    teacher_loss_grad = samples.grad - samples.advantage
    return {
        "drift_r2": r_squared(samples.drift, drift),
        "drift_max_error": float(np.max(np.abs(samples.drift - drift))),
        "loss_grad_r2": r_squared(teacher_loss_grad, grad - samples.advantage),
        "loss_grad_max_error": float(np.max(np.abs(samples.grad - grad))),
        "finite": bool(np.all(np.isfinite(drift)) and np.all(np.isfinite(grad))),
    }


@dataclasses.dataclass(frozen=True)
class MLPOptions:
    """The student network and its regression: hidden units, Adam steps and learning rate, seed,
    weight of the gradient term (0: value only)."""

    hidden_size: int = 16
    steps: int = 3000
    learning_rate: float = 3e-3
    seed: int = 0
    grad_weight: float = 0.0


def fit_mlp(teacher: Rule, samples: Samples, options: MLPOptions) -> tuple[Rule, dict]:
    """An `lpo` rule with options.hidden_size units (PPO-init, the teacher's eps and temporal
    awareness) regressed on the samples with Adam: loss = mse(drift) / var + grad_weight *
    mse(d drift / d r) / var."""
    student = make_rule(
        "lpo",
        hidden_size=options.hidden_size,
        ppo_init=True,
        eps=teacher.options().get("eps", 0.2),
        temporal=is_temporal(teacher),
    )
    r = jnp.asarray(samples.ratio, jnp.float32)
    a = jnp.asarray(samples.advantage, jnp.float32)
    p = jnp.zeros_like(r) if samples.progress is None else jnp.asarray(samples.progress, jnp.float32)
    y, gy = jnp.asarray(samples.drift, jnp.float32), jnp.asarray(samples.grad, jnp.float32)
    var, gvar = jnp.maximum(jnp.var(y), 1e-12), jnp.maximum(jnp.var(gy), 1e-12)
    from inner_algos.rules import DriftInputs

    def one(meta, r, a, p):
        return student.apply(meta, DriftInputs(r, a, p))

    def loss(meta):
        drift = jax.vmap(one, (None, 0, 0, 0))(meta, r, a, p)
        out = jnp.mean((drift - y) ** 2) / var
        if options.grad_weight > 0:
            grad = jax.vmap(jax.grad(one, 1), (None, 0, 0, 0))(meta, r, a, p)
            out += options.grad_weight * jnp.mean((grad - gy) ** 2) / gvar
        return out

    optimizer = optax.adam(optax.cosine_decay_schedule(options.learning_rate, options.steps))

    def step(carry, _):
        meta, state = carry
        value, grads = jax.value_and_grad(loss)(meta)
        updates, state = optimizer.update(grads, state, meta)
        return (optax.apply_updates(meta, updates), state), value

    meta = student.init(jax.random.PRNGKey(options.seed))
    (meta, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, options.steps))((meta, optimizer.init(meta)))
    return student, jax.device_get(meta)


def fit_symbolic(teacher: Rule, samples: Samples, options: symbolic.SearchOptions) -> tuple[Rule, dict]:
    """A `symbolic` rule found by `symbolic.search` on (a subset of MAX_ROWS of) the samples.

    Of the last generation's CANDIDATES best programs, the formula kept is the one whose parsed
    form scores best (the search's score on these samples, plus its parsimony term) among those
    finite, with a finite gradient, on the samples and at r = 1; it is then simplified by sympy
    (kept as built if simplifying changes its values by more than 1e-4), and its numbers fitted
    (`tune_constants`; kept if that scores better).
    """
    rng = np.random.default_rng(options.seed)
    rows = samples.subset(rng.permutation(len(samples.ratio))[:MAX_ROWS])
    regressor = symbolic.search(*rows, options)
    programs = sorted((p for p in regressor._programs[-1] if p is not None), key=lambda p: p.raw_fitness_)
    temporal = samples.progress is not None
    best = None
    for program in list({str(p): p for p in programs}.values())[:CANDIDATES]:
        expr = symbolic.drift_expression(program, temporal)
        rule = _formula_rule(symbolic.formula_text(expr, simplify=False))
        score = _score(rule, rows, options) + options.parsimony * program.length_
        if np.isfinite(score) and (best is None or score < best[0]):
            best = (score, expr, rule)
    if best is None:
        raise ValueError("no formula of the search's last generation is finite with a finite gradient")
    _, expr, rule = best
    simple = _formula_rule(symbolic.formula_text(expr, simplify=True))
    same = np.allclose(_values(simple, rows), _values(rule, rows), atol=1e-4, equal_nan=False)
    rule = simple if same else rule
    tuned = tune_constants(rule, rows, options.grad_weight)
    if tuned is not None and _score(tuned, rows, options) < _score(rule, rows, options):
        rule = tuned
    return rule, {}


TUNE_STEPS = 400


def tune_constants(rule, rows: Samples, grad_weight: float, steps: int = TUNE_STEPS) -> Rule | None:
    """The formula with its numbers fitted by Adam to the samples (as PySR optimises a program's
    constants), kept in the constrained form relu(f(r) - f(1)) so that it stays zero at r = 1 and
    non-negative; None when it does not come out finite."""
    tree = rule._tree
    r, a = jnp.asarray(rows.ratio, jnp.float32), jnp.asarray(rows.advantage, jnp.float32)
    p = jnp.zeros_like(r) if rows.progress is None else jnp.asarray(rows.progress, jnp.float32)
    y, gy = jnp.asarray(rows.drift, jnp.float32), jnp.asarray(rows.grad, jnp.float32)

    def drift(c, r, a, p):
        t = formula.with_constants(tree, c)
        f = formula.evaluate(t, {"r": r, "A": a, "p": p}) - formula.evaluate(t, {"r": 1.0, "A": a, "p": p})
        return jax.nn.relu(f)

    def loss(c):
        out = jnp.mean((jax.vmap(drift, (None, 0, 0, 0))(c, r, a, p) - y) ** 2) / jnp.maximum(
            jnp.var(y), 1e-12
        )
        if grad_weight > 0:
            g = jax.vmap(jax.grad(drift, 1), (None, 0, 0, 0))(c, r, a, p)
            out += grad_weight * jnp.mean((g - gy) ** 2) / jnp.maximum(jnp.var(gy), 1e-12)
        return out

    inner = symbolic.fit_constants(tree, loss, steps, optax.adam(1e-2))
    text = None if inner is None else symbolic.constrained_text(inner)
    return _formula_rule(text) if text is not None else None


def _formula_rule(text: str) -> Rule:
    return make_rule("symbolic", expression=text)


def _values(rule: Rule, rows: Samples) -> np.ndarray:
    return drift_and_grad(rule, {}, rows.ratio, rows.advantage, rows.progress)[0]


def _score(rule: Rule, rows: Samples, options: symbolic.SearchOptions) -> float:
    """The search's score of a parsed formula on `rows`; inf when not finite there or at r = 1."""
    drift, grad = drift_and_grad(rule, {}, rows.ratio, rows.advantage, rows.progress)
    at_one = drift_and_grad(rule, {}, np.ones_like(rows.ratio), rows.advantage, rows.progress)
    if not all(np.all(np.isfinite(x)) for x in (drift, grad, *at_one)):
        return float("inf")
    score = np.mean((drift - rows.drift) ** 2) / max(np.var(rows.drift), 1e-12)
    score += options.grad_weight * np.mean((grad - rows.grad) ** 2) / max(np.var(rows.grad), 1e-12)
    return float(score)
