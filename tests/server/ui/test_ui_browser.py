"""The web UI in a real browser: Playwright driving Debian's chromium against ``undying serve``.

The server and the services (``ui_services.py``) run as processes. The scenario: find the
invocation that keeps failing in the list, watch its retry count rise (htmx polling, no reload),
open its journal, cancel it through the confirmation dialog and see it cancelled. Every page is
also checked at 1280x800 (no horizontal scrolling, no console error: the CSP forbids inline
scripts and styles, so a violation would show there), and screenshotted.

Screenshots go to ``$UNDYING_UI_ARTIFACTS`` or ``test-artifacts/ui/`` of the checkout
(gitignored); the test prints where. Chromium comes from Debian (``make setup`` installs it);
Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    ConsoleMessage,
    Dialog,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from ui_artifacts import artifacts_dir

from undying.testing import AdminClient, IngressClient, UndyingServer, python_service

pytestmark = [pytest.mark.ui, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
HERE = Path(__file__).parent
#: How long a UI change may take to show (it polls every second; retries come every 0.2-0.5 s).
WAIT_MS = 20_000


@dataclass
class Stack:
    """The running server, its clients, and the invocations the pages show (by role)."""

    admin_url: str
    admin: AdminClient
    ingress: IngressClient
    ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def artifacts(pytestconfig: pytest.Config) -> Path:
    return artifacts_dir(pytestconfig)  # printed at the end of the run (conftest.py)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("ui-browser")
    logs = root / "logs"
    with (
        UndyingServer(root / "data", log_dir=logs) as server,
        python_service(HERE / "ui_services.py", log_dir=logs, name="ui-services") as services,
    ):
        admin = AdminClient(server.admin_url)
        registered = admin.request("POST", "/deployments", {"uri": services.url})
        assert registered.status == 201, registered.body
        ingress = IngressClient(server.ingress_url)
        stack = Stack(server.admin_url, admin, ingress)
        assert ingress.call("Counter", "add", 3, key="alice").status == 200
        stack.ids["workflow"] = ingress.send("Approval", "run", "Trip to Lisbon", key="exp-1")
        stack.ids["sleeping"] = ingress.send("Greeter", "greet", "Ada")
        stack.ids["failing"] = ingress.send("Flaky", "charge", "Ada")
        yield stack


@pytest.fixture
def page(artifacts: Path, tmp_path: Path) -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile for every test
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: _console(m, problems))
            yield page
            assert problems == []
        finally:
            context.close()


def _console(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type in ("error", "warning"):
        problems.append(f"console {message.type}: {message.text}")


def _readable(page: Page, artifacts: Path, name: str) -> None:
    """The page fits 1280 px (no horizontal scrolling), its text is not tiny; screenshot it."""
    fits = page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, f"{name} scrolls horizontally at 1280x800"
    size = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 14, f"{name}: body text is {size}px"
    page.screenshot(path=str(artifacts / f"{name}.png"))


def _number(page: Page, selector: str) -> int:
    return int(page.locator(selector).inner_text())


def _wait_above(page: Page, selector: str, n: int) -> None:
    """Wait (Playwright polls) until the number shown by ``selector`` is above ``n``."""
    page.wait_for_function(
        "([sel, n]) => { const e = document.querySelector(sel); "
        "return e !== null && Number(e.textContent) > n; }",
        arg=[selector, n],
    )


def test_watch_a_failing_invocation_retry_then_cancel_it(
    page: Page, stack: Stack, artifacts: Path
) -> None:
    failing = stack.ids["failing"]

    # the admin root is the UI; the overview counts the invocation that is backing off
    page.goto(stack.admin_url + "/")
    expect(page).to_have_url(stack.admin_url + "/ui/")
    expect(page.locator('#overview-live tr[data-id="' + failing + '"]')).to_be_visible()
    _readable(page, artifacts, "overview")

    # find it in the list: filter by service (htmx swaps the list and pushes the URL)
    page.get_by_role("link", name="Invocations", exact=True).click()
    page.select_option("select[name=service]", "Flaky")
    expect(page).to_have_url(re.compile(r"/ui/invocations\?service=Flaky$"))
    row = page.locator(f'#invocation-list tr[data-id="{failing}"]')
    expect(row).to_be_visible()
    expect(page.locator("#invocation-list tbody tr")).to_have_count(1)
    expect(row.locator(".failure")).to_contain_text("card declined for Ada")

    # its retry count rises while we look, without reloading the page
    retries = f'#invocation-list tr[data-id="{failing}"] td.retries'
    expect(page.locator(retries)).to_have_text(re.compile(r"^\d+$"))
    seen = _number(page, retries)
    _wait_above(page, retries, seen)
    _readable(page, artifacts, "invocations")

    # open its journal
    row.get_by_role("link", name=failing).click()
    expect(page).to_have_url(stack.admin_url + f"/ui/invocations/{failing}")
    expect(page.locator("#status .badge")).to_have_attribute(
        "data-status", re.compile("^(backing-off|running)$")
    )
    expect(page.locator("#last-failure")).to_contain_text("RuntimeError: card declined for Ada")
    expect(page.locator("#last-failure")).to_contain_text("Traceback (most recent call last)")
    run = page.locator('#timeline li[data-type="Command: Run"]')
    expect(run).to_contain_text("charge card")
    expect(run).to_contain_text("result not journaled yet")
    failures = page.locator("#timeline li.failure")
    expect(failures.first).to_contain_text("Attempt 1 failed")
    trace = failures.first.locator("details")
    trace.locator("summary").click()
    expect(trace.locator("pre")).to_contain_text('raise RuntimeError(f"card declined for {what}")')
    seen = _number(page, "#retry-count")
    _wait_above(page, "#retry-count", seen)  # the detail page is live too
    expect(trace).to_have_attribute("open", "")  # and the refresh kept the trace open
    _readable(page, artifacts, "invocation-retrying")
    page.screenshot(path=str(artifacts / "invocation-retrying-full.png"), full_page=True)

    # cancel it, confirming in the dialog
    dialogs: list[str] = []

    def confirm(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.locator('button[data-action="cancel"]').click()
    expect(page.locator("#flash")).to_contain_text(f"Cancellation sent to {failing}")
    assert len(dialogs) == 1 and dialogs[0].startswith(f"Cancel invocation {failing}")
    badge = page.locator("#status .badge")
    expect(badge).to_have_attribute("data-status", "completed")
    expect(badge).to_have_text("failed")
    expect(page.locator("#live")).to_contain_text("[409] cancelled")
    expect(page.locator('button[data-action="purge"]')).to_be_visible()
    _readable(page, artifacts, "invocation-cancelled")
    row_after = stack.admin.query(
        f"SELECT status, completion_failure FROM sys_invocation WHERE id = '{failing}'"
    )
    assert row_after == [{"status": "completed", "completion_failure": "[409] cancelled"}]


def test_every_page_is_readable_at_1280x800(page: Page, stack: Stack, artifacts: Path) -> None:
    base = stack.admin_url + "/ui"
    page.goto(base + "/services")
    expect(page.locator('tr[data-service="Flaky"]')).to_be_visible()
    _readable(page, artifacts, "services")

    page.get_by_role("link", name="Approval").first.click()
    expect(page.locator('tr[data-handler="approve"]')).to_be_visible()
    _readable(page, artifacts, "service")

    page.goto(base + "/invocations")
    expect(page.locator("#invocation-list tbody tr").first).to_be_visible()
    _readable(page, artifacts, "invocations-all")

    page.goto(base + f"/invocations/{stack.ids['sleeping']}")
    expect(page.locator('#timeline li[data-type="Command: Sleep"]')).to_contain_text("sleeping")
    _readable(page, artifacts, "invocation-sleeping")

    page.goto(base + "/state?service=Counter&key=alice")
    expect(page.locator('#state-entries tr[data-key="count"]')).to_contain_text("3")
    expect(page.locator('#state-entries tr[data-key="note"]')).to_contain_text(
        "<script>alert('x')</script>"  # shown as text, not run
    )
    _readable(page, artifacts, "state")

    page.goto(base + "/promises?service=Approval&key=exp-1")
    expect(page.locator('#promises tr[data-promise="decision"]')).to_contain_text("pending")
    _readable(page, artifacts, "promises")
