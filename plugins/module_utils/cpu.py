# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU-usage accounting over a window: per CPU, per process/thread, per libvirt
domain and per BPF program.

Everything is built from two *snapshots* (plain JSON-serialisable dicts) taken
at the start and the end of a window, so a window can also span two separate
module calls (the first snapshot is saved in a state file).

Sources and their precision:

* ``/proc/stat``: per-CPU time split in USER_HZ ticks (tick-sampled by the
  kernel, so a 1 s window is good to about +-1 %). ``user`` includes ``guest``
  and ``nice`` includes ``guest_nice``, as the kernel counts them.
* ``/proc/<pid>/task/<tid>/schedstat``: first field, the thread's precise
  run time in ns (CFS ``sum_exec_runtime``), kernel threads included.
* libvirt ``virDomain.getCPUStats(True)``: the domain's ``cpu_time`` (all of
  the hypervisor process' threads: vCPUs, emulator, I/O), ``user_time`` and
  ``system_time`` in ns.
* ``bpf_prog_info``: ``run_time_ns`` / ``run_cnt`` of a program, growing while
  ``kernel.bpf_stats_enabled`` is 1.
* Xen (a ``xen://`` URI, sampled in dom0): libvirt's libxl driver gives the CPU
  time Xen counts for each domain's vCPUs (``info()``), Domain-0's included; the
  host share is then Domain-0's time (the backends, Open vSwitch, the host-side
  XDP) and the VM share the domUs' time. Xen's own time (the hypervisor's
  scheduling and event channels) is not exposed by libxl: the result says so.

Every function reading the kernel takes ``proc_root`` (default ``/proc``) so
the logic runs on fixture trees without root.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import time

from ansible_collections.xdplab.offload.plugins.module_utils import safety

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    libvirt = None
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = _exc

STATE_VERSION = 1
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")
# guest/guest_nice are already inside user/nice: not part of the total.
TOTAL_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")
BPF_STATS_SYSCTL = "sys/kernel/bpf_stats_enabled"


class CpuError(Exception):
    """A failure with a one-sentence message and details for fail_json."""

    def __init__(self, msg, **details):
        super(CpuError, self).__init__(msg)
        self.msg = msg
        self.details = details


def user_hz():
    return os.sysconf("SC_CLK_TCK")


def _read(path):
    with open(path) as handle:
        return handle.read()


def _pct(part, whole, digits=3):
    return round(100.0 * part / whole, digits) if whole else 0.0


# ---------------------------------------------------------------- /proc/stat

def read_proc_stat(proc_root="/proc"):
    """Per-CPU tick counters: ``{"0": {"user": .., ...}, ...}`` (online CPUs only)."""
    path = os.path.join(proc_root, "stat")
    try:
        text = _read(path)
    except OSError as exc:
        raise CpuError("cannot read %s: %s" % (path, exc.strerror), path=path)
    cpus = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or not parts[0].startswith("cpu") or parts[0] == "cpu":
            continue
        values = [int(v) for v in parts[1:1 + len(CPU_FIELDS)]]
        values += [0] * (len(CPU_FIELDS) - len(values))  # very old kernels lack steal/guest
        cpus[parts[0][3:]] = dict(zip(CPU_FIELDS, values))
    if not cpus:
        raise CpuError("%s has no per-CPU lines" % path, path=path)
    return cpus


def read_uptime_ticks(proc_root="/proc", hz=None):
    """Time since boot in USER_HZ ticks (the unit of a task's start time)."""
    path = os.path.join(proc_root, "uptime")
    try:
        seconds = float(_read(path).split()[0])
    except (OSError, ValueError, IndexError) as exc:
        raise CpuError("cannot read %s: %s" % (path, exc), path=path)
    return int(seconds * (hz or user_hz()))


def parse_cpus(value, online):
    """Normalise the ``cpus`` option (list of ints or "0,2-3" strings) against the online CPUs."""
    if not value:
        return sorted(int(c) for c in online)
    chosen = set()
    for item in value if isinstance(value, (list, tuple)) else [value]:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                if "-" in part:
                    lo, hi = part.split("-", 1)
                    chosen.update(range(int(lo), int(hi) + 1))
                else:
                    chosen.add(int(part))
            except ValueError:
                raise CpuError("cannot parse CPU list item %r: use numbers and ranges like 0,2-3" % item)
    missing = sorted(c for c in chosen if str(c) not in online)
    if missing:
        raise CpuError("CPU %s is not online here (online: %s)"
                       % (",".join(str(c) for c in missing), ",".join(sorted(online, key=int))),
                       cpus=sorted(chosen))
    return sorted(chosen)


def cpu_split(before, after):
    """Percent of one CPU's accounted time in the window for every field, plus ``busy``.

    The denominator is the sum of the deltas of TOTAL_FIELDS (the time the
    kernel accounted for that CPU, equal to the window up to tick rounding).
    ``busy`` = user + nice + system + irq + softirq (idle, iowait and steal
    excluded; guest is inside user). Also returns the raw tick deltas.
    """
    delta = {f: max(0, after[f] - before[f]) for f in CPU_FIELDS}
    total = sum(delta[f] for f in TOTAL_FIELDS)
    split = {f: _pct(delta[f], total) for f in CPU_FIELDS}
    busy = sum(delta[f] for f in BUSY_FIELDS)
    split["busy"] = _pct(busy, total)
    return split, delta, total


# ------------------------------------------------------------- processes

def normalize_selectors(items):
    """Validate process selectors; give each a unique ``name``.

    A selector has exactly one of ``pid`` (int), ``comm`` (regex searched in the
    process name, like pgrep) or ``cmdline`` (regex searched in the command line
    with NULs as spaces, like pgrep -f); optional ``threads`` (regex on thread
    names), ``name`` (label) and ``optional`` (no failure when nothing matches).
    """
    out = []
    names = set()
    for item in items or []:
        if not isinstance(item, dict):
            raise CpuError("a process selector must be a dict with pid, comm or cmdline, got %r" % (item,))
        keys = [k for k in ("pid", "comm", "cmdline") if item.get(k) not in (None, "")]
        if len(keys) != 1:
            raise CpuError("a process selector needs exactly one of pid, comm or cmdline, got %r" % (item,))
        kind = keys[0]
        sel = {"kind": kind, "value": item[kind], "threads": item.get("threads") or None,
               "optional": bool(item.get("optional"))}
        if kind == "pid":
            try:
                sel["value"] = int(item["pid"])
            except (TypeError, ValueError):
                raise CpuError("process selector pid must be a number, got %r" % (item["pid"],))
        for key, pattern in (("value", sel["value"] if kind != "pid" else None), ("threads", sel["threads"])):
            if pattern is None:
                continue
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CpuError("invalid regular expression %r in a process selector: %s" % (pattern, exc))
        sel["name"] = str(item.get("name") or (str(sel["value"]) if kind != "pid" else "pid:%d" % sel["value"]))
        if sel["name"] in names:
            raise CpuError("two process selectors share the name %r: give them distinct names" % sel["name"])
        names.add(sel["name"])
        out.append(sel)
    return out


def _pids(proc_root):
    try:
        return sorted(int(d) for d in os.listdir(proc_root) if d.isdigit())
    except OSError as exc:
        raise CpuError("cannot list %s: %s" % (proc_root, exc.strerror), path=proc_root)


def _comm(path):
    return _read(path).rstrip("\n")


def _cmdline(proc_root, pid):
    return _read(os.path.join(proc_root, str(pid), "cmdline")).replace("\0", " ").strip()


def match_processes(sel, proc_root="/proc", exclude=None):
    """PIDs (thread-group leaders) matching a selector, excluding ``exclude``."""
    exclude = set(exclude or ())
    if sel["kind"] == "pid":
        pid = sel["value"]
        return [pid] if os.path.isdir(os.path.join(proc_root, str(pid), "task")) else []
    regex = re.compile(sel["value"])
    found = []
    for pid in _pids(proc_root):
        if pid in exclude:
            continue
        try:
            text = (_comm(os.path.join(proc_root, str(pid), "comm")) if sel["kind"] == "comm"
                    else _cmdline(proc_root, pid))
        except OSError:  # exited meanwhile
            continue
        if regex.search(text):
            found.append(pid)
    return found


def _start_ticks(stat_text):
    # Fields after the last ')' start with field 3 (state); starttime is field 22.
    return int(stat_text[stat_text.rindex(")") + 2:].split()[19])


def read_threads(proc_root, pid, thread_re=None):
    """``{tid: {"comm", "ns", "start"}}`` for every thread of ``pid``.

    ``ns`` is the first field of task/<tid>/schedstat (run time in ns), ``start``
    the thread's start time in ticks since boot. Threads that exit while being
    read are skipped; an exited process gives ``{}``.
    """
    task_dir = os.path.join(proc_root, str(pid), "task")
    try:
        tids = sorted(int(t) for t in os.listdir(task_dir) if t.isdigit())
    except OSError:
        return {}
    regex = re.compile(thread_re) if thread_re else None
    threads = {}
    for tid in tids:
        base = os.path.join(task_dir, str(tid))
        try:
            comm = _comm(os.path.join(base, "comm"))
            if regex and not regex.search(comm):
                continue
            sched = _read(os.path.join(base, "schedstat"))
            stat = _read(os.path.join(base, "stat"))
        except OSError as exc:
            if not os.path.exists(base):
                continue  # the thread exited meanwhile
            raise CpuError("cannot read %s: %s (the kernel needs CONFIG_SCHED_INFO for schedstat)"
                           % (base, exc.strerror), path=base)
        threads[str(tid)] = {"comm": comm, "ns": int(sched.split()[0]), "start": _start_ticks(stat)}
    return threads


def snapshot_processes(selectors, proc_root="/proc", exclude=None, require=True):
    """``{name: {pid: {"comm", "threads"}}}`` for the normalised selectors.

    With ``require``, a selector that is not ``optional`` and matches nothing
    raises CpuError.
    """
    snap = {}
    for sel in selectors:
        procs = {}
        for pid in match_processes(sel, proc_root, exclude):
            try:
                comm = _comm(os.path.join(proc_root, str(pid), "comm"))
            except OSError:
                continue
            threads = read_threads(proc_root, pid, sel["threads"])
            if threads or os.path.isdir(os.path.join(proc_root, str(pid))):
                procs[str(pid)] = {"comm": comm, "threads": threads}
        if require and not procs and not sel["optional"]:
            what = {"pid": "process %s", "comm": "process name matching %r",
                    "cmdline": "command line matching %r"}[sel["kind"]] % (sel["value"],)
            raise CpuError("no %s is running: check the selector %r or mark it optional" % (what, sel["name"]),
                           selector=sel)
        snap[sel["name"]] = procs
    return snap


def process_usage(before, after, window_ns, window_start_ticks):
    """Per selector: total ns and percent of one CPU, per process, per thread name.

    A thread present at both ends counts its run-time delta. A thread only in
    the end snapshot counts fully when it started inside the window (its start
    time >= the window's start); otherwise it existed before but was not
    matched then (a renamed process) and is counted in ``unmeasured_threads``.
    Threads gone at the end lost their last run time: ``exited_threads``.
    """
    out = {}
    for name, procs_after in after.items():
        procs_before = before.get(name, {})
        total_ns = 0
        per_process = []
        exited = unmeasured = 0
        for pid, proc in sorted(procs_after.items(), key=lambda kv: int(kv[0])):
            old_threads = procs_before.get(pid, {}).get("threads", {})
            by_name = {}
            proc_ns = 0
            for tid, thr in proc["threads"].items():
                old = old_threads.get(tid)
                if old is not None and old["start"] == thr["start"] and thr["ns"] >= old["ns"]:
                    delta = thr["ns"] - old["ns"]
                elif thr["start"] >= window_start_ticks:
                    delta = thr["ns"]
                else:
                    unmeasured += 1
                    continue
                proc_ns += delta
                entry = by_name.setdefault(thr["comm"], {"cpu_ns": 0, "count": 0})
                entry["cpu_ns"] += delta
                entry["count"] += 1
            exited += sum(1 for tid in old_threads if tid not in proc["threads"])
            for entry in by_name.values():
                entry["cpu_pct"] = _pct(entry["cpu_ns"], window_ns)
            total_ns += proc_ns
            per_process.append({"pid": int(pid), "comm": proc["comm"], "cpu_ns": proc_ns,
                                "cpu_pct": _pct(proc_ns, window_ns), "threads": by_name})
        for pid, proc in procs_before.items():
            if pid not in procs_after:
                exited += len(proc["threads"])
        out[name] = {"pids": [p["pid"] for p in per_process], "cpu_ns": total_ns,
                     "cpu_pct": _pct(total_ns, window_ns), "per_process": per_process,
                     "exited_threads": exited, "unmeasured_threads": unmeasured}
    return out


# --------------------------------------------------------------- libvirt

def open_libvirt(uri):
    """A libvirt connection (read-only is enough for statistics)."""
    if not HAS_LIBVIRT:
        raise CpuError("libvirt-python is not installed", missing_lib="libvirt-python")
    libvirt.registerErrorHandler(lambda ctx, err: None, None)  # no stderr noise
    try:
        return libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        raise CpuError("cannot connect to libvirt at %s: is libvirtd running and the URI right?" % uri,
                       uri=uri, libvirt_error=str(exc))


def _libvirt_error():
    return libvirt.libvirtError if HAS_LIBVIRT else Exception


def snapshot_domains(conn, names, uri=""):
    """``{name: {"uuid", "cpu_time", "user_time", "system_time", "vcpus", "source"}}`` (ns).

    ``source`` is ``getCPUStats`` normally; when the driver cannot give them
    (no cgroup accounting) the domain's ``info()`` cpuTime is used and
    user/system are null.
    """
    error = _libvirt_error()
    snap = {}
    for name in names or []:
        try:
            dom = conn.lookupByName(name)
        except error as exc:
            raise CpuError("libvirt domain %s does not exist at %s" % (name, uri), domain=name, uri=uri,
                           libvirt_error=str(exc))
        try:
            active = dom.isActive()
            info = dom.info()
        except error as exc:
            raise CpuError("cannot read libvirt domain %s at %s" % (name, uri), domain=name, uri=uri,
                           libvirt_error=str(exc))
        if not active:
            raise CpuError("libvirt domain %s at %s is not running: start it before sampling" % (name, uri),
                           domain=name, uri=uri)
        entry = {"uuid": dom.UUIDString(), "vcpus": info[3], "source": "getCPUStats"}
        try:
            stats = dom.getCPUStats(True)[0]
            entry.update(cpu_time=int(stats["cpu_time"]), user_time=stats.get("user_time"),
                         system_time=stats.get("system_time"))
        except (error, IndexError, KeyError):
            entry.update(cpu_time=int(info[4]), user_time=None, system_time=None, source="info")
        snap[name] = entry
    return snap


def domain_usage(before, after, window_ns):
    """Per domain: deltas in ns and percent of one CPU; warnings for restarts."""
    out = {}
    warnings = []
    for name, new in after.items():
        old = before.get(name)
        if old is None or old["uuid"] != new["uuid"] or new["cpu_time"] < old["cpu_time"]:
            warnings.append("libvirt domain %s was redefined or restarted during the window; "
                            "its CPU time is unknown" % name)
            out[name] = {"cpu_time_ns": None, "cpu_pct": None, "user_time_ns": None, "user_pct": None,
                         "system_time_ns": None, "system_pct": None, "vcpus": new["vcpus"],
                         "source": new["source"]}
            continue
        entry = {"vcpus": new["vcpus"], "source": new["source"]}
        for key in ("cpu_time", "user_time", "system_time"):
            if old.get(key) is None or new.get(key) is None:
                entry[key + "_ns"] = None
                entry[key.split("_", maxsplit=1)[0] + "_pct"] = None
            else:
                delta = max(0, int(new[key]) - int(old[key]))
                entry[key + "_ns"] = delta
                entry[key.split("_", maxsplit=1)[0] + "_pct"] = _pct(delta, window_ns)
        out[name] = entry
    return out, warnings


# ------------------------------------------------------------ Xen

XEN_DOM0 = "Domain-0"


def is_xen_uri(uri):
    """True for libvirt URIs of Xen's libxl driver (xen:///system, xen+ssh://...)."""
    return bool(re.match(r"^xen(\+[a-z0-9]+)?://", uri or ""))


def snapshot_xen(conn, uri=""):
    """Domain-0's CPU time (ns, all its vCPUs as Xen counts them) and the physical CPUs, through libxl."""
    error = _libvirt_error()
    try:
        dom0 = conn.lookupByID(0)
        info = dom0.info()
        node = conn.getInfo()
    except error as exc:
        raise CpuError("cannot read %s at %s: sample in dom0 with libvirtd's libxl driver running" % (XEN_DOM0, uri),
                       uri=uri, libvirt_error=str(exc))
    return {"dom0_uuid": dom0.UUIDString(), "dom0_cpu_time": int(info[4]), "dom0_vcpus": int(info[3]),
            "pcpus": int(node[2])}


def xen_usage(before, after, window_ns, vm_share_pct):
    """Xen's split of the window: Domain-0 (the host share), the domUs (the VM share), the physical CPUs."""
    delta = after["dom0_cpu_time"] - before["dom0_cpu_time"]
    dom0_pct = _pct(delta, window_ns) if delta >= 0 else None
    return {
        "pcpus": after["pcpus"],
        "dom0_vcpus": after["dom0_vcpus"],
        "dom0_pct": dom0_pct,
        "domu_pct": vm_share_pct,
        "hypervisor_pct": None,
        "hypervisor_note": "Xen's own CPU time is not exposed by libxl; the host share is Domain-0's CPU time",
    }


# ------------------------------------------------------------ BPF programs

def bpf_stats_path(proc_root="/proc"):
    return os.path.join(proc_root, BPF_STATS_SYSCTL)


def read_bpf_stats(proc_root="/proc"):
    path = bpf_stats_path(proc_root)
    try:
        return int(_read(path).strip())
    except (OSError, ValueError) as exc:
        raise CpuError("cannot read %s: %s (the kernel needs CONFIG_BPF_SYSCALL)" % (path, exc), path=path)


def write_bpf_stats(value, proc_root="/proc"):
    path = bpf_stats_path(proc_root)
    try:
        with open(path, "w") as handle:
            handle.write("%d\n" % int(value))
    except OSError as exc:
        raise CpuError("cannot set kernel.bpf_stats_enabled=%d: %s (needs root / CAP_SYS_ADMIN: use become)"
                       % (int(value), exc.strerror), path=path)


def parse_programs(items):
    """Program specs: an int or all-digit string is a prog id, anything else a bpffs pin path."""
    specs = []
    labels = set()
    for item in items or []:
        if isinstance(item, bool) or item in (None, ""):
            raise CpuError("a program must be a BPF program id or a bpffs pin path, got %r" % (item,))
        if isinstance(item, int) or (isinstance(item, str) and item.strip().isdigit()):
            spec = {"label": str(int(item)), "id": int(item), "pin": None}
        elif isinstance(item, str):
            spec = {"label": item, "id": None, "pin": item}
        else:
            raise CpuError("a program must be a BPF program id or a bpffs pin path, got %r" % (item,))
        if spec["label"] not in labels:
            labels.add(spec["label"])
            specs.append(spec)
    return specs


def _fd_is_prog(fd, proc_root="/proc"):
    try:
        return "\nprog_type:" in _read(os.path.join(proc_root, "self", "fdinfo", str(fd)))
    except OSError:
        return True  # cannot tell; prog_info will complain if it is not a program


def read_program_info(spec):
    """id, name, tag, run_time_ns, run_cnt of one program (through libbpf)."""
    from ansible_collections.xdplab.offload.plugins.module_utils import libbpf
    try:
        fd = libbpf.obj_get(spec["pin"]) if spec["pin"] else libbpf.prog_fd_by_id(spec["id"])
    except libbpf.BpfError as exc:
        where = "pinned at %s" % spec["pin"] if spec["pin"] else "with id %d" % spec["id"]
        raise CpuError("there is no BPF program %s (%s): check the id or pin path" % (where, exc.msg),
                       program=spec["label"], errno=exc.errno)
    try:
        if not _fd_is_prog(fd):
            raise CpuError("%s is pinned but is not a BPF program (a map?)" % spec["pin"], program=spec["label"])
        info = libbpf.prog_info(fd)
    except libbpf.BpfError as exc:
        raise CpuError("cannot read BPF program %s: %s" % (spec["label"], exc.msg), program=spec["label"])
    finally:
        os.close(fd)
    return {k: info[k] for k in ("id", "name", "tag", "run_time_ns", "run_cnt")}


def snapshot_programs(specs, reader=read_program_info):
    return {spec["label"]: reader(spec) for spec in specs}


def program_usage(before, after, window_ns):
    out = {}
    warnings = []
    for label, new in after.items():
        old = before.get(label)
        if old is None or old["id"] != new["id"] or new["run_cnt"] < old["run_cnt"]:
            warnings.append("BPF program %s was replaced during the window (id %s -> %s); its run time is unknown"
                            % (label, old and old["id"], new["id"]))
            out[label] = {"id": new["id"], "name": new["name"], "tag": new["tag"], "run_time_ns": None,
                          "run_cnt": None, "ns_per_run": None, "cpu_pct": None}
            continue
        run_ns = new["run_time_ns"] - old["run_time_ns"]
        runs = new["run_cnt"] - old["run_cnt"]
        out[label] = {"id": new["id"], "name": new["name"], "tag": new["tag"], "run_time_ns": run_ns,
                      "run_cnt": runs, "ns_per_run": round(run_ns / runs, 2) if runs else None,
                      "cpu_pct": _pct(run_ns, window_ns)}
    return out, warnings


# --------------------------------------------------------------- snapshots

def make_selection(cpus=None, processes=None, domains=None, uri="qemu:///system", programs=None, bpf_stats=False):
    """The normalised, JSON-serialisable description of what to sample."""
    return {"cpus": cpus or [], "processes": normalize_selectors(processes), "domains": list(domains or []),
            "uri": uri, "programs": parse_programs(programs), "bpf_stats": bool(bpf_stats)}


def take_snapshot(selection, proc_root="/proc", conn=None, program_reader=read_program_info,
                  clock=time.monotonic, wall=time.time, hz=None, exclude=None, require=True):
    """One snapshot of everything the selection names (a JSON-serialisable dict)."""
    hz = hz or user_hz()
    exclude = [os.getpid()] if exclude is None else exclude
    snap = {"mono_ns": int(clock() * 1e9), "wall": wall(), "user_hz": hz,
            "uptime_ticks": read_uptime_ticks(proc_root, hz), "stat": read_proc_stat(proc_root)}
    parse_cpus(selection.get("cpus"), snap["stat"])  # fail early on a CPU that is not online
    snap["processes"] = snapshot_processes(selection["processes"], proc_root, exclude, require)
    snap["programs"] = snapshot_programs(selection["programs"], program_reader) if selection["programs"] else {}
    snap["domains"] = snapshot_domains(conn, selection["domains"], selection["uri"]) if selection["domains"] else {}
    if conn is not None and is_xen_uri(selection["uri"]):
        snap["xen"] = snapshot_xen(conn, selection["uri"])
    return snap


def iso_time(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%06dZ" % int((ts % 1) * 1e6)


def compute_usage(before, after, selection, packets=None):
    """The module's result from two snapshots.

    Percentages of processes, domains, programs and the shares are percent of
    ONE CPU (200 = two CPUs fully busy); per-CPU splits are percent of that CPU.

    * ``busy_pct``: sum over all online CPUs of their busy share.
    * ``guest_pct``: sum over all CPUs of guest + guest_nice (time in a KVM guest).
    * ``vm_share_pct``: the given domains' cpu_time delta / window.
    * ``host_share_pct``: busy_pct - vm_share_pct, not below 0: everything else
      the machine was busy with (host kernel, softirq/NAPI, OVS, user space).
    """
    window_ns = after["mono_ns"] - before["mono_ns"]
    if window_ns <= 0:
        raise CpuError("the end snapshot is not later than the start snapshot", window_ns=window_ns)
    online = after["stat"]
    chosen = parse_cpus(selection.get("cpus"), online)
    per_cpu = []
    cpus_total = dict.fromkeys(CPU_FIELDS + ("busy",), 0.0)
    busy_pct = guest_pct = 0.0
    for cpu in sorted(online, key=int):
        if cpu not in before["stat"]:
            continue  # came online during the window
        split, _delta, total_ticks = cpu_split(before["stat"][cpu], online[cpu])
        busy_pct += split["busy"]
        guest_pct += split["guest"] + split["guest_nice"]
        if int(cpu) in chosen:
            per_cpu.append(dict(split, cpu=int(cpu), ticks=total_ticks))
            for key in cpus_total:
                cpus_total[key] += split[key]
    result = {
        "window_s": round(window_ns / 1e9, 6),
        "started_at": iso_time(before["wall"]),
        "stopped_at": iso_time(after["wall"]),
        "user_hz": after["user_hz"],
        "cpus": chosen,
        "per_cpu_pct": per_cpu,
        "cpus_total_pct": {k: round(v, 3) for k, v in cpus_total.items()},
        "busy_pct": round(busy_pct, 3),
        "guest_pct": round(guest_pct, 3),
        "processes": process_usage(before["processes"], after["processes"], window_ns, before["uptime_ticks"]),
    }
    warnings = []
    domains, warn = domain_usage(before["domains"], after["domains"], window_ns)
    warnings += warn
    result["domains"] = domains
    programs, warn = program_usage(before["programs"], after["programs"], window_ns)
    warnings += warn
    result["bpf_programs"] = programs
    if selection.get("domains"):
        known = [d["cpu_pct"] for d in domains.values() if d["cpu_pct"] is not None]
        result["vm_share_pct"] = round(sum(known), 3) if len(known) == len(domains) else None
        result["host_share_pct"] = (round(max(0.0, busy_pct - result["vm_share_pct"]), 3)
                                    if result["vm_share_pct"] is not None else None)
    if before.get("xen") and after.get("xen"):
        # In dom0, /proc/stat sees dom0's vCPUs only: Xen's accounting gives the shares.
        result["xen"] = xen_usage(before["xen"], after["xen"], window_ns, result.get("vm_share_pct"))
        result["host_share_pct"] = result["xen"]["dom0_pct"]
        if before["xen"]["dom0_uuid"] != after["xen"]["dom0_uuid"]:
            warnings.append("%s changed during the window; its CPU time is unknown" % XEN_DOM0)
            result["xen"]["dom0_pct"] = result["host_share_pct"] = None
    for name, proc in result["processes"].items():
        if proc["exited_threads"]:
            warnings.append("%d thread(s) of %s exited during the window; their last run time is not counted"
                            % (proc["exited_threads"], name))
        if proc["unmeasured_threads"]:
            warnings.append("%d thread(s) of %s existed before the window but matched only at its end; "
                            "they are not counted" % (proc["unmeasured_threads"], name))
    if packets is not None:
        result["ns_per_packet"] = ns_per_packet(result, window_ns, packets)
    result["warnings"] = warnings
    return result


def ns_per_packet(result, window_ns, packets):
    """CPU ns spent per packet: all CPUs busy, chosen CPUs busy, host, VMs, each process and program."""
    if not packets or packets <= 0:
        return None

    def per(pct):
        return None if pct is None else round(pct / 100.0 * window_ns / packets, 3)

    out = {"busy": per(result["busy_pct"]), "cpus": per(result["cpus_total_pct"]["busy"]),
           "processes": {n: round(p["cpu_ns"] / packets, 3) for n, p in result["processes"].items()},
           "bpf_programs": {n: (None if p["run_time_ns"] is None else round(p["run_time_ns"] / packets, 3))
                            for n, p in result["bpf_programs"].items()}}
    if "vm_share_pct" in result:
        out["vm"] = per(result["vm_share_pct"])
        out["host"] = per(result["host_share_pct"])
    return out


# ----------------------------------------------------------- state files

def state_path(state_dir, name):
    """``<state_dir>/<name>.json``; CpuError unless ``name`` is a plain path part (safety.name)."""
    try:
        safety.name(name, "name", "sampling name")
    except safety.UnsafeInput as exc:
        raise CpuError(exc.msg, option=exc.option)
    return os.path.join(state_dir, name + ".json")


def save_state(path, state):
    """Write atomically (temp file + rename), readable by root only."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        tmp = "%s.tmp.%d" % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle)
        os.rename(tmp, path)
    except OSError as exc:
        raise CpuError("cannot write the sampling state %s: %s" % (path, exc.strerror), path=path)


def load_state(path):
    try:
        with open(path) as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CpuError("cannot read the sampling state %s: %s" % (path, exc), path=path)
    if state.get("version") != STATE_VERSION:
        raise CpuError("the sampling state %s has an unknown format: remove it and start again" % path, path=path)
    return state


def remove_state(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def enable_bpf_stats(proc_root="/proc"):
    """Set kernel.bpf_stats_enabled=1; return the previous value for restore_bpf_stats()."""
    previous = read_bpf_stats(proc_root)
    if previous != 1:
        write_bpf_stats(1, proc_root)
    return previous


def restore_bpf_stats(previous, proc_root="/proc"):
    if previous is not None and read_bpf_stats(proc_root) != previous:
        write_bpf_stats(previous, proc_root)
