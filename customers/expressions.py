"""Derived columns for customer CSV imports: a tiny arithmetic expression language.

``import_customers --derive "age=2014-[Year_Birth]"`` computes a column from
others. The expression is typed by whoever runs the import, so it is user
text: it is never handed to ``eval``, ``compile``, ``ast.parse`` or anything
else that runs Python. It is read by a tokenizer and a recursive-descent
parser of its own that know only this grammar::

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | primary
    primary    := NUMBER | "[" column name "]" | "(" expression ")"

NUMBER is a plain decimal of ASCII digits (``2014``, ``0.5``, ``.5``); a
column name is anything but ``]`` and control characters, stripped of
surrounding spaces. Everything else (names, calls, ``**``, comparisons,
strings, attribute access, exponents, ``_`` separators, hex, non-ASCII
digits) is refused with an ExpressionError that says what and where.
Length and nesting depth are capped, so a hostile expression cannot exhaust
the stack, and the parsed tree is evaluated by an explicit-stack walk.

Missing values stay missing: a blank (None or NaN) operand, a division by
zero or a non-finite intermediate value makes the result missing, in the
scalar and the vectorised (numpy) evaluation alike.

Pure Python plus numpy, no Django, so the command and the tests share it.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

MAX_LENGTH = 1_000  # characters of one expression
NAME_MAX_LENGTH = 80  # characters of a derived column's name, as an attribute label holds
MAX_DEPTH = 50  # nested parentheses and unary signs
DERIVE_USAGE = 'use --derive "name=[Column A]+[Column B]"'

_ASCII_DIGITS = frozenset("0123456789")
_OPERATORS = frozenset("+-*/()")
# Characters that start an operator of some other language (**, //, ==, <=, %, ...).
_FOREIGN_OPERATOR_CHARACTERS = frozenset("*/%^<>=!&|~@")
_ALLOWED = "only numbers, [column names], + - * / and parentheses are allowed"
_PLAIN_NUMBER = "write plain decimals such as 2014, 0.5 or .5"
_SHOWN_LENGTH = 80


class ExpressionError(ValueError):
    """An expression or a --derive option that cannot be used; the message says why and where."""


# ---------------------------------------------------------------- the parsed tree


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "+"
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # "+", "-", "*" or "/"
    left: Node
    right: Node


Node = Number | Column | Unary | Binary


# ---------------------------------------------------------------- evaluation

T = TypeVar("T")


def _walk(
    tree: Node,
    leaf: Callable[[Number | Column], T],
    unary: Callable[[str, T], T],
    binary: Callable[[str, T, T], T],
) -> T:
    """Evaluates the tree bottom-up with an explicit stack (no recursion, whatever its depth)."""
    pending: list[tuple[Node, bool]] = [(tree, False)]
    results: list[T] = []
    while pending:
        node, children_done = pending.pop()
        if isinstance(node, Number | Column):
            results.append(leaf(node))
        elif not children_done:
            pending.append((node, True))
            children = (node.operand,) if isinstance(node, Unary) else (node.left, node.right)
            pending.extend((child, False) for child in reversed(children))
        elif isinstance(node, Unary):
            results.append(unary(node.op, results.pop()))
        else:
            right = results.pop()
            results.append(binary(node.op, results.pop(), right))
    return results.pop()


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _scalar_binary(op: str, left: float | None, right: float | None) -> float | None:
    if left is None or right is None:
        return None
    if op == "+":
        return _finite_or_none(left + right)
    if op == "-":
        return _finite_or_none(left - right)
    if op == "*":
        return _finite_or_none(left * right)
    return None if right == 0 else _finite_or_none(left / right)


def _scalar_unary(op: str, operand: float | None) -> float | None:
    if operand is None:
        return None
    return -operand if op == "-" else operand


def _array_binary(op: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    else:
        result = np.where(right == 0, np.nan, left / right)
    return np.where(np.isfinite(result), result, np.nan)


def _array_unary(op: str, operand: np.ndarray) -> np.ndarray:
    return np.negative(operand) if op == "-" else operand


def _as_column_array(values: object) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"column values must be one-dimensional, not of shape {array.shape}")
    return array


@dataclass(frozen=True)
class Expression:
    """A parsed expression; build it with parse_expression()."""

    text: str
    columns: tuple[str, ...]  # referenced column names, unique, in first-appearance order
    tree: Node = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, float | None]) -> float | None:
        """The value for one row, or None if an operand is missing (None, NaN or absent),
        a division by zero happens or a value is not finite."""

        def leaf(node: Number | Column) -> float | None:
            if isinstance(node, Number):
                return node.value
            value = values.get(node.name)
            return None if value is None else _finite_or_none(float(value))

        return _walk(self.tree, leaf, _scalar_unary, _scalar_binary)

    def evaluate_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Vectorised evaluate(): float64 arrays of equal length in (NaN = missing), a float64
        array out with NaN where evaluate() would give None. An absent column counts as all
        missing; the length is that of the referenced columns (else of any column given)."""
        arrays = {name: _as_column_array(columns[name]) for name in self.columns if name in columns}
        lengths = {len(array) for array in arrays.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of {self.text!r} differ in length: {sorted(lengths)}")
        if lengths:
            length = lengths.pop()
        else:
            length = len(_as_column_array(next(iter(columns.values())))) if columns else 0

        def leaf(node: Number | Column) -> np.ndarray:
            if isinstance(node, Number):
                return np.full(length, node.value)
            array = arrays.get(node.name)
            if array is None:
                return np.full(length, np.nan)
            return np.where(np.isfinite(array), array, np.nan)

        with np.errstate(all="ignore"):
            return _walk(self.tree, leaf, _array_unary, _array_binary)


# ---------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "column", "op" or "end"
    text: str  # as written (for messages)
    position: int  # 0-based index into the expression text
    value: float | str | None = None


def _shown(text: str) -> str:
    if len(text) <= _SHOWN_LENGTH:
        return repr(text)
    return repr(text[:_SHOWN_LENGTH]) + "..."


def _error(text: str, position: int, problem: str, hint: str = "") -> ExpressionError:
    message = f"{problem} at character {position + 1} of {_shown(text)}"
    return ExpressionError(f"{message}; {hint}" if hint else message)


def _run_end(text: str, start: int, belongs: Callable[[str], bool]) -> int:
    end = start
    while end < len(text) and belongs(text[end]):
        end += 1
    return end


def _is_word_character(character: str) -> bool:
    return character.isalnum() or character == "_" or character == "."


def _is_control(character: str) -> bool:
    return unicodedata.category(character) == "Cc"


def _read_number(text: str, start: int) -> _Token:
    end = _run_end(text, start, lambda c: c in _ASCII_DIGITS)
    if end < len(text) and text[end] == ".":
        end = _run_end(text, end + 1, lambda c: c in _ASCII_DIGITS)
    written = text[start:end]
    if written.endswith(".") or (end < len(text) and _is_word_character(text[end])):
        bad = text[start : _run_end(text, end, _is_word_character)]
        raise _error(text, start, f"{bad!r} is not a plain number", _PLAIN_NUMBER)
    value = float(written)
    if not math.isfinite(value):
        raise _error(text, start, f"the number {written[:20]!r}... is too large")
    return _Token("number", written, start, value)


def _read_column(text: str, start: int) -> _Token:
    end = text.find("]", start + 1)
    if end == -1:
        raise _error(text, start, f"{text[start:]!r} is missing its closing ']'")
    inside = text[start + 1 : end]
    for offset, character in enumerate(inside, start=start + 1):
        if _is_control(character):
            raise _error(text, offset, f"control character {character!r} in a column name")
    name = inside.strip()
    if not name:
        raise _error(text, start, "a column name in [...] is empty")
    return _Token("column", text[start : end + 1], start, name)


def _refuse(text: str, start: int) -> ExpressionError:
    """The error for a character that starts no token of this language."""
    character = text[start]
    if character.isdigit() or character.isdecimal():
        return _error(text, start, f"{character!r} is not an ASCII digit", "write numbers with 0-9")
    if character.isalpha() or character == "_":
        word = text[start : _run_end(text, start, lambda c: c.isalnum() or c == "_")]
        return _error(
            text,
            start,
            f"{word!r} is not allowed",
            f"column names go in square brackets, e.g. [{word}]; "
            "functions, names and keywords are not supported",
        )
    if character in _FOREIGN_OPERATOR_CHARACTERS:
        operator = text[start : _run_end(text, start, lambda c: c in _FOREIGN_OPERATOR_CHARACTERS)]
        return _error(text, start, f"unsupported operator {operator!r}", _ALLOWED)
    return _error(text, start, f"unknown character {character!r}", _ALLOWED)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        character = text[position]
        if character.isspace():
            position += 1
            continue
        if character in _ASCII_DIGITS or (
            character == "." and text[position + 1 : position + 2] in _ASCII_DIGITS
        ):
            token = _read_number(text, position)
        elif character == "[":
            token = _read_column(text, position)
        elif character in _OPERATORS and text[position : position + 2] not in ("**", "//"):
            token = _Token("op", character, position)
        else:
            raise _refuse(text, position)
        tokens.append(token)
        position = token.position + len(token.text)
    tokens.append(_Token("end", "", len(text)))
    return tokens


# ---------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the token list; depth is bounded by MAX_DEPTH."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _take(self) -> _Token:
        token = self.current
        self.index += 1
        return token

    def _at(self, *operators: str) -> bool:
        return self.current.kind == "op" and self.current.text in operators

    def _unexpected(self, hint: str) -> ExpressionError:
        token = self.current
        what = "end" if token.kind == "end" else repr(token.text)
        return _error(self.text, token.position, f"unexpected {what}", hint)

    def _deeper(self, depth: int) -> int:
        if depth >= MAX_DEPTH:
            raise _error(
                self.text, self.current.position, f"nesting is deeper than {MAX_DEPTH} levels"
            )
        return depth + 1

    def parse(self) -> Node:
        tree = self._expression(0)
        if self.current.kind != "end":
            if self._at(")"):
                raise self._unexpected("there is no '(' open for it to close")
            raise self._unexpected("expected an operator + - * / or the end")
        return tree

    def _expression(self, depth: int) -> Node:
        node = self._term(depth)
        while self._at("+", "-"):
            node = Binary(self._take().text, node, self._term(depth))
        return node

    def _term(self, depth: int) -> Node:
        node = self._unary(depth)
        while self._at("*", "/"):
            node = Binary(self._take().text, node, self._unary(depth))
        return node

    def _unary(self, depth: int) -> Node:
        if self._at("-", "+"):
            deeper = self._deeper(depth)
            return Unary(self._take().text, self._unary(deeper))
        return self._primary(depth)

    def _primary(self, depth: int) -> Node:
        token = self.current
        if token.kind == "number":
            self._take()
            return Number(float(token.value))
        if token.kind == "column":
            self._take()
            return Column(str(token.value))
        if self._at("("):
            deeper = self._deeper(depth)
            self._take()
            node = self._expression(deeper)
            if not self._at(")"):
                opened = f"the '(' at character {token.position + 1}"
                raise self._unexpected(f"expected an operator + - * / or ')' to close {opened}")
            self._take()
            return node
        raise self._unexpected("expected a number, a [column name] or '('")


# ---------------------------------------------------------------- public API


def _columns_of(tokens: list[_Token]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(t.value) for t in tokens if t.kind == "column"))


def parse_expression(text: str) -> Expression:
    """Parses an expression such as ``2014-[Year_Birth]``; ExpressionError if it is not one."""
    text = text.strip()
    if not text:
        raise ExpressionError("expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(text):,} characters long; the limit is {MAX_LENGTH:,}"
        )
    parser = _Parser(text)
    tree = parser.parse()
    return Expression(text=text, columns=_columns_of(parser.tokens), tree=tree)


@dataclass(frozen=True)
class Derivation:
    """One --derive option: the column ``name`` computed by ``expression``."""

    name: str
    expression: Expression


def parse_derivation(option: str) -> Derivation:
    """Parses ``NAME=EXPRESSION`` (split at the first '='); ExpressionError if it is not one."""
    name, equals, expression = option.partition("=")
    name = name.strip()
    if not equals:
        raise ExpressionError(
            f"{option!r} has no '=' between a name and an expression; {DERIVE_USAGE}"
        )
    if not name:
        raise ExpressionError(f"the name before '=' is empty in {option!r}; {DERIVE_USAGE}")
    if len(name) > NAME_MAX_LENGTH:
        raise ExpressionError(
            f"the name before '=' is {len(name):,} characters long; the limit is "
            f"{NAME_MAX_LENGTH} (it becomes the attribute's label)"
        )
    if any(c in "[]" or _is_control(c) for c in name):
        raise ExpressionError(
            f"the name {name!r} must not contain '[', ']' or control characters; {DERIVE_USAGE}"
        )
    if not expression.strip():
        raise ExpressionError(f"the expression after '=' is empty in {option!r}; {DERIVE_USAGE}")
    return Derivation(name=name, expression=parse_expression(expression))
