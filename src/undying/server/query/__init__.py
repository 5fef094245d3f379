"""SQL introspection (the admin API's ``POST /query``), wire-compatible with Restate's."""

from __future__ import annotations

from undying.server.query.engine import QueryEngine, QueryError, QueryStream
from undying.server.query.http import admin_route, handle_query

__all__ = ["QueryEngine", "QueryError", "QueryStream", "admin_route", "handle_query"]
