"""The chaos suite's parts: a seeded plan (load and kills), the load generator, the chaos loop
that kills the server with SIGKILL and restarts it, and the checks of the guarantees.

Everything random comes from one ``random.Random(seed)`` used while making the :class:`Plan`,
so a run is reproducible from its seed up to the OS's timing.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from undying.testing import (
    AdminClient,
    ProcessExited,
    Server,
    UnexpectedResponse,
    WaitTimeout,
    poll_until,
)
from undying.testing.httpclient import HttpResponse, request
from undying.testing.waiting import pause_until

#: Ingress answers that mean "the server is (re)starting", retried like a refused connection.
RETRYABLE_STATUSES: Final = frozenset({502, 503, 504})
#: How long one submission may be retried (the server is down for a few seconds at most).
SUBMIT_TIMEOUT: Final = 60.0
#: Pause between two tries of a submission while the server is down.
SUBMIT_RETRY_INTERVAL: Final = 0.05

Kind = Literal["chain", "fanout", "add"]


# -- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """One ingress ``/send`` of the load, with its idempotency key."""

    index: int
    kind: Kind
    tag: str
    path: str
    payload: Any
    idempotency_key: str
    #: logged ``ctx.run`` steps of the handler (Chain: n, Fanout: 2, Tally.add: 0)
    steps: int
    #: Tally key of a direct ``Tally.add``
    key: str | None = None
    calls: tuple[str, ...] = ()
    sends: tuple[str, ...] = ()

    def expected_values(self) -> list[str]:
        return [f"{self.tag}:{step}" for step in range(1, self.steps + 1)]


@dataclass(frozen=True)
class ChaosEvent:
    """One ``kill -9`` of the server.

    Attributes:
        at: seconds after the start of the load.
        down: seconds the server stays down before it is started again.
        kill_while_starting: if set, the restarted server is killed again this many seconds
            after its launch (typically while it is still recovering), then started once more.
    """

    at: float
    down: float
    kill_while_starting: float | None


@dataclass(frozen=True)
class Plan:
    seed: int
    rate: float
    keys: tuple[str, ...]
    submissions: tuple[Submission, ...]
    events: tuple[ChaosEvent, ...]
    #: ``(slot, index)``: right after its own submission, slot ``slot`` sends submission
    #: ``index`` (an earlier one) again with the same idempotency key, as a client that lost
    #: the answer would; it must find the same invocation.
    resends: tuple[tuple[int, int], ...] = ()

    @property
    def duration(self) -> float:
        """Seconds over which the load is submitted."""
        return len(self.submissions) / self.rate

    def expected_srcs(self) -> dict[str, Counter[str]]:
        """Per Tally key, the ``src`` of every ``add`` the load causes (ingress, call, send)."""
        srcs: dict[str, Counter[str]] = {key: Counter() for key in self.keys}
        for sub in self.submissions:
            if sub.kind == "add":
                assert sub.key is not None
                srcs[sub.key][f"{sub.tag}/ingress"] += 1
            for key in sub.calls:
                srcs[key][f"{sub.tag}/call/{key}"] += 1
            for key in sub.sends:
                srcs[key][f"{sub.tag}/send/{key}"] += 1
        return srcs

    def expected_invocations(self) -> dict[tuple[str, str], int]:
        """Invocations per (service, handler) the load causes, service-to-service included."""
        counts: Counter[tuple[str, str]] = Counter()
        for sub in self.submissions:
            if sub.kind == "chain":
                counts["Chain", "run"] += 1
            elif sub.kind == "fanout":
                counts["Fanout", "run"] += 1
            counts["Tally", "add"] += (sub.kind == "add") + len(sub.calls) + len(sub.sends)
        return dict(counts)

    def describe(self) -> str:
        kinds = Counter(s.kind for s in self.submissions)
        events = ", ".join(
            f"{e.at:.1f}s(down {e.down:.1f}s"
            + (f", again +{e.kill_while_starting:.2f}s" if e.kill_while_starting else "")
            + ")"
            for e in self.events
        )
        return (
            f"seed={self.seed}: {len(self.submissions)} invocations ({dict(kinds)}) at "
            f"{self.rate:g}/s over {self.duration:.0f}s, {len(self.keys)} Tally keys, "
            f"{len(self.resends)} resent; kills at {events}"
        )


def make_plan(
    seed: int,
    *,
    invocations: int,
    rate: float,
    keys: int,
    kills: tuple[int, int],
) -> Plan:
    """The load and the kills of one run, drawn from ``random.Random(seed)``."""
    rng = random.Random(seed)
    key_names = tuple(f"acct-{i:02d}" for i in range(keys))
    subs: list[Submission] = []
    for index in range(invocations):
        tag = f"s{seed}-{index}"
        idem = f"chaos-{seed}-{index}"
        roll = rng.random()
        if roll < 0.6:
            n = rng.randint(3, 8)
            work = [rng.choice((0, 5, 20, 60)) for _ in range(n)]
            sleeps = [rng.choice((0, 0, 0, 20, 100, 250)) for _ in range(n - 1)]
            subs.append(
                Submission(
                    index,
                    "chain",
                    tag,
                    "/Chain/run/send",
                    {"tag": tag, "n": n, "work_ms": work, "sleep_ms": sleeps},
                    idem,
                    steps=n,
                )
            )
        elif roll < 0.8:
            calls = tuple(rng.sample(key_names, rng.randint(1, 2)))
            sends = tuple(rng.sample(key_names, rng.randint(1, 2)))
            subs.append(
                Submission(
                    index,
                    "fanout",
                    tag,
                    "/Fanout/run/send",
                    {"tag": tag, "calls": list(calls), "sends": list(sends)},
                    idem,
                    steps=2,
                    calls=calls,
                    sends=sends,
                )
            )
        else:
            key = rng.choice(key_names)
            subs.append(
                Submission(
                    index,
                    "add",
                    tag,
                    f"/Tally/{key}/add/send",
                    f"{tag}/ingress",
                    idem,
                    steps=0,
                    key=key,
                )
            )
    # About one submission in ten is sent again 1-6 s later (often across a kill).
    resends = []
    for index in range(invocations):
        if rng.random() < 0.1:
            slot = min(invocations - 1, index + rng.randint(int(rate), int(6 * rate)))
            resends.append((slot, index))
    resends.sort()
    duration = invocations / rate
    count = rng.randint(*kills)
    # One kill per slice of the load window, at a random moment of its slice (the first slice
    # starts after 2 s so that some invocations are under way at the first kill).
    window_start, window_end = 2.0, duration - 1.0
    slice_len = (window_end - window_start) / count
    events = []
    for i in range(count):
        at = window_start + i * slice_len + rng.uniform(0.0, 0.8 * slice_len)
        down = rng.choice((0.0, 0.0, rng.uniform(0.2, 1.5)))
        again = rng.uniform(0.02, 0.4) if rng.random() < 0.3 else None
        events.append(ChaosEvent(at, down, again))
    return Plan(seed, rate, key_names, tuple(subs), tuple(events), tuple(resends))


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Accepted:
    """The ingress's answer to one submission, after as many tries as it took."""

    submission: Submission
    invocation_id: str
    #: ``Accepted`` or ``PreviouslyAccepted`` (an earlier try had reached the server)
    status: str
    #: why earlier tries failed (connection errors while the server was down, …)
    failed_tries: list[str]


def submit(ingress_url: str, sub: Submission) -> Accepted:
    """``POST …/send`` with the submission's idempotency key, retried (same key) until the
    ingress accepts it: a try that fails because the server is down is safe to repeat."""
    body = json.dumps(sub.payload).encode()
    headers = {"content-type": "application/json", "idempotency-key": sub.idempotency_key}
    failures: list[str] = []

    def attempt() -> HttpResponse | None:
        try:
            resp = request("POST", ingress_url + sub.path, body=body, headers=headers, timeout=10.0)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(type(exc).__name__)
            return None
        if resp.status in RETRYABLE_STATUSES:
            failures.append(f"HTTP {resp.status}")
            return None
        return resp

    resp = poll_until(
        attempt,
        timeout=SUBMIT_TIMEOUT,
        what=f"the ingress accepts {sub.path} (idempotency key {sub.idempotency_key})",
        interval=SUBMIT_RETRY_INTERVAL,
        describe=lambda: f"failed tries: {Counter(failures)}",
    )
    if resp.status != 202:
        raise UnexpectedResponse(f"POST {sub.path} ({sub.idempotency_key})", resp)
    answer = resp.json()
    return Accepted(sub, str(answer["invocationId"]), str(answer["status"]), failures)


class LoadGenerator(threading.Thread):
    """Submits the plan's invocations at its steady rate; keeps what the ingress answered."""

    def __init__(self, ingress_url: str, plan: Plan, start_wall: float) -> None:
        super().__init__(name="chaos-load", daemon=True)
        self.ingress_url = ingress_url
        self.plan = plan
        self.start_wall = start_wall
        self.accepted: list[Accepted] = []
        #: answers to the plan's resends
        self.resent: list[Accepted] = []
        self.error: BaseException | None = None
        self.finished_wall = 0.0

    def run(self) -> None:
        resends: dict[int, list[int]] = defaultdict(list)
        for slot, index in self.plan.resends:
            resends[slot].append(index)
        try:
            for sub in self.plan.submissions:
                # A steady rate is a matter of wall-clock time: wait for this submission's slot
                # (a submission held up by a dead server makes the next ones catch up).
                pause_until(self.start_wall + sub.index / self.plan.rate)
                self.accepted.append(submit(self.ingress_url, sub))
                for index in resends[sub.index]:
                    self.resent.append(submit(self.ingress_url, self.plan.submissions[index]))
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished_wall = time.time()

    def result(self, timeout: float) -> list[Accepted]:
        """Join; re-raise the thread's error, if any."""
        self.join(timeout)
        if self.is_alive():
            raise WaitTimeout(f"the load generator did not finish within {timeout:.0f}s")
        if self.error is not None:
            raise self.error
        return self.accepted


# -- the chaos loop ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """One SIGKILL that hit a live server."""

    wall: float
    while_starting: bool


@dataclass
class ChaosLog:
    kills: list[Kill] = field(default_factory=list)
    restart_seconds: list[float] = field(default_factory=list)

    def near_kill(self, wall: float, *, before: float, after: float) -> bool:
        """Whether a kill happened in ``[wall - before, wall + after]``."""
        return any(wall - before <= k.wall <= wall + after for k in self.kills)


def run_chaos(server: Server, plan: Plan, start_wall: float) -> ChaosLog:
    """Carry out the plan's kills: SIGKILL, stay down, restart on the same data dir."""
    log = ChaosLog()
    for event in plan.events:
        # Kills happen at planned moments of the load: only wall-clock time can say when.
        pause_until(start_wall + event.at)
        killed_at = time.time()
        if server.running:
            server.kill()
            log.kills.append(Kill(killed_at, while_starting=False))
        # Stay down for the planned time (timers may come due meanwhile).
        pause_until(killed_at + event.down)
        began = time.monotonic()
        _restart(server, event.kill_while_starting, log)
        log.restart_seconds.append(time.monotonic() - began)
    return log


def _restart(server: Server, kill_after: float | None, log: ChaosLog) -> None:
    """Start the server; with ``kill_after``, SIGKILL it that long after launch (usually while
    it recovers), then start it for good."""
    if kill_after is None:
        server.start()
        return
    hits: list[float] = []

    def kill_now() -> None:
        if server.running:
            hits.append(time.time())
            server.kill()

    timer = threading.Timer(kill_after, kill_now)
    timer.start()
    try:
        server.start()
    except ProcessExited:
        pass  # killed before it was ready
    finally:
        timer.join()
    log.kills.extend(Kill(wall, while_starting=True) for wall in hits)
    if not server.running:
        server.start()


# -- reading the results -----------------------------------------------------------------------


def wait_drained(admin: AdminClient, plan: Plan, timeout: float) -> list[dict[str, Any]]:
    """Poll ``sys_invocation`` until every invocation the load causes exists and completed.

    Returns the last ``(service, handler, status, count)`` rows.
    """
    expected = plan.expected_invocations()
    last: list[list[dict[str, Any]]] = [[]]

    def check() -> list[dict[str, Any]] | None:
        rows = admin.query(
            "SELECT target_service_name AS service, target_handler_name AS handler, status, "
            "count(*) AS n FROM sys_invocation "
            "GROUP BY target_service_name, target_handler_name, status"
        )
        last[0] = rows
        if any(row["status"] != "completed" for row in rows):
            return None
        done: Counter[tuple[str, str]] = Counter()
        for row in rows:
            done[str(row["service"]), str(row["handler"])] += int(row["n"])
        if any(done[target] < n for target, n in expected.items()):
            return None
        return rows

    return poll_until(
        check,
        timeout=timeout,
        what="every invocation completed",
        interval=0.25,
        describe=lambda: f"expected {expected}, sys_invocation has {last[0]}",
    )


def tally_state(admin: AdminClient) -> dict[str, dict[str, Any]]:
    """``Tally``'s state per key, from the ``state`` table: ``{key: {"count", "srcs"}}``."""
    rows = admin.query(
        "SELECT service_key, key, value_utf8 FROM state WHERE service_name = 'Tally'"
    )
    state: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in rows:
        state[str(row["service_key"])][str(row["key"])] = json.loads(row["value_utf8"])
    return dict(state)


@dataclass(frozen=True)
class Execution:
    """One line of the effects log: an attempt's start (``step`` 0) or a step's execution."""

    pos: int
    inv: str
    tag: str
    step: int
    attempt: str
    exec: int
    ts: float


def read_effects(path: Path) -> list[Execution]:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = []
    for pos, line in enumerate(lines):
        assert line.endswith("\n"), f"torn line {pos} in {path}: {line!r}"
        d = json.loads(line)
        out.append(
            Execution(
                pos,
                str(d["inv"]),
                str(d["tag"]),
                int(d["step"]),
                str(d["attempt"]),
                int(d["exec"]),
                float(d["ts"]),
            )
        )
    return out


@dataclass
class StepReport:
    """What the effects log says about the journaled steps."""

    violations: list[str] = field(default_factory=list)
    steps: int = 0
    executions: int = 0
    attempts: int = 0
    #: (tag, step, executions) of every step that ran more than once
    reexecuted: list[tuple[str, int, int]] = field(default_factory=list)
    #: re-executions whose discarded execution was not close to any kill
    far_from_kills: list[str] = field(default_factory=list)


def check_steps(
    accepted: Iterable[Accepted],
    results: dict[str, Any],
    effects: list[Execution],
    chaos: ChaosLog,
    *,
    kill_window: tuple[float, float],
) -> StepReport:
    """Check the journaled-step guarantees for every Chain and Fanout invocation.

    Per invocation (``results`` maps invocation id to its output):

    - its tag was executed under this invocation id only (one invocation per submission);
    - every step ran at least once, the journal kept one of its executions (the output names it
      by attempt marker and execution number) and the output's values are the expected ones;
    - inside one attempt, steps ran in order (1, 2, 3 … from where the replay resumed);
    - no attempt that started after a step's kept execution had been logged ran that step
      again (a completed, journaled step is never executed again);
    - no attempt that started after a later step had run executed an earlier one (that later
      step was only reached because the earlier one was acknowledged, hence durable);
    - every discarded execution (one whose result the journal did not keep) happened close to a
      kill (``kill_window``: seconds before, after): only a failure makes a step run again.
    """
    report = StepReport()
    by_inv: dict[str, list[Execution]] = defaultdict(list)
    invs_of_tag: dict[str, set[str]] = defaultdict(set)
    for e in effects:
        by_inv[e.inv].append(e)
        invs_of_tag[e.tag].add(e.inv)
    fail = report.violations.append
    for acc in accepted:
        sub = acc.submission
        if sub.steps == 0:
            continue
        inv = acc.invocation_id
        if invs_of_tag.get(sub.tag, set()) != {inv}:
            fail(f"{sub.tag}: executed under {sorted(invs_of_tag.get(sub.tag, ()))}, not {inv}")
            continue
        out = results[inv]
        if out.get("tag") != sub.tag or out.get("values") != sub.expected_values():
            fail(f"{sub.tag} ({inv}): wrong output {out}")
            continue
        records = by_inv[inv]
        start_pos = {e.attempt: e.pos for e in records if e.step == 0}
        report.attempts += len(start_pos)
        runs = [e for e in records if e.step > 0]
        report.executions += len(runs)
        report.steps += sub.steps
        # steps in order within each attempt
        per_attempt: dict[str, list[int]] = defaultdict(list)
        for e in runs:
            if e.attempt not in start_pos:
                fail(f"{sub.tag} ({inv}): step{e.step} ran in attempt {e.attempt} never started")
            per_attempt[e.attempt].append(e.step)
        for attempt, steps in per_attempt.items():
            if steps != list(range(steps[0], steps[0] + len(steps))):
                fail(f"{sub.tag} ({inv}): attempt {attempt} ran steps {steps} out of order")
        first_pos_of_step: dict[int, int] = {}
        for e in runs:
            first_pos_of_step.setdefault(e.step, e.pos)
        for step in range(1, sub.steps + 1):
            execs = [e for e in runs if e.step == step]
            if not execs:
                fail(f"{sub.tag} ({inv}): step{step} never executed")
                continue
            kept_ref = out["execs"][step - 1]
            ref = (kept_ref["attempt"], kept_ref["exec"])
            kept = [e for e in execs if (e.attempt, e.exec) == ref]
            if len(kept) != 1:
                fail(f"{sub.tag} ({inv}): journaled step{step} {kept_ref} is no logged execution")
                continue
            if len(execs) > 1:
                report.reexecuted.append((sub.tag, step, len(execs)))
            for e in execs:
                if e is kept[0]:
                    continue
                if start_pos.get(e.attempt, -1) > kept[0].pos:
                    fail(
                        f"{sub.tag} ({inv}): step{step} ran again (line {e.pos}, attempt "
                        f"{e.attempt} started at line {start_pos[e.attempt]}) after its "
                        f"journaled execution (line {kept[0].pos})"
                    )
                if not chaos.near_kill(e.ts, before=kill_window[0], after=kill_window[1]):
                    report.far_from_kills.append(f"{sub.tag} step{step} line {e.pos}")
            for later in range(step + 1, sub.steps + 1):
                later_pos = first_pos_of_step.get(later)
                if later_pos is None:
                    continue
                for e in execs:
                    if start_pos.get(e.attempt, -1) > later_pos:
                        fail(
                            f"{sub.tag} ({inv}): step{step} ran (line {e.pos}) in an attempt "
                            f"started after step{later} had run (line {later_pos})"
                        )
    return report


def check_tally(
    plan: Plan, accepted: Iterable[Accepted], results: dict[str, Any], state: dict[str, Any]
) -> list[str]:
    """Exactly-once state changes and messages: every ``add`` (ingress, call, send) counted
    once per key, and each add's answer is its own position in the key's ``srcs`` list."""
    violations = []
    for key, expected in plan.expected_srcs().items():
        got = state.get(key, {})
        count = got.get("count", 0)
        srcs = got.get("srcs", [])
        if count != sum(expected.values()) or Counter(srcs) != expected:
            lost = expected - Counter(srcs)
            extra = Counter(srcs) - expected
            violations.append(
                f"Tally/{key}: count {count}, {len(srcs)} srcs, expected "
                f"{sum(expected.values())}; lost {dict(lost)}, duplicated/unknown {dict(extra)}"
            )
    answers: list[tuple[str, str, Any]] = []  # (key, src, returned count)
    for acc in accepted:
        sub = acc.submission
        out = results[acc.invocation_id]
        if sub.kind == "add":
            assert sub.key is not None
            answers.append((sub.key, f"{sub.tag}/ingress", out))
        elif sub.kind == "fanout":
            if len(out.get("counts", [])) != len(sub.calls) or out.get("sent") != len(sub.sends):
                violations.append(f"{sub.tag}: wrong Fanout output {out}")
                continue
            for key, n in zip(sub.calls, out["counts"], strict=True):
                answers.append((key, f"{sub.tag}/call/{key}", n))
    for key, src, n in answers:
        srcs = state.get(key, {}).get("srcs", [])
        if not isinstance(n, int) or not 1 <= n <= len(srcs) or srcs[n - 1] != src:
            violations.append(f"Tally/{key}: add {src!r} answered {n!r}, not its position")
    return violations


def check_resends(accepted: list[Accepted], resent: Iterable[Accepted]) -> list[str]:
    """A resent submission (same idempotency key) finds the invocation of the first send."""
    first = {a.submission.index: a for a in accepted}
    violations = []
    for again in resent:
        orig = first[again.submission.index]
        if (again.invocation_id, again.status) != (orig.invocation_id, "PreviouslyAccepted"):
            violations.append(
                f"{again.submission.idempotency_key}: first {orig.invocation_id} "
                f"({orig.status}), sent again: {again.invocation_id} ({again.status})"
            )
    return violations


def fetch_outputs(
    attach: Callable[[str], HttpResponse], invocation_ids: Iterable[str]
) -> dict[str, Any]:
    """Attach to every (completed) invocation; its output, parsed."""
    out: dict[str, Any] = {}
    for inv in invocation_ids:
        resp = attach(inv)
        if resp.status != 200:
            raise UnexpectedResponse(f"attach {inv}", resp)
        out[inv] = resp.json()
    return out
