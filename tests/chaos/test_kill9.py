"""``kill -9`` of the server at random moments under load; every guarantee still holds.

A load generator submits a few hundred invocations (``/send`` with idempotency keys, retried with
the same key while the server is down) at a steady rate: ``Chain.run`` (3–8 journaled steps with
durable sleeps between some of them), ``Fanout.run`` (calls and one-way sends to the ``Tally``
virtual object on many keys, hence across partitions) and direct ``Tally.add``. Meanwhile the
server is killed with SIGKILL 5–8 times at seeded random moments (sometimes again while it
recovers) and restarted on the same data dir; the SDK process stays up. Then every invocation
must complete, and:

1. every output is the expected one;
2. journaled steps (effects log of the SDK app, one fsynced line per execution): each ran at
   least once, in order; none ran again once its result was journaled, nor after a later step
   had run; steps that ran more than once did so around a kill (counted and reported);
3. ``Tally`` counters equal the number of ``add`` calls made (ingress, call, send): no loss,
   no duplicate, and each add's answer is its own position in the key's log;
4. ``sys_invocation`` holds exactly the expected invocations per handler, all completed.

Replay a run with ``UNDYING_CHAOS_SEED=<seed>``; the run's plan and a report (kills, restarts,
retries, re-executed steps) are printed.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from .chaos_support import (
    LoadGenerator,
    Plan,
    check_resends,
    check_steps,
    check_tally,
    fetch_outputs,
    make_plan,
    read_effects,
    run_chaos,
    tally_state,
    wait_drained,
)
from .conftest import ChaosEnv

#: Longer soak runs: ``UNDYING_CHAOS_SCALE=4`` submits four times as many invocations (at the
#: same rate, so the load lasts four times longer) with four times as many kills.
SCALE = float(os.environ.get("UNDYING_CHAOS_SCALE") or 1)

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(int(200 + 80 * SCALE))]

INVOCATIONS = round(600 * SCALE)
RATE = 18.0  # submissions per second: 33 s of load
KEYS = 24
KILLS = (round(5 * SCALE), round(8 * SCALE))
#: After the load, how long every invocation may take to complete (retries back off).
DRAIN_TIMEOUT = 90.0
#: A step execution whose result the journal did not keep must be close to a kill: the kill
#: came at most this long (seconds) before it (an attempt still running in the SDK when its
#: server died) or after it (its result was not durable yet).
KILL_WINDOW = (1.0, 3.0)


def test_kill9_under_load(chaos_env: ChaosEnv, chaos_seed: int, target: str) -> None:
    plan = make_plan(chaos_seed, invocations=INVOCATIONS, rate=RATE, keys=KEYS, kills=KILLS)
    server = chaos_env.server
    print(f"chaos plan on {target}: {plan.describe()}")
    try:
        _run_and_check(chaos_env, plan)
    except BaseException as exc:
        exc.add_note(
            f"chaos seed={chaos_seed} target={target} (replay: UNDYING_CHAOS_SEED={chaos_seed})\n"
            f"data dir: {server.data_dir}\nlogs: {server.log_dir}\n"
            f"effects log: {chaos_env.effects_log}"
        )
        raise


def _run_and_check(env: ChaosEnv, plan: Plan) -> None:
    server = env.server
    began = time.monotonic()
    start_wall = time.time() + 0.2
    load = LoadGenerator(server.ingress_url, plan, start_wall)
    load.start()
    chaos = run_chaos(server, plan, start_wall)
    accepted = load.result(timeout=plan.duration + 120.0)
    load_seconds = load.finished_wall - start_wall

    rows = wait_drained(server.admin, plan, DRAIN_TIMEOUT)
    drained = time.monotonic() - began
    outputs = fetch_outputs(
        lambda inv: server.ingress.attach(inv, timeout=30.0), [a.invocation_id for a in accepted]
    )
    state = tally_state(server.admin)
    effects = read_effects(env.effects_log)
    steps = check_steps(accepted, outputs, effects, chaos, kill_window=KILL_WINDOW)
    tally = check_tally(plan, accepted, outputs, state)
    resends = check_resends(accepted, load.resent)

    retried = [a for a in accepted if a.failed_tries]
    report = {
        "kills": len(chaos.kills),
        "kills_while_starting": sum(k.while_starting for k in chaos.kills),
        "restart_s": [round(s, 2) for s in chaos.restart_seconds],
        "load_s": round(load_seconds, 1),
        "drained_s": round(drained, 1),
        "submissions_retried": len(retried),
        "retry_reasons": dict(Counter(r for a in retried for r in a.failed_tries)),
        "previously_accepted": sum(a.status == "PreviouslyAccepted" for a in accepted),
        "resent": len(load.resent),
        "steps": steps.steps,
        "step_executions": steps.executions,
        "attempts": steps.attempts,
        "steps_run_more_than_once": len(steps.reexecuted),
        "extra_executions": sum(n - 1 for _, _, n in steps.reexecuted),
        "reexecutions_far_from_kills": steps.far_from_kills[:10],
        "tally_adds": sum(sum(c.values()) for c in plan.expected_srcs().values()),
    }
    print("chaos report:", report)

    # 4. exactly the expected invocations, all completed (wait_drained saw at least them)
    done: Counter[tuple[str, str]] = Counter()
    for row in rows:
        assert row["status"] == "completed", rows
        done[str(row["service"]), str(row["handler"])] += int(row["n"])
    assert dict(done) == plan.expected_invocations(), f"sys_invocation: {rows}"
    assert len({a.invocation_id for a in accepted}) == len(plan.submissions)
    assert not resends, "\n".join(resends[:30])
    # 1–2. outputs and journaled steps
    assert not steps.violations, "\n".join(steps.violations[:30])
    assert not steps.far_from_kills, f"steps re-executed with no kill nearby: {report}"
    # 3. state changes and messages between services
    assert not tally, "\n".join(tally[:30])
    assert len(chaos.kills) >= KILLS[0], f"only {len(chaos.kills)} kills hit a live server"
    assert env.app.running, "the SDK app died"
