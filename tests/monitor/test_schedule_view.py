"""The periodic entries in the read model, ``/api/snapshot``, ``/metrics`` and
the text of ``uwsgi-mules stats``, from a state file written by the periodic
package's own :class:`~uwsgi_mules.periodic.state.StateFile`."""

from __future__ import annotations

from pathlib import Path

import pytest

from uwsgi_mules.monitor import InstanceSources, Tracker, take_snapshot
from uwsgi_mules.monitor.text_view import render_snapshot
from uwsgi_mules.periodic.state import EntryState, StateFile

LAST_DUE = 1_800_000_000.0  # a multiple of 10: an "every 10 s" due time
OUTCOME = "send failed: <script>window.__pwned=1</script> \x1b[31mboom\x1b[0m"


def write_state(directory: Path) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    StateFile(directory, print).write({
        "app.jobs:cleanup": EntryState(LAST_DUE, "every:10", sent_at=LAST_DUE + 0.25, outcome="sent"),
        "app.jobs:report": EntryState(LAST_DUE - 60, "every:60", outcome=OUTCOME),
        "app.jobs:stuck": EntryState(LAST_DUE, "cron:*/5 * * * *@Europe/Paris", sending=True, outcome="sent"),
    })()


def test_the_schedule_is_in_the_snapshot_with_its_next_due_time(tmp_path: Path) -> None:
    backlog = tmp_path / "backlog"
    write_state(backlog)
    snap = take_snapshot(InstanceSources(runtime_dir=tmp_path / "rt", backlog_dir=backlog), Tracker())
    assert snap.problems == [] and snap.schedule_dir == str(backlog)
    cleanup, report, stuck = snap.schedule
    assert (cleanup.entry, cleanup.schedule, cleanup.last_due, cleanup.sent_at, cleanup.outcome, cleanup.sending) == (
        "app.jobs:cleanup", "every:10", LAST_DUE, LAST_DUE + 0.25, "sent", False)
    # next due: the first due time after max(last due, now); now is long after LAST_DUE... or before it
    assert cleanup.next_due is not None and cleanup.next_due % 10 == 0
    assert cleanup.next_due > max(LAST_DUE, snap.taken_at) and cleanup.next_due <= max(LAST_DUE, snap.taken_at) + 10
    assert report.sending is False and report.sent_at is None and report.outcome == OUTCOME
    assert stuck.sending is True and stuck.next_due is not None and stuck.next_due % 300 == 0
    data = snap.to_dict()
    assert data["schedule"][0] == {"entry": "app.jobs:cleanup", "schedule": "every:10", "next_due": cleanup.next_due,
                                   "last_due": LAST_DUE, "sent_at": LAST_DUE + 0.25, "outcome": "sent",
                                   "sending": False}
    text = render_snapshot(snap)
    assert f"periodic tasks: 3 (state in {backlog})" in text
    assert "app.jobs:cleanup  [every:10]  next " in text and "'sent'" in text
    assert "sending (interrupted?)" in text and "\x1b" not in text


def test_no_state_file_no_schedule_and_nothing_created(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    snap = take_snapshot(InstanceSources(runtime_dir=runtime), Tracker())
    assert snap.schedule == [] and snap.schedule_dir == "" and list(runtime.iterdir()) == []
    assert "periodic" not in render_snapshot(snap)


def test_a_forged_state_is_named_in_the_problems(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    write_state(runtime)
    state = runtime / "periodic-state"
    state.write_bytes(state.read_bytes().replace(b'"sent"', b'"SENT"'))
    snap = take_snapshot(InstanceSources(runtime_dir=runtime), Tracker())
    assert snap.schedule == []
    assert any("periodic state" in p and "refused" in p for p in snap.problems)
    assert state.exists() and not list(runtime.glob("periodic-state.refused-*")), "a reader moves nothing"


def test_metrics_name_each_entry_with_its_due_times(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client", reason="the metrics need the monitor extra")
    from prometheus_client.parser import text_string_to_metric_families

    from uwsgi_mules.monitor.metrics import MAX_ENTRY_LABELS, exposition

    runtime = tmp_path / "rt"
    write_state(runtime)
    snap = take_snapshot(InstanceSources(runtime_dir=runtime), Tracker())
    families = {f.name: f for f in text_string_to_metric_families(exposition(lambda: snap).decode())}
    samples = {(s.name, s.labels.get("entry")): s.value
               for name in families if name.startswith("uwsgi_mules_periodic") for s in families[name].samples}
    cleanup = snap.schedule[0]
    assert samples[("uwsgi_mules_periodic_entries", None)] == 3
    assert samples[("uwsgi_mules_periodic_next_due_timestamp_seconds", "app.jobs:cleanup")] == cleanup.next_due
    assert samples[("uwsgi_mules_periodic_last_due_timestamp_seconds", "app.jobs:cleanup")] == LAST_DUE
    assert samples[("uwsgi_mules_periodic_last_sent_timestamp_seconds", "app.jobs:cleanup")] == LAST_DUE + 0.25
    assert ("uwsgi_mules_periodic_last_sent_timestamp_seconds", "app.jobs:report") not in samples
    assert samples[("uwsgi_mules_periodic_sending", "app.jobs:stuck")] == 1.0
    assert samples[("uwsgi_mules_periodic_sending", "app.jobs:report")] == 0.0
    # the entry label is bounded like the task label
    many = MAX_ENTRY_LABELS + 5
    StateFile(runtime, print).write({f"app.jobs:e{n:02d}": EntryState(LAST_DUE, "every:10") for n in range(many)})()
    snap = take_snapshot(InstanceSources(runtime_dir=runtime), Tracker())
    families = {f.name: f for f in text_string_to_metric_families(exposition(lambda: snap).decode())}
    assert len(families["uwsgi_mules_periodic_last_due_timestamp_seconds"].samples) == MAX_ENTRY_LABELS
    assert families["uwsgi_mules_periodic_entries"].samples[0].value == many
