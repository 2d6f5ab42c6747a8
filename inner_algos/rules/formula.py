"""Formulas as rules: a small arithmetic language parsed from a whitelist into jax operations.

A formula is text such as `relu((r - clip(r, 0.8, 1.2)) * A)`. `parse` reads it with our own
recursive-descent parser into a tree of tuples; `evaluate` walks that tree node by node into
`jax.numpy` operations. Nothing is ever handed to Python's `eval`/`exec`, and the only names
that mean anything are those listed here:

  numbers     decimal literals (`2`, `0.6`, `1e-3`), finite and at most MAX_CONSTANT in size
  variables   the ones the caller allows (the drift rule: r, A, p; hyperparams_formula: p)
  operators   + - * / and ** (right-associative; the exponent must fold to a constant of at
              most MAX_EXPONENT in size, so `r**A` and `9**9**9` are refused)
  functions   FUNCTIONS below; sympy's spellings Max, Min, Abs are accepted as max, min, abs

Anything else (other names, attribute access, subscripts, strings, keywords, lambdas, commas
outside a call, text longer than MAX_CHARS, nesting deeper than MAX_DEPTH, more than MAX_NODES
nodes) raises FormulaError saying what was refused and where.

The drift rule `symbolic` (`SymbolicDrift`) holds its formula as an option, so an exported rule's
header carries the expression and loading it is parsing it; so does the hyperparameter rule
`hyperparams_formula` (`inner_algos.rules.hyperparams.FormulaHyperparams`), one formula in p per
scheduled hyperparameter.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from inner_algos.rules.base import Rule
from inner_algos.rules.drift import DriftInputs

MAX_CHARS = 4000
MAX_DEPTH = 48  # parentheses, calls and unary minus nested inside one another
MAX_NODES = 300
MAX_CONSTANT = 1e12
MAX_EXPONENT = 16.0


def _relu(x: jax.Array) -> jax.Array:
    return jnp.maximum(x, 0.0)


def _fold(op, args):
    out = args[0]
    for arg in args[1:]:
        out = op(out, arg)
    return out


# name -> (jax function of the evaluated arguments, least arity, largest arity or None for any)
FUNCTIONS: dict[str, tuple[Callable[..., jax.Array], int, int | None]] = {
    "log": (jnp.log, 1, 1),
    "exp": (jnp.exp, 1, 1),
    "abs": (jnp.abs, 1, 1),
    "tanh": (jnp.tanh, 1, 1),
    "sqrt": (jnp.sqrt, 1, 1),
    "relu": (_relu, 1, 1),
    "max": (lambda *a: _fold(jnp.maximum, a), 2, None),
    "min": (lambda *a: _fold(jnp.minimum, a), 2, None),
    "clip": (jnp.clip, 3, 3),
}
ALIASES = {"Max": "max", "Min": "min", "Abs": "abs"}  # sympy's printed names


class FormulaError(ValueError):
    """A formula refused by the parser, with the reason and the position."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/(),]))"
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, position) of each token; FormulaError at the first character that is none."""
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FormulaError(f"character {text[pos:].lstrip()[0]!r} at position {pos} is not allowed")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return out


class _Parser:
    """expr := term (('+'|'-') term)*;  term := unary (('*'|'/') unary)*;
    unary := '-' unary | '+' unary | power;  power := atom ('**' unary)?;
    atom := number | variable | function '(' expr (',' expr)* ')' | '(' expr ')'."""

    def __init__(self, text: str, variables: frozenset[str]):
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0
        self.nodes = 0
        self.variables = variables

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "end of formula", -1)

    def take(self, text: str) -> None:
        kind, got, pos = self.peek()
        if got != text or kind != "op":
            where = "at the end" if kind == "end" else f"at position {pos}"
            raise FormulaError(f"expected {text!r} {where}, found {got!r}")
        self.i += 1

    def node(self, *parts) -> tuple:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FormulaError(f"formula has more than {MAX_NODES} nodes")
        return tuple(parts)

    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(f"formula is nested deeper than {MAX_DEPTH} levels")

    def expr(self) -> tuple:
        left = self.term()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = "add" if self.peek()[1] == "+" else "sub"
            self.i += 1
            left = self.node(op, left, self.term())
        return left

    def term(self) -> tuple:
        left = self.unary()
        while self.peek()[1] in ("*", "/") and self.peek()[0] == "op":
            op = "mul" if self.peek()[1] == "*" else "div"
            self.i += 1
            left = self.node(op, left, self.unary())
        return left

    def unary(self) -> tuple:
        kind, text, _ = self.peek()
        if kind == "op" and text in ("-", "+"):
            self.i += 1
            self.nested()
            operand = self.unary()
            self.depth -= 1
            return self.node("neg", operand) if text == "-" else operand
        return self.power()

    def power(self) -> tuple:
        base = self.atom()
        if self.peek()[:2] == ("op", "**"):
            pos = self.peek()[2]
            self.i += 1
            self.nested()
            exponent = _constant(self.unary(), f"the exponent at position {pos}")
            self.depth -= 1
            if abs(exponent) > MAX_EXPONENT:
                raise FormulaError(
                    f"exponent {exponent:g} at position {pos} exceeds {MAX_EXPONENT:g} in size"
                )
            if base[0] == "num":
                return self.node("num", _checked(_safe_pow(base[1], exponent), f"position {pos}"))
            return self.node("pow", base, exponent)
        return base

    def atom(self) -> tuple:
        kind, text, pos = self.peek()
        if kind == "num":
            self.i += 1
            return self.node("num", _checked(float(text), f"the number {text!r} at position {pos}"))
        if kind == "op" and text == "(":
            self.i += 1
            self.nested()
            inner = self.expr()
            self.depth -= 1
            self.take(")")
            return inner
        if kind == "name":
            return self.name(text, pos)
        where = "at the end" if kind == "end" else f"at position {pos}"
        raise FormulaError(f"expected a number, a variable, a function or '(' {where}, found {text!r}")

    def name(self, text: str, pos: int) -> tuple:
        self.i += 1
        function = ALIASES.get(text, text)
        if function in FUNCTIONS:
            _, least, most = FUNCTIONS[function]
            self.take("(")
            self.nested()
            args = [self.expr()]
            while self.peek()[:2] == ("op", ","):
                self.i += 1
                args.append(self.expr())
            self.depth -= 1
            self.take(")")
            if len(args) < least or (most is not None and len(args) > most):
                wanted = f"{least}" if least == most else f"at least {least}"
                raise FormulaError(f"{text} at position {pos} takes {wanted} arguments, got {len(args)}")
            return self.node("call", function, tuple(args))
        if text in self.variables:
            return self.node("var", text)
        raise FormulaError(
            f"name {text!r} at position {pos} is not allowed; variables: "
            f"{', '.join(sorted(self.variables)) or 'none'}; functions: {', '.join(FUNCTIONS)}"
        )


def _checked(value: float, what: str) -> float:
    if not math.isfinite(value) or abs(value) > MAX_CONSTANT:
        raise FormulaError(
            f"{what} gives the constant {value:g}: not finite or above {MAX_CONSTANT:g} in size"
        )
    return value


def _safe_pow(base: float, exponent: float) -> float:
    try:
        return float(base**exponent) if not (base < 0 and exponent != int(exponent)) else math.nan
    except (OverflowError, ZeroDivisionError):
        return math.inf


def _constant(node: tuple, what: str) -> float:
    """Folds a tree of numbers into a float (the exponent of **); FormulaError if it holds anything else."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "neg":
        return -_constant(node[1], what)
    if kind in ("add", "sub", "mul", "div"):
        a, b = _constant(node[1], what), _constant(node[2], what)
        if kind == "div" and b == 0:
            raise FormulaError(f"{what} divides by zero")
        value = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b if b else 0.0}[kind]
        return _checked(value, what)
    raise FormulaError(f"{what} must be a constant number")


def parse(text: str, variables: frozenset[str] | set[str] | tuple[str, ...]) -> tuple:
    """The tree of formula `text` over the allowed `variables`; FormulaError says why it is refused.

    Nodes are tuples: ("num", value), ("var", name), ("neg", node), (op, left, right) for op in
    add/sub/mul/div, ("pow", node, constant exponent), ("call", function name, (argument nodes)).
    """
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be text, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise FormulaError(f"formula is {len(text)} characters long; at most {MAX_CHARS} are allowed")
    parser = _Parser(text, frozenset(variables))
    if not parser.tokens:
        raise FormulaError("formula is empty")
    tree = parser.expr()
    kind, got, pos = parser.peek()
    if kind != "end":
        raise FormulaError(f"unexpected {got!r} at position {pos}")
    return tree


def variables_of(tree: tuple) -> set[str]:
    """The variables a tree uses."""
    if tree[0] == "var":
        return {tree[1]}
    if tree[0] == "call":
        return set().union(*(variables_of(a) for a in tree[2]))
    if tree[0] in ("neg", "pow"):
        return variables_of(tree[1])
    if tree[0] == "num":
        return set()
    return variables_of(tree[1]) | variables_of(tree[2])


_BINARY: dict[str, Callable[..., jax.Array]] = {
    "add": jnp.add,
    "sub": jnp.subtract,
    "mul": jnp.multiply,
    "div": jnp.divide,
}


def evaluate(tree: tuple, env: Mapping[str, Any]) -> jax.Array:
    """The value of a parsed formula with variables bound by `env` (arrays broadcast together)."""
    kind = tree[0]
    if kind == "num":
        return jnp.asarray(tree[1], jnp.float32)
    if kind == "var":
        return jnp.asarray(env[tree[1]])
    if kind == "neg":
        return -evaluate(tree[1], env)
    if kind == "pow":
        base, exponent = evaluate(tree[1], env), tree[2]
        if exponent == int(exponent):
            return jax.lax.integer_pow(base, int(exponent))
        return jnp.power(base, exponent)
    if kind == "call":
        return FUNCTIONS[tree[1]][0](*(evaluate(a, env) for a in tree[2]))
    return _BINARY[kind](evaluate(tree[1], env), evaluate(tree[2], env))


DRIFT_VARIABLES = ("r", "A", "p")  # probability ratio, advantage, lifetime fraction n/N


@dataclasses.dataclass(frozen=True)
class SymbolicDrift(Rule):
    """A drift written as a formula in r (probability ratio), A (normalised advantage) and p
    (lifetime fraction n/N); no meta-parameters. PPO's policy loss is -mean(r A - formula).

    The formula is used exactly as written (a distilled formula comes with the constraints of
    `discover distill` built in); e.g. PPO-clip is `relu((r - clip(r, 0.8, 1.2)) * A)`.
    """

    name: ClassVar[str] = "symbolic"
    family: ClassVar[str] = "drift"
    expression: str = "0"
    _tree: ClassVar[tuple]  # the parsed formula, set by __post_init__ (not an option)

    def __post_init__(self):
        try:
            tree = parse(self.expression, DRIFT_VARIABLES)
        except FormulaError as err:
            raise ValueError(f"rule.expression = {short(self.expression)} is refused: {err}") from None
        object.__setattr__(self, "_tree", tree)

    @property
    def temporal(self) -> bool:
        """Whether the drift depends on the lifetime fraction p."""
        return "p" in variables_of(self._tree)

    def apply(self, meta_params, inputs: DriftInputs) -> jax.Array:
        del meta_params
        ratio = jnp.asarray(inputs.ratio)
        env = {"r": ratio, "A": inputs.advantage, "p": jnp.asarray(inputs.progress, ratio.dtype)}
        out = evaluate(self._tree, env)
        return jnp.broadcast_to(out, ratio.shape).astype(ratio.dtype)


def short(text: Any, limit: int = 80) -> str:
    """repr of a (possibly hostile, long) value cut to `limit` characters for an error message."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit] + f"... ({len(shown)} characters)"


def constants(tree: tuple) -> list[float]:
    """The numbers of a tree, in the order `with_constants` puts them back (exponents excluded)."""
    if tree[0] == "num":
        return [tree[1]]
    if tree[0] == "var":
        return []
    if tree[0] == "call":
        return [c for a in tree[2] for c in constants(a)]
    if tree[0] in ("neg", "pow"):
        return constants(tree[1])
    return constants(tree[1]) + constants(tree[2])


def with_constants(tree: tuple, values) -> tuple:
    """The tree with its numbers replaced by `values` (a sequence, possibly of traced scalars)."""
    values = list(values)
    index = iter(range(len(values)))

    def rebuild(node: tuple) -> tuple:
        kind = node[0]
        if kind == "num":
            return ("num", values[next(index)])
        if kind == "var":
            return node
        if kind == "call":
            return ("call", node[1], tuple(rebuild(a) for a in node[2]))
        if kind in ("neg", "pow"):
            return (kind, rebuild(node[1]), *node[2:])
        return (kind, rebuild(node[1]), rebuild(node[2]))

    return rebuild(tree)


_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def to_text(tree: tuple) -> str:
    """A tree written back in the formula language (fully parenthesised): parse(to_text(t)) == t."""
    kind = tree[0]
    if kind == "num":
        return repr(float(tree[1]))
    if kind == "var":
        return tree[1]
    if kind == "neg":
        return f"(-{to_text(tree[1])})"
    if kind == "pow":
        return f"({to_text(tree[1])}**{float(tree[2])!r})"
    if kind == "call":
        return f"{tree[1]}({', '.join(to_text(a) for a in tree[2])})"
    return f"({to_text(tree[1])} {_SYMBOLS[kind]} {to_text(tree[2])})"
