"""A safe compiler from formula strings to JAX functions.

Surface files write their loss as a formula such as ``"(a - x)**2 + b*(y - x**2)**2"``.
:func:`compile_formula` parses it with :mod:`ast`, checks every node against a short
whitelist and builds a plain Python closure over :mod:`jax.numpy`; nothing is ever passed
to ``eval`` or ``exec``. Allowed are numbers, the coordinate names, the parameter names,
``pi`` and ``e``, the operators ``+ - * / **`` (binary), unary ``-`` and ``+``,
parentheses and calls of the functions in :data:`FUNCTIONS`.

Sub-expressions without coordinates (``2*pi``, ``a**2``, ``sqrt(b)``) are folded to one
float64 constant when the formula is compiled, so parameters cost nothing at run time
and a constant that overflows is reported at once. An exponent that folds to a small
integer uses :func:`jax.lax.integer_pow`, which keeps ``x**2`` differentiable at 0.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from optbench._errors import ConfigError, closest

__all__ = ["CONSTANTS", "FUNCTIONS", "compile_formula", "evaluate"]

#: Named constants every formula may use.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

#: Function name -> (number of arguments, jax.numpy function, numpy function).
FUNCTIONS: dict[str, tuple[int, Callable[..., Any], Callable[..., Any]]] = {
    "sin": (1, jnp.sin, np.sin),
    "cos": (1, jnp.cos, np.cos),
    "tan": (1, jnp.tan, np.tan),
    "arcsin": (1, jnp.arcsin, np.arcsin),
    "arccos": (1, jnp.arccos, np.arccos),
    "arctan": (1, jnp.arctan, np.arctan),
    "arctan2": (2, jnp.arctan2, np.arctan2),
    "sinh": (1, jnp.sinh, np.sinh),
    "cosh": (1, jnp.cosh, np.cosh),
    "tanh": (1, jnp.tanh, np.tanh),
    "exp": (1, jnp.exp, np.exp),
    "log": (1, jnp.log, np.log),
    "sqrt": (1, jnp.sqrt, np.sqrt),
    "abs": (1, jnp.abs, np.abs),
    "minimum": (2, jnp.minimum, np.minimum),
    "maximum": (2, jnp.maximum, np.maximum),
}

_BINARY = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Pow: ("**", operator.pow),
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_MAX_LENGTH = 10_000
_MAX_INT_POWER = 64

# Friendly names for the node types people try most often.
_FORBIDDEN = {
    ast.Attribute: "attribute access",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.Compare: "a comparison",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "'if ... else'",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.JoinedStr: "a string",
    ast.NamedExpr: "an assignment",
    ast.Starred: "'*' unpacking",
}

# A compiled node: either a folded float constant or a function of the coordinate list.
_Node = tuple[bool, Any]


class _Compiler:
    """Checks an ``ast`` tree and turns it into nested closures (one per node)."""

    def __init__(
        self,
        text: str,
        coords: Sequence[str],
        params: Mapping[str, float],
        file: str | None,
        key: str,
        numpy: bool = False,
    ):
        self.numpy = numpy  # build the closures over numpy instead of jax.numpy
        self.text = text
        self.coords = {c: i for i, c in enumerate(coords)}
        self.params = dict(params)
        self.file = file
        self.key = key

    # -- errors ---------------------------------------------------------------------------
    def fail(self, node: ast.AST | None, problem: str, fix: str) -> ConfigError:
        piece = ast.get_source_segment(self.text, node) if node is not None else None
        where = f" in '{piece}'" if piece else ""
        return ConfigError(f"{problem}{where}; {fix}", key=self.key, file=self.file)

    def allowed_names(self) -> str:
        parts = []
        if self.coords:
            parts.append("the coordinates " + ", ".join(self.coords))
        if self.params:
            parts.append("the parameters " + ", ".join(self.params))
        parts.append("or " + ", ".join(CONSTANTS) if parts else ", ".join(CONSTANTS))
        return "use one of " + ", ".join(parts)

    @staticmethod
    def grammar() -> str:
        return (
            "a formula uses only numbers, names, + - * / **, parentheses and the functions "
            + ", ".join(FUNCTIONS)
        )

    # -- compilation ----------------------------------------------------------------------
    def node(self, node: ast.AST) -> _Node:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                kind = "a string" if isinstance(value, (str, bytes)) else f"the constant {value!r}"
                raise self.fail(node, f"{kind} is not allowed", self.grammar())
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise self.fail(node, "the number is too large", "use a finite float64 value")
            return True, number
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.UnaryOp):
            op = _UNARY.get(type(node.op))
            if op is None:
                raise self.fail(node, "only unary '-' and '+' are allowed", self.grammar())
            return self.apply(node, op, [self.node(node.operand)])
        if isinstance(node, ast.Call):
            return self.call(node)
        what = _FORBIDDEN.get(type(node), f"a '{type(node).__name__}' expression")
        raise self.fail(node, f"{what} is not allowed", self.grammar())

    def name(self, node: ast.Name) -> _Node:
        name = node.id
        if name in self.coords:
            i = self.coords[name]
            return False, lambda xs: xs[i]
        if name in self.params:
            return True, float(self.params[name])
        if name in CONSTANTS:
            return True, CONSTANTS[name]
        if name in FUNCTIONS:
            raise self.fail(node, f"'{name}' is a function", f"call it, as in {name}(x)")
        valid = [*self.coords, *self.params, *CONSTANTS]
        hint = closest(name, valid)
        fix = self.allowed_names()
        if hint.startswith("did you mean"):
            fix = f"{hint} {fix}"
        raise self.fail(None, f"unknown name '{name}'", fix)

    def binary(self, node: ast.BinOp) -> _Node:
        entry = _BINARY.get(type(node.op))
        if entry is None:
            raise self.fail(node, "only the operators + - * / ** are allowed", self.grammar())
        symbol, op = entry
        left, right = self.node(node.left), self.node(node.right)
        if symbol == "/" and right[0] and right[1] == 0:
            raise self.fail(node, "division by zero", "check the formula and the parameter values")
        if symbol == "**" and right[0] and not left[0]:
            exponent = right[1]
            if float(exponent).is_integer() and abs(exponent) <= _MAX_INT_POWER:
                right = (True, int(exponent))  # lax.integer_pow: exact and smooth at 0
        return self.apply(node, op, [left, right])

    def call(self, node: ast.Call) -> _Node:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            called = ast.get_source_segment(self.text, func)
            hint = closest(func.id, FUNCTIONS) if isinstance(func, ast.Name) else ""
            hint = f"{hint} " if hint.startswith("did you mean") else ""
            raise self.fail(
                node,
                f"'{called}' is not an allowed function",
                f"{hint}calls only " + ", ".join(FUNCTIONS) + " are allowed",
            )
        arity, jfn, nfn = FUNCTIONS[func.id]
        if node.keywords or len(node.args) != arity:
            raise self.fail(
                node,
                f"{func.id} takes {arity} positional argument{'s' if arity > 1 else ''}",
                f"write {func.id}({', '.join('xy'[:arity])})",
            )
        args = [self.node(a) for a in node.args]
        return self.apply(node, (jfn, nfn), args)

    def apply(self, node: ast.AST, op: Any, args: list[_Node]) -> _Node:
        jop, nop = op if isinstance(op, tuple) else (op, op)
        if all(constant for constant, _ in args):
            return True, self.fold(node, nop, [value for _, value in args])
        if self.numpy:
            jop = nop
        getters = [v if not c else (lambda xs, v=v: v) for c, v in args]
        if len(getters) == 1:
            (g,) = getters
            return False, lambda xs: jop(g(xs))
        g0, g1 = getters
        return False, lambda xs: jop(g0(xs), g1(xs))

    def fold(self, node: ast.AST, op: Callable[..., Any], values: list[float]) -> float:
        try:
            with np.errstate(all="ignore"):
                result = float(op(*(np.float64(v) for v in values)))
        except (ArithmeticError, ValueError):
            result = math.nan
        if not math.isfinite(result):
            raise self.fail(
                node,
                f"the constant part evaluates to {result}",
                "check the parameter values and the constants (division by zero? overflow?)",
            )
        return result

    def parse(self) -> ast.expr:
        if not isinstance(self.text, str):
            raise ConfigError(
                f"expected a string, got {type(self.text).__name__}",
                key=self.key,
                file=self.file,
            )
        if not self.text.strip():
            raise ConfigError(
                "the formula is empty; write an expression such as x**2 - y**2",
                key=self.key,
                file=self.file,
            )
        if len(self.text) > _MAX_LENGTH:
            raise ConfigError(
                f"the formula is longer than {_MAX_LENGTH} characters; shorten it",
                key=self.key,
                file=self.file,
            )
        try:
            return ast.parse(self.text, mode="eval").body
        except SyntaxError as err:
            col = f" at column {err.offset}" if err.offset else ""
            shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
            raise ConfigError(
                f"syntax error{col} in '{shown}' ({err.msg}); " + self.grammar(),
                key=self.key,
                file=self.file,
            ) from None
        except (RecursionError, MemoryError):
            raise ConfigError(
                "the formula is nested too deeply; simplify it", key=self.key, file=self.file
            ) from None

    def compile(self) -> _Node:
        tree = self.parse()
        try:
            return self.node(tree)
        except RecursionError:
            raise ConfigError(
                "the formula is nested too deeply; simplify it", key=self.key, file=self.file
            ) from None


def _check_names(coords: Sequence[str], params: Mapping[str, Any], file: str | None) -> None:
    reserved = set(CONSTANTS) | set(FUNCTIONS)
    seen: set[str] = set()
    for kind, names in (("coords", coords), ("params", params)):
        for name in names:
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigError(
                    f"{name!r} is not a valid name; use letters, digits and '_'",
                    key=kind,
                    file=file,
                )
            if name in reserved or name in seen:
                why = "is reserved" if name in reserved else "is used twice"
                raise ConfigError(
                    f"the name '{name}' {why}; rename it (reserved: {', '.join(sorted(reserved))})",
                    key=kind,
                    file=file,
                )
            seen.add(name)


def compile_formula(
    text: str,
    coords: Sequence[str],
    params: Mapping[str, float] | None = None,
    *,
    file: str | None = None,
    key: str = "formula",
) -> Callable[[Any], Any]:
    """Compile a formula over ``coords`` and ``params`` into ``f(x) -> scalar``.

    ``x`` is a 1-D array of length ``len(coords)``; the parameter values are baked in as
    float64 constants. The result is jittable, differentiable and vmappable and keeps the
    floating dtype of ``x`` (float32 stays float32).

    Raises:
      ConfigError: naming ``file``, ``key``, the offending piece and the fix, for syntax
        errors, unknown names, and anything outside the whitelist (attribute access,
        subscripts, calls of other functions, lambdas, strings, comparisons, ...).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> f = compile_formula("(a - x)**2 + b*(y - x**2)**2", ["x", "y"], {"a": 1, "b": 100})
      >>> round(float(f(jnp.array([-1.2, 1.0]))), 4)
      24.2
      >>> jax.grad(f)(jnp.array([1.0, 1.0])).tolist()
      [0.0, 0.0]
    """
    params = dict(params or {})
    _check_names(coords, params, file)
    constant, value = _Compiler(text, coords, params, file, key).compile()
    n = len(coords)

    def fn(x: Any) -> Any:
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        if x.shape != (n,):
            raise ValueError(f"expected a point of shape ({n},), got shape {x.shape}")
        out = value if constant else value([x[i] for i in range(n)])
        return jnp.asarray(out, dtype=x.dtype)

    np_constant, np_value = _Compiler(text, coords, params, file, key, numpy=True).compile()

    def fn_numpy(x: Any) -> float:
        """The same formula in plain numpy float64 (no dispatch: for a few points)."""
        xs = [np.float64(v) for v in np.asarray(x, dtype=np.float64).reshape(n)]
        with np.errstate(all="ignore"):
            return float(np_value if np_constant else np_value(xs))

    fn.__name__ = "formula"
    fn.__qualname__ = "formula"
    fn.__doc__ = f"f({', '.join(coords)}) = {text}"
    fn.formula = text  # type: ignore[attr-defined]
    fn.numpy = fn_numpy  # type: ignore[attr-defined]
    return fn


def evaluate(
    text: str | float,
    params: Mapping[str, float] | None = None,
    *,
    file: str | None = None,
    key: str = "formula",
) -> float:
    """Evaluate a constant formula over ``params`` (no coordinates) in float64.

    Numbers pass through unchanged, so a value in a surface file may be written either as
    a number or as a formula over the surface's parameters.

    Example:
      >>> evaluate("a**2", {"a": 1.5})
      2.25
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    params = dict(params or {})
    _check_names((), params, file)
    constant, value = _Compiler(text, (), params, file, key).compile()
    assert constant
    return float(value)
