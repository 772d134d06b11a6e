"""A hook set late is not a silent sink: offloads still run in a signal-only
mule whose application replaced ``uwsgi.mule_msg_hook`` (fake and real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.real.test_reload_delivery import count, wait_for
from tests.support.server import UwsgiServer
from uwsgi_mules import Mule
from uwsgi_mules.fake import FakeUwsgi


@pytest.mark.real
def test_late_hook_on_real_uwsgi(tmp_path: Path) -> None:
    require_real_uwsgi()
    server = UwsgiServer(tmp_path, ["--module", "tests.real.delivery_apps.late_hook:application", "--mule"],
                         env={"UWSGIMULES_RUNTIME_DIR": str(tmp_path / "runtime")})
    with server:
        assert int(server.get("/?n=20")) == 40
        assert wait_for(lambda: len(count(tmp_path)) == 20 and len(count(tmp_path, "app_hook")) == 20, 30)
        log = server.log_text()
    print(f"\nlate hook: 20 offloads ran {sum(count(tmp_path).values())}, 20 plain messages reached the app hook "
          f"{sum(count(tmp_path, 'app_hook').values())}")
    assert count(tmp_path) == {i: 1 for i in range(20)}
    assert "the application replaced uwsgi.mule_msg_hook" in log


def test_late_hook_on_the_fake() -> None:
    from tests import fake_delivery_tasks as tasks

    tasks.DONE.clear()
    seen: list[bytes] = []
    with FakeUwsgi(mules=[None]) as fake:
        tasks.work(1)  # installs our hook
        fake.set_msg_hook(seen.append)  # the application's, set late
        tasks.work(2)
        Mule(1).send(b"plain")
        fake.run_pending()
        assert any("replaced uwsgi.mule_msg_hook" in line for line in fake.log_lines)
    assert tasks.DONE == {1: 1, 2: 1}
    assert seen == [b"plain"]
