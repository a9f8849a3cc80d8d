# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AF_XDP worker (bpf/afxdp/xl-afxdp): settings, state files, start and stop.

The afxdp_worker module is a thin wrapper over ``ensure_started``/``ensure_stopped`` at the end of this file.

* Pure parts (unit-tested without root): ``validate``, ``want_settings``,
  ``worker_argv``, ``parse_proc_stat``, ``same_worker``, ``summarize``,
  ``diff``, ``parse_link_fdinfo``.
* Host parts: ``load_state`` (state files + is the recorded process alive),
  ``attached_program`` (what XDP program the interface has), ``start``,
  ``stop``, ``remove_stale_program``, ``link_holders``.

One worker serves one interface (it attaches its own redirect program, and an
interface has one XDP program per mode). Its files live in
``/run/xdplab/afxdp/<netns or root>/<interface>/``: ``worker.json`` (the
settings it was started with, pid and start time), ``stats.json`` (rewritten
atomically by the worker a few times per second; its final counters after a
stop) and ``worker.log`` (its stderr and its final JSON line).

A worker is recognised as alive only if its pid still runs with the recorded
start time (pids are reused). The redirect program is named
``xl_afxdp_redir``; one attached while no recorded worker is alive is stale
(left by a worker attached through netlink and killed) and is removed.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from ansible_collections.xdplab.offload.plugins.module_utils import libbpf, programs, safety, xdp

STATE_ROOT = "/run/xdplab/afxdp"
RECORD_FILE = "worker.json"
STATS_FILE = "stats.json"
LOG_FILE = "worker.log"
REDIRECT_PROG_NAME = "xl_afxdp_redir"
STATS_INTERVAL_MS = 250
MAX_QUEUES = 64
MAX_BATCH = 1024
RING_SIZES = tuple(1 << k for k in range(6, 15))  # 64 .. 16384
LOCATIONS = {"driver": "afxdp", "generic": "afxdp_generic"}
COUNTER_NAMES = ("seen", "dropped", "tx", "passed", "redirected")
# Settings that identify a running worker (a difference means: restart it).
SETTING_KEYS = ("interface", "netns", "program", "defines", "queue", "copy_mode", "need_wakeup", "busy_poll",
                "batch_size", "cpu", "xdp_mode", "attach", "ring_size", "build_key")


class AfxdpError(Exception):
    """A failure with one actionable sentence in ``msg`` and details apart."""

    def __init__(self, msg, **details):
        super(AfxdpError, self).__init__(msg)
        self.msg = msg
        self.details = details


# --------------------------------------------------------------- pure logic

def state_dir(interface, netns=None, root=STATE_ROOT):
    """Directory of the worker files of one interface."""
    return os.path.join(root, netns or "root", interface)


def confined_state_dir(interface, netns=None, root=STATE_ROOT, top=STATE_ROOT):
    """The worker directory of one interface, checked before anything is written or removed there.

    ``interface`` and ``netns`` must be plain names, ``root`` (option
    state_root) must resolve to ``top`` or below it, and the directory to
    strictly below ``root``; AfxdpError names the offending option otherwise.
    Returns (resolved root, resolved directory).
    """
    try:
        safety.interface_name(interface, "interface")
        safety.netns_name(netns, "netns")
        real_root = safety.confined(root, top, "state_root")
        return real_root, safety.strictly_under(state_dir(interface, netns, real_root), real_root, "interface")
    except safety.UnsafeInput as exc:
        raise AfxdpError(exc.msg, option=exc.option)


def location_of(xdp_mode):
    """The experiment matrix's location name for a worker in ``xdp_mode``."""
    return LOCATIONS[xdp_mode]


def validate(params, ncpus):
    """Check the socket options; raise AfxdpError naming the option and the allowed range."""
    queue = params.get("queue", 0)
    if not 0 <= queue < MAX_QUEUES:
        raise AfxdpError("queue %d is out of range: the worker serves RX queues 0..%d" % (queue, MAX_QUEUES - 1),
                         option="queue")
    ring = params.get("ring_size", 2048)
    if ring not in RING_SIZES:
        raise AfxdpError("ring_size %d must be a power of 2 between %d and %d"
                         % (ring, RING_SIZES[0], RING_SIZES[-1]), option="ring_size")
    batch = params.get("batch_size", 64)
    if not 1 <= batch <= min(MAX_BATCH, ring):
        raise AfxdpError("batch_size %d is out of range: use 1..%d (at most ring_size %d and %d)"
                         % (batch, min(MAX_BATCH, ring), ring, MAX_BATCH), option="batch_size")
    cpu = params.get("cpu")
    if cpu is not None and not 0 <= cpu < ncpus:
        raise AfxdpError("cpu %d does not exist: this host has CPUs 0..%d" % (cpu, ncpus - 1), option="cpu")


def normalized_defines(defines):
    """Defines as a JSON-stable dict of strings (None for a bare -DNAME)."""
    return dict(programs.validate_defines(defines))


def want_settings(params, build_key):
    """The settings a worker must have, from the module's parameters."""
    return {
        "interface": params["interface"],
        "netns": params.get("netns"),
        "program": params["program"],
        "defines": normalized_defines(params.get("defines")),
        "queue": params.get("queue", 0),
        "copy_mode": params.get("copy_mode", "auto"),
        "need_wakeup": bool(params.get("need_wakeup", True)),
        "busy_poll": bool(params.get("busy_poll", False)),
        "batch_size": params.get("batch_size", 64),
        "cpu": params.get("cpu"),
        "xdp_mode": params.get("xdp_mode", "driver"),
        "attach": params.get("attach", "link"),
        "ring_size": params.get("ring_size", 2048),
        "build_key": build_key,
    }


def worker_argv(binary, settings, stats_path, stats_interval_ms=STATS_INTERVAL_MS):
    """The worker's command line for ``settings`` (no shell involved)."""
    argv = [binary, "--interface", settings["interface"]]
    if settings.get("netns"):
        argv += ["--netns", settings["netns"]]
    argv += ["--queue", str(settings["queue"]),
             "--copy-mode", settings["copy_mode"],
             "--need-wakeup" if settings["need_wakeup"] else "--no-need-wakeup",
             "--busy-poll" if settings["busy_poll"] else "--poll",
             "--batch-size", str(settings["batch_size"]),
             "--xdp-mode", settings["xdp_mode"],
             "--attach", settings["attach"],
             "--ring-size", str(settings["ring_size"]),
             "--stats-file", stats_path,
             "--stats-interval", str(stats_interval_ms)]
    if settings.get("cpu") is not None:
        argv += ["--cpu", str(settings["cpu"])]
    return argv


def parse_proc_stat(text):
    """(state letter, start time in clock ticks) from the text of /proc/<pid>/stat.

    The command name (field 2) may hold spaces and parentheses, so fields are
    counted from the last ')'.
    """
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[19])


def same_worker(want, record, alive, attached_prog_id):
    """True if the recorded worker is alive, has exactly the wanted settings and its program is attached."""
    if not record or not alive:
        return False
    if dict((k, record.get("settings", {}).get(k)) for k in SETTING_KEYS) != dict((k, want.get(k))
                                                                                  for k in SETTING_KEYS):
        return False
    return bool(record.get("prog_id")) and record.get("prog_id") == attached_prog_id


def diff(before_settings, after_settings):
    """Ansible diff of two settings dicts (None = no worker)."""
    def view(settings):
        if not settings:
            return {}
        return dict((k, v) for k, v in settings.items() if k != "build_key")
    return {"before": view(before_settings), "after": view(after_settings)}


def _zero_counters():
    return dict((name, {"packets": 0, "bytes": 0}) for name in COUNTER_NAMES)


def summarize(stats):
    """The module's view of a worker's stats object (None-safe)."""
    stats = stats or {}
    counters = _zero_counters()
    counters.update(stats.get("counters") or {})
    xdp_mode = stats.get("xdp_mode")
    return {
        "status": stats.get("status"),
        "pid": stats.get("pid"),
        "bind_mode": stats.get("bind_mode"),
        "fallback": stats.get("fallback"),
        "location": LOCATIONS.get(xdp_mode) if xdp_mode else None,
        "prog_id": stats.get("prog_id"),
        "counters": counters,
        "kernel_counters": stats.get("kernel"),
        "xsk_stats": stats.get("xsk"),
        "tx_completed": stats.get("tx_completed", 0),
        "cpu_ns": stats.get("cpu_ns"),
        "elapsed_s": stats.get("elapsed_s"),
        "n": stats.get("n"),
    }


def parse_link_fdinfo(text):
    """(link_type, prog_id) of a /proc/<pid>/fdinfo/<fd> text, or None if it is not a BPF link."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if "link_type" not in fields or "prog_id" not in fields:
        return None
    try:
        return fields["link_type"], int(fields["prog_id"])
    except ValueError:
        return None


# --------------------------------------------------------------- files

def prebuilt_info(binary, timeout=10.0):
    """What a prebuilt worker binary runs (its ``--info``) and a digest of the file.

    Returns ``{"program", "defines", "digest", ...}``; AfxdpError if the file
    is missing, not executable or not an xdplab AF_XDP worker.
    """
    check_executable(binary)
    try:
        proc = subprocess.run([binary, "--info"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AfxdpError("cannot run the prebuilt worker %s --info: %s" % (binary, exc), binary=binary)
    try:
        info = json.loads(proc.stdout.decode("utf-8", "replace"))
    except ValueError:
        info = None
    if proc.returncode != 0 or not isinstance(info, dict) or "program" not in info:
        raise AfxdpError("%s is not an xdplab AF_XDP worker: its --info printed no program (exit %d): %s"
                         % (binary, proc.returncode, proc.stderr.decode("utf-8", "replace").strip()[-300:]),
                         binary=binary)
    info["digest"] = file_digest(binary)
    return info


def check_executable(binary):
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        raise AfxdpError("the prebuilt worker %s does not exist or is not executable" % binary, binary=binary,
                         option="binary")


def file_digest(path):
    """sha256 of a file's contents (reads it, runs nothing)."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def parse_defines_text(text):
    """The worker's defines text (``N=100,X``) back into a dict (None for a bare name)."""
    out = {}
    for item in (text or "").split(","):
        if item:
            name, sep, value = item.partition("=")
            out[name] = value if sep else None
    return out


def read_json(path):
    """A JSON object from ``path`` or None (missing, empty or half-written)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path, data):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_state(sdir, root=STATE_ROOT):
    """Remove a worker's directory (and its per-namespace parent if that is now empty).

    Only a directory strictly under ``root`` (links and ``..`` resolved) is
    touched; anything else raises AfxdpError and nothing is removed.
    """
    try:
        sdir = safety.strictly_under(sdir, root, "state_root")
    except safety.UnsafeInput as exc:
        raise AfxdpError(exc.msg, option=exc.option)
    if os.path.isdir(sdir):
        shutil.rmtree(sdir)
    parent = os.path.dirname(sdir)
    if parent != os.path.realpath(root):
        try:
            os.rmdir(parent)  # the per-namespace directory, if now empty
        except OSError:
            pass


def log_tail(path, lines=20):
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            text = handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------- processes

def proc_info(pid, proc="/proc"):
    """(state, starttime) of a pid, or None if there is no such process."""
    try:
        with open(os.path.join(proc, str(int(pid)), "stat")) as handle:
            return parse_proc_stat(handle.read())
    except (IOError, OSError, ValueError, IndexError):
        return None


def is_alive(pid, starttime, proc="/proc"):
    """The process runs (not a zombie) and is the one that was recorded."""
    if not pid:
        return False
    info = proc_info(pid, proc)
    return bool(info) and info[0] not in ("Z", "X", "x") and info[1] == starttime


def load_state(sdir, proc="/proc"):
    """What the state directory says: {record, alive, stats}."""
    record = read_json(os.path.join(sdir, RECORD_FILE))
    alive = bool(record) and is_alive(record.get("pid"), record.get("starttime"), proc)
    return {"record": record, "alive": alive, "stats": read_json(os.path.join(sdir, STATS_FILE))}


def link_holders(prog_id, proc="/proc"):
    """Pids holding an XDP BPF link of program ``prog_id`` (scans /proc/*/fdinfo)."""
    holders = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        fddir = os.path.join(proc, entry, "fdinfo")
        try:
            fds = os.listdir(fddir)
        except OSError:
            continue
        for fd in fds:
            try:
                with open(os.path.join(fddir, fd)) as handle:
                    parsed = parse_link_fdinfo(handle.read())
            except (IOError, OSError):
                continue
            if parsed and parsed[0] == "xdp" and parsed[1] == prog_id:
                holders.append(int(entry))
                break
    return sorted(holders)


# The socket of a worker that just ended is released by the kernel a little later (deferred work):
# a new worker's bind may still find the queue busy (EBUSY) for a moment, so it is tried again.
BUSY_RETRY_S = 3.0


def start(binary, settings, sdir, timeout=15.0, root=STATE_ROOT):
    """Start a worker (``_start_once``), again for up to BUSY_RETRY_S while its queue is still busy."""
    until = time.monotonic() + BUSY_RETRY_S
    while True:
        try:
            return _start_once(binary, settings, sdir, timeout, root)
        except AfxdpError as exc:
            if abs(int(exc.details.get("errno") or 0)) != errno.EBUSY or time.monotonic() >= until:
                raise
            time.sleep(0.2)


def _start_once(binary, settings, sdir, timeout=15.0, root=STATE_ROOT):
    """Start a worker for ``settings``; wait until it runs; return (record, stats).

    On failure the worker is gone (it cleans up after itself; killed if it
    hangs), the state directory removed, and AfxdpError carries the worker's
    own message, its errno and the tail of its log. ``sdir`` must lie
    strictly under ``root``.
    """
    try:
        sdir = safety.strictly_under(sdir, root, "state_root")
    except safety.UnsafeInput as exc:
        raise AfxdpError(exc.msg, option=exc.option)
    os.makedirs(sdir, mode=0o755, exist_ok=True)
    stats_path = os.path.join(sdir, STATS_FILE)
    log_path = os.path.join(sdir, LOG_FILE)
    for path in (stats_path, os.path.join(sdir, RECORD_FILE)):
        if os.path.exists(path):
            os.unlink(path)
    argv = worker_argv(binary, settings, stats_path)
    with open(log_path, "wb") as log, open(os.devnull, "rb") as devnull:
        try:
            proc = subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=log, cwd="/", close_fds=True,
                                    start_new_session=True)
        except OSError as exc:
            remove_state(sdir, root)
            raise AfxdpError("cannot run the AF_XDP worker %s: %s" % (binary, exc.strerror or exc),
                             command=argv)
    deadline = time.monotonic() + timeout
    stats = None
    while True:
        stats = read_json(stats_path)
        if stats and stats.get("status") == "running" and stats.get("pid") == proc.pid:
            break
        if proc.poll() is not None:
            stats = read_json(stats_path)
            tail = log_tail(log_path)
            remove_state(sdir, root)
            if stats and stats.get("error"):
                raise AfxdpError(stats["error"], errno=stats.get("errno"), worker_log=tail, command=argv)
            raise AfxdpError("the AF_XDP worker exited with status %s before it was ready (see worker_log)"
                             % proc.returncode, worker_log=tail, command=argv)
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            tail = log_tail(log_path)
            remove_state(sdir, root)
            raise AfxdpError("the AF_XDP worker was not ready within %.0f s and was killed (see worker_log)"
                             % timeout, worker_log=tail, command=argv)
        time.sleep(0.02)
    info = proc_info(proc.pid)
    record = {
        "pid": proc.pid,
        "starttime": info[1] if info else None,
        "binary": binary,
        "argv": argv,
        "settings": settings,
        "prog_id": stats.get("prog_id"),
        "started_at": time.time(),
        "stats_file": stats_path,
        "log_file": log_path,
    }
    write_json_atomic(os.path.join(sdir, RECORD_FILE), record)
    # The worker lives on in its own session after the module has exited.
    return record, stats


def stop(record, sdir, timeout=10.0, proc="/proc"):
    """Stop a recorded worker with SIGTERM (SIGKILL after ``timeout``); return (stats, final, killed).

    ``final`` is True when the worker wrote its final counters (a clean stop).
    """
    pid, starttime = record.get("pid"), record.get("starttime")
    killed = False
    if is_alive(pid, starttime, proc):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise AfxdpError("cannot stop the AF_XDP worker (pid %d): %s" % (pid, exc.strerror))
        deadline = time.monotonic() + timeout
        while is_alive(pid, starttime, proc) and time.monotonic() < deadline:
            time.sleep(0.02)
        if is_alive(pid, starttime, proc):
            os.kill(pid, signal.SIGKILL)
            killed = True
            deadline = time.monotonic() + 5.0
            while is_alive(pid, starttime, proc) and time.monotonic() < deadline:
                time.sleep(0.02)
    stats = read_json(os.path.join(sdir, STATS_FILE))
    final = bool(stats) and stats.get("pid") == pid and stats.get("status") in ("stopped", "failed")
    return stats, final, killed


# --------------------------------------------------------------- XDP side

def wait_released(netns, interface, prog_id, timeout=5.0, interval=0.05):
    """After our worker exited: wait until the kernel has released its program.

    A BPF link is released when the exiting process's files are torn down,
    which can trail the exit; until then the program still shows as attached
    and would look like a stale one. Returns the interface's program then.
    """
    deadline = time.monotonic() + timeout
    have = attached_program(netns, interface)
    while prog_id and have["prog_id"] == prog_id and time.monotonic() < deadline:
        time.sleep(interval)
        have = attached_program(netns, interface)
    return have


def attached_program(netns, interface):
    """The interface's XDP program: {ifindex, mode, prog_id, name} (mode/prog_id None if none)."""
    with xdp.open_netlink(netns) as ipr:
        ifindex = xdp.lookup(ipr, interface, netns)
        state = xdp.query(ipr, ifindex)
    have = {"ifindex": ifindex, "mode": state["mode"], "prog_id": state["prog_id"] or None, "name": None}
    if have["prog_id"]:
        try:
            fd = libbpf.prog_fd_by_id(have["prog_id"])
        except libbpf.BpfError:
            return have  # detached meanwhile
        try:
            have["name"] = libbpf.prog_info(fd)["name"]
        finally:
            os.close(fd)
    return have


def is_worker_program(have):
    return bool(have.get("prog_id")) and have.get("name") == REDIRECT_PROG_NAME


def remove_stale_program(netns, interface, have, proc="/proc"):
    """Detach a worker's redirect program that no live recorded worker owns.

    A program attached through a BPF link that some live process holds cannot
    be detached through netlink (EBUSY): then another worker, not managed
    from this state directory, serves the interface and AfxdpError says which.
    """
    where = "%s in namespace %s" % (interface, netns) if netns else interface
    try:
        with xdp.open_netlink(netns) as ipr:
            xdp.detach(ipr, have["ifindex"], have["mode"], interface, netns)
    except xdp.XdpError as exc:
        if exc.errno != errno.EBUSY:
            raise AfxdpError(exc.msg, errno=exc.errno)
        holders = link_holders(have["prog_id"], proc)
        raise AfxdpError("%s is already served by another AF_XDP worker that this module did not start "
                         "(redirect program id %d, held by pid %s); stop that process first"
                         % (where, have["prog_id"], ", ".join(str(p) for p in holders) or "unknown"),
                         errno=errno.EBUSY, holders=holders, prog_id=have["prog_id"])


# ------------------------------------------------ the afxdp_worker module's work

# The afxdp_worker module's options and their defaults (None: not given).
WORKER_DEFAULTS = {
    "netns": None,
    "program": None,
    "defines": {},
    "binary": None,
    "queue": 0,
    "xdp_mode": "driver",
    "copy_mode": "auto",
    "need_wakeup": True,
    "busy_poll": False,
    "batch_size": 64,
    "cpu": None,
    "ring_size": 2048,
    "attach": "link",
    "bpf_dir": "/opt/xdplab/bpf",
    "build_dir": "/var/cache/xdplab/bpf",
    "state_root": STATE_ROOT,
    "cc": "cc",
    "clang": "clang",
    "start_timeout": 15.0,
    "stop_timeout": 10.0,
}


def worker_common(params):
    """The options every afxdp_worker result and failure repeats."""
    return dict((key, params.get(key, WORKER_DEFAULTS.get(key))) for key in (
        "interface", "netns", "queue", "copy_mode", "need_wakeup", "busy_poll", "batch_size", "cpu", "attach"))


def _where(p):
    return "%s in namespace %s" % (p["interface"], p["netns"]) if p["netns"] else p["interface"]


def _foreign_program_error(p, have_xdp):
    return AfxdpError(
        "%s already has an XDP program attached (id %s, name %s, %s mode); detach it first (for example with "
        "xdplab.offload.xdp_program state=detached): the AF_XDP worker attaches its own redirect program"
        % (_where(p), have_xdp["prog_id"], have_xdp["name"] or "unknown", have_xdp["mode"]),
        errno=errno.EBUSY, prog_id=have_xdp["prog_id"])


def _check_stale(p, have_xdp, live_prog_id):
    """Id of a stale redirect program to remove (None if there is none); AfxdpError if it is someone's."""
    if not is_worker_program(have_xdp) or have_xdp["prog_id"] == live_prog_id:
        return None
    holders = link_holders(have_xdp["prog_id"])
    if holders:
        raise AfxdpError(
            "%s is already served by another AF_XDP worker that this module did not start (redirect program id %d, "
            "pid %s); stop that process first" % (_where(p), have_xdp["prog_id"], ", ".join(map(str, holders))),
            errno=errno.EBUSY, holders=holders, prog_id=have_xdp["prog_id"])
    return have_xdp["prog_id"]


def _view(summary):
    keys = ("pid", "location", "bind_mode", "fallback", "prog_id", "counters", "kernel_counters", "xsk_stats",
            "tx_completed", "cpu_ns", "elapsed_s")
    return dict((k, summary.get(k)) for k in keys)


def _crash_error(p, sdir, record, stats, cleaned):
    """AfxdpError for a recorded worker whose process is gone: state crashed, its log's tail, its last counters."""
    stats = stats or {}
    last_words = stats.get("error")
    tail = log_tail(os.path.join(sdir, LOG_FILE))
    if cleaned:
        then = ("its state directory and any redirect program it left were removed; counters are the last ones it "
                "wrote (not final)")
    else:
        then = "nothing was changed: stop it (state=stopped) to clean up and keep its last counters, then start again"
    details = dict(_view(summarize(stats)), state="crashed", crashed=True, final=False,
                   pid=record.get("pid"), worker_log=tail)
    return AfxdpError("the AF_XDP worker serving %s (pid %s) has crashed: its process is gone while its state "
                      "says it should run%s; %s (see worker_log)"
                      % (_where(p), record.get("pid"), " (its last error: %s)" % last_words if last_words else "",
                         then), **details)


def _prebuilt_unverified(p, record):
    """Check mode's view of O(binary): its digest only (running its --info is not allowed in check mode).

    The recorded worker's settings tell what a binary with the same digest runs
    (they were checked against its --info when it started). Returns (program,
    defines, build key, whether program and defines are known).
    """
    check_executable(p["binary"])
    key = "binary:" + file_digest(p["binary"])
    settings = (record or {}).get("settings") or {}
    if settings.get("build_key") != key:
        return p["program"], p["defines"], key, False
    if p["program"] and p["program"] != settings.get("program"):
        raise AfxdpError("the prebuilt worker %s runs program %s, not %s"
                         % (p["binary"], settings.get("program"), p["program"]), binary=p["binary"])
    have_defines = settings.get("defines") or {}
    if p["defines"] and normalized_defines(p["defines"]) != have_defines:
        raise AfxdpError("the prebuilt worker %s was built with defines %s, not %s"
                         % (p["binary"], programs.worker_defines_text(have_defines) or "(none)",
                            programs.worker_defines_text(p["defines"])), binary=p["binary"])
    return settings.get("program"), have_defines, key, True


def _prebuilt(p):
    """(program name, defines, build key) of the prebuilt worker O(binary), checked against the parameters."""
    info = prebuilt_info(p["binary"])
    have_defines = normalized_defines(parse_defines_text(info.get("defines")))
    if p["program"] and p["program"] != info["program"]:
        raise AfxdpError("the prebuilt worker %s runs program %s, not %s"
                         % (p["binary"], info["program"], p["program"]), binary=p["binary"])
    if p["defines"] and normalized_defines(p["defines"]) != have_defines:
        raise AfxdpError("the prebuilt worker %s was built with defines %s, not %s"
                         % (p["binary"], info.get("defines") or "(none)",
                            programs.worker_defines_text(p["defines"])), binary=p["binary"])
    return info["program"], have_defines, "binary:" + info["digest"]


def _started(p, root, sdir, have_state, have_xdp, check_mode):
    record, alive = have_state["record"], have_state["alive"]
    if record and not alive:
        raise _crash_error(p, sdir, record, have_state["stats"], cleaned=False)
    binary_checked = True
    if p["binary"] and check_mode:
        name, defines, key, binary_checked = _prebuilt_unverified(p, record)
        wp = None
    elif p["binary"]:
        name, defines, key = _prebuilt(p)
        wp = None
    else:
        wp = programs.resolve_worker_program(p["program"], p["bpf_dir"])
        name, defines = wp.name, p["defines"]
        key = programs.worker_build_key(wp, defines, p["bpf_dir"], p["cc"], p["clang"])
    want = want_settings(dict(p, program=p["program"] or name, defines=defines), key)
    before = record.get("settings") if record and alive else None
    result = dict(state_dir=sdir, xdp_mode=p["xdp_mode"], stale_program_removed=None,
                  program=name, defines=want["defines"], warnings=[])

    if same_worker(want, record, alive, have_xdp["prog_id"]):
        result.update(_view(summarize(have_state["stats"])), changed=False, binary=record.get("binary"),
                      stats_file=record.get("stats_file"))
        return result
    if have_xdp["prog_id"] and not is_worker_program(have_xdp):
        raise _foreign_program_error(p, have_xdp)
    stale = _check_stale(p, have_xdp, record.get("prog_id") if record and alive else None)
    result.update(changed=True, diff=diff(before, want))
    if check_mode:
        result.update(_view(summarize(None)), pid=None)
        if p["binary"]:
            result["binary_checked"] = binary_checked
        return result

    if wp is None:
        binary = p["binary"]
    else:
        binary = programs.build_worker(wp, p["defines"], p["bpf_dir"], p["build_dir"], p["cc"], p["clang"])[0]
    if record and alive:
        stats, final, killed = stop(record, sdir, p["stop_timeout"])
        result["replaced"] = dict(_view(summarize(stats)), final=final, killed=killed)
        have_xdp = wait_released(p["netns"], p["interface"], record.get("prog_id"))
        stale = _check_stale(p, have_xdp, None)
    if stale:
        remove_stale_program(p["netns"], p["interface"], have_xdp)
        result["stale_program_removed"] = stale
    remove_state(sdir, root)
    record, stats = start(binary, want, sdir, p["start_timeout"], root=root)
    summary = summarize(stats)
    if summary["fallback"]:
        result["warnings"].append(summary["fallback"])
    result.update(_view(summary), binary=binary, stats_file=record["stats_file"])
    return result


def _stopped(p, root, sdir, have_state, have_xdp, check_mode):
    record, alive = have_state["record"], have_state["alive"]
    result = dict(state_dir=sdir, xdp_mode=None, final=False, crashed=bool(record) and not alive,
                  stale_program_removed=None, changed=False, warnings=[])
    result.update(_view(summarize(have_state["stats"] if record else None)))
    if record:
        result["xdp_mode"] = record.get("settings", {}).get("xdp_mode")
        result["pid"] = record.get("pid")
    stale = None
    if have_xdp is not None:
        stale = _check_stale(p, have_xdp, record.get("prog_id") if record and alive else None)
    if not (record or stale or os.path.isdir(sdir)):
        result["pid"] = None
        return result
    result["changed"] = True
    result["diff"] = diff(record.get("settings") if record and alive else None, None)
    if check_mode:
        if record and not alive:
            raise _crash_error(p, sdir, record, have_state["stats"], cleaned=False)
        return result
    if record and alive:
        stats, final, killed = stop(record, sdir, p["stop_timeout"])
        result.update(_view(summarize(stats)), final=final, killed=killed)
        result["pid"] = record.get("pid")
    elif record:
        stats = have_state["stats"]
        result["final"] = bool(stats) and stats.get("status") in ("stopped", "failed")
    if have_xdp is not None:
        try:
            have_xdp = attached_program(p["netns"], p["interface"])
        except xdp.XdpError:
            have_xdp = None
    if have_xdp is not None and _check_stale(p, have_xdp, None):
        remove_stale_program(p["netns"], p["interface"], have_xdp)
        result["stale_program_removed"] = have_xdp["prog_id"]
    if record and not alive:
        crash = _crash_error(p, sdir, record, have_state["stats"], cleaned=True)
        crash.details["stale_program_removed"] = result["stale_program_removed"]
        remove_state(sdir, root)
        raise crash
    remove_state(sdir, root)
    return result


def _with_defaults(params):
    """``params`` over WORKER_DEFAULTS (None counts as not given, as in Ansible)."""
    p = dict(WORKER_DEFAULTS, defines={})
    p.update((key, value) for key, value in params.items() if value is not None)
    return p


def _ensure(params, state, check_mode):
    """What the afxdp_worker module does between parsing its options and exiting.

    AfxdpError's details are the module's complete failure details (with the
    common options and the state directory or root); programs.BuildError,
    programs.ProgramError and xdp.XdpError pass as they are (the caller adds
    worker_common()).
    """
    p = _with_defaults(params)
    common = worker_common(p)
    try:
        root, sdir = confined_state_dir(p["interface"], p["netns"], p["state_root"])
    except AfxdpError as exc:
        raise AfxdpError(exc.msg, state_root=p["state_root"], **dict(common, **exc.details))
    try:
        have_state = load_state(sdir)
        if state == "started":
            if not (p["program"] or p["binary"]):
                raise AfxdpError("state is started but any of the following are missing: program, binary")
            validate(p, os.cpu_count() or 1)
            have_xdp = attached_program(p["netns"], p["interface"])
            result = _started(p, root, sdir, have_state, have_xdp, check_mode)
        else:
            try:
                have_xdp = attached_program(p["netns"], p["interface"])
            except xdp.XdpError as exc:
                if exc.errno not in (errno.ENODEV, errno.ENOENT):
                    raise
                have_xdp = None  # the wire is gone; still stop the worker and clean up
            result = _stopped(p, root, sdir, have_state, have_xdp, check_mode)
    except AfxdpError as exc:
        raise AfxdpError(exc.msg, state_dir=sdir, **dict(common, **exc.details))
    result.update(common)
    return result


def ensure_started(params, check_mode=False):
    """Make the worker ``params`` describes (the afxdp_worker module's options) serve its interface.

    Returns the module's result, with ``warnings`` (messages for the caller to
    show); raises AfxdpError, programs.BuildError, programs.ProgramError or
    xdp.XdpError. Check mode starts, stops, builds and removes nothing.
    """
    return _ensure(params, "started", check_mode)


def ensure_stopped(params, check_mode=False):
    """Stop the interface's worker, keep its final counters and clean up (see ensure_started)."""
    return _ensure(params, "stopped", check_mode)
