"""A session's log file is opened without following a link, through no link on its path unless it
is this user's, root's or the owner's of its directory (nor one in a directory others may write to,
unless the link and the directory are this user's), and used only if it is a regular file of this user with no other name; an existing file
is looked at before it is opened (a FIFO or a device never is), and nothing of it changes before
those checks."""
from __future__ import annotations

import ctypes
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid

import pytest

import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession
from wpptrace.winerror import Win32Error

L = P._lib
NOBODY = 65534
THIRD_USER = 4243          # a user who owns neither the link nor anything of ours
IN_OPEN = 0x20


class _OpenWatch:
    """Tells whether anything opened a file since it was made (inotify IN_OPEN: a stat or an
    O_PATH descriptor is not an open)."""

    def __init__(self, path):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0 and libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN) >= 0

    def opened(self) -> bool:
        try:
            return len(os.read(self.fd, 4096)) > 0
        except BlockingIOError:
            return False
        finally:
            os.close(self.fd)


def _props(path) -> P.EVENT_TRACE_PROPERTIES:
    return P.EVENT_TRACE_PROPERTIES(BufferSize=4, MinimumBuffers=2, MaximumBuffers=4,
                                    LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL, LogFileName=str(path))


def _start_code(session_name: str, path) -> int:
    with pytest.raises(Win32Error) as err:
        P.StartTrace(session_name, _props(path))
    return err.value.winerror


def _victim(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious data\n")
    os.chmod(victim, 0o644)
    return victim


def _unchanged(victim) -> bool:
    return victim.read_bytes() == b"precious data\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_a_planted_link_is_refused_and_its_target_kept(session_name, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "trace.etl"
    link.symlink_to(victim)
    assert _start_code(session_name, link) == L.ERROR_ACCESS_DENIED
    assert _unchanged(victim) and link.is_symlink()


def test_a_dangling_link_is_refused_and_nothing_is_made(session_name, tmp_path):
    target = tmp_path / "made.etl"
    link = tmp_path / "trace.etl"
    link.symlink_to(target)
    assert _start_code(session_name, link) == L.ERROR_ACCESS_DENIED
    assert not target.exists()


def test_a_fifo_is_refused_at_once_and_never_opened(session_name, tmp_path):
    fifo = tmp_path / "trace.etl"
    os.mkfifo(fifo, 0o600)
    watch = _OpenWatch(fifo)
    assert _start_code(session_name, fifo) == L.ERROR_BAD_PATHNAME
    assert not watch.opened()


@pytest.mark.skipif(os.geteuid() != 0, reason="a device node needs root to make")
def test_a_device_of_this_user_is_refused_and_never_opened(session_name, tmp_path):
    device = tmp_path / "null.etl"
    os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))       # what /dev/null is
    watch = _OpenWatch(device)
    assert _start_code(session_name, device) == L.ERROR_BAD_PATHNAME
    assert not watch.opened()


def test_dev_null_is_refused(session_name):
    assert _start_code(session_name, "/dev/null") == L.ERROR_BAD_PATHNAME


def test_a_file_with_a_second_hard_link_is_refused_and_kept(session_name, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "trace.etl"
    os.link(victim, link)
    for path in (link, victim):
        assert _start_code(session_name, path) == L.ERROR_ACCESS_DENIED
    assert _unchanged(victim) and victim.stat().st_nlink == 2


def _planted_parent(tmp_path):
    """A directory of a third user on the log path, and in it another user's link to our home."""
    home = tmp_path / "home"
    home.mkdir()
    victim = _victim(home)
    shared = tmp_path / "proj"
    shared.mkdir(mode=0o755)
    (shared / "out").symlink_to(home)
    os.lchown(shared / "out", NOBODY, NOBODY)
    os.chown(shared, THIRD_USER, THIRD_USER)
    return victim, shared / "out" / victim.name


@pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user needs root to make")
def test_a_link_of_another_user_on_the_path_is_refused_and_its_target_kept(session_name, tmp_path):
    victim, path = _planted_parent(tmp_path)
    assert _start_code(session_name, path) == L.ERROR_ACCESS_DENIED
    assert _unchanged(victim)
    assert _start_code(session_name, path.parent / "new.etl") == L.ERROR_ACCESS_DENIED
    assert not (victim.parent / "new.etl").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user needs root to make")
def test_a_link_of_the_owner_of_its_directory_is_followed(session_name, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    (theirs / "out").symlink_to(real)
    os.lchown(theirs / "out", NOBODY, NOBODY)
    os.chown(theirs, NOBODY, NOBODY)
    with TraceSession(session_name, theirs / "out" / "trace.etl"):
        pass
    assert (real / "trace.etl").stat().st_size >= 4096


_IN_USER_NAMESPACE = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static void put(const char *file, const char *text) {
    int fd = open(file, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) exit(3);
    close(fd);
}

/* uid directory name: as user `uid`, in a user namespace of its own (unshare -r), start a
 * session logging to directory/name.etl, print the owners seen and StartTrace's code. */
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    unsigned uid = (unsigned)atoi(argv[1]);
    char map[64];
    if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0
        || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 || unshare(CLONE_NEWUSER) != 0)
        return 4;
    snprintf(map, sizeof map, "0 %u 1", uid);
    put("/proc/self/setgroups", "deny");
    put("/proc/self/uid_map", map);
    put("/proc/self/gid_map", map);
    struct stat root, link;
    if (lstat("/", &root) != 0 || lstat(argv[2], &link) != 0) return 5;
    TRACEHANDLE h;
    ULONG rc = start(argv[2], argv[3], &h);
    printf("root %u link %u start %lu\n", (unsigned)root.st_uid, (unsigned)link.st_uid, (unsigned long)rc);
    return rc == ERROR_SUCCESS && stop(h) != ERROR_SUCCESS;
}
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a user namespace of another user needs root to enter")
def test_a_link_of_host_root_in_a_user_namespace_is_followed(session_name, build_c_program):
    """In a user namespace (unshare -r, a rootless container) host root is nobody: a link of
    root's in a directory of root's (as /var/run -> /run) shows as nobody's in nobody's."""
    uid = 4242
    program = build_c_program("in_user_namespace", _IN_USER_NAMESPACE, "-I", str(pathlib.Path(__file__).parent))
    base = pathlib.Path(tempfile.mkdtemp(prefix="wpptrace-userns-"))
    try:
        os.chmod(base, 0o755)
        mine = base / "mine"
        mine.mkdir(mode=0o700)
        os.chown(mine, uid, uid)
        by_root = base / "by-root"
        by_root.mkdir(mode=0o755)
        (by_root / "out").symlink_to(mine)
        env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(mine / "rt"))
        run = subprocess.run([str(program), str(uid), str(by_root / "out"), session_name],
                             capture_output=True, text=True, timeout=60, env=env)
        assert run.stdout.split() == ["root", str(NOBODY), "link", str(NOBODY), "start", "0"], run
        assert run.returncode == 0
        made = (mine / f"{session_name}.etl").stat()
        assert made.st_size >= 1024 and made.st_uid == uid        # its header buffer, ours
    finally:
        shutil.rmtree(base)


def test_links_of_this_user_on_the_path_are_followed(session_name, tmp_path):
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (tmp_path / "home").symlink_to(real)                             # a home directory that is a link
    (tmp_path / "up").symlink_to("real/sub/..")                      # relative, with ..
    (tmp_path / "chain").symlink_to(tmp_path / "home")               # a link to a link
    for n, path in enumerate((tmp_path / "home" / "a.etl", tmp_path / "up" / "sub" / ".." / "b.etl",
                              tmp_path / "chain" / "sub" / "c.etl")):
        with TraceSession(f"{session_name}-{n}", path):
            pass
    for made in (real / "a.etl", real / "b.etl", real / "sub" / "c.etl"):
        assert made.stat().st_size >= 4096 and stat.S_IMODE(made.stat().st_mode) == 0o600


_BEHIND_AN_AUTOMOUNT_POINT = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x00020000) != 0 or libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) != 0:
    sys.exit(f"mount namespace: {os.strerror(ctypes.get_errno())}")     # CLONE_NEWNS; MS_REC|MS_PRIVATE
if libc.mount(b"none", os.fsencode(sys.argv[1]), b"debugfs", 0, None) != 0:
    sys.exit(f"debugfs: {os.strerror(ctypes.get_errno())}")
import wpptrace.provider as P
from wpptrace.winerror import Win32Error
try:
    P.StartTrace(sys.argv[2], P.EVENT_TRACE_PROPERTIES(BufferSize=4, MinimumBuffers=2, MaximumBuffers=4,
                 LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL, LogFileName=sys.argv[1] + "/tracing/x.etl"))
    print("started")
except Win32Error as exc:
    print(exc.name)
"""


def _debugfs_mountable() -> bool:
    with open("/proc/filesystems") as f:
        return os.geteuid() == 0 and any(line.split()[-1:] == ["debugfs"] for line in f)


@pytest.mark.skipif(not _debugfs_mountable(), reason="needs root and debugfs to make an automount point")
def test_a_directory_on_the_path_that_is_an_automount_point_is_mounted(session_name, tmp_path):
    """debugfs's tracing directory is a kernel automount point (as an autofs one is): walked
    into untriggered, the next step finds an empty debugfs directory (ERROR_BAD_PATHNAME); walked
    into mounted, it finds tracefs, which makes no files (ERROR_ACCESS_DENIED, nothing made)."""
    (tmp_path / "dbg").mkdir()
    run = subprocess.run([sys.executable, "-c", _BEHIND_AN_AUTOMOUNT_POINT, str(tmp_path / "dbg"), session_name],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["ERROR_ACCESS_DENIED"]


def test_a_file_on_the_path_is_no_directory_and_nothing_is_made(session_name, tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    (tmp_path / "to-plain").symlink_to("plain")
    for path in (tmp_path / "plain" / "trace.etl", tmp_path / "to-plain" / "trace.etl"):
        assert _start_code(session_name, path) == L.ERROR_BAD_PATHNAME
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "to-plain"]


def test_a_link_loop_on_the_path_is_refused(session_name, tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    assert _start_code(session_name, tmp_path / "a" / "trace.etl") == L.ERROR_BAD_PATHNAME


@pytest.mark.skipif(os.geteuid() != 0, reason="a file of another user needs root to make")
def test_a_file_of_another_user_is_refused_and_kept(session_name, tmp_path):
    victim = _victim(tmp_path)
    os.chown(victim, NOBODY, NOBODY)
    assert _start_code(session_name, victim) == L.ERROR_ACCESS_DENIED
    assert _unchanged(victim) and victim.stat().st_uid == NOBODY


def test_switching_to_a_planted_link_is_refused(session_name, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "next.etl"
    link.symlink_to(victim)
    with TraceSession(session_name, tmp_path / "first.etl") as s:
        props = s.query()
        props.LogFileName = str(link)
        with pytest.raises(Win32Error) as err:
            P.ControlTrace(s.handle, None, props, P.EVENT_TRACE_CONTROL_UPDATE)
        assert err.value.winerror == L.ERROR_ACCESS_DENIED
        assert s.query().LogFileName == str(tmp_path / "first.etl")
    assert _unchanged(victim)


_HOLD_A_LEASE = r"""
import fcntl, os, signal, sys
signal.signal(signal.SIGIO, signal.SIG_IGN)      # told of the break: hold on all the same
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_file_another_process_holds_a_lease_on_is_busy_at_once(session_name, tmp_path):
    """An open for writing waits for a read lease's holder to let go, up to the kernel's
    lease-break-time (45 s), with the thread's cancellation held off: the file is refused at once
    (ERROR_BUSY) and left as it is."""
    victim = _victim(tmp_path)
    os.chmod(victim, 0o600)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_A_LEASE, str(victim)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert _start_code(session_name, victim) == L.ERROR_BUSY
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert victim.read_bytes() == b"precious data\n"


def test_a_new_file_that_could_not_be_started_is_not_left_behind(session_name, tmp_path):
    """UPDATE to a new file that cannot be started (its header not written: a full disk) leaves
    no file behind: neither the one made to see that it could be made, nor the one started."""
    private = P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC
    second = tmp_path / "second.etl"
    with TraceSession(session_name, tmp_path / "first.etl", BufferSize=4, LogFileMode=private) as s:
        props = s.query()
        props.LogFileName = str(second)
        L.wpptrace_debug_fail_file_writes(0, 1 << 30, 28)          # ENOSPC from now on
        try:
            with pytest.raises(Win32Error) as raised:
                P.ControlTrace(s.handle, None, props, P.EVENT_TRACE_CONTROL_UPDATE)
        finally:
            L.wpptrace_debug_fail_file_writes(0, 0, 0)
        assert raised.value.new_file_error.name == "ERROR_DISK_FULL"
        assert not second.exists()


def test_an_own_file_is_emptied_and_made_private(session_name, tmp_path):
    old = tmp_path / "old.etl"
    old.write_bytes(b"x" * 100000)
    os.chmod(old, 0o644)
    with TraceSession(session_name, old):
        pass
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert old.read_bytes()[:100000].count(b"x") < 1000        # a new trace, not the old bytes after it


def test_the_session_command_says_why_in_one_line(session_name, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "trace.etl"
    link.symlink_to(victim)
    cli = subprocess.run([sys.executable, "-m", "wpptrace", "session", "start", session_name, "-f", str(link)],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and _unchanged(victim)
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and str(link) in lines[0] and "ERROR_ACCESS_DENIED" in lines[0]
    assert "symbolic link" in lines[0]


def _cli_refusal(session_name, path) -> str:
    cli = subprocess.run([sys.executable, "-m", "wpptrace", "session", "start", session_name, "-f", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "ERROR_ACCESS_DENIED" in lines[0]
    return lines[0]


def test_the_session_command_says_a_second_hard_link_is_why(session_name, tmp_path):
    victim = _victim(tmp_path)
    os.link(victim, tmp_path / "trace.etl")
    assert "2 hard links" in _cli_refusal(session_name, tmp_path / "trace.etl") and _unchanged(victim)


@pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user needs root to make")
def test_the_session_command_names_a_link_of_another_user_on_the_path(session_name, tmp_path):
    victim, path = _planted_parent(tmp_path)
    line = _cli_refusal(session_name, path)
    assert f"the link {path.parent} on its path belongs to user {NOBODY}" in line and _unchanged(victim)


@pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user needs root to make")
def test_the_session_command_names_a_link_of_another_user_reached_through_an_own_link(session_name, tmp_path):
    """The path names only our own link; the link of another user is on the way it leads: the
    command says which link, as the core found it (a walk of the path by its names saw none)."""
    victim, path = _planted_parent(tmp_path)
    (tmp_path / "mine").symlink_to(path.parent)
    line = _cli_refusal(session_name, tmp_path / "mine" / "new.etl")
    assert f"the link {path.parent} on its path belongs to user {NOBODY}" in line and _unchanged(victim)


def test_the_rule_that_refused_a_path_is_said_and_a_usable_path_is_left_alone(tmp_path):
    from wpptrace.provider.sessions import log_path_refusal

    victim = _victim(tmp_path)
    (tmp_path / "trace.etl").symlink_to(victim)
    assert log_path_refusal(str(tmp_path / "trace.etl")).startswith("it is a symbolic link")
    assert log_path_refusal(str(tmp_path / "new.etl")) == "" and not (tmp_path / "new.etl").exists()
    assert log_path_refusal(str(tmp_path / "missing" / "new.etl")) == ""
    assert _unchanged(victim)


def _shared_directory(tmp_path):
    """A directory others may write to (sticky, as /tmp is) that is not this user's."""
    if os.geteuid() == 0:
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o1777)
        os.chown(shared, NOBODY, NOBODY)
        return shared
    st = os.stat("/tmp")
    if st.st_uid == os.geteuid() or not st.st_mode & 0o002:
        pytest.skip("needs root, or a /tmp of another user that others may write to")
    return pathlib.Path("/tmp")


@pytest.fixture
def own_link_in_shared(tmp_path):
    """This user's link, in a directory others may write to, to a directory of this user."""
    real = tmp_path / "real"
    real.mkdir()
    link = _shared_directory(tmp_path) / f"wpptrace-link-{uuid.uuid4().hex}"
    link.symlink_to(real)
    yield real, link
    link.unlink()


def test_an_own_link_in_a_directory_others_may_write_to_is_refused(session_name, own_link_in_shared):
    real, link = own_link_in_shared
    assert _start_code(session_name, link / "trace.etl") == L.ERROR_ACCESS_DENIED
    assert not (real / "trace.etl").exists()


def test_an_own_link_in_an_own_directory_others_may_write_to_is_followed(session_name, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    shared = tmp_path / "mine"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (shared / "ln").symlink_to(real)
    with TraceSession(session_name, shared / "ln" / "trace.etl"):
        pass
    assert (real / "trace.etl").stat().st_size >= 4096


def test_the_session_command_names_the_rule_for_a_link_in_a_shared_directory(session_name, own_link_in_shared):
    real, link = own_link_in_shared
    line = _cli_refusal(session_name, link / "trace.etl")
    assert f"the link {link} on its path is in a directory others may write to" in line
    assert "protected_symlinks" in line and not (real / "trace.etl").exists()
