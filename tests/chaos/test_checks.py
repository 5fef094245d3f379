"""The chaos suite's checks catch what they are meant to catch (synthetic logs, no server)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from .chaos_support import (
    Accepted,
    ChaosLog,
    Execution,
    Kill,
    Plan,
    StepReport,
    Submission,
    check_resends,
    check_steps,
    check_tally,
    make_plan,
)

pytestmark = [pytest.mark.chaos]

INV = "inv_1"
CHAIN = Submission(0, "chain", "t", "/Chain/run/send", {}, "k0", steps=3)
KILL_AT = 100.0
KILLED = ChaosLog(kills=[Kill(KILL_AT, while_starting=False)])


def log(*lines: tuple[int, str, int, float]) -> list[Execution]:
    """``(step, attempt, exec, ts)`` per line, in file order, all of invocation ``INV``."""
    return [
        Execution(pos, INV, "t", step, attempt, exe, ts)
        for pos, (step, attempt, exe, ts) in enumerate(lines)
    ]


def output(*kept: tuple[str, int], tag: str = "t") -> dict[str, Any]:
    return {
        "tag": tag,
        "values": [f"{tag}:{i}" for i in range(1, len(kept) + 1)],
        "execs": [{"attempt": a, "exec": e} for a, e in kept],
    }


def steps_of(effects: list[Execution], out: dict[str, Any], chaos: ChaosLog = KILLED) -> StepReport:
    return check_steps(
        [Accepted(CHAIN, INV, "Accepted", [])],
        {INV: out},
        effects,
        chaos,
        kill_window=(1.0, 3.0),
    )


def test_one_attempt_is_clean() -> None:
    effects = log((0, "A", 0, 1.0), (1, "A", 1, 1.0), (2, "A", 1, 1.1), (3, "A", 1, 1.2))
    report = steps_of(effects, output(("A", 1), ("A", 1), ("A", 1)))
    assert report.violations == []
    assert (report.steps, report.executions, report.attempts) == (3, 3, 1)
    assert report.reexecuted == []


def test_a_step_cut_short_by_a_kill_runs_again() -> None:
    effects = log(
        (0, "A", 0, 99.0),
        (1, "A", 1, 99.0),
        (2, "A", 1, 99.9),  # killed at 100 before this result was journaled
        (0, "B", 0, 101.0),
        (2, "B", 2, 101.0),
        (3, "B", 1, 101.1),
    )
    report = steps_of(effects, output(("A", 1), ("B", 2), ("B", 1)))
    assert report.violations == []
    assert report.reexecuted == [("t", 2, 2)]
    assert report.far_from_kills == []


def test_a_journaled_step_that_runs_again_is_caught() -> None:
    effects = log(
        (0, "A", 0, 99.0),
        (1, "A", 1, 99.0),
        (2, "A", 1, 99.9),  # journaled: the output keeps it
        (0, "B", 0, 101.0),
        (2, "B", 2, 101.0),
        (3, "B", 1, 101.1),
    )
    report = steps_of(effects, output(("A", 1), ("A", 1), ("B", 1)))
    assert len(report.violations) == 1
    assert "step2 ran again" in report.violations[0]


def test_a_lost_acknowledged_step_is_caught() -> None:
    # step2 ran, so step1 had been acknowledged; B must not run step1 again
    effects = log(
        (0, "A", 0, 99.0),
        (1, "A", 1, 99.0),
        (2, "A", 1, 99.9),
        (0, "B", 0, 101.0),
        (1, "B", 2, 101.0),
        (2, "B", 2, 101.1),
        (3, "B", 1, 101.2),
    )
    report = steps_of(effects, output(("B", 2), ("B", 2), ("B", 1)))
    wanted = "step1 ran (line 4) in an attempt started after step2"
    assert any(wanted in v for v in report.violations)


def test_steps_out_of_order_are_caught() -> None:
    effects = log((0, "A", 0, 1.0), (1, "A", 1, 1.0), (3, "A", 1, 1.1), (2, "A", 1, 1.2))
    report = steps_of(effects, output(("A", 1), ("A", 1), ("A", 1)))
    assert any("out of order" in v for v in report.violations)


def test_a_missing_step_and_a_wrong_output_are_caught() -> None:
    effects = log((0, "A", 0, 1.0), (1, "A", 1, 1.0), (3, "A", 1, 1.1))
    report = steps_of(effects, output(("A", 1), ("A", 1), ("A", 1)))
    assert any("step2 never executed" in v for v in report.violations)
    wrong = output(("A", 1), ("A", 1), ("A", 1))
    wrong["values"][1] = "other"
    assert any("wrong output" in v for v in steps_of(effects, wrong).violations)


def test_a_second_invocation_for_one_submission_is_caught() -> None:
    effects = log((0, "A", 0, 1.0), (1, "A", 1, 1.0), (2, "A", 1, 1.1), (3, "A", 1, 1.2))
    effects.append(Execution(4, "inv_2", "t", 0, "C", 0, 1.3))
    report = steps_of(effects, output(("A", 1), ("A", 1), ("A", 1)))
    assert any("executed under ['inv_1', 'inv_2']" in v for v in report.violations)


def test_a_rerun_without_a_kill_nearby_is_reported() -> None:
    effects = log(
        (0, "A", 0, 10.0),
        (1, "A", 1, 10.0),
        (0, "B", 0, 11.0),
        (1, "B", 2, 11.0),
        (2, "B", 1, 11.1),
        (3, "B", 1, 11.2),
    )
    report = steps_of(effects, output(("B", 2), ("B", 1), ("B", 1)))
    assert report.violations == []
    assert report.far_from_kills == ["t step1 line 1"]


def tally_plan() -> Plan:
    subs = (
        Submission(0, "add", "a", "/Tally/k1/add/send", "a/ingress", "i0", steps=0, key="k1"),
        Submission(
            1, "fanout", "f", "/Fanout/run/send", {}, "i1", steps=2, calls=("k1",), sends=("k2",)
        ),
    )
    return Plan(1, 1.0, ("k1", "k2"), subs, ())


def tally_answers(plan: Plan, add: Any, call: Any) -> tuple[list[Accepted], dict[str, Any]]:
    accepted = [Accepted(sub, f"inv_{sub.index}", "Accepted", []) for sub in plan.submissions]
    outputs = {"inv_0": add, "inv_1": {"counts": [call], "sent": 1}}
    return accepted, outputs


def test_tally_exact_counts_pass_and_losses_or_duplicates_fail() -> None:
    plan = tally_plan()
    assert plan.expected_invocations() == {("Tally", "add"): 3, ("Fanout", "run"): 1}
    accepted, outputs = tally_answers(plan, add=1, call=2)
    good = {
        "k1": {"count": 2, "srcs": ["a/ingress", "f/call/k1"]},
        "k2": {"count": 1, "srcs": ["f/send/k2"]},
    }
    assert check_tally(plan, accepted, outputs, good) == []
    lost = {**good, "k2": {"count": 0, "srcs": []}}
    assert any("lost {'f/send/k2': 1}" in v for v in check_tally(plan, accepted, outputs, lost))
    doubled = {**good, "k2": {"count": 2, "srcs": ["f/send/k2", "f/send/k2"]}}
    assert any("duplicated" in v for v in check_tally(plan, accepted, outputs, doubled))
    accepted, swapped = tally_answers(plan, add=2, call=1)
    assert len(check_tally(plan, accepted, swapped, good)) == 2


def test_a_resend_must_find_the_first_invocation() -> None:
    first = [Accepted(CHAIN, INV, "Accepted", [])]
    assert check_resends(first, [Accepted(CHAIN, INV, "PreviouslyAccepted", [])]) == []
    assert check_resends(first, [Accepted(CHAIN, "inv_9", "Accepted", [])]) != []
    assert check_resends(first, [Accepted(CHAIN, INV, "Accepted", [])]) != []


def test_the_plan_is_a_function_of_the_seed() -> None:
    one = make_plan(7, invocations=200, rate=20.0, keys=8, kills=(5, 8))
    assert one == make_plan(7, invocations=200, rate=20.0, keys=8, kills=(5, 8))
    assert one != make_plan(8, invocations=200, rate=20.0, keys=8, kills=(5, 8))
    assert 5 <= len(one.events) <= 8
    assert all(0 < e.at < one.duration for e in one.events)
    kinds = Counter(s.kind for s in one.submissions)
    assert set(kinds) == {"chain", "fanout", "add"}
    assert all(index < slot for slot, index in one.resends)
