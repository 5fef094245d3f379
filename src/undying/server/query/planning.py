"""What a query reads: the tables it scans and the values its filters allow.

DataFusion plans the query against empty tables first. The plan tells which tables must be
built, and its optimized form has each scan's filters pushed down right above the scan; from
``col = 'x'``, ``col IN (...)``, ``col != 'x'`` and their AND/OR combinations we derive, per
table, a :data:`~undying.server.query.tables.Constraint` per column that every row the query can
use satisfies. Anything not understood just yields no constraint, so the result is always a
superset of the rows needed; the engine applies the real filters afterwards.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Final

from undying.server.query.tables import Constraint

__all__ = ["scan_columns", "scan_restrictions", "scanned_tables"]

_SCAN: Final = re.compile(r"TableScan: (?:(\w+)\.)?(?:(\w+)\.)?(\w+)")


def _scans_in_text(plan: Any, tables: Collection[str]) -> Counter[str]:
    """Scans of our tables in the plan's text, which includes subqueries inside expressions."""
    out: Counter[str] = Counter()
    for m in _SCAN.finditer(plan.display_indent()):
        first, second, table = m.groups()
        catalog, schema = (first, second) if second is not None else (None, first)
        if catalog not in (None, "datafusion") or schema not in (None, "public"):
            continue
        if table in tables:
            out[table] += 1
    return out


def scanned_tables(plan: Any, tables: Collection[str]) -> set[str]:
    """The names among ``tables`` that the (logical) plan scans."""
    return set(_scans_in_text(plan, tables))


def scan_restrictions(
    plan: Any, tables: Mapping[str, Collection[str]]
) -> dict[str, dict[str, Constraint]]:
    """Per table, the constraints on the given columns every scan of it applies.

    ``tables`` maps table names to the columns of interest. ``plan`` is the optimized plan.
    Tables scanned somewhere this walk cannot see (subqueries in expressions) get none.
    """
    found: dict[str, list[dict[str, Constraint]]] = {}
    for table, exprs, _ in _walk(plan):
        if table not in tables:
            continue
        columns = tables[table]
        per_scan: dict[str, Constraint] = {}
        for column in columns:
            c = _conjunction(exprs, column)
            if c is not None:
                per_scan[column] = c
        found.setdefault(table, []).append(per_scan)
    counted = _scans_in_text(plan, tables)
    out: dict[str, dict[str, Constraint]] = {}
    for table, scans in found.items():
        if counted.get(table, 0) != len(scans):
            continue
        merged: dict[str, Constraint] = {}
        for column in tables[table]:
            cs = [s.get(column) for s in scans]
            if any(c is None for c in cs):
                continue
            acc = cs[0]
            for c in cs[1:]:
                acc = _or(acc, c) if acc is not None and c is not None else None
            if acc is not None:
                merged[column] = acc
        out[table] = merged
    return out


def scan_columns(plan: Any, tables: Collection[str]) -> dict[str, frozenset[str]]:
    """Per table, the columns its scans read (tables whose scans cannot all be seen: absent)."""
    found: dict[str, list[frozenset[str]]] = {}
    for table, _, columns in _walk(plan):
        if table in tables:
            found.setdefault(table, []).append(columns)
    counted = _scans_in_text(plan, tables)
    return {
        table: frozenset().union(*scans)
        for table, scans in found.items()
        if counted.get(table, 0) == len(scans)
    }


def _walk(plan: Any) -> Iterator[tuple[str, list[Any], frozenset[str]]]:
    """``(table, filter expressions, columns read)`` for each scan reachable through inputs."""
    node = plan.to_variant()
    kind = type(node).__name__
    if kind == "Filter":
        inputs = plan.inputs()
        if len(inputs) == 1:
            child = inputs[0].to_variant()
            if type(child).__name__ == "TableScan":
                table = _scan_table(child)
                if table is not None:
                    yield table, [node.predicate(), *child.filters()], _projection(child)
                return
    if kind == "TableScan":
        table = _scan_table(node)
        if table is not None:
            yield table, list(node.filters()), _projection(node)
        return
    for child in plan.inputs():
        yield from _walk(child)


def _projection(scan: Any) -> frozenset[str]:
    return frozenset(str(name) for _, name in scan.projection())


def _scan_table(scan: Any) -> str | None:
    catalog, schema, table = scan.fqn()
    if catalog not in (None, "datafusion") or schema not in (None, "public"):
        return None
    return str(table)


def _conjunction(exprs: list[Any], column: str) -> Constraint | None:
    acc: Constraint | None = None
    for e in exprs:
        c = _constraint(e, column)
        if c is not None:
            acc = c if acc is None else _and(acc, c)
    return acc


def _constraint(expr: Any, column: str) -> Constraint | None:
    node = expr.to_variant()
    kind = type(node).__name__
    if kind == "BinaryExpr":
        op = str(node.op()).upper()
        if op == "AND":
            a, b = _constraint(node.left(), column), _constraint(node.right(), column)
            if a is None:
                return b
            return a if b is None else _and(a, b)
        if op == "OR":
            a, b = _constraint(node.left(), column), _constraint(node.right(), column)
            return None if a is None or b is None else _or(a, b)
        if op in ("=", "!="):
            value = _compared_literal(node.left(), node.right(), column)
            if value is None:
                return None
            return (op == "=", frozenset({value}))
        return None
    if kind == "InList":
        if not _is_column(node.expr(), column):
            return None
        values = [_string_literal(v) for v in node.list()]
        if any(v is None for v in values):
            return None
        return (not node.negated(), frozenset(v for v in values if v is not None))
    return None


def _compared_literal(left: Any, right: Any, column: str) -> str | None:
    if _is_column(left, column):
        return _string_literal(right)
    if _is_column(right, column):
        return _string_literal(left)
    return None


def _is_column(expr: Any, column: str) -> bool:
    node = expr.to_variant()
    return type(node).__name__ == "Column" and node.name() == column


def _string_literal(expr: Any) -> str | None:
    node = expr.to_variant()
    if type(node).__name__ != "Literal":
        return None
    try:
        value = expr.python_value().as_py()
    except Exception:  # an exotic literal: no constraint
        return None
    return value if isinstance(value, str) else None


def _and(a: Constraint, b: Constraint) -> Constraint:
    (pa_, va), (pb_, vb) = a, b
    if pa_ and pb_:
        return (True, va & vb)
    if pa_:
        return (True, va - vb)
    if pb_:
        return (True, vb - va)
    return (False, va | vb)


def _or(a: Constraint, b: Constraint) -> Constraint:
    (pa_, va), (pb_, vb) = a, b
    if pa_ and pb_:
        return (True, va | vb)
    if pa_:
        return (False, vb - va)
    if pb_:
        return (False, va - vb)
    return (False, va & vb)
