"""The instance's key and runtime directory (uwsgi_mules.instance)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from uwsgi_mules.instance import (
    InsecureDirectory,
    default_runtime_dir,
    load_or_create_key,
    master_start_time,
    open_private_dir,
    runtime_base,
    secure_dir,
    sweep_stale,
)


def test_key_is_created_once_and_shared(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path / "a")
    assert len(first) == 32
    assert load_or_create_key(tmp_path / "a") == first
    assert (tmp_path / "a" / "key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    assert load_or_create_key(tmp_path / "b") != first


def test_directories_others_can_write_are_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(InsecureDirectory):
        secure_dir(shared)


def test_stale_runtime_dirs_are_swept_unless_they_hold_saved_offloads(tmp_path: Path) -> None:
    mine = tmp_path / f"{os.getpid()}-{master_start_time(os.getpid())}"
    gone = tmp_path / "999999999-12345"
    kept = tmp_path / "999999998-12345"
    for d in (mine, gone, kept):
        (d / "backlog").mkdir(parents=True)
    (kept / "backlog" / "x.backlog").write_bytes(b"")
    lines: list[str] = []
    sweep_stale(tmp_path, keep=tmp_path / "new", log=lines.append)
    assert mine.exists(), "a running instance's directory stays"
    assert not gone.exists()
    assert kept.exists() and "never replayed" in lines[0]


# -- every level owner-only and checked ---------------------------------------------------------


def test_every_created_level_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)  # the umask under which the issue measured 0775
    try:
        load_or_create_key(tmp_path / "base" / "123-456", private_from=tmp_path / "base")
    finally:
        os.umask(old)
    for level in (tmp_path / "base", tmp_path / "base" / "123-456"):
        assert level.stat().st_mode & 0o777 == 0o700, level


@pytest.mark.parametrize("mode", [0o775, 0o777, 0o770, 0o730, 0o703])
def test_a_pre_created_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    base = tmp_path / "base"
    base.mkdir()
    base.chmod(mode)
    with pytest.raises(InsecureDirectory, match=f"open to other users \\(mode {oct(mode)}\\).*chmod 700"):
        secure_dir(base / "123-456", private_from=base)
    assert not (base / "123-456").exists(), "nothing is created under a refused level"


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o705, 0o711])
def test_a_directory_of_this_user_only_it_can_write_is_made_private(tmp_path: Path, mode: int) -> None:
    """What older versions left (levels made with the umask's mode): nobody
    else could have written there, so the mode is tightened to 0700."""
    base = tmp_path / "base"
    base.mkdir()
    base.chmod(mode)
    load_or_create_key(base / "123-456", private_from=base)
    assert base.stat().st_mode & 0o777 == 0o700


def test_a_level_above_that_others_can_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(InsecureDirectory, match="writable by other users .* not sticky"):
        secure_dir(shared / "uwsgi-mules-0" / "1-2", private_from=shared / "uwsgi-mules-0")
    shared.chmod(0o1777)  # like /tmp
    assert secure_dir(shared / "uwsgi-mules-0" / "1-2", private_from=shared / "uwsgi-mules-0").is_dir()


def test_a_symlink_swapped_in_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    load_or_create_key(real)
    link = tmp_path / "runtime"
    link.symlink_to(real)  # a private directory of ours, but reached through a link
    with pytest.raises(InsecureDirectory, match="symbolic link"):
        load_or_create_key(link)
    runtime = tmp_path / "runtime2"
    runtime.mkdir(mode=0o700)
    (runtime / "key").symlink_to(real / "key")  # the key swapped for a link to another key
    with pytest.raises(InsecureDirectory, match="key is a symbolic link"):
        load_or_create_key(runtime)


def test_the_checked_directory_descriptor_survives_a_rename_of_its_path(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    fd = open_private_dir(runtime)
    try:
        runtime.rename(tmp_path / "moved")
        runtime.symlink_to(tmp_path / "moved")
        os.close(os.open("probe", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    assert (tmp_path / "moved" / "probe").exists()


def test_the_default_directory_prefers_xdg_and_reads_tmpdir_like_the_plugin() -> None:
    uid = os.getuid()

    def env(values: dict[str, str]):  # type: ignore[no-untyped-def]
        return values.get

    assert runtime_base(env({"XDG_RUNTIME_DIR": "/run/user/7", "TMPDIR": "/x"})) == Path("/run/user/7/uwsgi-mules")
    assert runtime_base(env({"XDG_RUNTIME_DIR": "relative", "TMPDIR": "/x"})) == Path(f"/x/uwsgi-mules-{uid}")
    # not tempfile.gettempdir(): a TMPDIR that does not exist is still the one the plugin uses
    assert runtime_base(env({"TMPDIR": "/does/not/exist"})) == Path(f"/does/not/exist/uwsgi-mules-{uid}")
    assert runtime_base(env({"TEMP": "/t", "TMP": "/u"})) == Path(f"/t/uwsgi-mules-{uid}")
    assert runtime_base(env({})) == Path(f"/tmp/uwsgi-mules-{uid}")
    pid = os.getpid()
    assert default_runtime_dir(pid, env({"UWSGIMULES_RUNTIME_DIR": "/r"})) == Path("/r")
    assert default_runtime_dir(pid, env({})).name == f"{pid}-{master_start_time(pid)}"


def test_insecure_directory_is_an_os_error() -> None:
    assert issubclass(InsecureDirectory, OSError)


# -- a second local user: only with the explicit opt-in .ci/run sets -----------------------------


def test_system_users_are_made_only_with_the_explicit_opt_in() -> None:
    refusal = system_users_refusal({}, 0)
    assert refusal == f"creating local users needs the opt-in {SYSTEM_USERS_ENV}=1 (.ci/run sets it)"
    assert system_users_refusal({SYSTEM_USERS_ENV: "yes"}, 0) != ""
    assert system_users_refusal({SYSTEM_USERS_ENV: "1"}, 1000) == "creating a second local user needs root"
    assert system_users_refusal({SYSTEM_USERS_ENV: "1"}, 0) in ("", "no useradd/userdel on this machine")


def test_leftover_test_users_are_those_of_runs_that_no_longer_run() -> None:
    mine = new_user_name(os.getpid())
    assert mine.startswith("umt") and len(mine) == 14
    gone = new_user_name(4_000_000)
    names = [mine, gone, "umt0123456789", "root", "umtx", "umt0123456789ab"]
    assert leftover_test_users(names, running=lambda pid: pid == os.getpid()) == [gone, "umt0123456789"]


#: the opt-in to create (and remove) local users; .ci/run sets it, nothing else should
SYSTEM_USERS_ENV = "UWSGIMULES_TEST_SYSTEM_USERS"
#: the test users' names: "umt", then the creating pid (7 hex digits) and 4 random hex digits
USER_PREFIX = "umt"
_OLD_NAME = re.compile(r"umt[0-9a-f]{10}")  # an earlier scheme: always a leftover
_NAME = re.compile(r"umt([0-9a-f]{7})[0-9a-f]{4}")


def system_users_refusal(environ: Mapping[str, str], euid: int) -> str:
    """Why this run may not create local users ("" when it may)."""
    if environ.get(SYSTEM_USERS_ENV) != "1":
        return f"creating local users needs the opt-in {SYSTEM_USERS_ENV}=1 (.ci/run sets it)"
    if euid != 0:
        return "creating a second local user needs root"
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        return "no useradd/userdel on this machine"
    return ""


def new_user_name(pid: int) -> str:
    """A test user's name, carrying the pid of the test process that made it."""
    return f"{USER_PREFIX}{pid:07x}{uuid.uuid4().hex[:4]}"


def leftover_test_users(names: Iterable[str], running: Callable[[int], bool]) -> list[str]:
    """The test users left by runs that were killed before removing them."""
    found = []
    for name in names:
        matched = _NAME.fullmatch(name)
        if _OLD_NAME.fullmatch(name) or (matched and not running(int(matched.group(1), 16))):
            found.append(name)
    return found


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _userdel(name: str) -> None:
    removed = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=30)
    if removed.returncode != 0:
        raise RuntimeError(f"userdel {name} failed ({removed.returncode}): {removed.stderr.strip()}")


@pytest.fixture(scope="session")
def system_users() -> None:
    """The opt-in checked once per test process, and leftovers of killed runs removed."""
    refusal = system_users_refusal(os.environ, os.geteuid())
    if refusal:
        pytest.skip(refusal)
    for name in leftover_test_users((entry.pw_name for entry in pwd.getpwall()), _pid_running):
        _userdel(name)


@pytest.fixture
def other_user(system_users: None) -> Iterator[pwd.struct_passwd]:
    """A throwaway local user, created for the test and removed after it
    (only with the opt-in ``UWSGIMULES_TEST_SYSTEM_USERS=1``, as root)."""
    name = new_user_name(os.getpid())
    created = subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/false", name],
                             capture_output=True, text=True, timeout=30)
    if created.returncode != 0:
        pytest.skip(f"useradd failed here: {created.stderr.strip()}")
    try:
        yield pwd.getpwnam(name)
    finally:
        _userdel(name)


def as_user(user: pwd.struct_passwd, script: str) -> None:
    """Run a shell ``script`` as ``user`` (a real second uid; it cannot run
    this environment's Python, which may live in root's home)."""
    subprocess.run(["/bin/sh", "-ec", script], user=user.pw_uid, group=user.pw_gid, extra_groups=[], check=True,
                   timeout=30, cwd="/", env={"PATH": "/usr/bin:/bin"})


@pytest.fixture
def shared_tmp(other_user: pwd.struct_passwd) -> Iterator[Path]:
    """A sticky directory every user can create entries in, like /tmp (pytest's
    own temporary directories are private to this user)."""
    path = Path(tempfile.mkdtemp(prefix="uwsgi-mules-test-"))
    try:
        path.chmod(0o1777)
        try:
            as_user(other_user, f"test -w '{path}' && test -x '{path}'")
        except subprocess.CalledProcessError:
            pytest.skip(f"the second user cannot reach the temporary directory {path.parent}")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_directory_pre_created_by_another_user_is_refused(shared_tmp: Path, other_user: pwd.struct_passwd) -> None:
    base = runtime_base({"TMPDIR": str(shared_tmp)}.get)
    # the other user plants the base directory first, owner-only and all
    as_user(other_user, f"umask 077; mkdir '{base}'")
    assert base.stat().st_uid == other_user.pw_uid
    with pytest.raises(InsecureDirectory, match=f"belongs to uid {other_user.pw_uid}, not to this user"):
        load_or_create_key(base / "1-2", private_from=base)


def test_another_user_cannot_swap_the_runtime_directory(shared_tmp: Path, other_user: pwd.struct_passwd) -> None:
    base = shared_tmp / "uwsgi-mules-x"
    key = load_or_create_key(base / "1-2", private_from=base)
    # a directory of the other user, with a key of theirs, swapped in where ours was
    evil = shared_tmp / "evil"
    as_user(other_user, f"umask 077; mkdir '{evil}'; printf %032d 0 > '{evil}/key'")
    shutil.rmtree(base)
    base.symlink_to(evil)
    with pytest.raises(InsecureDirectory, match="symbolic link"):
        load_or_create_key(base / "1-2", private_from=base)
    base.unlink()
    os.rename(evil, base)  # the same directory moved in place: owned by the other user
    with pytest.raises(InsecureDirectory, match=f"belongs to uid {other_user.pw_uid}"):
        load_or_create_key(base / "1-2", private_from=base)
    assert key != b"0" * 32
