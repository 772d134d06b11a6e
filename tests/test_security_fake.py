"""Issue 11 on the fake: forged, old-format, unregistered and malformed
envelopes never run, are logged once each, and no mule dies of them (the
same attacks as tests/real/test_security.py, from
tests/real/security_apps/attacks.py). Step mode runs the dispatcher; threaded
mode runs the programmed mule's real serving loop.
"""

from __future__ import annotations

import pickle
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.real.security_apps import tasks
from tests.real.security_apps.attacks import (
    ANY_REFUSAL,
    ATTACK_IDS,
    ATTACKS,
    PROGRAMMED,
    SIGNAL_ONLY,
    Attack,
    RunsOnUnpickle,
    Send,
    TOUCH_TASK,
    body,
    decoration_refusals,
    fuzz_messages,
    genuine_bodies,
    send_frames,
    user_text,
)
from uwsgi_mules import Mule, ReservedMessage
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.mule.dispatch import DispatchCounters, dispatcher_for
from uwsgi_mules.core.state import reset_runtime, runtime_state

MULES = ["uwsgi_mules.mule:run", None]  # mule 1 programmed, mule 2 signal-only


@pytest.fixture(params=["step", "threaded"])
def fake(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUwsgi]:
    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    reset_runtime()
    with FakeUwsgi(mules=MULES, threaded=request.param == "threaded") as instance:
        yield instance
    reset_runtime()


def drain(fake: FakeUwsgi) -> None:
    if fake.threaded:
        fake.join(timeout=20)
    else:
        fake.run_pending()


def ping_all(fake: FakeUwsgi, token: str) -> dict[int, int]:
    """A normal offload to each mule; the thread each ran in (the fake's 'pid')."""
    with fake.as_worker():
        for mule in (PROGRAMMED, SIGNAL_ONLY):
            assert tasks.PINGS[mule](token) is True
    drain(fake)
    pings = [e for e in tasks.read_events(Path(fake.getenv("MULES_TEST_DIR") or "")) if e.get("token") == token]
    assert sorted(e["mule"] for e in pings) == [PROGRAMMED, SIGNAL_ONLY], pings
    return {e["mule"]: e["thread"] for e in pings}


def lines(fake: FakeUwsgi, pattern: str, mule: int) -> list[str]:
    regex = re.compile(pattern.format(mule=mule))
    return [line for line in fake.log_lines if regex.search(line)]


def assert_mules_kept(fake: FakeUwsgi, before: dict[int, int], token: str) -> None:
    assert ping_all(fake, token) == before, "a mule was replaced"
    assert not [ln for ln in fake.log_lines if "respawn" in ln or "died" in ln], fake.log_lines
    if fake.threaded:  # the programmed mule started once: its loop never ended
        assert sum("mule 1 serving offloads" in ln for ln in fake.log_lines) == 1, fake.log_lines


@pytest.mark.parametrize("attack", ATTACKS, ids=ATTACK_IDS)
def test_attack_never_runs_is_logged_and_the_mule_survives(fake: FakeUwsgi, attack: Attack, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    before = ping_all(fake, "before")
    messages = attack.build(markers, "tok42")
    with fake.as_worker():
        send_frames([(m, mule) for mule in attack.mules for m in messages], fake.mule_msg, fake.signer().seal)
    drain(fake)
    assert_mules_kept(fake, before, "after")

    assert not list(markers.iterdir()), "an attack ran a command or a task"
    events = tasks.read_events(tmp_path)
    assert not [e for e in events if e["kind"] in ("undecorated", "touch_task", "canary")], events
    printed = capsys.readouterr()
    for text in attack.forbidden:
        assert text.format(token="tok42") not in printed.out + printed.err
    for mule in attack.mules:
        refusals = lines(fake, ANY_REFUSAL, mule)
        if attack.task_error:
            raised = [e for e in events if e["kind"] == "raising" and e["mule"] == mule]
            assert len(raised) == len(messages), events
            assert not refusals, refusals
        else:
            assert len(lines(fake, attack.line, mule)) == len(messages), fake.log_lines
            assert len(refusals) == len(messages), refusals
    if attack.task_error:
        assert len(fake.task_errors) == len(messages) * len(attack.mules), fake.task_errors


def test_typed_send_refuses_text_that_looks_like_an_envelope(fake: FakeUwsgi, tmp_path: Path) -> None:
    before = ping_all(fake, "before")
    text = user_text(tmp_path / "typed")
    with fake.as_worker():
        for mule in (PROGRAMMED, SIGNAL_ONLY):
            with pytest.raises(ReservedMessage, match="envelope marker"):
                Mule(mule).send(text)
            with pytest.raises(ReservedMessage):
                Mule(mule).send(text.encode())
    assert fake.pending() == 0, "nothing was queued"
    with fake.as_worker():  # the same bytes through raw uwsgi.mule_msg reach the mules and are refused
        send_frames([(Send(text.encode()), m) for m in (PROGRAMMED, SIGNAL_ONLY)], fake.mule_msg, fake.signer().seal)
    drain(fake)
    assert_mules_kept(fake, before, "after")
    assert not (tmp_path / "typed").exists()
    for mule in (PROGRAMMED, SIGNAL_ONLY):
        assert len(lines(fake, r"mule {mule} rejected a \d+ bytes message: .*no valid version 2 header", mule)) == 1


def test_decoration_refuses_functions_a_mule_cannot_import() -> None:
    with FakeUwsgi(mules=MULES):
        known = set(runtime_state().registry.tasks)
        outcome = decoration_refusals()
        assert set(runtime_state().registry.tasks) == known, "nothing refused was registered"
    assert outcome == dict.fromkeys(outcome, "NotOffloadable"), outcome
    assert len(outcome) == 7


def test_fuzzed_envelopes_never_run_and_no_mule_dies(fake: FakeUwsgi, tmp_path: Path) -> None:
    before = ping_all(fake, "before")
    counters = dispatcher_for(fake).counters
    counted_before = _counted(counters)
    seal = fake.signer().seal
    messages = fuzz_messages(random.Random(1130), [seal(b) for b in genuine_bodies()], 10_000)

    def raw_send(data: bytes, mule: int) -> bool:
        if fake.mule_msg(data, mule):
            return True
        if not fake.threaded:  # a full queue: let the mules read it, as they would on their own
            fake.run_pending()
        return False

    with fake.as_worker():
        sent = send_frames([(m, mule) for mule in (PROGRAMMED, SIGNAL_ONLY) for _, m in messages], raw_send, seal)
    drain(fake)
    assert sent["sent"] == 2 * len(messages)
    assert_mules_kept(fake, before, "after")
    events = tasks.read_events(tmp_path)
    assert not [e for e in events if e["kind"] == "canary"], "a mutated envelope ran"
    tolerated = sum(1 for category, _ in messages if category == "signed tolerated")
    ran = [e for e in events if e["kind"] == "tolerated"]
    assert len(ran) <= 2 * tolerated
    # every message is accounted for (ran, failed, rejected, unregistered, unhandled), except empty
    # ones to the programmed mule: uWSGI's mule_get_msg returns b"" for them as for a timeout
    empty = sum(1 for _, m in messages if not m.data)
    assert _counted(counters) - counted_before == 2 * len(messages) + 2 - empty  # + the 2 pings after


def _counted(counters: DispatchCounters) -> int:
    return counters.ran + counters.failed + counters.rejected + counters.unregistered + counters.unhandled


def test_uwsgidecorators_mule_msg_dispatcher_never_unpickles_a_message(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Code that installs ``uwsgidecorators.mule_msg_dispatcher`` as its hook (the
    original does so at import) must not unpickle whatever reaches the mule."""
    from uwsgi_mules.decorators import mule_msg_dispatcher

    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    marker = tmp_path / "dispatcher"
    with FakeUwsgi(mules=MULES) as fake:
        fake.set_msg_hook(mule_msg_dispatcher)
        with fake.as_worker():
            assert tasks.PINGS[SIGNAL_ONLY]("chained") is True  # installs our hook, chaining the dispatcher
            fake.mule_msg(pickle.dumps(RunsOnUnpickle(f"touch {marker}")), SIGNAL_ONLY)
            fake.mule_msg(pickle.dumps({"service": "uwsgi_mulefunc", "func": "print", "args": ("x",), "kwargs": {}}),
                          SIGNAL_ONLY)
        fake.run_pending()
        with fake.as_mule(SIGNAL_ONLY):  # called directly, as its own hook, too
            assert mule_msg_dispatcher(pickle.dumps(RunsOnUnpickle(f"touch {marker}"))) is None
    assert not marker.exists(), "a message was unpickled"
    assert [e["token"] for e in tasks.read_events(tmp_path)] == ["chained"]
    assert sum("not an offload envelope" in line for line in fake.log_lines) == 3, fake.log_lines


def test_instance_key_is_private_and_stable(tmp_path: Path) -> None:
    from uwsgi_mules.instance import InsecureDirectory, load_or_create_key

    runtime = tmp_path / "runtime"
    key = load_or_create_key(runtime)
    assert len(key) == 32 and load_or_create_key(runtime) == key
    assert (runtime.stat().st_mode & 0o777) == 0o700
    assert ((runtime / "key").stat().st_mode & 0o777) == 0o600
    assert load_or_create_key(tmp_path / "other") != key, "another instance has another key"
    (runtime / "key").chmod(0o644)
    with pytest.raises(InsecureDirectory, match="mode 0600"):
        load_or_create_key(runtime)
    (runtime / "key").chmod(0o600)
    (runtime / "key").write_bytes(b"short")
    with pytest.raises(InsecureDirectory, match="not a 32 bytes key"):
        load_or_create_key(runtime)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(InsecureDirectory, match="open to other users"):
        load_or_create_key(shared)


def test_envelope_of_another_instance_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    with FakeUwsgi(mules=MULES) as other:
        with other.as_worker():
            stolen = other.signer().seal(body(TOUCH_TASK, (str(tmp_path / "replayed"),)))
    with FakeUwsgi(mules=MULES) as fake:
        with fake.as_worker():
            tasks.PINGS[SIGNAL_ONLY]("installs the hook")
            for mule in (PROGRAMMED, SIGNAL_ONLY):
                fake.mule_msg(stolen, mule)
        fake.run_pending()
    assert not (tmp_path / "replayed").exists()
    assert sum("bad signature" in line for line in fake.log_lines) == 2, fake.log_lines
