"""Tables (Markdown) of an SDK run (:mod:`bench.sdk`): the undying SDK vs restate-sdk.

Records have the shape :mod:`bench.sdk` stores (``system`` is ``"undying-sdk"`` or
``"restate-sdk"``). ``python -m bench.sdk_report bench/results/sdk-<stamp>.json`` re-prints a
saved run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import _flags, _fmt, _index, _lat, _ratio, _table, _throughput_cells, _tput

__all__ = ["per_step_ms", "render", "slope", "summary"]

Record = dict[str, Any]
Index = dict[tuple[int, str, str], Record]

OURS, THEIRS = "undying-sdk", "restate-sdk"
SDKS = (OURS, THEIRS)
LATENCY_CELLS = ("noop", "steps0", "steps3", "steps10")
LABELS = {"noop": "noop", "steps0": "steps(0)", "steps3": "steps(3)", "steps10": "steps(10)"}
#: Cells whose latency is fitted against ``n`` for the per-step time.
SLOPE_CELLS = ("steps0", "steps3", "steps10")
#: The issue's target: per-step time of the undying SDK at most restate-sdk's (goal 0.7×).
TARGET_RATIO, GOAL_RATIO = 1.0, 0.7


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``y`` over ``x`` (``None`` with fewer than two distinct ``x``)."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def per_step_ms(idx: Index, rnd: int, system: str, stat: str = "p50") -> float | None:
    """Slope of latency (``stat``) over ``n`` for steps(0), steps(3), steps(10): ms per step."""
    points = []
    for cell in SLOPE_CELLS:
        rec = idx.get((rnd, system, cell))
        value = _lat(rec, stat)
        if rec is not None and value is not None:
            points.append((float(rec["n"]), value))
    return slope(points)


def _round_tables(records: list[Record], rnd: int) -> list[str]:
    idx = _index(records)
    out = [f"### Round {rnd}", ""]
    rows = []
    for cell in LATENCY_CELLS:
        u, r = idx.get((rnd, OURS, cell)), idx.get((rnd, THEIRS, cell))
        if u is None and r is None:
            continue
        rows.append(
            [
                LABELS[cell],
                f"{_fmt(_lat(u, 'p50'))} / {_fmt(_lat(u, 'p99'))}",
                f"{_fmt(_lat(r, 'p50'))} / {_fmt(_lat(r, 'p99'))}",
                _fmt(_ratio(_lat(u, "p50"), _lat(r, "p50"))),
                _fmt(_ratio(_lat(u, "p99"), _lat(r, "p99"))),
                _flags(u, r),
            ]
        )
    for stat in ("p50", "mean"):
        su, sr = per_step_ms(idx, rnd, OURS, stat), per_step_ms(idx, rnd, THEIRS, stat)
        if su is not None or sr is not None:
            rows.append(
                [f"**per step** (slope, {stat})", _fmt(su), _fmt(sr), _fmt(_ratio(su, sr)), "", ""]
            )
    if rows:
        out += ["Sequential latency (1 in flight), ms. Ratio = undying SDK / restate-sdk.", ""]
        out += _table(
            ["workload", "undying SDK p50 / p99", "restate-sdk p50 / p99", "ratio p50"]
            + ["ratio p99", "flags"],
            rows,
        )
        out.append("")
    rows = []
    for cell, conc in _throughput_cells(records):
        u, r = idx.get((rnd, OURS, cell)), idx.get((rnd, THEIRS, cell))
        if u is None and r is None:
            continue
        rows.append(
            [
                str(conc),
                f"{_fmt(_tput(u), 0)} ({_fmt(_lat(u, 'p50'), 1)} / {_fmt(_lat(u, 'p99'), 1)})",
                f"{_fmt(_tput(r), 0)} ({_fmt(_lat(r, 'p50'), 1)} / {_fmt(_lat(r, 'p99'), 1)})",
                _fmt(_ratio(_tput(u), _tput(r))),
                _fmt(_ratio(_lat(u, "p99"), _lat(r, "p99"))),
                _flags(u, r),
            ]
        )
    if rows:
        out += [
            "Throughput, steps(3), closed loop: inv/s (p50 / p99 ms). Ratio inv/s > 1: the "
            "undying SDK serves more.",
            "",
        ]
        out += _table(
            ["c", "undying SDK", "restate-sdk", "ratio inv/s", "ratio p99", "flags"], rows
        )
        out.append("")
    rows = []
    for rec in sorted((r for r in records if r["round"] == rnd), key=lambda r: r["order"]):
        cpu, per = rec["cpu_pct"], rec["cpu_ms_per_call"]
        rows.append(
            [
                rec["system"],
                rec["label"],
                " / ".join(_fmt(cpu[k], 0) for k in ("server", "sdk", "loadgen", "peer", "other")),
                _fmt(per["server"]),
                _fmt(per["sdk"]),
            ]
        )
    if rows:
        out += [
            "CPU in the measured window (% of one core; `peer` = the other SDK, idle; `other` = "
            "machine − our processes) and CPU-ms per invocation.",
            "",
        ]
        out += _table(
            ["sdk", "measurement", "CPU % server / sdk / loadgen / peer / other"]
            + ["server ms/inv", "sdk ms/inv"],
            rows,
        )
        out.append("")
    return out


def summary(records: list[Record]) -> list[dict[str, Any]]:
    """Per round: per-step times, their ratio, and the headline ratios."""
    idx = _index(records)
    out = []
    for rnd in sorted({r["round"] for r in records}):
        su, sr = per_step_ms(idx, rnd, OURS), per_step_ms(idx, rnd, THEIRS)
        ratio = _ratio(su, sr)
        entry: dict[str, Any] = {
            "round": rnd,
            "per_step_ms_p50": {OURS: su, THEIRS: sr},
            "per_step_ratio": ratio,
            "per_step_met": None if ratio is None else ratio <= TARGET_RATIO,
            "per_step_goal_met": None if ratio is None else ratio <= GOAL_RATIO,
        }
        for cell in LATENCY_CELLS:
            u, r = idx.get((rnd, OURS, cell)), idx.get((rnd, THEIRS, cell))
            entry[f"{cell}_p50_ratio"] = _ratio(_lat(u, "p50"), _lat(r, "p50"))
        for cell, conc in _throughput_cells(records):
            u, r = idx.get((rnd, OURS, cell)), idx.get((rnd, THEIRS, cell))
            entry[f"steps3_c{conc}_ratio"] = _ratio(_tput(u), _tput(r))
        out.append(entry)
    return out


def _summary_table(records: list[Record]) -> list[str]:
    rounds = sorted({r["round"] for r in records})
    idx = _index(records)
    tp = _throughput_cells(records)
    header = ["sdk", *[f"{LABELS[c]} p50/p99 ms" for c in LATENCY_CELLS], "ms/step (slope p50)"]
    header += [f"steps(3) inv/s c={c}" for _, c in tp]

    def cells(system: str) -> list[str]:
        row = []
        for cell in LATENCY_CELLS:
            row.append(
                " ; ".join(
                    f"{_fmt(_lat(idx.get((n, system, cell)), 'p50'))}/"
                    f"{_fmt(_lat(idx.get((n, system, cell)), 'p99'))}"
                    for n in rounds
                )
            )
        row.append(" ; ".join(_fmt(per_step_ms(idx, n, system)) for n in rounds))
        row += [" ; ".join(_fmt(_tput(idx.get((n, system, c))), 0) for n in rounds) for c, _ in tp]
        return row

    present = [s for s in SDKS if any(r["system"] == s for r in records)]
    rows = [[s, *cells(s)] for s in present]
    if len(present) == 2:
        row = ["**ratio**"]
        for cell in LATENCY_CELLS:
            row.append(
                " ; ".join(
                    _fmt(
                        _ratio(
                            _lat(idx.get((n, OURS, cell)), "p50"),
                            _lat(idx.get((n, THEIRS, cell)), "p50"),
                        )
                    )
                    for n in rounds
                )
            )
        row.append(
            " ; ".join(
                _fmt(_ratio(per_step_ms(idx, n, OURS), per_step_ms(idx, n, THEIRS))) for n in rounds
            )
        )
        row += [
            " ; ".join(
                _fmt(_ratio(_tput(idx.get((n, OURS, c))), _tput(idx.get((n, THEIRS, c)))))
                for n in rounds
            )
            for c, _ in tp
        ]
        rows.append(row)
    title = "### Summary (each cell: " + " ; ".join(f"r{n}" for n in rounds) + ")"
    note = "Latency ratio = p50 undying SDK / restate-sdk (< 1 better); inv/s ratio > 1 better."
    return [title, "", note, "", *_table(header, rows), ""]


def render(records: list[Record]) -> str:
    lines: list[str] = []
    for rnd in sorted({r["round"] for r in records}):
        lines += _round_tables(records, rnd)
    if records:
        lines += _summary_table(records)
        lines += ["### Target: per-step time, undying SDK / restate-sdk", ""]
        for entry in summary(records):
            ratio = entry["per_step_ratio"]
            verdict = (
                "n/a"
                if ratio is None
                else f"≤ {TARGET_RATIO:g}: {'MET' if entry['per_step_met'] else 'not met'}; "
                f"≤ {GOAL_RATIO:g}: {'MET' if entry['per_step_goal_met'] else 'not met'}"
            )
            ms = entry["per_step_ms_p50"]
            lines.append(
                f"- round {entry['round']}: {_fmt(ms[OURS])} / {_fmt(ms[THEIRS])} ms = "
                f"{_fmt(ratio)} ({verdict})"
            )
        lines.append("")
    if any(r["flags"] for r in records):
        lines += [
            "Flags: `other>N%` = foreign processes used more than the quiet threshold during the "
            "window (contaminated); `noisy-start` = never quiet before it; `errors` = failed "
            "calls.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.sdk_report bench/results/sdk-<stamp>.json", file=sys.stderr)
        return 2
    data = json.loads(Path(args[0]).read_text())
    print(render(data["measurements"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
