"""Distillers of the hyperparams family: each scheduled hyperparameter's schedule h(p) over the
lifetime fraction p in [0, 1], into a formula in p (a `hyperparams_formula` rule) or a polynomial
of lower degree (a `hyperparams` rule with a smaller `progress_degree`).

Both fit the teacher's unconstrained value z(p) (logit of gamma, gae_lambda, clip_eps; log of
ent_coef, learning_rate), and their student applies the same squash h = sigmoid(z) or exp(z):
whatever the fitted z does between or beyond the samples, the student's gamma stays in (0, 1) and
its learning rate positive (a fit of h itself could not promise that), the teacher's own form is
a polynomial in this space (so a planted schedule is recoverable exactly), and an error in log lr
is a relative error of lr, whose values span orders of magnitude. The fidelity is measured on the
hyperparameters themselves: R^2 and max |error| of h(p) per hyperparameter.

Samples: GRID evenly spaced p in [0, 1] to fit, HELD_OUT uniform p (seed + 1) for the fidelity.
Hyperparameters the teacher does not schedule keep its defaults in the student.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from discovery.distill import symbolic
from discovery.distill.drift import r_squared
from inner_algos.rules import Rule, formula, make_rule
from inner_algos.rules.hyperparams import FORMULA_VARIABLES, HYPERPARAMS, UNIT_INTERVAL

GRID = 201  # evenly spaced lifetime fractions fitted
HELD_OUT = 1000  # uniform lifetime fractions for the fidelity
CANDIDATES = 12  # programs of the last generation whose formulas are compared
SIGNIFICANT = 6  # digits of a formula's numbers: z(p) = log lr is about -8 and varies by less than 1
TUNE_STEPS = 1000
# smooth functions only: the teacher's schedules are smooth (polynomials), and max, min, abs and
# relu would put kinks in the student's
FUNCTIONS = ("add", "sub", "mul", "div", "log", "exp", "tanh")


class Schedules(NamedTuple):
    """The teacher on lifetime fractions: progress `[N]`, and for each scheduled hyperparameter
    its unconstrained value (what is fitted) and its value (where the fidelity is measured), `[N]`."""

    progress: np.ndarray
    unconstrained: dict[str, np.ndarray]
    values: dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class PolynomialOptions:
    """The `--to mlp` student of this family: the degree of its polynomial in p."""

    degree: int = 2


def tabulate(rule: Any, meta_params: Any, progress: np.ndarray) -> Schedules:
    """The rule's scheduled hyperparameters at each of `progress` `[N]` (the rule must have
    `scheduled` and `unconstrained`, as both of the family's rules do)."""
    p = jnp.asarray(progress, jnp.float32)
    z = jax.jit(jax.vmap(lambda q: rule.unconstrained(meta_params, q)))(p)
    h = jax.jit(jax.vmap(lambda q: rule.apply(meta_params, q)))(p)._asdict()
    names = rule.scheduled
    return Schedules(
        np.asarray(p, np.float64),
        {n: np.asarray(z[n], np.float64) for n in names},
        {n: np.asarray(h[n], np.float64) for n in names},
    )


def samples(source, args) -> tuple[Schedules, Schedules, list[str]]:
    """(train, held-out, notes) for `discover distill` (module docstring)."""
    rule, meta = source.rule, source.meta_params
    if not getattr(rule, "scheduled", ()):
        raise ValueError(
            f"{source.label}: rule {rule.name!r} schedules no hyperparameter (all are its defaults): "
            "nothing to distil"
        )
    rng = np.random.default_rng(args.seed + 1)
    train = tabulate(rule, meta, np.linspace(0.0, 1.0, GRID))
    held_out = tabulate(rule, meta, rng.uniform(0.0, 1.0, HELD_OUT))
    notes = [
        f"schedules of {', '.join(rule.scheduled)} over the lifetime fraction p: {GRID} evenly spaced "
        f"points; held out: {HELD_OUT} uniform points"
    ]
    return train, held_out, notes


def options(args) -> symbolic.SearchOptions | PolynomialOptions:
    """The fit's options from the command line (`--degree` defaults to 2)."""
    if args.to == "symbolic":
        return symbolic.SearchOptions(args.population, args.generations, args.parsimony, args.seed)
    return PolynomialOptions(2 if args.degree is None else args.degree)


def fidelity(student: Rule, student_params: Any, held_out: Schedules) -> dict[str, Any]:
    """Per hyperparameter, R^2 (`<name>_r2`; None when the teacher is constant there, where R^2 is
    undefined: its max error says how exact the student is) and max |error| (`<name>_max_error`)
    of the student's values against the teacher's; `finite`: all of the student's are."""
    values = jax.jit(jax.vmap(lambda q: student.apply(student_params, q)))(
        jnp.asarray(held_out.progress, jnp.float32)
    )._asdict()
    out: dict[str, Any] = {}
    finite = True
    for name, target in held_out.values.items():
        fitted = np.asarray(values[name], np.float64)
        finite = finite and bool(np.all(np.isfinite(fitted)))
        out[f"{name}_r2"] = r_squared(target, fitted) if np.ptp(target) > 0 else None
        out[f"{name}_max_error"] = float(np.max(np.abs(target - fitted)))
    out["finite"] = finite
    return out


def _defaults(teacher: Any) -> dict[str, float]:
    return {name: float(getattr(teacher, name)) for name in HYPERPARAMS}


def fit_polynomial(teacher: Rule, train: Schedules, options: PolynomialOptions) -> tuple[Rule, dict]:
    """A `hyperparams` rule with progress_degree = options.degree learning the teacher's scheduled
    hyperparameters, its coefficients the least-squares fit of each unconstrained schedule
    (float64, exact for a teacher polynomial of that degree or lower); the teacher's defaults."""
    if options.degree < 0:
        raise ValueError(f"--degree = {options.degree} must be >= 0")
    names = tuple(train.unconstrained)
    vander = np.vander(train.progress, options.degree + 1, increasing=True)  # [N, d + 1]
    meta = {
        name: np.asarray(np.linalg.lstsq(vander, z, rcond=None)[0], np.float32)
        for name, z in train.unconstrained.items()
    }
    student = make_rule(
        "hyperparams", learn=list(names), progress_degree=options.degree, **_defaults(teacher)
    )
    return student, meta


def fit_symbolic(teacher: Rule, train: Schedules, options: symbolic.SearchOptions) -> tuple[Rule, dict]:
    """A `hyperparams_formula` rule: per scheduled hyperparameter, `schedule_formula` of its
    unconstrained schedule (a constant schedule is written as its number: the shortest text that
    reads back as the same float32, so exactly)."""
    formulas = {
        name: str(np.float32(z[0])) if np.ptp(z) == 0 else schedule_formula(train.progress, z, options)
        for name, z in train.unconstrained.items()
    }
    return make_rule("hyperparams_formula", formulas=formulas, **_defaults(teacher)), {}


def schedule_formula(progress: np.ndarray, z: np.ndarray, options: symbolic.SearchOptions) -> str:
    """A formula in p for z(p) (both `[N]`). gplearn searches g over the one column p with linear
    scaling (Keijzer 2003): a program is scored by the mean squared error of the best affine map
    a + b g(p) of it to the standardised target (z - mean) / std, plus the parsimony term, so the
    search looks for the shape and least squares supplies offset and scale (the offset of log lr,
    about -8, would otherwise have to be built from constants in [-2, 2]). Of the last
    generation's CANDIDATES best programs, mean + std (a + b g(p)) scoring best once parsed is
    kept, simplified by sympy when that keeps its values (within 1e-6 relative), and its numbers
    fitted by Adam (`tune_constants`; kept if that scores better)."""
    mean, std = float(np.mean(z)), float(np.std(z))
    target = (z - mean) / std
    regressor = symbolic.make_regressor(options, _scaled_mse, FUNCTIONS)
    regressor.fit(progress[:, None], target)
    programs = sorted((q for q in regressor._programs[-1] if q is not None), key=lambda q: q.raw_fitness_)
    p = symbolic.symbols()[2]
    best = None
    for program in list({str(q): q for q in programs}.values())[:CANDIDATES]:
        a, b = _affine(target, program.execute(progress[:, None]))
        expr = mean + std * (a + b * symbolic.to_sympy(program, [p]))
        text = _text(expr, simplify=False)
        score = _score(text, progress, z) + options.parsimony * program.length_
        if text is not None and np.isfinite(score) and (best is None or score < best[0]):
            best = (score, expr, text)
    if best is None:
        raise ValueError("no formula of the search's last generation is finite on [0, 1]")
    _, expr, text = best
    simple = _text(expr, simplify=True)
    if simple is not None and np.allclose(_values(simple, progress), _values(text, progress), rtol=1e-6):
        text = simple
    tuned = tune_constants(text, progress, z)
    if tuned is not None and _score(tuned, progress, z) < _score(text, progress, z):
        text = tuned
    return text


def _affine(y: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising mean((y - a - b g)^2) (b = 0 for a constant g)."""
    var = float(np.var(g))
    b = float(np.mean((g - g.mean()) * (y - y.mean())) / var) if np.isfinite(var) and var > 0 else 0.0
    return float(np.mean(y) - b * np.mean(g)), b


def _scaled_mse(y, y_pred, w) -> float:
    """gplearn's score of a program: the mean squared error after `_affine` (1e12 if not finite)."""
    del w
    if not np.all(np.isfinite(y_pred)):
        return 1e12
    a, b = _affine(y, y_pred)
    loss = float(np.mean((y - a - b * y_pred) ** 2))
    return loss if np.isfinite(loss) else 1e12


def _text(expr, simplify: bool) -> str | None:
    try:
        return symbolic.formula_text(expr, simplify, FORMULA_VARIABLES, SIGNIFICANT)
    except ValueError:
        return None


def _values(text: str, progress: np.ndarray) -> np.ndarray:
    tree = formula.parse(text, FORMULA_VARIABLES)
    p = jnp.asarray(progress, jnp.float32)
    return np.asarray(jnp.broadcast_to(formula.evaluate(tree, {"p": p}), p.shape), np.float64)


def _score(text: str | None, progress: np.ndarray, z: np.ndarray) -> float:
    """Variance-normalised squared error of a formula against z; inf when it is not finite."""
    if text is None:
        return float("inf")
    fitted = _values(text, progress)
    if not np.all(np.isfinite(fitted)):
        return float("inf")
    return float(np.mean((fitted - z) ** 2) / max(float(np.var(z)), 1e-12))


def tune_constants(text: str, progress: np.ndarray, z: np.ndarray, steps: int = TUNE_STEPS) -> str | None:
    """The formula with its numbers fitted to z by Adam (cosine-decayed from 1e-2 over `steps`),
    printed with SIGNIFICANT digits; None when it has no numbers or does not come out finite."""
    tree = formula.parse(text, FORMULA_VARIABLES)
    p, target = jnp.asarray(progress, jnp.float32), jnp.asarray(z, jnp.float32)
    scale = jnp.maximum(jnp.var(target), 1e-12)

    def loss(c):
        fitted = formula.evaluate(formula.with_constants(tree, c), {"p": p})
        return jnp.mean((fitted - target) ** 2) / scale

    tuned = symbolic.fit_constants(tree, loss, steps, optax.adam(optax.cosine_decay_schedule(1e-2, steps)))
    if tuned is None:
        return None
    return _text(symbolic.tree_to_sympy(tuned), simplify=False)


def describe(report: dict) -> list[str]:
    """The lines `discover distill` prints: the student, then its fidelity per hyperparameter."""
    student = report["student"]
    if student.name == "hyperparams_formula":
        lines = [
            f"formula: {name}(p) = {'sigmoid' if name in UNIT_INTERVAL else 'exp'}({text})"
            for name, text in student.options()["formulas"].items()
        ]
    else:
        degree, names = student.progress_degree, ", ".join(student.learn)
        lines = [f"polynomial: hyperparams rule of progress_degree {degree} for {names}"]
    for where in ("held_out", "train"):
        f = report[f"fidelity_{where}"]
        parts = [
            f"{name} R^2 {'n/a (constant)' if r2 is None else f'{r2:.4f}'}, max error "
            f"{f[f'{name}_max_error']:.3g}"
            for key, r2 in f.items()
            if key.endswith("_r2")
            for name in [key[: -len("_r2")]]
        ]
        lines.append(f"fidelity ({where.replace('_', '-')}): " + "; ".join(parts))
    return lines
