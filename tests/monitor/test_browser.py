"""The page in a real browser (headless Chromium) against a running instance
(the binary with the C plugin in tox -e browser; pyuwsgi in tox -e
browser-pyuwsgi): the numbers it shows, a click on re-send that runs the
dead task exactly once (ledger), an injected <script> that does not run,
a PNG screenshot in the test's temp directory."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.browser import chromium
from tests.monitor.instance import TOKEN, Instance, monitored_instance, wait_for

pytestmark = [pytest.mark.real, pytest.mark.plugin]

N = 6


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path) as driver:
        yield driver


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[tuple[Any, Instance]]:
    from tests.conftest import require_real_uwsgi

    require_real_uwsgi()
    with monitored_instance(tmp_path) as instance:
        yield browser, instance


def text(driver: Any, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return str(driver.find_element("css selector", css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def stat(driver: Any, card: str, name: str) -> str:
    return text(driver, f"#{card} .stat.{name} .value")


def test_page_shows_depth_running_task_waiting_calls_and_runs(page: tuple[Any, Instance], tmp_path: Path) -> None:
    driver, instance = page
    assert instance.send("later") == 1 and instance.send("gate") == 1
    wait_for(lambda: "gate in" in instance.ledger(), what="mule 1 holds the gate")
    assert instance.send("tally", N) == N
    driver.get(instance.page_url)
    wait_for(lambda: "tests.monitor.tasks:gate" in stat(driver, "mule-1", "running"), what="the running task shown")
    expected_depth = str(N) if instance.plugin else "?"
    wait_for(lambda: stat(driver, "mule-1", "depth") == expected_depth, what=f"depth {expected_depth} shown")
    assert text(driver, "#waiting-count") == "1 waiting call(s)"
    assert "tests.monitor.tasks:later" in text(driver, "#waiting")
    driver.save_screenshot(str(tmp_path / "paused.png"))
    (instance.workdir / "open").touch()
    wait_for(lambda: stat(driver, "mule-1", "ran").startswith(f"{N + 1} "), what="the runs shown")
    wait_for(lambda: stat(driver, "mule-1", "running") == "idle", what="idle shown")
    if instance.plugin:
        wait_for(lambda: stat(driver, "mule-1", "depth") == "0", what="depth 0 shown")
    shot = tmp_path / "page.png"
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"screenshots: {tmp_path / 'paused.png'} {shot}")


def _race_two_clicks(driver: Any, task_id: str) -> list[Any]:
    """Two re-sends of one dead task at once from the page (two people clicking)."""
    script = """
      const done = arguments[arguments.length - 1];
      const config = JSON.parse(document.getElementById('mules-config').textContent);
      const headers = {'Content-Type': 'application/json', 'X-Mules-Token': sessionStorage.getItem('uwsgi-mules-token')};
      headers[config.csrfHeader] = config.csrfToken;
      const post = () => fetch(config.api + 'dead/resend', {method: 'POST', headers: headers,
        credentials: 'same-origin', body: JSON.stringify({ids: [arguments[0]]})}).then(r => r.json());
      Promise.all([post(), post()]).then(done, e => done(String(e)));
    """
    return list(driver.execute_async_script(script, task_id))


def test_resend_from_the_page_runs_once_and_injected_script_does_not_run(
    page: tuple[Any, Instance], tmp_path: Path
) -> None:
    driver, instance = page
    assert instance.send("fragile", token="d1") == 1 and instance.send("fragile", token="d2") == 1
    wait_for(lambda: len(instance.snapshot().dead) == 2, what="two dead tasks")
    driver.get(instance.page_url)
    wait_for(lambda: len(driver.find_elements("css selector", "tr.dead-task")) == 2, what="two dead rows")
    error = text(driver, "tr.dead-task .error")
    assert "<script>document.title='pwned';window.__pwned=1</script>" in error and "\\x1b[31mred" in error
    assert driver.title == "uwsgi-mules" and driver.execute_script("return window.__pwned === undefined")
    driver.save_screenshot(str(tmp_path / "dead.png"))
    (instance.workdir / "fixed").touch()
    token = driver.find_element("css selector", "#token")
    token.send_keys(TOKEN)
    token.send_keys("\t")  # the change event keeps it for this tab
    ids = {("d1" if "'d1'" in d.call else "d2"): d.id for d in instance.snapshot().dead}
    assert len(ids) == 2, [d.call for d in instance.snapshot().dead]
    driver.find_element("css selector", f"tr[data-id='{ids['d1']}'] button.resend").click()
    wait_for(lambda: instance.ledger().count("fragile-ran d1") == 1, what="d1 ran again")
    answers = _race_two_clicks(driver, ids["d2"])
    assert sorted(len(a["done"]) for a in answers) == [0, 1], answers
    wait_for(lambda: instance.ledger().count("fragile-ran d2") == 1, what="d2 ran again")
    wait_for(lambda: text(driver, "#dead-count") == "(0)", what="no dead task shown")
    time.sleep(2.5)  # a second run would come within the mule's one-second pickup
    ledger = instance.ledger()
    print(f"re-sent 2 (d2 clicked twice at once), ran d1 {ledger.count('fragile-ran d1')}, "
          f"d2 {ledger.count('fragile-ran d2')}")
    assert ledger.count("fragile-ran d1") == 1 and ledger.count("fragile-ran d2") == 1
    assert driver.title == "uwsgi-mules" and driver.execute_script("return window.__pwned === undefined")
    driver.save_screenshot(str(tmp_path / "resent.png"))


def test_the_schedule_row_shows_its_next_due_time_and_outcome(browser: Any, tmp_path: Path) -> None:
    from datetime import datetime

    from tests.conftest import require_real_uwsgi

    require_real_uwsgi()
    with monitored_instance(tmp_path, periodic=True) as instance:
        browser.get(instance.page_url)
        row = "tr.schedule-entry[data-entry='tests.monitor.periodic_tasks:heartbeat']"
        wait_for(lambda: text(browser, f"{row} .outcome") == "sent", what="the entry's run shown as sent")
        next_due = text(browser, f"{row} .next-due")
        last_due = text(browser, f"{row} .last-due")
        assert text(browser, f"{row} .entry") == "tests.monitor.periodic_tasks:heartbeat"
        assert text(browser, "#schedule-section h2") == "Periodic tasks"
        api = instance.api("api/snapshot")["schedule"][0]
        # the page shows the API's epoch times in the browser's locale; the API was read a moment later
        shown = browser.execute_script("return [0, 1, 2, 3, 4, 5].map(k => new Date((arguments[0] - k) * 1000)"
                                       ".toLocaleString())", api["next_due"])
        assert next_due in shown and last_due != "-" and next_due != last_due, (next_due, last_due, shown)
        assert abs(api["next_due"] - time.time()) < 5
        wait_for(lambda: text(browser, f"{row} .next-due") != next_due, what="the next due time moves on")
        shot = tmp_path / "schedule.png"
        browser.execute_script("document.getElementById('schedule-section').scrollIntoView()")
        browser.save_screenshot(str(shot))
        print(f"schedule row: next {next_due}, last {last_due} ({datetime.now():%H:%M:%S}); screenshot {shot}")


def test_an_outcome_with_markup_shows_as_text(browser: Any, tmp_path: Path) -> None:
    from tests.monitor.test_cli_dashboard import _serve
    from tests.monitor.test_schedule_view import OUTCOME, write_state

    runtime = tmp_path / "rt"
    write_state(runtime)
    process, url = _serve(runtime, "--read-only")
    try:
        browser.get(url + "/")
        row = "tr.schedule-entry[data-entry='app.jobs:report']"
        outcome = wait_for(lambda: text(browser, f"{row} .outcome"), what="the entry's outcome shown")
        assert "send failed: <script>window.__pwned=1</script>" in outcome and "\\x1b[31mboom" in outcome, outcome
        assert text(browser, "tr.schedule-entry[data-entry='app.jobs:stuck'] .outcome") == "sending (interrupted?)"
        cleanup = "tr.schedule-entry[data-entry='app.jobs:cleanup']"
        assert text(browser, f"{cleanup} .outcome") == "sent" and text(browser, f"{cleanup} .next-due") != "-"
        assert browser.execute_script("return window.__pwned === undefined")
        browser.execute_script("document.getElementById('schedule-section').scrollIntoView()")
        browser.save_screenshot(str(tmp_path / "schedule-markup.png"))
    finally:
        process.terminate()
        process.communicate(timeout=30)
