"""The effects log: one JSON line per side-effect execution, written by the test services.

Services get the file path from ``$EFFECTS_LOG`` and append, per execution of a step::

    {"step": "Reminder", "id": "<greeting id or tag>", "name": "Alice", "attempt": 2,
     "ok": false, "ts": 1795496324.991, "sdk": "python"}

``attempt`` counts executions of that step for that id inside the service process; ``ok`` is
false when the step raised after logging. Tests read it to check exactly-once execution.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from undying.testing.waiting import poll_until

__all__ = ["Effect", "EffectsLog"]


@dataclass(frozen=True)
class Effect:
    """One logged execution of a step."""

    step: str
    id: str
    name: str
    attempt: int
    ok: bool
    ts: float
    sdk: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Effect:
        return cls(
            step=str(data["step"]),
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            attempt=int(data.get("attempt", 0)),
            ok=bool(data.get("ok", True)),
            ts=float(data["ts"]),
            sdk=str(data.get("sdk", "")),
        )


class EffectsLog:
    """Reader of an effects log file (which may not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Effect]:
        """Every complete line so far (a partially written last line is skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        effects = []
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n") or not line.strip():
                continue
            effects.append(Effect.from_json(json.loads(line)))
        return effects

    def mark(self) -> int:
        """Number of entries so far; pass as ``since`` to look only at later ones."""
        return len(self.read())

    def since(self, mark: int) -> list[Effect]:
        return self.read()[mark:]

    def wait_for(
        self,
        predicate: Callable[[list[Effect]], bool],
        *,
        timeout: float,
        what: str,
        since: int = 0,
    ) -> list[Effect]:
        """Poll the file until ``predicate(entries since mark)`` holds; return those entries."""

        def check() -> list[Effect] | None:
            entries = self.since(since)
            return entries if predicate(entries) else None

        return poll_until(
            check,
            timeout=timeout,
            what=what,
            interval=0.02,
            describe=lambda: f"entries: {self.since(since)}",
        )
