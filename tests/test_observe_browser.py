"""The live page in a real browser: Debian's chromium, driven headless by playwright.

Playwright cannot download its own browsers here, so it launches the system's
``chromium``. Without either, the tests skip with the reason; under
``ACTORS_REQUIRE_SERVERS=1`` (CI) they fail instead. The system runs on the
test's backend; playwright's synchronous API runs in a worker thread, and
crashes are sent from there through ``anyio.from_thread``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

import actors
import supervision
from actors.observe import serve_page

pytestmark = pytest.mark.anyio

#: Whether the page shows 1 restart for an actor (its row may be gone for a
#: moment while it restarts: the snapshot can fall between two incarnations).
RESTARTS_ARE_1 = (
    "(document.querySelector('tr[data-path=\"%s\"] td.restarts') || {}).textContent === '1'"
)

#: The text of a row's state cell ('' while the row is absent).
STATE_IS = "(document.querySelector('tr[data-path=\"%s\"] td.state') || {}).textContent === '%s'"

#: Where to save the screenshot for the docs (``docs/observe.png``), if set.
SCREENSHOT = os.environ.get("ACTORS_SCREENSHOT")


def chromium() -> str:
    """The browser's path, or skip (fail under ACTORS_REQUIRE_SERVERS=1)."""
    missing = []
    path = shutil.which("chromium")
    if path is None:
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright==1.65.2)")
    if missing:
        reason = f"the browser test needs {' and '.join(missing)}"
        if os.environ.get("ACTORS_REQUIRE_SERVERS") == "1":
            pytest.fail(f"{reason} (ACTORS_REQUIRE_SERVERS=1: CI must not skip it)")
        pytest.skip(reason)
    assert path is not None
    return path


class Worker(actors.Actor):
    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        return message


class Shop(actors.Actor):
    """Busy work, so the page has rates to show."""

    async def on_start(self) -> None:
        self.context.schedule_every(0.01, "tick")

    async def receive(self, message: Any) -> None:
        pass


async def test_the_page_shows_the_tree_and_a_restart_within_a_second(tmp_path: Path) -> None:
    browser_path = chromium()
    from playwright.sync_api import sync_playwright

    async with actors.ActorSystem("browser") as system:
        specs = [supervision.ChildSpec(Worker, name=f"worker-{i}") for i in range(1, 4)]
        sup = await system.spawn(supervision.Supervisor, specs, name="workers")
        await system.spawn(Shop, name="shop")
        system.registry.subscribe("orders.*", await system.spawn(Worker, name="audit"))

        async def crash(name: str) -> None:
            (info,) = [c for c in await supervision.which_children(sup) if c.name == name]
            assert info.ref is not None
            await info.ref.tell("boom")
            await info.ref.join()
            with anyio.fail_after(10):
                while True:
                    (now,) = [c for c in await supervision.which_children(sup) if c.name == name]
                    if now.state == "running" and now.ref != info.ref:
                        return
                    await anyio.sleep(0.01)

        # Updates every 0.1 s: the second the page gets is mostly slack for a loaded machine.
        async with serve_page(system, interval=0.1, token="a-token-for-the-browser-test") as page:

            def drive() -> float:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(
                        executable_path=browser_path,
                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                    )
                    try:
                        tab = browser.new_page(viewport={"width": 1280, "height": 560})
                        tab.goto(page.url)
                        worker_3 = 'tr[data-path="/user/workers/worker-3"]'
                        tab.wait_for_selector(worker_3, timeout=10_000)
                        for path in ("/user/workers", "/user/shop", "/user/audit"):
                            assert tab.locator(f'tr[data-path="{path}"]').count() == 1
                        restarts = tab.locator('tr[data-path="/user/workers/worker-2"] td.restarts')
                        assert restarts.inner_text() == "0"
                        anyio.from_thread.run(crash, "worker-2")
                        restarted = time.monotonic()
                        tab.wait_for_function(
                            RESTARTS_ARE_1 % "/user/workers/worker-2",
                            timeout=1_000,
                        )
                        seen = time.monotonic() - restarted
                        failure = tab.locator('tr[data-path="/user/workers/worker-2"] td.failure')
                        assert failure.inner_text() == "ValueError: boom"
                        assert tab.locator("#status").inner_text() == "live"
                        # With a token the page has stop and kill buttons.
                        tab.click('tr[data-path="/user/workers/worker-3"] button[data-do="kill"]')
                        tab.wait_for_function(
                            RESTARTS_ARE_1 % "/user/workers/worker-3",
                            timeout=10_000,
                        )
                        tab.screenshot(path=str(tmp_path / "observe.png"))
                        if SCREENSHOT:
                            tab.wait_for_timeout(1_200)  # rates settle
                            tab.screenshot(path=SCREENSHOT)
                        return seen
                    finally:
                        browser.close()

            seen = await anyio.to_thread.run_sync(drive)
            assert seen < 1.0
        assert (tmp_path / "observe.png").stat().st_size > 10_000


def launch(playwright: Any, browser_path: str) -> Any:
    return playwright.chromium.launch(
        executable_path=browser_path,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


@pytest.mark.usefixtures("no_orphans")
async def test_a_process_actor_killed_goes_restarting_then_running() -> None:
    browser_path = chromium()
    from playwright.sync_api import sync_playwright

    async with actors.ActorSystem("browser") as system:
        # The backoff keeps it "restarting" long enough to see (the page updates every 0.1 s).
        spec = supervision.ChildSpec(
            Worker,
            name="far",
            placement=actors.Subprocess(),
            backoff=supervision.Backoff(min=2.0, max=2.0, jitter=0),
        )
        sup = await system.spawn(supervision.Supervisor, [spec], name="sup")

        async def pid_of_far() -> int:
            (info,) = await supervision.which_children(sup)
            assert info.ref is not None
            incarnation = actors.lowlevel.resolve(info.ref)
            assert incarnation is not None
            return int(incarnation.details["pid"])

        async with serve_page(system, interval=0.1) as page:

            def drive() -> tuple[str, str]:
                with sync_playwright() as playwright:
                    browser = launch(playwright, browser_path)
                    try:
                        tab = browser.new_page(viewport={"width": 1280, "height": 560})
                        tab.goto(page.url)
                        far = 'tr[data-path="/user/sup/far"]'
                        tab.wait_for_function(
                            STATE_IS % ("/user/sup/far", "running"), timeout=30_000
                        )
                        before = tab.locator(f"{far} td.tags").inner_text()
                        pid = anyio.from_thread.run(pid_of_far)
                        assert f"pid {pid}" in before
                        os.kill(pid, signal.SIGKILL)
                        tab.wait_for_function(
                            STATE_IS % ("/user/sup/far", "restarting"), timeout=10_000
                        )
                        assert tab.locator(f"{far} td.restarts").inner_text() == "1"
                        assert "SIGKILL" in tab.locator(f"{far} td.failure").inner_text()
                        tab.wait_for_function(
                            STATE_IS % ("/user/sup/far", "running"), timeout=30_000
                        )
                        assert tab.locator(f"{far} td.restarts").inner_text() == "1"
                        return before, tab.locator(f"{far} td.tags").inner_text()
                    finally:
                        browser.close()

            before, after = await anyio.to_thread.run_sync(drive)
        (old,) = re.findall(r"pid (\d+)", before)
        (new,) = re.findall(r"pid (\d+)", after)
        assert new != old and int(new) == await pid_of_far()
        await sup.stop()
