"""Tables (Markdown) from the measurement records of a run.

A *record* is the JSON dict :mod:`bench.run` stores per measurement (see ``bench/README.md``).
``python -m bench.report bench/results/bench-<stamp>.json`` prints the tables of a saved run.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render", "targets"]

Record = dict[str, Any]

SYSTEMS = ("undying", "restate")
LATENCY_CELLS = ("noop", "steps3", "steps10")
LABELS = {"noop": "noop", "steps3": "steps(3)", "steps10": "steps(10)"}
#: The issue's targets: steps(3) sequential p50 and steps(3) throughput at c=32.
TARGET_LATENCY_CELL = "steps3"
TARGET_THROUGHPUT_C = 32


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _index(records: list[Record]) -> dict[tuple[int, str, str], Record]:
    return {(r["round"], r["system"], r["cell"]): r for r in records}


def _lat(rec: Record | None, key: str) -> float | None:
    if rec is None:
        return None
    value = rec["result"]["latency_ms"].get(key)
    return None if value is None else float(value)


def _tput(rec: Record | None) -> float | None:
    return None if rec is None else float(rec["result"]["throughput_per_s"])


def _flags(*recs: Record | None) -> str:
    marks: list[str] = []
    for rec in recs:
        if rec is not None:
            marks += [f"{rec['system'][0]}:{flag}" for flag in rec["flags"]]
    return ", ".join(marks) or "ok"


def _throughput_cells(records: list[Record]) -> list[tuple[str, int]]:
    found = {(r["cell"], r["concurrency"]) for r in records if r["kind"] == "throughput"}
    return sorted(found, key=lambda item: item[1])


def marginal_step_ms(
    idx: dict[tuple[int, str, str], Record], rnd: int, system: str
) -> float | None:
    """(steps(10) p50 − steps(3) p50) / 7."""
    hi, lo = (
        _lat(idx.get((rnd, system, "steps10")), "p50"),
        _lat(idx.get((rnd, system, "steps3")), "p50"),
    )
    if hi is None or lo is None:
        return None
    return (hi - lo) / 7.0


def round_tables(records: list[Record], rnd: int) -> list[str]:
    idx = _index(records)
    out = [f"### Round {rnd}", ""]
    lat_rows = []
    for cell in LATENCY_CELLS:
        u, r = idx.get((rnd, "undying", cell)), idx.get((rnd, "restate", cell))
        if u is None and r is None:
            continue
        lat_rows.append(
            [
                LABELS[cell],
                f"{_fmt(_lat(u, 'p50'))} / {_fmt(_lat(u, 'p99'))}",
                f"{_fmt(_lat(r, 'p50'))} / {_fmt(_lat(r, 'p99'))}",
                _fmt(_ratio(_lat(u, "p50"), _lat(r, "p50"))),
                _fmt(_ratio(_lat(u, "p99"), _lat(r, "p99"))),
                f"{_fmt(_tput(u), 0)} / {_fmt(_tput(r), 0)}",
                _flags(u, r),
            ]
        )
    mu, mr = marginal_step_ms(idx, rnd, "undying"), marginal_step_ms(idx, rnd, "restate")
    if mu is not None or mr is not None:
        lat_rows.append(
            ["marginal ms/step (p50)", _fmt(mu), _fmt(mr), _fmt(_ratio(mu, mr)), "", "", ""]
        )
    if lat_rows:
        out += [
            "Sequential latency (1 in flight), ms. Ratio = undying / restate (< 1 is better).",
            "",
        ]
        out += _table(
            [
                "workload",
                "undying p50 / p99",
                "restate p50 / p99",
                "ratio p50",
                "ratio p99",
                "calls/s u / r",
                "flags",
            ],
            lat_rows,
        )
        out.append("")

    tp_rows = []
    for cell, conc in _throughput_cells(records):
        u, r = idx.get((rnd, "undying", cell)), idx.get((rnd, "restate", cell))
        if u is None and r is None:
            continue
        tp_rows.append(
            [
                str(conc),
                f"{_fmt(_tput(u), 0)} ({_fmt(_lat(u, 'p50'), 1)} / {_fmt(_lat(u, 'p99'), 1)})",
                f"{_fmt(_tput(r), 0)} ({_fmt(_lat(r, 'p50'), 1)} / {_fmt(_lat(r, 'p99'), 1)})",
                _fmt(_ratio(_tput(u), _tput(r))),
                _fmt(_ratio(_lat(u, "p99"), _lat(r, "p99"))),
                f"{_errors(u)} / {_errors(r)}",
                _flags(u, r),
            ]
        )
    if tp_rows:
        out += [
            "Throughput, steps(3), closed loop: inv/s (p50 / p99 ms). "
            "Ratio inv/s = undying / restate (> 1 is better).",
            "",
        ]
        out += _table(
            [
                "c",
                "undying inv/s (p50 / p99)",
                "restate inv/s (p50 / p99)",
                "ratio inv/s",
                "ratio p99",
                "errors u / r",
                "flags",
            ],
            tp_rows,
        )
        out.append("")

    cpu_rows = []
    for rec in sorted(
        (r for r in records if r["round"] == rnd), key=lambda r: (r["order"], r["system"])
    ):
        cpu = rec["cpu_pct"]
        per = rec["cpu_ms_per_call"]
        cpu_rows.append(
            [
                rec["system"],
                rec["label"],
                " / ".join(_fmt(cpu[k], 0) for k in ("server", "sdk", "loadgen", "peer", "other")),
                _fmt(cpu["machine"], 0),
                _fmt(per["server"]),
                _fmt(per["sdk"]),
                _fmt(per["server"] + per["sdk"]),
            ]
        )
    if cpu_rows:
        out += [
            "CPU during the measured window: % of one core (machine max = 200 %), and CPU-ms per "
            "invocation. `peer` = the other system, idle; `other` = machine − all our processes.",
            "",
        ]
        out += _table(
            [
                "system",
                "measurement",
                "CPU % server / sdk / loadgen / peer / other",
                "machine %",
                "server ms/inv",
                "sdk ms/inv",
                "total ms/inv",
            ],
            cpu_rows,
        )
        out.append("")
    return out


def _errors(rec: Record | None) -> str:
    return "–" if rec is None else str(rec["result"]["errors"])


def _lat_pair(rec: Record | None) -> str:
    return f"{_fmt(_lat(rec, 'p50'))}/{_fmt(_lat(rec, 'p99'))}"


def _tput_pair(rec: Record | None) -> str:
    return f"{_fmt(_tput(rec), 0)} ({_fmt(_lat(rec, 'p99'), 0)})"


def _lat_ratio_pair(u: Record | None, r: Record | None) -> str:
    p50 = _ratio(_lat(u, "p50"), _lat(r, "p50"))
    p99 = _ratio(_lat(u, "p99"), _lat(r, "p99"))
    return f"{_fmt(p50)}/{_fmt(p99)}"


def _tput_ratio_pair(u: Record | None, r: Record | None) -> str:
    inv = _ratio(_tput(u), _tput(r))
    p99 = _ratio(_lat(u, "p99"), _lat(r, "p99"))
    return f"{_fmt(inv)} ({_fmt(p99)})"


def summary_table(records: list[Record]) -> list[str]:
    """One row per system, each cell ``r1 ; r2 ; …`` (like the reference's key table)."""
    rounds = sorted({r["round"] for r in records})
    idx = _index(records)
    tp = [cell for cell, _ in _throughput_cells(records)]
    header = ["system", *[f"{LABELS[c]} p50/p99 ms" for c in LATENCY_CELLS], "ms/step (p50)"]
    header += [f"steps(3) inv/s (p99 ms) c={c}" for _, c in _throughput_cells(records)]
    present = [s for s in SYSTEMS if any(r["system"] == s for r in records)]
    rows = []
    for system in present:
        row = [system]
        for cell in LATENCY_CELLS:
            row.append(" ; ".join(_lat_pair(idx.get((rnd, system, cell))) for rnd in rounds))
        row.append(" ; ".join(_fmt(marginal_step_ms(idx, rnd, system)) for rnd in rounds))
        for cell in tp:
            row.append(" ; ".join(_tput_pair(idx.get((rnd, system, cell))) for rnd in rounds))
        rows.append(row)
    if len(present) == 2:
        row = ["ratio undying/restate"]
        for cell in LATENCY_CELLS:
            row.append(
                " ; ".join(
                    _lat_ratio_pair(
                        idx.get((rnd, "undying", cell)), idx.get((rnd, "restate", cell))
                    )
                    for rnd in rounds
                )
            )
        row.append(
            " ; ".join(
                _fmt(
                    _ratio(
                        marginal_step_ms(idx, rnd, "undying"), marginal_step_ms(idx, rnd, "restate")
                    )
                )
                for rnd in rounds
            )
        )
        for cell in tp:
            row.append(
                " ; ".join(
                    _tput_ratio_pair(
                        idx.get((rnd, "undying", cell)), idx.get((rnd, "restate", cell))
                    )
                    for rnd in rounds
                )
            )
        rows.append(row)
    title = "### Summary (each cell: " + " ; ".join(f"r{r}" for r in rounds) + ")"
    return [title, "", *_table(header, rows), ""]


def targets(records: list[Record]) -> list[dict[str, Any]]:
    """The issue's targets per round: values, ratios and whether they are met."""
    idx = _index(records)
    tp_cell = next(
        (c for c, conc in _throughput_cells(records) if conc == TARGET_THROUGHPUT_C), None
    )
    out: list[dict[str, Any]] = []
    for rnd in sorted({r["round"] for r in records}):
        u = idx.get((rnd, "undying", TARGET_LATENCY_CELL))
        r = idx.get((rnd, "restate", TARGET_LATENCY_CELL))
        lat = _ratio(_lat(u, "p50"), _lat(r, "p50"))
        entry: dict[str, Any] = {
            "round": rnd,
            "steps3_p50_ms": {"undying": _lat(u, "p50"), "restate": _lat(r, "p50")},
            "steps3_p50_ratio": lat,
            "latency_met": None if lat is None else lat <= 1.0,
            "latency_goal_met": None if lat is None else lat <= 0.5,
        }
        if tp_cell is not None:
            tu = _tput(idx.get((rnd, "undying", tp_cell)))
            tr = _tput(idx.get((rnd, "restate", tp_cell)))
            tpr = _ratio(tu, tr)
            entry.update(
                {
                    f"steps3_c{TARGET_THROUGHPUT_C}_inv_s": {"undying": tu, "restate": tr},
                    f"steps3_c{TARGET_THROUGHPUT_C}_ratio": tpr,
                    "throughput_met": None if tpr is None else tpr >= 1.0,
                    "throughput_goal_met": None if tpr is None else tpr >= 2.0,
                }
            )
        out.append(entry)
    return out


def targets_lines(records: list[Record]) -> list[str]:
    def word(flag: bool | None) -> str:
        return "n/a" if flag is None else ("MET" if flag else "not met")

    lines = ["### Targets (undying / restate)", ""]
    for t in targets(records):
        tp_ratio = t.get(f"steps3_c{TARGET_THROUGHPUT_C}_ratio")
        lines.append(
            f"- round {t['round']}: steps(3) p50 ratio {_fmt(t['steps3_p50_ratio'])} "
            f"(≤ 1: {word(t['latency_met'])}; ≤ 0.5 goal: {word(t['latency_goal_met'])}); "
            f"steps(3) c={TARGET_THROUGHPUT_C} throughput ratio {_fmt(tp_ratio)} "
            f"(≥ 1: {word(t.get('throughput_met'))}; "
            f"≥ 2 goal: {word(t.get('throughput_goal_met'))})"
        )
    return [*lines, ""]


def render(records: list[Record]) -> str:
    rounds = sorted({r["round"] for r in records})
    lines: list[str] = []
    for rnd in rounds:
        lines += round_tables(records, rnd)
    if records:
        lines += summary_table(records)
        lines += targets_lines(records)
    flagged = [r for r in records if r["flags"]]
    if flagged:
        lines += [
            "Flags: `other>N%` = other processes used more than the quiet threshold during the "
            "window (contaminated); `noisy-start` = the machine never became quiet before it; "
            "`errors` = failed calls.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.report bench/results/bench-<stamp>.json", file=sys.stderr)
        return 2
    data = json.loads(Path(args[0]).read_text())
    print(render(data["measurements"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
