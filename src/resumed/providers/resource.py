"""Resource job output and resource programs (`requires`, `template-filter`, `imports`).

Programs are analysed with `ast` against PlainBox's node whitelist and
evaluated by a small interpreter over that whitelist: no text is ever passed
to `eval`.
"""

from __future__ import annotations

import ast
import functools
import itertools
import logging
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from resumed.providers.errors import (
    CodeNotAllowed,
    ImportsError,
    NoResourcesReferenced,
    ResourceSyntaxError,
    UnitParseError,
)
from resumed.providers.rfc822 import iter_records

log = logging.getLogger(__name__)

Record = Mapping[str, str]


def parse_resource_records(stdout: bytes | Iterable[bytes]) -> list[dict[str, str]]:
    """Parse a resource job's stdout into records (providers reference §4.2).

    Give the io-log's stdout records as an iterable of bytes to be exact: each one
    is decoded on its own (UTF-8, errors replaced) and is one parser line. Plain
    `bytes` are split into lines first. On a syntax error the records completed
    so far are kept and a warning is logged. Output of the usual shape takes a
    faster path (`_plain_records`) to the same records.
    """
    chunks = iter(stdout.splitlines(keepends=True) if isinstance(stdout, bytes) else stdout)
    head = list(itertools.islice(chunks, _FAST_MAX_LINES))
    if len(head) < _FAST_MAX_LINES:
        fast = _plain_records(head)
        if fast is not None:
            return fast
    lines = (chunk.decode("utf-8", errors="replace") for chunk in itertools.chain(head, chunks))
    records: list[dict[str, str]] = []
    try:
        for record in iter_records(lines, "<resource output>"):
            records.append(record.data)  # noqa: PERF401 - keeps those read before an error
    except UnitParseError as exc:
        log.warning("local script returned invalid RFC822 data: %s", exc)
    return records


#: At most this many lines are held for :func:`_plain_records` (bounds its memory).
_FAST_MAX_LINES = 1 << 16

#: Output whose every line is blank (just ``\n``) or ``key:value\n``, in printable
#: ASCII, the key without spaces, ``:`` or a leading ``#``: no comment, continuation,
#: whitespace-only line or character the general parser could treat differently.
_PLAIN_OUTPUT = re.compile(rb"(?:(?:[!\"$-9;-~][!-9;-~]*:[ -~]*)?\n)*")
#: A field of such output, its value stripped, in a block of lines.
_PLAIN_FIELD = re.compile(r"([^:\n]+): *((?:[^\n]*[^ \n])?) *(?:\n|\Z)")


def _plain_records(lines: list[bytes]) -> list[dict[str, str]] | None:
    """The records of output of the usual shape (see `_PLAIN_OUTPUT`), else `None`.

    Each line must also be exactly one io-log record (so that decoding and
    parsing the joined text is decoding and parsing each record), and no record
    may repeat a key (an error the general parser reports). What this returns
    is what the general parser gives for the same lines.
    """
    data = b"".join(lines)
    if not _PLAIN_OUTPUT.fullmatch(data) or data.splitlines(keepends=True) != lines:
        return None
    records = []
    findall = _PLAIN_FIELD.findall
    # A field line holds no "\n\n", so each one is whole in one block, with the
    # lines of its record only; blocks of blank lines hold no field.
    for block in data.decode("ascii").split("\n\n"):
        fields = findall(block)
        if fields:
            record = dict(fields)
            if len(record) != len(fields):
                return None
            records.append(record)
    return records


def parse_imports(value: Any) -> list[tuple[str, str]]:
    """Parse `imports` / `template-imports` into `(qualified id, alias)` pairs.

    Each statement is `from NS import PARTIAL` or `from NS import PARTIAL as ALIAS`;
    anything else, an empty line included, is `ImportsError`.
    """
    if value is None:
        return []
    statements = value if isinstance(value, list) else str(value).splitlines()
    result = []
    for statement in statements:
        tokens = str(statement).split()
        ok = len(tokens) in (4, 6) and tokens[0] == "from" and tokens[2] == "import"
        if ok and len(tokens) == 6:
            ok = tokens[4] == "as"
        if not ok or "::" in tokens[1] or "::" in tokens[3]:
            raise ImportsError(f"malformed import statement {statement!r}")
        result.append((f"{tokens[1]}::{tokens[3]}", tokens[5] if len(tokens) == 6 else tokens[3]))
    return result


_ALLOWED = (
    ast.Module, ast.Expr, ast.Attribute, ast.BinOp, ast.BoolOp, ast.Compare, ast.List,
    ast.Name, ast.Tuple, ast.UnaryOp, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
    ast.Is, ast.IsNot, ast.In, ast.NotIn, ast.And, ast.Or, ast.Load,
)
_FUNCTIONS: dict[str, Any] = {"len": len, "bool": bool, "int": int, "float": float}


@dataclass(frozen=True, slots=True)
class Expression:
    """One compiled resource expression: its text, halves and the names it uses."""

    text: str
    parts: tuple[ast.expr, ...]
    joiner: str  # "or", "and" or "" (one part)
    names: tuple[str, ...]


def _split(text: str) -> tuple[list[str], str]:
    """PlainBox's hack: without `(`, split at the last ` or `, else the last ` and `."""
    if "(" not in text:
        for word in ("or", "and"):
            left, sep, right = text.rpartition(f" {word} ")
            if sep:
                return [left, right], word
    return [text], ""


@functools.lru_cache(maxsize=16384)
def compile_expression(text: str, legacy: bool = False) -> Expression:
    """Compile one line of a resource program (cached by text)."""
    texts, joiner = _split(text)
    parts: list[ast.expr] = []
    names: list[str] = []
    for part in texts:
        try:
            tree = ast.parse(part)
        except (SyntaxError, ValueError) as exc:
            raise ResourceSyntaxError(f"syntax error in {text!r}: {exc}") from exc
        _Visitor(names, legacy, text).visit(tree)
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
            raise CodeNotAllowed(f"{text!r} is not a single expression")
        parts.append(tree.body[0].value)
    if not names:
        raise NoResourcesReferenced(f"no resources referenced in {text!r}")
    return Expression(text, tuple(parts), joiner, tuple(dict.fromkeys(names)))


class _Visitor(ast.NodeVisitor):
    """Whitelist check and name collection, mirroring PlainBox's `ResourceNodeVisitor`."""

    def __init__(self, names: list[str], legacy: bool, text: str) -> None:
        self.names = names
        self.legacy = legacy
        self.text = text

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            value = node.value
            numeric = isinstance(value, int | float | complex) and not isinstance(value, bool)
            if self.legacy and not (numeric or isinstance(value, str)):
                raise CodeNotAllowed(f"{value!r} is not allowed in {self.text!r}")
            return
        if not isinstance(node, _ALLOWED):
            raise CodeNotAllowed(f"{type(node).__name__} is not allowed in {self.text!r}")
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.names.append(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name):
            self.names.append(node.value.id)

    def visit_Call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            # PlainBox fails here with a raw AttributeError.
            raise CodeNotAllowed(f"only plain function calls are allowed in {self.text!r}")
        if node.func.id not in _FUNCTIONS:
            raise CodeNotAllowed(f"call to {node.func.id!r} is not allowed in {self.text!r}")


def program_lines(value: Any) -> list[str]:
    """The expressions of a `requires` value: stripped non-empty lines, or list items."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [line.strip() for line in str(value).splitlines() if line.strip()]


@dataclass(frozen=True, slots=True)
class ResourceProgram:
    """A compiled resource program: expressions plus the name → resource id map."""

    expressions: tuple[Expression, ...]
    name_map: Mapping[str, str]

    @property
    def resource_ids(self) -> tuple[str, ...]:
        """Distinct resource ids named by the program, in first-seen order."""
        ids = (self.name_map[n] for e in self.expressions for n in e.names)
        return tuple(dict.fromkeys(ids))

    def evaluate(self, resource_map: Mapping[str, Sequence[Record]]) -> bool:
        """True when every expression holds over `resource_map` (PlainBox semantics)."""
        return all(self._evaluate(expr, resource_map) for expr in self.expressions)

    def _evaluate(self, expr: Expression, resource_map: Mapping[str, Sequence[Record]]) -> bool:
        if any(self.name_map[name] not in resource_map for name in expr.names):
            return False  # ExpressionCannotEvaluate
        results = []
        for part in expr.parts:
            names = _part_names(part)
            lists = [resource_map[self.name_map[n]] for n in names]
            results.append(
                any(_truth(part, dict(zip(names, combo, strict=True)))
                    for combo in itertools.product(*lists))
            )
        return any(results) if expr.joiner == "or" else all(results)


def compile_program(
    value: Any, namespace: str, imports: Any = None, legacy: bool = False
) -> ResourceProgram:
    """Compile a `requires` / `template-filter` value; names qualify with `namespace`.

    Raises a `ResourceProgramError` subclass (`ImportsError` for bad imports).
    """
    aliases = {alias: target for target, alias in parse_imports(imports)}
    expressions = tuple(compile_expression(line, legacy) for line in program_lines(value))
    name_map = {
        name: aliases.get(name, f"{namespace}::{name}")
        for expr in expressions for name in expr.names
    }
    return ResourceProgram(expressions, name_map)


def _part_names(node: ast.expr) -> list[str]:
    names: list[str] = []
    _Visitor(names, False, "").visit(node)
    return list(dict.fromkeys(names))


def _truth(node: ast.expr, env: Mapping[str, Record]) -> bool:
    try:
        return bool(_eval(node, env))
    except Exception:  # noqa: BLE001 - PlainBox counts any exception as false
        return False


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


class _Resource(dict[str, str]):
    """A record as an expression value: a missing attribute reads as ""."""


def _eval(node: ast.expr, env: Mapping[str, Record]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _Resource(env[node.id])
    if isinstance(node, ast.Attribute):
        value = _eval(node.value, env)
        if not isinstance(value, _Resource):
            raise TypeError("attribute of a non-resource")
        return value.get(node.attr, "")
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        last: Any = None
        for item in node.values:
            last = _eval(item, env)
            if bool(last) != is_and:
                return last
        return last
    if isinstance(node, ast.List | ast.Tuple):
        items = [_eval(item, env) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [_eval(arg, env) for arg in node.args]
        return _FUNCTIONS[node.func.id](*args)
    raise TypeError(f"cannot evaluate {type(node).__name__}")
