"""What a query reads: the tables it scans, their columns, and the rows its filters allow.

DataFusion plans the query against empty tables first. The plan tells which tables must be
built, and its optimized form has each scan's filters pushed down right above the scan; from
``col = 'x'``, ``col IN (...)``, ``col != 'x'`` and their AND/OR combinations we derive, per
table, a :data:`~undying.server.query.scans.Constraint` per column that every row the query can
use satisfies, and from all the filters a Python :mod:`predicate
<undying.server.query.predicates>`. Anything not understood just yields no constraint, so the
result is always a superset of the rows needed; the engine applies the real filters afterwards.

:func:`analyze_scans` puts it together into one :class:`~undying.server.query.scans.Scan` per
table, with two more hints: a ``LIMIT`` right above an unfiltered scan (any ``n`` rows will do),
and an ``ORDER BY col LIMIT n`` above an exactly understood filter (only the first ``n`` rows
by ``col`` are used). :func:`streamable_scan` tells whether a query only filters and projects
the rows of one table, so that it can run over the table in chunks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Final

from undying.server.query.predicates import Predicate, both, either, translate
from undying.server.query.scans import Constraint, Scan, TopK

__all__ = [
    "analyze_scans",
    "limit_of",
    "scan_columns",
    "scan_restrictions",
    "scanned_tables",
    "streamable_scan",
]

_SCAN: Final = re.compile(r"TableScan: (?:(\w+)\.)?(?:(\w+)\.)?(\w+)")
_CATALOGS: Final = (None, "restate", "datafusion")
#: Plan nodes that keep each row as it is or drop it (what may sit between a sort and a scan,
#: or above the one scan of a streamable query).
_ROW_WISE: Final = frozenset({"Projection", "SubqueryAlias", "Filter"})


def _scans_in_text(plan: Any, tables: Collection[str]) -> Counter[str]:
    """Scans of our tables in the plan's text, which includes subqueries inside expressions."""
    out: Counter[str] = Counter()
    for m in _SCAN.finditer(plan.display_indent()):
        first, second, table = m.groups()
        catalog, schema = (first, second) if second is not None else (None, first)
        if catalog not in _CATALOGS or schema not in (None, "public"):
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
    if catalog not in _CATALOGS or schema not in (None, "public"):
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


# ---- whole scans ------------------------------------------------------------------------------


class _Site:
    """One scan of a table in the plan, with what sits right above it."""

    __slots__ = ("columns", "exprs", "fetch", "table", "top")

    def __init__(
        self, table: str, exprs: list[Any], columns: frozenset[str], fetch: int | None, top: Any
    ) -> None:
        self.table = table
        self.exprs = exprs
        self.columns = columns
        self.fetch = fetch
        self.top = top


def _sort_key(node: Any) -> tuple[str, bool, int] | None:
    """``(column, descending, k)`` of a Sort with a fetch whose first key is a column."""
    fetch = node.get_fetch_val()
    exprs = node.sort_exprs()
    if fetch is None or not exprs:
        return None
    first = exprs[0]
    key = first.expr().to_variant()
    if type(key).__name__ != "Column":
        return None
    return str(key.name()), not first.ascending(), int(fetch)


def _keeps_column(projection: Any, column: str) -> bool:
    """Whether a Projection passes ``column`` through unchanged (not recomputed under its name)."""
    kept = False
    for e in projection.projections():
        node = e.to_variant()
        kind = type(node).__name__
        if kind == "Column" and str(node.name()) == column:
            kept = True
        elif kind == "Alias" and str(node.alias()) == column:
            return False
    return kept


def _sites(plan: Any, top: tuple[str, bool, int] | None = None) -> Any:
    node = plan.to_variant()
    kind = type(node).__name__
    if kind == "Filter":
        inputs = plan.inputs()
        if len(inputs) == 1 and type(inputs[0].to_variant()).__name__ == "TableScan":
            scan = inputs[0].to_variant()
            table = _scan_table(scan)
            if table is not None:
                exprs = [node.predicate(), *scan.filters()]
                yield _Site(table, exprs, _projection(scan), None, top)
            return
    if kind == "TableScan":
        table = _scan_table(node)
        if table is not None:
            exprs = list(node.filters())
            fetch = node.fetch() if not exprs else None
            yield _Site(table, exprs, _projection(node), fetch, top)
        return
    if kind == "Sort":
        below = _sort_key(node)
    elif kind == "Projection":
        below = top if top is not None and _keeps_column(node, top[0]) else None
    elif kind in _ROW_WISE:
        below = top
    else:
        below = None
    for child in plan.inputs():
        yield from _sites(child, below)


def analyze_scans(
    plan: Any, schemas: Mapping[str, Any], constrained: Mapping[str, Collection[str]]
) -> dict[str, Scan]:
    """A :class:`Scan` per table of ``schemas`` the optimized ``plan`` reads.

    ``constrained`` names, per table, the columns to derive constraints for. Tables also
    scanned where the walk cannot see (subqueries inside expressions) get an empty Scan (read
    everything).
    """
    counted = _scans_in_text(plan, schemas)
    found: dict[str, list[_Site]] = {}
    for site in _sites(plan):
        if site.table in schemas:
            found.setdefault(site.table, []).append(site)
    out: dict[str, Scan] = {}
    for table, n in counted.items():
        sites = found.get(table, [])
        if len(sites) != n:
            out[table] = Scan()
            continue
        out[table] = _scan_of(sites, schemas[table], constrained.get(table, ()))
    return out


def _scan_of(sites: list[_Site], schema: Any, constrained: Collection[str]) -> Scan:
    restriction: dict[str, Constraint] = {}
    for column in constrained:
        cs = [_conjunction(s.exprs, column) for s in sites]
        if any(c is None for c in cs):
            continue
        acc = cs[0]
        for c in cs[1:]:
            acc = _or(acc, c) if acc is not None and c is not None else None
        if acc is not None:
            restriction[column] = acc
    preds: list[Predicate | None] = []
    exact = True
    for s in sites:
        pred: Predicate | None = None
        for e in s.exprs:
            p, ex = translate(e, schema)
            exact = exact and ex and p is not None
            if p is not None:
                pred = both(pred, p)
        preds.append(pred)
    predicate = either(preds)
    columns = frozenset().union(*(s.columns for s in sites))
    single = sites[0] if len(sites) == 1 else None
    fetch = single.fetch if single is not None else None
    top = None
    if single is not None and single.top is not None and exact:
        column, descending, k = single.top
        if column in schema.names:
            top = TopK(column, descending, k)
    return Scan(
        columns=columns,
        restriction=restriction,
        predicate=predicate,
        exact=exact and single is not None,
        fetch=fetch,
        top=top,
    )


def streamable_scan(plan: Any, tables: Collection[str]) -> str | None:
    """The table, if the plan only filters and projects the rows of one scan of it.

    Such a plan (``Projection``, ``Filter``, ``SubqueryAlias``, ``Limit`` without offset over a
    single ``TableScan``) gives the same rows whether it runs over the whole table or over the
    table's parts one after the other (up to the limit).
    """
    root = plan
    node = plan.to_variant()
    kind = type(node).__name__
    while kind in _ROW_WISE or kind == "Limit":
        if kind == "Limit" and (_int_of(node.skip()) or 0) != 0:
            return None
        inputs = plan.inputs()
        if len(inputs) != 1:
            return None
        plan = inputs[0]
        node = plan.to_variant()
        kind = type(node).__name__
    if kind != "TableScan":
        return None
    table = _scan_table(node)
    if table is None or table not in tables:
        return None
    counted = _scans_in_text(root, tables)
    return table if sum(counted.values()) == 1 else None


def limit_of(plan: Any) -> int | None:
    """The row limit of a streamable plan (the smallest ``LIMIT`` on its way down)."""
    limit: int | None = None
    while True:
        node = plan.to_variant()
        if type(node).__name__ == "Limit":
            fetch = _int_of(node.fetch())
            if fetch is not None:
                limit = fetch if limit is None else min(limit, fetch)
        inputs = plan.inputs()
        if len(inputs) != 1:
            return limit
        plan = inputs[0]


def _int_of(expr: Any) -> int | None:
    if expr is None:
        return None
    try:
        value = expr.python_value().as_py()
    except Exception:  # not a literal
        return None
    return value if isinstance(value, int) else None
