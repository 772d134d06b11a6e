"""Issue 11 on real uWSGI (binary and pyuwsgi): forged, old-format,
unregistered and malformed envelopes never run, each is logged, and no mule
dies of them; a fuzz of >= 10,000 mutated envelopes leaves both mules serving
with their original pids.

Each server has 1 worker, mule 1 programmed (``uwsgi_mules.mule:run``) and
mule 2 signal-only (``--mule``; the hook comes from importing the decorated
tasks module in the app, before fork). The attacks are the ones of
tests/test_security_fake.py (tests/real/security_apps/attacks.py); a worker
sends them with raw ``uwsgi.mule_msg`` and seals the ``sign`` ones with the
instance key.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import plugin_path
from tests.real.security_apps.attacks import (
    ANY_REFUSAL,
    ATTACK_IDS,
    ATTACKS,
    BAD_TAG,
    CANARY,
    PROGRAMMED,
    SIGNAL_ONLY,
    Attack,
    Send,
    TOUCH_TASK,
    body,
    decode_frames,
    encode_frames,
    fuzz_messages,
    genuine_bodies,
    user_text,
)
from tests.real.security_apps.tasks import read_events
from tests.support.server import UwsgiServer

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

APP = "tests.real.security_apps.app:application"
MULES = (PROGRAMMED, SIGNAL_ONLY)
SPAWNED = re.compile(r"spawned uWSGI mule (\d+) \(pid: (\d+)\)")
TASK_FAILED = re.compile(r"offloaded task tests\.real\.security_apps\.tasks:(exit|interrupt)_task\(.* failed")


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_real_uwsgi()
    yield tmp_path


class SecurityServer(UwsgiServer):
    """The security app with a programmed and a signal-only mule."""

    def __init__(self, workdir: Path) -> None:
        args = ["--module", APP, "--processes", "1", "--mule=uwsgi_mules.mule:run", "--mule"]
        plugin = plugin_path()
        if plugin:
            args = ["--plugin", plugin, *args]
        super().__init__(workdir, args, env={"UWSGIMULES_RUNTIME_DIR": str(workdir / "runtime")})

    def post(self, path: str, data: bytes, timeout: float = 60.0) -> bytes:
        request = urllib.request.Request(self.base_url + path, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def send(self, frames: Sequence[tuple[Send, int]]) -> dict[str, int]:
        return json.loads(self.post("/send", encode_frames(frames)))

    def ping_all(self, token: str, timeout: float = 30.0) -> dict[int, int]:
        """A normal offload to each mule; the pid each ran in."""
        for mule in MULES:
            assert json.loads(self.get(f"/ping?mule={mule}&token={token}")) == {"sent": True}
        deadline = time.monotonic() + timeout
        while True:
            pings = [e for e in read_events(self.workdir) if e.get("token") == token]
            if len(pings) >= len(MULES) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert sorted(e["mule"] for e in pings) == list(MULES), f"pings {pings}\n{self.log_text()[-4000:]}"
        return {e["mule"]: e["pid"] for e in pings}

    def spawned_mules(self) -> list[tuple[int, int]]:
        return [(int(m), int(p)) for m, p in SPAWNED.findall(self.log_text())]

    def lines(self, pattern: str, mule: int) -> list[str]:
        regex = re.compile(pattern.format(mule=mule))
        return [line for line in self.log_text().splitlines() if regex.search(line)]

    def assert_mules_kept(self, original: dict[int, int], token: str) -> None:
        """Both mules serve with the pids they had at start; uWSGI spawned each once."""
        assert self.ping_all(token) == original, self.log_text()[-4000:]
        assert sorted(self.spawned_mules()) == sorted(original.items()), self.log_text()[-4000:]


@pytest.mark.parametrize("attack", ATTACKS, ids=ATTACK_IDS)
def test_attack_never_runs_is_logged_and_the_mule_keeps_its_pid(workdir: Path, attack: Attack) -> None:
    markers = workdir / "markers"
    markers.mkdir()
    token = f"t{os.getpid()}x{time.monotonic_ns()}"
    messages = attack.build(markers, token)
    with SecurityServer(workdir) as server:
        original = server.ping_all("before")
        result = server.send([(m, mule) for mule in attack.mules for m in messages])
        assert result["sent"] == len(messages) * len(attack.mules)
        server.assert_mules_kept(original, "after")  # each mule read its queue in order: the attack came first
        log = server.log_text()
        counts = {mule: (len(server.lines(attack.line, mule)) if attack.line else 0,
                         len(server.lines(ANY_REFUSAL, mule))) for mule in attack.mules}
    print(f"\n{attack.name}: {len(messages)} message(s) per mule; (matching, all refusal) lines per mule {counts}")
    assert not list(markers.iterdir()), f"an attack ran: {list(markers.iterdir())}"
    events = read_events(workdir)
    assert not [e for e in events if e["kind"] in ("undecorated", "touch_task", "canary")], events
    for text in attack.forbidden:
        assert text.format(token=token) not in log, "builtins:print ran"
    if attack.task_error:
        raised = Counter(e["mule"] for e in events if e["kind"] == "raising")
        assert raised == Counter(dict.fromkeys(attack.mules, len(messages))), events
        assert len(TASK_FAILED.findall(log)) == len(messages) * len(attack.mules), log[-4000:]
        assert all(count == (0, 0) for count in counts.values()), counts
    else:
        assert counts == dict.fromkeys(attack.mules, (len(messages), len(messages))), log[-4000:]


def test_typed_send_refuses_user_text_that_raw_send_delivers_harmlessly(workdir: Path) -> None:
    marker = workdir / "typed"
    text = user_text(marker)
    with SecurityServer(workdir) as server:
        original = server.ping_all("before")
        for mule in MULES:
            outcome = json.loads(server.post(f"/typed?mule={mule}", text.encode()))
            assert outcome["refused"] == "ReservedMessage", outcome
            assert "envelope marker" in outcome["message"]
        assert server.send([(Send(text.encode()), mule) for mule in MULES]) == {"sent": 2, "full": 0}
        server.assert_mules_kept(original, "after")
        for mule in MULES:
            assert len(server.lines(r"mule {mule} rejected a \d+ bytes message: .*no valid version 2 header", mule)) == 1
    assert not marker.exists()


def test_decoration_refuses_functions_a_mule_cannot_import(workdir: Path) -> None:
    with SecurityServer(workdir) as server:
        outcome = json.loads(server.get("/decorate"))
    assert outcome == dict.fromkeys(outcome, "NotOffloadable"), outcome
    assert len(outcome) == 7


def test_envelope_signed_by_another_instance_is_rejected(workdir: Path) -> None:
    marker = workdir / "replayed"
    with SecurityServer(workdir / "first") as first:
        sealed = first.post("/seal", encode_frames([(Send(body(TOUCH_TASK, (str(marker),))), PROGRAMMED)]))
        runtime = workdir / "first" / "runtime"
        assert (runtime.stat().st_mode & 0o777, (runtime / "key").stat().st_mode & 0o777) == (0o700, 0o600)
        stolen = decode_frames(sealed)[0][0].data
        first.send([(Send(stolen), PROGRAMMED)])  # genuine here: it runs
        first.ping_all("first")
        assert marker.exists(), first.log_text()[-3000:]
    marker.unlink()
    with SecurityServer(workdir / "second") as second:
        original = second.ping_all("before")
        assert second.send([(Send(stolen), mule) for mule in MULES])["sent"] == 2
        second.assert_mules_kept(original, "after")
        rejected = {mule: len(second.lines(BAD_TAG, mule)) for mule in MULES}
    assert not marker.exists(), "an envelope of another instance ran"
    assert rejected == {PROGRAMMED: 1, SIGNAL_ONLY: 1}


FUZZ_COUNT = 10_000
BATCH = 1000


def test_fuzzed_envelopes_never_run_and_both_mules_keep_serving(workdir: Path) -> None:
    seed = int(os.environ.get("UWSGIMULES_FUZZ_SEED", "20261130"))
    started = time.monotonic()
    with SecurityServer(workdir) as server:
        original = server.ping_all("before")
        sealed = decode_frames(server.post("/seal", encode_frames((Send(b), 1) for b in genuine_bodies())))
        messages = fuzz_messages(random.Random(seed), [m.data for m, _ in sealed], FUZZ_COUNT)
        frames = [(m, mule) for _, m in messages for mule in MULES]
        full = 0
        for start in range(0, len(frames), BATCH):
            result = server.send(frames[start : start + BATCH])
            assert result["sent"] == len(frames[start : start + BATCH])
            full += result["full"]
        server.assert_mules_kept(original, "after")
        refusals = {mule: len(server.lines(ANY_REFUSAL, mule)) for mule in MULES}
        log = server.log_text()
    elapsed = time.monotonic() - started
    categories = Counter(category for category, _ in messages)
    events = read_events(workdir)
    ran = Counter(e["kind"] for e in events)
    print(f"\nfuzz (seed {seed}): {len(messages)} messages to each of 2 mules in {elapsed:.1f}s, "
          f"{full} full-queue retries; categories {dict(categories)}; events {dict(ran)}; "
          f"refusal lines (rate-limited) {refusals}")
    assert len(messages) >= FUZZ_COUNT
    assert ran["canary"] == 0, [e for e in events if e["kind"] == "canary"][:5]
    assert ran["tolerated"] <= 2 * categories["signed tolerated"]
    assert all(refusals.values()), "refusals are logged"
    # the only tracebacks are of calls that failed before the canary ran (kwargs {1: 2}: not keywords)
    failed = re.findall(r"offloaded task (\S+?)\(.* failed", log)
    assert set(failed) <= {CANARY} and log.count("Traceback") == len(failed), log[-4000:]
