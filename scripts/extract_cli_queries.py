"""Extract every SQL query the official ``restate`` CLI sent in the reference captures.

Usage (``CAPTURES_DIR`` defaults to ``../shared/reference/captures`` next to the checkout)::

    python scripts/extract_cli_queries.py [CAPTURES_DIR] > tests/server/query/cli_queries.json

Each ``cli_*.txt`` capture holds a command's admin traffic; every ``POST …/query`` in it gives one
entry: the command, the ``accept`` header (the CLI asks ``application/json`` for rows and
``*/*`` for Arrow), the query exactly as captured, and a template where the capture's ids and
names are placeholders (``{completed}``, ``{service}``…, see :data:`LITERALS`), so that a test
can run the same query against its own invocations. Queries sent by several commands appear
once, with all their sources.

One capture (``services status``) has its last query cut short (``...[1407 chars]``); it is the
CLI's invocation SELECT over the five ids of the query before it, filtered by service: that
form gives exactly the captured length, and the entry is marked ``reconstructed``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Final

#: Placeholder -> the literal the captures have in its place (replaced longest first).
LITERALS: Final = {
    "completed": "inv_16rnEpOfB5ax27rRJelwtkvE2ygbtv2Kxf",
    "completed_other": "inv_1gvu3oYTu4Ot5eY9bY7r0nEr8WFXOutkPL",
    "backing_off": "inv_1553EmTLdKub0fiSGXr1AKGgtSCaNiljaE",
    "suspended": "inv_12xfMKqhpOrN0PKSCdW2iDvOpbV50WMmfN",
    "paused": "inv_1iBmk2omnRsc2tojVG2FEjTMeB422tEXqR",
    "scheduled": "inv_1bKBG8Zd919o5QPyQL91sbqu1H4AAlcJ9v",
    "locked": "inv_16r7ktWeJrSM1M8xIulAN3Ep47aWuFv4vv",
    "running": "inv_1kSOQ7u9thLV6PDXwAsuNIjmhqvA1f0W4W",
    "last_1": "inv_1gYxgkkvkAc373KkLglzmLfHRn6qjo43DC",
    "last_2": "inv_1aq3y7aOzrRj1XHr6lO6IZyJYPVig92jyF",
    "last_3": "inv_17DG09eZig4P5KjBiS9afO6OnFlQh4gAAh",
    "last_4": "inv_16ugTvnfLqdM0SP48O6fYuVIItEyn6NTSl",
    "last_5": "inv_1gZdblYu2kry7DTIBiTlynUsHaXO6R4Q8j",
    "deployment": "dp_114UqHl3AXh43PW9oxKp7H3",
    "object_target": "Counter/locked2",
    "service_target": "Long/go",
    "service": "Greeter",
    "object": "Counter",
    "key": "alice",
    "key2": "bob",
}

_POST: Final = re.compile(r">>> POST \S*/query HTTP")
_ACCEPT: Final = re.compile(r"^\s+accept: (.*)$")
_TRUNCATED: Final = re.compile(r'^BODY: \{"query":"(.*)\.\.\.\[(\d+) chars\]$')


def _command(path: Path) -> str:
    return path.stem.removeprefix("cli_").replace("_", " ")


def _template(query: str) -> str:
    text = query.replace("{", "{{").replace("}", "}}")
    for name, literal in sorted(LITERALS.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(literal, "{" + name + "}")
    return text


def _reconstruct(escaped: str, length: int, previous: list[dict[str, Any]]) -> str:
    """The services-status invocation SELECT, from its captured start and length."""
    prefix = json.loads('"' + escaped.rstrip("\\") + '"')
    full = next(
        q["query"]
        for q in previous
        if q["query"].startswith(prefix[:200]) and "ORDER BY inv.created_at" in q["query"]
    )
    ids = ",".join(f"'{LITERALS[f'last_{n}']}'" for n in range(1, 6))
    where = f"WHERE inv.target_service_name = '{LITERALS['service']}' AND inv.id in ({ids})"
    query = re.sub(r"WHERE [^\n]*inv\.id in \([^)]*\)", where, full, count=1)
    body = json.dumps({"query": query}, separators=(",", ":"))
    if len(body) != length or not query.startswith(prefix):
        raise ValueError(f"cannot reconstruct the cut query ({len(body)} != {length})")
    return query


def extract(captures: Path) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    cut: list[tuple[Path, str, str, int]] = []
    for path in sorted(captures.glob("cli_*.txt")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if not _POST.search(line):
                continue
            accept = None
            j = i + 1
            while not lines[j].strip().startswith("BODY"):
                m = _ACCEPT.match(lines[j])
                if m:
                    accept = m.group(1)
                j += 1
            body = lines[j].strip()
            m = _TRUNCATED.match(body)
            if m:
                cut.append((path, accept or "*/*", m.group(1), int(m.group(2))))
                continue
            query = json.loads(body.removeprefix("BODY: "))["query"]
            found.append({"source": path.name, "accept": accept or "*/*", "query": query})
    for path, accept, prefix, length in cut:
        query = _reconstruct(prefix, length, found)
        found.append({"source": path.name, "accept": accept, "query": query, "cut": True})
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    counters: dict[str, int] = {}
    for q in found:
        key = (q["query"], q["accept"])
        if key in entries:
            entries[key]["sources"].append(q["source"])
            continue
        command = _command(Path(q["source"]))
        counters[command] = counters.get(command, 0) + 1
        entries[key] = {
            "name": f"{command} #{counters[command]}",
            "sources": [q["source"]],
            "accept": q["accept"],
            "reconstructed": bool(q.get("cut")),
            "captured": q["query"],
            "template": _template(q["query"]),
        }
    return {"literals": LITERALS, "queries": list(entries.values())}


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "reference" / "captures"
    captures = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    json.dump(extract(captures), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
