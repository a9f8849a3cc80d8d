# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run at a time: an exclusive flock on the lab's lock file (and a run's).

The lock is held by a small detached *holder* process (started with an argv,
no shell): it takes the flock itself, writes who holds it into the lock file
(JSON: holder pid, start time, run id, owner pid, host), and exits - releasing
the lock - when its *owner* (the ansible-playbook process that took it) is gone
or when it is told to (SIGTERM, ``state: released``). A PID reused by another
process does not keep the lock: the owner is recognised by PID and start time.

Who holds a lock is read from /proc/locks (the kernel's word, not the file's),
so a crashed holder never blocks a run, and asking takes nothing.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

LOCK_ROOT = "/run/xdplab"
LAB_LOCK = LOCK_ROOT + "/lab.lock"
RUN_LOCK_NAME = ".lock"
HOLDER_MARK = "xdplab-run-lock-holder"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

# The holder: argv[1] is HOLDER_MARK (so it can be recognised), argv[2] its JSON settings.
# Prints one JSON line on stdout ({"ok": pid} or {"busy": path}) and then keeps the locks.
HOLDER_SOURCE = r'''
import fcntl, json, os, signal, sys, time
cfg = json.loads(sys.argv[2])
fds = []

def starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]

def finish(*_args):
    for fd in fds:
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
    os._exit(0)

signal.signal(signal.SIGTERM, finish)
signal.signal(signal.SIGINT, finish)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
for path in cfg["paths"]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.stdout.write(json.dumps({"busy": path}) + "\n")
        sys.stdout.flush()
        os._exit(1)
    fds.append(fd)
info = dict(cfg["info"], pid=os.getpid(), started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
for fd in fds:
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode("utf-8"), 0)
sys.stdout.write(json.dumps({"ok": os.getpid()}) + "\n")
sys.stdout.flush()
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 1)
while starttime(cfg["owner_pid"]) == cfg["owner_start"]:
    time.sleep(0.5)
finish()
'''


class LockError(Exception):
    def __init__(self, msg, **details):
        super(LockError, self).__init__(msg)
        self.msg = msg
        self.details = details


def starttime(pid, proc="/proc"):
    """The process's start time (clock ticks since boot, field 22 of stat) as a string, or None.

    None also for a zombie: a process that has exited but is not reaped yet no longer owns a lock.
    """
    try:
        with open(os.path.join(proc, str(int(pid)), "stat")) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError, ValueError, TypeError):
        return None


def _parent(pid, proc="/proc"):
    try:
        with open(os.path.join(proc, str(pid), "stat")) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def cmdline(pid, proc="/proc"):
    try:
        with open(os.path.join(proc, str(pid), "cmdline"), "rb") as handle:
            return [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
    except OSError:
        return []


def _is_playbook(argv):
    return any(os.path.basename(a) == "ansible-playbook" for a in argv[:2])


def find_playbook_pid(start=None, proc="/proc"):
    """The outermost ansible-playbook process among the ancestors of ``start`` (default: this process)."""
    pid = start or os.getpid()
    found = None
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        if _is_playbook(cmdline(pid, proc)):
            found = pid
        pid = _parent(pid, proc)
    return found


def flock_holders(path, proc="/proc"):
    """PIDs holding a flock on ``path`` (from /proc/locks; blocked waiters are not holders)."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    want = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids = []
    try:
        with open(os.path.join(proc, "locks")) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->" or fields[1] != "FLOCK":
            continue
        if fields[5] == want:
            try:
                pids.append(int(fields[4]))
            except ValueError:
                continue
    return pids


def read_info(path):
    """What the lock file says about its holder ({} if nothing readable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        data = os.read(fd, 65536)
    finally:
        os.close(fd)
    try:
        info = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def holder(path, proc="/proc"):
    """``None`` if nobody holds ``path``, else a dict: pid (from the kernel) and what the file says."""
    pids = flock_holders(path, proc)
    if not pids:
        return None
    info = read_info(path)
    result = dict(info)
    result["pid"] = pids[0]
    result["is_holder_process"] = HOLDER_MARK in cmdline(pids[0], proc)
    if info.get("pid") != pids[0]:
        # The file describes another (earlier) holder, or none: trust only the kernel's pid.
        for key in ("run_id", "owner_pid", "owner_start", "started_at", "host"):
            result.pop(key, None)
    return result


def describe(path, info):
    return ("%s is held by pid %s (started %s, run id %s, for ansible-playbook pid %s on %s)"
            % (path, info.get("pid"), info.get("started_at", "at an unknown time"), info.get("run_id", "unknown"),
               info.get("owner_pid", "unknown"), info.get("host", "an unknown host")))


def owned_by(info, owner_pid, owner_start):
    return (bool(info) and info.get("is_holder_process") and info.get("owner_pid") == owner_pid
            and info.get("owner_start") == owner_start)


def spawn_holder(paths, owner_pid, owner_start, run_id, python=None, timeout=START_TIMEOUT):
    """Start the detached holder for ``paths``; return its pid, or raise LockError (busy or broken)."""
    cfg = {"paths": list(paths), "owner_pid": owner_pid, "owner_start": owner_start,
           "info": {"run_id": run_id, "owner_pid": owner_pid, "owner_start": owner_start,
                    "host": socket.gethostname(), "lock_files": list(paths)}}
    argv = [python or sys.executable, "-c", HOLDER_SOURCE, HOLDER_MARK, json.dumps(cfg)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            close_fds=True, start_new_session=True, cwd="/")
    ready = select.select([proc.stdout], [], [], timeout)[0]
    line = proc.stdout.readline() if ready else b""
    proc.stdout.close()
    try:
        answer = json.loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        answer = {}
    if answer.get("ok") == proc.pid:
        return proc.pid
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    proc.wait()
    if "busy" in answer:
        busy = answer["busy"]
        info = holder(busy) or {}
        raise LockError("another run took the lock first: %s" % describe(busy, info), holder=info)
    raise LockError("the lock holder did not start within %s s (exit status %s)" % (timeout, proc.returncode))


def stop_holder(pid, paths, timeout=STOP_TIMEOUT):
    """SIGTERM the holder ``pid`` and wait until it no longer holds ``paths``."""
    if HOLDER_MARK not in cmdline(pid):
        raise LockError("pid %s is not an xdplab lock holder; not ending it" % pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid in flock_holders(p) for p in paths):
            return True
        time.sleep(0.05)
    raise LockError("the lock holder pid %s did not end within %s s" % (pid, timeout))
