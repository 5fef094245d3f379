"""Every page and fragment of the web UI, rendered by an in-process server on virtual time."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs

import httpx
import pytest
import ui_services as svc
from ui_world import HTMX, UiWorld

from undying.protocol.ids import InvocationId
from undying.server.ui.templating import relative
from undying.server.ui.timeline import MAX_FAILURES


def _ok(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    return r.text


def _rows(html: str) -> list[str]:
    """The invocation ids of the rows of an invocations table."""
    return re.findall(r'<tr data-id="(inv_\w+)">', html)


def _statuses(html: str) -> dict[str, str]:
    """Invocation id -> the status its row shows."""
    out = {}
    for row in re.findall(r'<tr data-id="(inv_\w+)">(.*?)</tr>', html, re.S):
        found = re.search(r'data-status="([\w-]+)"', row[1])
        assert found is not None
        out[row[0]] = found.group(1)
    return out


def _retries(world: UiWorld, inv: str) -> int:
    rows = world.run(world.env.query(f"SELECT retry_count FROM sys_invocation WHERE id = '{inv}'"))
    return int(rows[0]["retry_count"])


# ---- mounting, security ----------------------------------------------------------------------


def test_the_admin_root_and_ui_redirect_to_the_ui(world: UiWorld) -> None:
    for path in ("/", "/ui"):
        r = world.get(path)
        assert r.status_code == 308
        assert r.headers["location"] == "/ui/"


def test_pages_forbid_inline_scripts_and_framing(world: UiWorld) -> None:
    r = world.get("/ui/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    for path in ("/ui/", "/ui/invocations", f"/ui/invocations/{world.ids['retrying']}"):
        html = _ok(world.get(path))
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # every script is a file
        assert " style=" not in html  # the CSP forbids inline styles


def test_static_files_are_served_with_their_types(world: UiWorld) -> None:
    js = world.get("/ui/static/htmx.min.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.text.startswith("/*! htmx 2.")
    assert "Zero-Clause BSD" in js.text[:1000]
    css = world.get("/ui/static/ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert world.get("/ui/static/secret.py").status_code == 404


def test_unknown_pages_and_methods(world: UiWorld) -> None:
    r = world.get("/ui/nowhere")
    assert r.status_code == 404 and "There is no page at /ui/nowhere" in r.text
    assert world.client.put("/ui/").status_code == 405
    assert world.get("/ui/services/NoSuchService").status_code == 404


# ---- overview ----------------------------------------------------------------------------------


def test_overview_counts_invocations_per_status_and_service(world: UiWorld) -> None:
    html = _ok(world.get("/ui/"))
    tiles = dict(re.findall(r'data-status="([\w-]+)">\s*<div class="n">(\d+)</div>', html, re.S))
    expected = {
        r["status"]: r["n"]
        for r in world.run(
            world.env.query("SELECT status, count(*) AS n FROM sys_invocation GROUP BY status")
        )
    }
    assert {k: int(v) for k, v in tiles.items() if int(v)} == expected
    assert tiles["backing-off"] == "1" and int(tiles["completed"]) >= 4
    for name in ("Approval", "Caller", "Counter", "Flaky", "Greeter"):
        assert f'<tr data-service="{name}">' in html
    failing = html[html.index("Failing now") :]
    assert world.ids["retrying"] in failing
    assert "card declined for Ada" in failing


def test_overview_fragment_polls_every_second(world: UiWorld) -> None:
    html = _ok(world.get("/ui/fragments/overview"))
    assert html.startswith('<div id="overview-live" hx-get="/ui/fragments/overview"')
    assert 'hx-trigger="every 1s"' in html
    assert "<html" not in html


# ---- services ---------------------------------------------------------------------------------


def test_services_page_lists_services_and_deployments(world: UiWorld) -> None:
    html = _ok(world.get("/ui/services"))
    for name, ty in (("Approval", "Workflow"), ("Counter", "VirtualObject"), ("Flaky", "Service")):
        row = re.search(rf'<tr data-service="{name}">(.*?)</tr>', html, re.S)
        assert row is not None and ty in row.group(1)
    assert world.env.deployment_url in html
    assert "undying-sdk-python" in html


def test_service_page_shows_handlers_and_their_manifest(world: UiWorld) -> None:
    html = _ok(world.get("/ui/services/Approval"))
    assert '<tr data-handler="run">' in html and '<tr data-handler="approve">' in html
    assert "WORKFLOW" in html.upper() and "SHARED" in html.upper()
    assert "/ui/promises?service=Approval" in html
    flaky = unescape(_ok(world.get("/ui/services/Flaky")))
    # the handler's own retry policy, merged with the defaults
    assert "10000 attempts, the first retry after 200ms" in flaky
    assert '"max_attempts": 10000' in flaky  # the manifest as the admin API shows it
    assert "JSON string" in flaky


# ---- invocations list ---------------------------------------------------------------------------


def test_invocations_list_shows_every_invocation_newest_first(world: UiWorld) -> None:
    html = _ok(world.get("/ui/invocations"))
    rows = _rows(html)
    every = world.run(world.env.query("SELECT id FROM sys_invocation ORDER BY created_at DESC"))
    assert set(rows) == {r["id"] for r in every}
    statuses = _statuses(html)
    assert statuses[world.ids["retrying"]] == "backing-off"
    assert statuses[world.ids["sleeping"]] == "suspended"
    assert statuses[world.ids["done_workflow"]] == "completed"
    assert 'id="invocation-list"' in html and 'hx-trigger="every 1s"' in html


def test_retry_count_and_last_failure_in_the_list(world: UiWorld) -> None:
    inv = world.ids["retrying"]
    html = _ok(world.get("/ui/invocations?service=Flaky"))
    row = re.search(rf'<tr data-id="{inv}">(.*?)</tr>', html, re.S)
    assert row is not None
    retries = re.search(r'class="num retries">(\d+)<', row.group(1))
    assert retries is not None and int(retries.group(1)) == _retries(world, inv) >= 2
    assert "[500 Internal] RuntimeError: card declined for Ada" in row.group(1)


@pytest.mark.parametrize(
    ("query", "roles", "not_roles"),
    [
        ("service=Greeter", {"sleeping", "callee"}, {"caller", "retrying"}),
        ("status=suspended", {"sleeping", "caller", "waiting_workflow"}, {"done_workflow"}),
        ("status=backing-off", {"retrying"}, {"sleeping"}),
        ("status=active", {"retrying", "sleeping"}, {"done_workflow"}),
        ("status=succeeded", {"done_workflow"}, {"retrying", "sleeping"}),
        ("service=Approval&key=exp-1", {"waiting_workflow"}, {"done_workflow"}),
        ("since=5m&service=Caller", {"caller"}, {"retrying"}),
    ],
)
def test_invocation_filters(
    world: UiWorld, query: str, roles: set[str], not_roles: set[str]
) -> None:
    shown = set(_rows(_ok(world.get(f"/ui/invocations?{query}"))))
    assert {world.ids[r] for r in roles} <= shown
    assert not {world.ids[r] for r in not_roles} & shown
    # the polled fragment keeps the filters
    fragment = _ok(world.get(f"/ui/fragments/invocations?{query}"))
    assert set(_rows(fragment)) == shown
    polled = re.search(r'hx-get="/ui/fragments/invocations\?([^"]*)"', fragment)
    assert polled is not None
    assert parse_qs(unescape(polled.group(1))) == parse_qs(query)


def test_time_filter_leaves_out_older_invocations(world: UiWorld) -> None:
    before = set(_rows(_ok(world.get("/ui/invocations?since=5m"))))
    assert world.ids["retrying"] in before
    world.run(world.env.advance(6 * 60))  # the retrying invocation keeps retrying meanwhile
    after = set(_rows(_ok(world.get("/ui/invocations?since=5m"))))
    assert world.ids["retrying"] not in after
    assert world.ids["retrying"] in _rows(_ok(world.get("/ui/invocations?since=15m")))


def test_limit_says_how_many_are_left_out(world: UiWorld) -> None:
    html = _ok(world.get("/ui/invocations?limit=2"))
    assert len(_rows(html)) == 2
    total = len(world.run(world.env.query("SELECT id FROM sys_invocation")))
    assert f"Showing the newest 2 of {total} invocations." in html


def test_filter_form_changes_push_the_page_url(world: UiWorld) -> None:
    r = world.get("/ui/fragments/invocations?service=Flaky&status=", {"hx-trigger": "filters"})
    assert r.headers["hx-push-url"] == "/ui/invocations?service=Flaky"
    polled = world.get("/ui/fragments/invocations?service=Flaky", {"hx-trigger": "x"})
    assert "hx-push-url" not in polled.headers


def test_unknown_filter_values_are_ignored_and_text_is_escaped(world: UiWorld) -> None:
    html = _ok(world.get("/ui/invocations?status=bogus&since=1y"))
    assert len(_rows(html)) > 3
    evil = "x' OR '1'='1\"><script>alert(1)</script>"
    r = world.client.get("/ui/invocations", params={"key": evil, "service": evil})
    html = _ok(r)
    assert _rows(html) == []  # quoted as a literal: no rows, no SQL error
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---- invocation detail ----------------------------------------------------------------------


def test_retrying_invocation_shows_retries_failure_and_journal(world: UiWorld) -> None:
    inv = world.ids["retrying"]
    html = _ok(world.get(f"/ui/invocations/{inv}"))
    text = unescape(html)
    assert 'data-status="backing-off"' in html
    count = re.search(r'id="retry-count" data-count="(\d+)"', html)
    assert count is not None and int(count.group(1)) == _retries(world, inv)
    failure = text[text.index('id="last-failure"') :]
    assert "[500 Internal] RuntimeError: card declined for Ada" in failure
    assert "Traceback (most recent call last)" in failure
    assert 'in _charge_card\n    raise RuntimeError(f"card declined for {what}")' in failure
    assert '<a href="#e1">#1</a> Run “charge card”' in failure
    # the timeline: input, the run that keeps failing, one item per failed attempt
    assert '<li class="command" id="e0" data-type="Command: Input">' in html
    assert '<li class="command pending" id="e1" data-type="Command: Run">' in html
    assert "result not journaled yet" in html
    events = world.run(world.env.query(f"SELECT * FROM sys_journal_events WHERE id = '{inv}'"))
    attempts = [int(a) for a in re.findall(r'<li class="failure" id="a(\d+)"', html)]
    shown = min(len(events), MAX_FAILURES)  # the oldest are summed up past MAX_FAILURES
    assert attempts == list(range(len(events) - shown + 1, len(events) + 1))
    assert len(attempts) >= 2
    if len(events) > MAX_FAILURES:
        assert f"{len(events) - MAX_FAILURES} earlier failed attempts not shown" in html
    assert text.count("while running:</span>\n<span>Run “charge card” (#1)") == len(attempts)
    # polled while it runs
    assert f'hx-get="/ui/fragments/invocation/{inv}" hx-trigger="every 1s"' in html


def test_live_fragment_follows_the_retries(world: UiWorld) -> None:
    inv = world.ids["retrying"]
    first = _ok(world.get(f"/ui/fragments/invocation/{inv}"))
    assert first.startswith('<div id="live"')
    before = _retries(world, inv)
    world.run(world.env.advance(2.0))
    after = _ok(world.get(f"/ui/fragments/invocation/{inv}"))
    count = re.search(r'data-count="(\d+)"', after)
    assert count is not None and int(count.group(1)) == _retries(world, inv) > before


def test_sleep_shows_its_wake_up_time(world: UiWorld) -> None:
    html = unescape(_ok(world.get(f"/ui/invocations/{world.ids['sleeping']}")))
    assert 'data-type="Command: Sleep"' in html
    assert "sleeping" in html
    wake = world.env.journal(world.ids["sleeping"])[3].sleep_wakeup_at
    assert wake is not None
    assert f'wakes up:</span>\n<span title="{wake:%Y-%m-%d %H:%M:%S}' in html
    now = world.env.now()
    assert wake > now
    assert f"({relative(wake, now)})" in html  # "(in 59 min 59 s)"
    assert "“Notification”" in html  # the run step's name
    assert 'data-type="Notification: Run"' in html and 'result of <a href="#e1">#1</a>' in html


def test_call_links_to_the_callee_and_back(world: UiWorld) -> None:
    caller, callee = world.ids["caller"], world.ids["callee"]
    html = _ok(world.get(f"/ui/invocations/{caller}"))
    assert 'data-type="Command: Call"' in html
    assert "Greeter/greet" in html
    assert f'href="/ui/invocations/{callee}"' in html
    back = _ok(world.get(f"/ui/invocations/{callee}"))
    assert f'href="/ui/invocations/{caller}"' in back  # invoked by
    assert "Caller/relay" in back


def test_completed_invocation_stops_polling_and_offers_purge_only(world: UiWorld) -> None:
    html = _ok(world.get(f"/ui/invocations/{world.ids['done_workflow']}"))
    assert 'id="live" hx-get' not in html
    assert re.findall(r'data-action="(\w+)"', html) == ["purge"]
    assert ">succeeded<" in html
    assert 'data-type="Command: GetPromise"' in html and "promise:" in html
    assert "&#34;ok, go&#34;" in html  # the promise's value, then the output


def test_running_invocation_offers_its_actions_with_confirmations(world: UiWorld) -> None:
    inv = world.ids["retrying"]
    html = unescape(_ok(world.get(f"/ui/invocations/{inv}")))
    assert re.findall(r'data-action="(\w+)"', html) == ["cancel", "kill", "pause", "resume"]
    assert f'hx-post="/ui/invocations/{inv}/cancel" hx-confirm="Cancel invocation {inv}' in html


def test_unknown_and_malformed_invocation_ids(world: UiWorld) -> None:
    unknown = InvocationId.deterministic(7, "never invoked")
    for path in (f"/ui/invocations/{unknown}", f"/ui/fragments/invocation/{unknown}"):
        r = world.get(path)
        assert "No such invocation" in r.text
        assert 'hx-trigger="every 1s"' not in r.text  # nothing to follow
    assert world.get(f"/ui/invocations/{unknown}").status_code == 404
    bad = world.get("/ui/invocations/inv_<b>nope")
    assert bad.status_code == 404
    assert "is not an invocation id" in bad.text
    assert "<b>" not in bad.text and "inv_&lt;b&gt;nope" in bad.text


# ---- actions --------------------------------------------------------------------------------


def test_actions_need_the_uis_own_htmx_requests(world: UiWorld) -> None:
    inv = world.ids["retrying"]
    assert world.post(f"/ui/invocations/{inv}/cancel").status_code == 403
    cross = {"hx-request": "true", "origin": "http://evil.example"}
    assert world.post(f"/ui/invocations/{inv}/cancel", cross).status_code == 403
    site = {"hx-request": "true", "sec-fetch-site": "cross-site"}
    assert world.post(f"/ui/invocations/{inv}/cancel", site).status_code == 403
    assert world.post(f"/ui/invocations/{inv}/explode", HTMX).status_code == 404
    assert world.run(world.env.query(f"SELECT status FROM sys_invocation WHERE id = '{inv}'"))[0][
        "status"
    ] in ("backing-off", "running")


def test_cancel_from_the_ui_cancels(world: UiWorld) -> None:
    inv = str(world.run(world.send_flaky("cancel me")))
    origin = {**HTMX, "origin": world.env.admin_url}
    r = world.post(f"/ui/invocations/{inv}/cancel", origin)
    html = _ok(r)
    assert html.startswith('<div id="live"')
    flash = '<div id="flash" hx-swap-oob="true"><p class="flash ok" role="status">'
    assert f"{flash}Cancellation sent to {inv}.</p>" in html
    world.run(world.env.advance(1.0))
    after = _ok(world.get(f"/ui/invocations/{inv}"))
    assert 'data-status="completed"' in after and ">failed<" in after
    assert "<h2>Failed</h2>\n    <pre>[409] cancelled</pre>" in after


def test_pause_resume_kill_and_purge(world: UiWorld) -> None:
    inv = str(world.run(world.send_flaky("pause me")))

    def act(command: str) -> str:
        html = _ok(world.post(f"/ui/invocations/{inv}/{command}", HTMX))
        world.run(world.env.settle())
        return html

    assert 'class="flash ok"' in act("pause")
    assert 'data-status="paused"' in _ok(world.get(f"/ui/fragments/invocation/{inv}"))
    assert 'class="flash ok"' in act("resume")
    assert 'data-status="paused"' not in _ok(world.get(f"/ui/fragments/invocation/{inv}"))
    refused = act("purge")  # not completed yet: the admin API's 409, shown as the outcome
    assert 'class="flash error"' in refused and "is not yet completed" in refused
    assert 'class="flash ok"' in act("kill")
    killed = _ok(world.get(f"/ui/invocations/{inv}"))
    assert ">failed<" in killed and re.findall(r'data-action="(\w+)"', killed) == ["purge"]
    assert 'class="flash ok"' in act("purge")
    gone = world.get(f"/ui/invocations/{inv}")
    assert gone.status_code == 404 and "No such invocation" in gone.text


# ---- state and promises ---------------------------------------------------------------------


def test_state_browser_lists_keyed_services_and_keys(world: UiWorld) -> None:
    index = _ok(world.get("/ui/state"))
    assert "/ui/state?service=Counter" in index and "/ui/state?service=Approval" in index
    assert "service=Greeter" not in index
    keys = _ok(world.get("/ui/state?service=Counter"))
    assert re.findall(r'<tr data-key="(\w+)">', keys) == ["alice", "bob"]


def test_state_of_one_key_is_shown_as_text_escaped(world: UiWorld) -> None:
    html = _ok(world.get("/ui/state?service=Counter&key=alice"))
    assert '<tr data-key="count">' in html and '<span class="value">3</span>' in html
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html
    assert unescape(re.findall(r'<span class="value">(.*?)</span>', html)[1]) == (
        '"' + svc.HTML_VALUE.replace('"', '\\"') + '"'
    )
    assert "Counter/alice/add" in html  # its invocations


def test_binary_state_is_shown_in_hex(world: UiWorld) -> None:
    body = {"object_key": "carol", "new_state": {"blob": [255, 0, 1]}}
    r = world.client.post("/services/Counter/state", json=body)
    assert r.status_code == 202
    world.run(world.env.settle())
    html = _ok(world.get("/ui/state?service=Counter&key=carol"))
    assert '<span class="value">0xff0001</span>' in html


def test_promises_per_workflow(world: UiWorld) -> None:
    index = _ok(world.get("/ui/promises?service=Approval"))
    assert re.findall(r'<tr data-key="([\w-]+)">', index) == ["exp-1", "exp-2"]
    pending = _ok(world.get("/ui/promises?service=Approval&key=exp-1"))
    assert '<tr data-promise="decision">' in pending and ">pending<" in pending
    done = _ok(world.get("/ui/promises?service=Approval&key=exp-2"))
    assert ">resolved<" in done and "&#34;ok, go&#34;" in done
    assert world.ids["done_workflow"] in done
    assert "No workflows" not in _ok(world.get("/ui/promises"))
