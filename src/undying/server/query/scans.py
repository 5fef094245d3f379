"""What a query needs from one table: columns, rows (as constraints) and how many.

The engine derives a :class:`Scan` per table from DataFusion's optimized plan
(:mod:`~undying.server.query.planning`) and hands it to the table builders
(:mod:`~undying.server.query.tables`), which read only that from storage. Every part of a scan
describes a *superset* of what the query can use, except where marked exact; DataFusion still
runs the query's own filters, sorts and limits on what the builders return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from undying.server.query.predicates import Predicate

__all__ = ["Constraint", "Restriction", "Scan", "TopK"]

#: ``(True, values)``: the column's value is one of ``values``; ``(False, values)``: it is none
#: of them.
Constraint = tuple[bool, frozenset[str]]
#: Constraints per column name; columns not mentioned are unconstrained.
Restriction = Mapping[str, Constraint]


@dataclass(frozen=True, slots=True)
class TopK:
    """Only the first ``k`` rows by ``column`` are used (rows tied with the k-th are kept)."""

    column: str
    descending: bool
    k: int


@dataclass(frozen=True, slots=True)
class Scan:
    """What the query reads of one table.

    Attributes:
        columns: the columns read (None: all of them); the others may be left NULL.
        restriction: values some string columns must have (a superset of the rows used).
        predicate: a row filter every row the query uses passes (None: no filter).
        exact: ``predicate`` is exactly the query's filter of this table (only then
            ``top`` may be set).
        fetch: any ``fetch`` rows will do (no filter, no order: ``SELECT … LIMIT n``).
        top: only the first rows in some order are used (``ORDER BY created_at DESC
            LIMIT n`` over exactly filtered rows).
    """

    columns: frozenset[str] | None = None
    restriction: Restriction = field(default_factory=dict)
    predicate: Predicate | None = None
    exact: bool = False
    fetch: int | None = None
    top: TopK | None = None

    def needs(self, column: str) -> bool:
        """Whether the query reads ``column``."""
        return self.columns is None or column in self.columns

    def read_columns(self) -> frozenset[str] | None:
        """The columns read or filtered on (None: all)."""
        if self.columns is None:
            return None
        if self.predicate is None:
            return self.columns
        return self.columns | self.predicate.columns
