"""A small, safe arithmetic expression evaluator for parametric questions.

Educators write answer expressions such as ``a * b + 2`` or
``round(sqrt(x**2 + y**2), 2)`` over the parameters they declared. Those
strings come from users, so they are never handed to :func:`eval`: the text is
parsed with :mod:`ast` in ``eval`` mode and only an allow-list of node types is
walked by our own interpreter.

Allowed: int and float literals, names of declared parameters, the constants
``pi`` and ``e``, ``+ - * / // % **``, unary ``+ - not``, comparisons (also
chained), ``and`` / ``or``, ``x if cond else y`` and calls to a fixed set of
math functions (:data:`FUNCTIONS`; ``round`` takes halves away from zero,
as taught in school). Everything else (attribute access,
subscripts, strings, lambdas, comprehensions, keyword arguments, ...) is
rejected with an :class:`ExpressionError` naming the construct.

CPU and memory bombs are stopped before they run: the source length and the
number of nodes are capped, ``**`` refuses exponents that would produce a
result beyond :data:`MAX_MAGNITUDE`, and every intermediate value must stay a
finite number within that magnitude.

Public surface:

- :func:`compile_expression` parses and checks an expression against the
  declared parameter names (authoring-time validation; raise -> 422).
- :func:`evaluate` computes the value for one set of parameter values.
- :func:`format_number` renders a value the way students see it.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_LENGTH",
    "MAX_MAGNITUDE",
    "MAX_NODES",
    "CompiledExpression",
    "ExpressionError",
    "Number",
    "compile_expression",
    "evaluate",
    "format_number",
]

Number = int | float

MAX_LENGTH = 500
MAX_NODES = 200
# Far beyond any exam answer, far below anything that costs real CPU or memory.
MAX_MAGNITUDE = 1e15
MAX_ARGS = 20


class ExpressionError(ValueError):
    """An expression is malformed, uses something not allowed, or cannot be evaluated."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _check(value: Any) -> Number:
    """Every intermediate value passes here: finite, numeric and of bounded size."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:
            raise ExpressionError(f"value too large (limit {MAX_MAGNITUDE:g})")
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ExpressionError("result is not a finite number")
        if abs(value) > MAX_MAGNITUDE:
            raise ExpressionError(f"value too large (limit {MAX_MAGNITUDE:g})")
        return value
    raise ExpressionError(f"expected a number, got {type(value).__name__}")


def _div(a: Number, b: Number) -> Number:
    if b == 0:
        raise ExpressionError("division by zero")
    return a / b


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise ExpressionError("division by zero")
    return a // b


def _mod(a: Number, b: Number) -> Number:
    if b == 0:
        raise ExpressionError("modulo by zero")
    return a % b


def _pow(base: Number, exponent: Number) -> Number:
    # Decide from logarithms whether the result fits before computing it, so
    # 9**9**9 is refused instantly instead of allocating a huge integer.
    if base == 0:
        if exponent < 0:
            raise ExpressionError("zero cannot be raised to a negative power")
        return 0 if exponent > 0 else 1
    if abs(exponent) > 1000:
        raise ExpressionError("exponent too large (limit 1000)")
    size = abs(exponent) * math.log10(abs(base)) if abs(base) != 1 else 0.0
    if exponent > 0 and size > math.log10(MAX_MAGNITUDE):
        raise ExpressionError(f"value too large (limit {MAX_MAGNITUDE:g})")
    if base < 0 and isinstance(exponent, float) and not exponent.is_integer():
        raise ExpressionError("negative number raised to a fractional power")
    try:
        result = base**exponent
    except (OverflowError, ZeroDivisionError) as exc:
        raise ExpressionError(f"cannot compute power: {exc}") from None
    if isinstance(result, complex):
        raise ExpressionError("result is not a real number")
    return result


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _div,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}

_COMPARE: dict[type[ast.cmpop], Callable[[Number, Number], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _sqrt(x: Number) -> Number:
    if x < 0:
        raise ExpressionError("sqrt of a negative number")
    return math.sqrt(x)


def _log(x: Number, base: Number | None = None) -> Number:
    if x <= 0:
        raise ExpressionError("log of a number that is not positive")
    if base is None:
        return math.log(x)
    if base <= 0 or base == 1:
        raise ExpressionError("log base must be positive and not 1")
    return math.log(x, base)


def _exp(x: Number) -> Number:
    if x > math.log(MAX_MAGNITUDE):
        raise ExpressionError(f"value too large (limit {MAX_MAGNITUDE:g})")
    return math.exp(x)


def _round(x: Number, ndigits: Number | None = None) -> Number:
    """Round halves away from zero, as taught in school (Python's round() goes to even)."""
    places = 0 if ndigits is None else ndigits
    if not isinstance(places, int) or not -15 <= places <= 15:
        raise ExpressionError("round() digits must be an integer between -15 and 15")
    # repr() gives the shortest decimal that reads back as x, so 2.675 is 2.675.
    exact = Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if ndigits is None or places <= 0:
        return int(exact)
    return float(exact)


def _trig(fn: Callable[[float], float]) -> Callable[[Number], Number]:
    def call(x: Number) -> Number:
        try:
            return fn(x)
        except (ValueError, OverflowError) as exc:
            raise ExpressionError(f"math domain error: {exc}") from None

    return call


def _minmax(fn: Callable[..., Number]) -> Callable[..., Number]:
    def call(*args: Number) -> Number:
        if not args:
            raise ExpressionError("min() and max() need at least one argument")
        return fn(args)

    return call


@dataclass(frozen=True)
class _Function:
    impl: Callable[..., Number]
    min_args: int
    max_args: int


FUNCTIONS: dict[str, _Function] = {
    "abs": _Function(abs, 1, 1),
    "min": _Function(_minmax(min), 1, MAX_ARGS),
    "max": _Function(_minmax(max), 1, MAX_ARGS),
    "round": _Function(_round, 1, 2),
    "sqrt": _Function(_sqrt, 1, 1),
    "floor": _Function(math.floor, 1, 1),
    "ceil": _Function(math.ceil, 1, 1),
    "sin": _Function(_trig(math.sin), 1, 1),
    "cos": _Function(_trig(math.cos), 1, 1),
    "tan": _Function(_trig(math.tan), 1, 1),
    "log": _Function(_log, 1, 2),
    "exp": _Function(_exp, 1, 1),
}

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_RESERVED = frozenset(FUNCTIONS) | frozenset(CONSTANTS)

_NODE_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.JoinedStr: "strings",
    ast.NamedExpr: "assignment",
    ast.Starred: "starred arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


def _describe(node: ast.AST) -> str:
    return _NODE_NAMES.get(type(node), type(node).__name__)


@dataclass(frozen=True)
class CompiledExpression:
    """A checked expression: its tree and the parameter names it uses."""

    source: str
    tree: ast.expr
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, Any]) -> Number:
        """The value for one variant; raises :class:`ExpressionError` on any failure."""
        missing = sorted(self.names - set(values))
        if missing:
            raise ExpressionError(f"no value for parameter {missing[0]!r}")
        try:
            return _check(_Evaluator(values).visit(self.tree))
        except ExpressionError:
            raise
        except (ArithmeticError, ValueError, TypeError, RecursionError) as exc:
            raise ExpressionError(f"cannot evaluate: {exc}") from None


def compile_expression(source: str, names: Iterable[str]) -> CompiledExpression:
    """Parse ``source`` and check it uses only allowed constructs and declared ``names``.

    Raises :class:`ExpressionError` with a message naming the first problem.
    """
    if not isinstance(source, str):
        raise ExpressionError("expression must be a string")
    if not source.strip():
        raise ExpressionError("expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    declared = frozenset(names)
    clash = sorted(declared & _RESERVED)
    if clash:
        raise ExpressionError(f"parameter name {clash[0]!r} is reserved for a function/constant")
    try:
        module = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("expression is too deeply nested") from None
    used: set[str] = set()
    called: set[int] = set()
    for count, node in enumerate(ast.walk(module.body), start=1):
        if count > MAX_NODES:
            raise ExpressionError(f"expression is too complex (more than {MAX_NODES} parts)")
        if id(node) in called:
            continue
        _check_node(node, declared, used)
        if isinstance(node, ast.Call):
            # ast.walk is breadth-first, so the callee is met after its Call.
            called.add(id(node.func))
    return CompiledExpression(source=source, tree=module.body, names=frozenset(used))


def _check_node(node: ast.AST, declared: frozenset[str], used: set[str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ExpressionError(f"only numbers are allowed, not {type(node.value).__name__}")
        _check(node.value)
    elif isinstance(node, ast.Name):
        if not isinstance(node.ctx, ast.Load):
            raise ExpressionError("assignment is not allowed")
        if node.id in FUNCTIONS:
            raise ExpressionError(f"function {node.id!r} must be called")
        if node.id not in CONSTANTS:
            if node.id not in declared:
                raise ExpressionError(f"unknown name {node.id!r}")
            used.add(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.UAdd | ast.USub | ast.Not):
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise ExpressionError(f"comparison {type(op).__name__} is not allowed")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else _describe(node.func)
            raise ExpressionError(f"function {what!r} is not allowed")
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed")
        spec = FUNCTIONS[node.func.id]
        if not spec.min_args <= len(node.args) <= spec.max_args:
            raise ExpressionError(f"wrong number of arguments for {node.func.id}()")
    elif isinstance(
        node,
        ast.BoolOp
        | ast.IfExp
        | ast.operator
        | ast.unaryop
        | ast.cmpop
        | ast.boolop
        | ast.expr_context,
    ):
        pass
    else:
        raise ExpressionError(f"{_describe(node)} is not allowed")


class _Evaluator:
    """Interprets a tree already vetted by :func:`_check_node`."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def visit(self, node: ast.expr) -> Number:
        if isinstance(node, ast.Constant):
            return _check(node.value)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            value = self.values[node.id]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ExpressionError(f"parameter {node.id!r} is not a number")
            return _check(value)
        if isinstance(node, ast.BinOp):
            left = self.visit(node.left)
            right = self.visit(node.right)
            return _check(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return int(not operand)
            return _check(-operand if isinstance(node.op, ast.USub) else +operand)
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.visit(comparator)
                if not _COMPARE[type(op)](left, right):
                    return 0
                left = right
            return 1
        if isinstance(node, ast.BoolOp):
            result: Number = 0
            for value_node in node.values:
                result = self.visit(value_node)
                # Short-circuit exactly like Python: and stops on falsy, or on truthy.
                if isinstance(node.op, ast.And) and not result:
                    return result
                if isinstance(node.op, ast.Or) and result:
                    return result
            return result
        if isinstance(node, ast.IfExp):
            return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [self.visit(arg) for arg in node.args]
            return _check(FUNCTIONS[node.func.id].impl(*args))
        raise ExpressionError(f"{_describe(node)} is not allowed")


def evaluate(source: str, values: Mapping[str, Any]) -> Number:
    """Compile ``source`` against the names in ``values`` and evaluate it."""
    return compile_expression(source, values.keys()).evaluate(values)


def format_number(value: Number, decimals: int | None = None) -> str:
    """How a value is shown to students: integers plainly, floats rounded.

    ``decimals`` fixes the number of decimal places; by default floats keep up
    to 6 significant decimals with trailing zeros dropped.
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value.is_integer() and decimals in (None, 0):
        value = int(value)
    if isinstance(value, int):
        return str(value) if not decimals else f"{value:.{decimals}f}"
    if decimals is not None:
        text = f"{value:.{decimals}f}"
    else:
        text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "-0.0") else text
