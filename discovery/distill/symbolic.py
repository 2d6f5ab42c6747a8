"""Symbolic regression of a drift with gplearn, the drift's constraints built into the form searched.

The search evolves a program g over the columns [r - 1, log r, A, (r - 1) A, A log r] (and p when
the teacher reads the lifetime fraction) and scores the drift it implies,

    drift(r, A, p) = relu(g(r, A, p) - g(1, A, p)),

which is zero at r = 1 and non-negative whatever g is: the constraints hold by construction,
during the search and in the formula written out. (It does not force a zero gradient at r = 1;
the fidelity of the gradient says how far from the teacher's the formula's is.) The score is
the mean squared error of that drift, divided by the target's variance, plus, when the gradient
is fitted too, the same for d drift / d r by a forward difference (every sample is evaluated at
r, at r = 1 and at r + H). gplearn adds its parsimony pressure to the score.

The best program is turned into a sympy expression, the constraint form applied symbolically,
simplified, its numbers rounded to SIGNIFICANT digits, and printed in the language of
`inner_algos.rules.formula` (checked by parsing it back). The functions searched with are the
ones written out (`function_set`), so the formula computes what the search scored.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from typing import TYPE_CHECKING

import numpy as np

from inner_algos.rules.formula import DRIFT_VARIABLES, parse, with_constants
from inner_algos.rules.formula import constants as formula_constants

if TYPE_CHECKING:  # sympy is imported where a formula is built: not by every `discover` command
    import sympy

H = 1e-3  # forward-difference step in r for the gradient term
SIGNIFICANT = 4  # digits of the numbers in the printed formula


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """gplearn's budget and pressure: population, generations, parsimony (per node, on the
    variance-normalised score), seed, and the weight of the gradient term (0: value only)."""

    population: int = 1000
    generations: int = 15
    parsimony: float = 3e-4
    seed: int = 0
    grad_weight: float = 0.0


TINY = 1e-6  # keeps division and log finite and smooth everywhere (`function_set`)


def _div(a, b):
    return a * b / (b * b + TINY)


def _log(x):
    return np.log(np.abs(x) + TINY)


def _exp(x):
    return np.exp(np.minimum(x, 30.0))


def _tanh(x):
    return np.tanh(x)


def _relu(x):
    return np.maximum(x, 0.0)


FUNCTIONS = ("add", "sub", "mul", "max", "min", "abs", "div", "log", "exp", "tanh", "relu")


def function_set(names: tuple[str, ...] = FUNCTIONS) -> list:
    """gplearn's function set (`names` of FUNCTIONS; all of them for drifts): + - * max min abs
    (built in) and our own division, log, exp, tanh and relu. Our division a b / (b^2 + TINY),
    log log(|x| + TINY) and exp exp(min(x, 30)) are finite and smooth everywhere (gplearn's
    protected ones jump where the argument is small) and are written into the formula exactly as
    searched."""
    from gplearn.functions import make_function

    own = {"div": (_div, 2), "log": (_log, 1), "exp": (_exp, 1), "tanh": (_tanh, 1), "relu": (_relu, 1)}
    return [
        make_function(function=own[name][0], name=name, arity=own[name][1], wrap=False)
        if name in own
        else name
        for name in names
    ]


def columns(ratio: np.ndarray, advantage: np.ndarray, progress: np.ndarray | None) -> np.ndarray:
    """The search's inputs `[N, 5]` ([N, 6] with progress): r - 1, log r, A, (r - 1) A, A log r
    (, p): LPO's first-order inputs (Lu et al. 2022); the search forms squares itself."""
    x, log_r = ratio - 1.0, np.log(ratio)
    cols = [x, log_r, advantage, x * advantage, log_r * advantage]
    cols += [progress] if progress is not None else []
    return np.stack(cols, axis=-1)


def _metric(n: int, value_var: float, grad_var: float, grad_weight: float):
    """gplearn's score of a program from its outputs on the stacked rows [at r; at r = 1; at r + H]
    (the last block only with grad_weight > 0); y holds the drift targets then the gradient targets."""

    def score(y, y_pred, w):
        del w
        if len(y_pred) != (3 if grad_weight > 0 else 2) * n:  # gplearn's own check of the metric
            return float(np.mean((y - y_pred) ** 2))
        at_one = y_pred[n : 2 * n]
        drift = _relu(y_pred[:n] - at_one)
        loss = np.mean((drift - y[:n]) ** 2) / value_var
        if grad_weight > 0:
            grad = (_relu(y_pred[2 * n :] - at_one) - drift) / H
            loss += grad_weight * np.mean((grad - y[n : 2 * n]) ** 2) / grad_var
        return float(loss) if np.isfinite(loss) else 1e12

    return score


def search(
    ratio: np.ndarray,
    advantage: np.ndarray,
    progress: np.ndarray | None,
    drift: np.ndarray,
    grad: np.ndarray,
    options: SearchOptions,
):
    """Runs gplearn on the samples (all `[N]`; grad is d drift / d r); returns the fitted
    `SymbolicRegressor` (its `_programs[-1]` is the last generation)."""
    n = len(ratio)
    blocks = [columns(ratio, advantage, progress), columns(np.ones_like(ratio), advantage, progress)]
    targets = [drift, grad]
    if options.grad_weight > 0:
        blocks.append(columns(ratio + H, advantage, progress))
        targets.append(np.zeros_like(drift))
    x = np.concatenate(blocks)
    y = np.concatenate(targets)
    metric = _metric(n, max(np.var(drift), 1e-12), max(np.var(grad), 1e-12), options.grad_weight)
    regressor = make_regressor(options, metric)
    regressor.fit(x, y)
    return regressor


def make_regressor(options: SearchOptions, score, functions: tuple[str, ...] = FUNCTIONS):
    """gplearn's `SymbolicRegressor` with `function_set(functions)`, the options' budget, parsimony
    and seed, minimising `score(y, y_pred, w) -> float`."""
    from gplearn.fitness import make_fitness
    from gplearn.genetic import SymbolicRegressor

    metric = make_fitness(function=score, greater_is_better=False, wrap=False)
    return SymbolicRegressor(
        population_size=options.population,
        generations=options.generations,
        tournament_size=20,
        const_range=(-2.0, 2.0),
        init_depth=(2, 5),
        function_set=function_set(functions),
        metric=metric,
        parsimony_coefficient=options.parsimony,
        p_crossover=0.7,
        p_subtree_mutation=0.1,
        p_hoist_mutation=0.05,
        p_point_mutation=0.1,
        max_samples=1.0,
        random_state=options.seed,
        n_jobs=1,
    )


def _sympy_functions() -> dict:
    """The functions of `function_set`, exactly, as sympy operations."""
    import sympy

    return {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a * b / (b * b + sympy.Float(TINY)),
        "log": lambda a: sympy.log(sympy.Abs(a) + sympy.Float(TINY)),
        "abs": sympy.Abs,
        "max": lambda a, b: sympy.Max(a, b),
        "min": lambda a, b: sympy.Min(a, b),
        "exp": lambda a: sympy.exp(sympy.Min(a, 30)),
        "tanh": sympy.tanh,
        "relu": lambda a: sympy.Max(a, 0),
    }


def symbols() -> tuple[sympy.Symbol, sympy.Symbol, sympy.Symbol]:
    """r (positive), A and p (real) as sympy symbols: declared so, sympy keeps log r and |.| real
    (undeclared, it writes re(...) and im(...), which the formula language does not have)."""
    import sympy

    r = sympy.Symbol(DRIFT_VARIABLES[0], positive=True)
    return r, sympy.Symbol(DRIFT_VARIABLES[1], real=True), sympy.Symbol(DRIFT_VARIABLES[2], real=True)


def to_sympy(program, inputs: list) -> sympy.Expr:
    """A gplearn program (prefix list of functions, column indices and constants) as sympy, over
    `inputs` (the columns as sympy expressions), with the functions of `function_set` exactly."""
    import sympy

    nodes, functions = list(program.program), _sympy_functions()

    def build():
        node = nodes.pop(0)
        if isinstance(node, (int, np.integer)):
            return inputs[int(node)]
        if isinstance(node, (float, np.floating)):
            return sympy.Float(float(node))
        return functions[node.name](*(build() for _ in range(node.arity)))

    return build()


def drift_expression(program, temporal: bool) -> sympy.Expr:
    """relu(g - g at r = 1): the drift of a program g, zero at r = 1 and non-negative."""
    import sympy

    r, a, p = symbols()
    extra = [p] if temporal else []
    g = to_sympy(program, [r - 1, sympy.log(r), a, (r - 1) * a, a * sympy.log(r), *extra])
    zero = sympy.Integer(0)
    g_at_one = to_sympy(program, [zero, zero, a, zero, zero, *extra])
    return sympy.Max(g - g_at_one, 0)


def _round(expr: sympy.Expr, significant: int = SIGNIFICANT) -> sympy.Expr:
    import sympy

    return expr.xreplace({f: sympy.Float(f, significant) for f in expr.atoms(sympy.Float)})


SIMPLIFY_SECONDS = 20


def simplified(expr: sympy.Expr, seconds: float = SIMPLIFY_SECONDS) -> sympy.Expr | None:
    """sympy.simplify(expr), or None when it fails or takes longer than `seconds` (it can take
    minutes on nests of Max and exp); the time limit needs the main thread (SIGALRM), elsewhere
    nothing is simplified."""
    import sympy

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return None

    def stop(signum, frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return sympy.simplify(expr)
    except Exception:  # TimeoutError, or sympy failing on some Max/Abs nests
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def formula_text(
    expr: sympy.Expr,
    simplify: bool = True,
    variables: tuple[str, ...] = DRIFT_VARIABLES,
    significant: int = SIGNIFICANT,
) -> str:
    """expr printed in the formula language over `variables` (checked by parsing it back), its
    numbers rounded to `significant` digits; simplified by sympy first when asked and when that
    succeeds and parses."""
    candidates = (
        [_round(simpler, significant)] if simplify and (simpler := simplified(expr)) is not None else []
    )
    candidates.append(_round(expr, significant))
    for candidate in candidates:
        text = str(_round(candidate.evalf(significant + 2), significant))  # evalf alone prints binary noise
        try:
            parse(text, variables)
        except ValueError:
            continue
        return text
    raise ValueError(f"the formula found cannot be written in the formula language: {expr}")


def tree_to_sympy(tree: tuple) -> sympy.Expr:
    """A parsed formula (`inner_algos.rules.formula.parse`) as sympy, over `symbols()`."""
    import sympy

    names = dict(zip(DRIFT_VARIABLES, symbols()))
    functions = {
        "log": sympy.log,
        "exp": sympy.exp,
        "abs": sympy.Abs,
        "tanh": sympy.tanh,
        "sqrt": sympy.sqrt,
        "relu": lambda x: sympy.Max(x, 0),
        "max": sympy.Max,
        "min": sympy.Min,
        "clip": lambda x, lo, hi: sympy.Min(sympy.Max(x, lo), hi),
    }
    kind = tree[0]
    if kind == "num":
        return sympy.Float(tree[1])
    if kind == "var":
        return names[tree[1]]
    if kind == "neg":
        return -tree_to_sympy(tree[1])
    if kind == "pow":
        return tree_to_sympy(tree[1]) ** sympy.Float(tree[2])
    if kind == "call":
        return functions[tree[1]](*(tree_to_sympy(a) for a in tree[2]))
    left, right = tree_to_sympy(tree[1]), tree_to_sympy(tree[2])
    return {"add": left + right, "sub": left - right, "mul": left * right, "div": left / right}[kind]


def constrained_text(tree: tuple) -> str | None:
    """relu(f - f at r = 1) for a parsed formula f, printed in the formula language (None if it
    cannot be)."""
    import sympy

    f = tree_to_sympy(tree)
    r = symbols()[0]
    try:
        return formula_text(sympy.Max(f - f.subs(r, 1), 0))
    except ValueError:
        return None


def fit_constants(tree: tuple, loss, steps: int, optimizer) -> tuple | None:
    """`tree` (a parsed formula) with its numbers fitted by `steps` steps of the optax `optimizer`
    on `loss(constants [C]) -> scalar`, as PySR optimises a program's constants; None when the
    formula has no numbers or they do not come out finite."""
    import jax
    import jax.numpy as jnp
    import optax

    values = jnp.asarray(formula_constants(tree), jnp.float32)
    if values.size == 0:
        return None

    def step(carry, _):
        c, state = carry
        updates, state = optimizer.update(jax.grad(loss)(c), state, c)
        return (optax.apply_updates(c, updates), state), None

    (values, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, steps))((values, optimizer.init(values)))
    if not np.all(np.isfinite(np.asarray(values))):
        return None
    return with_constants(tree, [float(v) for v in np.asarray(values)])
