# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-CPU counters every xdplab program keeps in its ``xl_stats`` map.

Layout (bpf/include/xdplab/stats.h): BPF_MAP_TYPE_PERCPU_ARRAY, u32 key,
value ``struct xl_counter { __u64 packets; __u64 bytes; }``, keys
XL_SEEN=0, XL_DROPPED=1, XL_TX=2, XL_PASSED=3, XL_REDIRECTED=4.

Pure functions decode raw per-CPU values, add them up and turn two samples
into rates; ``CounterMap`` is the thin layer over the libbpf binding that
opens a pinned map, checks its shape, reads, zeroes and writes it back.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import struct
import time

from ansible_collections.xdplab.offload.plugins.module_utils import libbpf

NAMES = ("seen", "dropped", "tx", "passed", "redirected")
KEYS = dict((name, key) for key, name in enumerate(NAMES))
VERDICT_COUNTER = {1: "dropped", 2: "passed", 3: "tx", 4: "redirected"}  # XDP_* -> counter
VALUE = struct.Struct("<QQ")  # struct xl_counter, host order (x86-64 and arm64: little endian)
VALUE_SIZE = VALUE.size
KEY_SIZE = 4
NR_COUNTERS = len(NAMES)
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PERCPU_ARRAY = 6
MAP_NAME = "xl_stats"
PROG_PIN = "prog"
BPFFS = "/sys/fs/bpf"
PIN_ROOT = os.path.join(BPFFS, "xdplab")
BPF_STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def default_pin_path(interface, netns=None, root=PIN_ROOT):
    """Where xdp_program pins an interface's program and maps (one directory per netns)."""
    return os.path.join(root, netns or "root", interface)


class CounterError(Exception):
    def __init__(self, msg, **details):
        super(CounterError, self).__init__(msg)
        self.msg = msg
        self.details = details


# --------------------------------------------------------------- pure logic

def zero():
    return {"packets": 0, "bytes": 0}


def decode_value(raw):
    """One ``struct xl_counter`` (16 bytes) as {packets, bytes}."""
    if len(raw) < VALUE_SIZE:
        raise CounterError("a counter value needs %d bytes, got %d" % (VALUE_SIZE, len(raw)))
    packets, nbytes = VALUE.unpack_from(raw)
    return {"packets": packets, "bytes": nbytes}


def encode_value(counter):
    return VALUE.pack(counter["packets"], counter["bytes"])


def decode_per_cpu(raw_by_key):
    """``raw_by_key[key][cpu]`` (bytes, as map_lookup_percpu gives) -> per-CPU dicts.

    Returns a list with one ``{seen: {packets, bytes}, dropped: ..., ...}`` per
    possible CPU.
    """
    if len(raw_by_key) != NR_COUNTERS:
        raise CounterError("need the values of %d keys, got %d" % (NR_COUNTERS, len(raw_by_key)))
    ncpu = len(raw_by_key[0])
    if any(len(values) != ncpu for values in raw_by_key):
        raise CounterError("every key needs one value per CPU (%d)" % ncpu)
    return [dict((name, decode_value(raw_by_key[key][cpu])) for key, name in enumerate(NAMES))
            for cpu in range(ncpu)]


def totals(per_cpu):
    """Sum of the per-CPU counters."""
    out = dict((name, zero()) for name in NAMES)
    for cpu in per_cpu:
        for name in NAMES:
            out[name]["packets"] += cpu[name]["packets"]
            out[name]["bytes"] += cpu[name]["bytes"]
    return out


def is_zero(per_cpu):
    return all(not c[name]["packets"] and not c[name]["bytes"] for c in per_cpu for name in NAMES)


def subtract(after, before):
    """``after - before`` per CPU and counter (raises if a counter went down)."""
    if len(after) != len(before):
        raise CounterError("the two samples have different CPU counts (%d and %d)" % (len(before), len(after)))
    out = []
    for cpu, (a, b) in enumerate(zip(after, before)):
        row = {}
        for name in NAMES:
            dp = a[name]["packets"] - b[name]["packets"]
            db = a[name]["bytes"] - b[name]["bytes"]
            if dp < 0 or db < 0:
                raise CounterError("counter %s on CPU %d went down during the interval (from %d to %d packets): "
                                   "someone reset the counters or replaced the program; sample again"
                                   % (name, cpu, b[name]["packets"], a[name]["packets"]),
                                   counter=name, cpu=cpu)
            row[name] = {"packets": dp, "bytes": db}
        out.append(row)
    return out


def _per_s(value, elapsed_s):
    return round(value / elapsed_s, 3)


def rates(before, after, elapsed_s):
    """Rates between two per-CPU samples taken ``elapsed_s`` apart.

    Returns ``{<counter>: {pps, bytes_per_s}, ..., per_cpu: [{<counter>: pps}, ...]}``.
    """
    if elapsed_s <= 0:
        raise CounterError("the sampling window must be longer than 0 s, got %r" % (elapsed_s,))
    delta = subtract(after, before)
    summed = totals(delta)
    out = dict((name, {"pps": _per_s(summed[name]["packets"], elapsed_s),
                       "bytes_per_s": _per_s(summed[name]["bytes"], elapsed_s)}) for name in NAMES)
    out["per_cpu"] = [dict((name, _per_s(cpu[name]["packets"], elapsed_s)) for name in NAMES) for cpu in delta]
    return out


def run_rate(prog_before, prog_after):
    """Mean ns per program run over a window from bpf_stats run_time_ns/run_cnt, or None."""
    if prog_before is None or prog_after is None:
        return None
    runs = prog_after.get("run_cnt", 0) - prog_before.get("run_cnt", 0)
    ns = prog_after.get("run_time_ns", 0) - prog_before.get("run_time_ns", 0)
    if runs <= 0 or ns < 0:
        return None
    return round(ns / runs, 1)


def check_shape(info, path):
    """Refuse a map that is not laid out like ``xl_stats``."""
    problems = []
    if info["type"] not in (BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_ARRAY):
        problems.append("type %d instead of %d (per-CPU array) or %d (array, offloaded programs)"
                        % (info["type"], BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_ARRAY))
    if info["key_size"] != KEY_SIZE:
        problems.append("key size %d instead of %d" % (info["key_size"], KEY_SIZE))
    if info["value_size"] != VALUE_SIZE:
        problems.append("value size %d instead of %d (struct xl_counter)" % (info["value_size"], VALUE_SIZE))
    if info["max_entries"] < NR_COUNTERS:
        problems.append("%d entries instead of at least %d" % (info["max_entries"], NR_COUNTERS))
    if problems:
        raise CounterError("the map at %s is not an xl_stats counters map: %s (see bpf/include/xdplab/stats.h)"
                           % (path, "; ".join(problems)), map_path=path, map_info=info)


# ------------------------------------------------------------ paths and fds

def resolve_paths(pin_path=None, map_path=None):
    """(map path, program pin or None) from a pin directory or a map path."""
    if map_path:
        prog = os.path.join(os.path.dirname(map_path), PROG_PIN)
        return map_path, prog if os.path.exists(prog) else None
    return os.path.join(pin_path, MAP_NAME), os.path.join(pin_path, PROG_PIN)


def fd_kind(fd):
    """``map`` or ``prog`` for a BPF fd, from /proc/self/fdinfo (both share type numbers)."""
    try:
        with open("/proc/self/fdinfo/%d" % fd) as handle:
            text = handle.read()
    except OSError:
        return None
    if "\nmap_type:" in text:
        return "map"
    if "\nprog_type:" in text:
        return "prog"
    return None


def bpf_stats_enabled(path=BPF_STATS_SYSCTL):
    try:
        with open(path) as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False


def prog_summary(prog_pin):
    """Id, tag, name and run statistics of a pinned program.

    run_time_ns/run_cnt grow only while the kernel collects BPF statistics
    (kernel.bpf_stats_enabled=1, or an fd from BPF_ENABLE_STATS held open,
    which the sysctl does not show); otherwise they stay as they were.
    """
    fd = libbpf.obj_get(prog_pin)
    try:
        if fd_kind(fd) != "prog":
            raise CounterError("%s is not a pinned BPF program" % prog_pin, prog_path=prog_pin)
        info = libbpf.prog_info(fd)
    finally:
        os.close(fd)
    return {"id": info["id"], "tag": info["tag"], "name": info["name"], "run_time_ns": info["run_time_ns"],
            "run_cnt": info["run_cnt"],
            "ns_per_run": round(info["run_time_ns"] / info["run_cnt"], 1) if info["run_cnt"] else None}


class CounterMap:
    """An open ``xl_stats`` map (pinned, or an fd the caller owns)."""

    def __init__(self, path=None, fd=None, hint=""):
        self.path = path
        self._own = fd is None
        if fd is None:
            if not os.path.exists(path):
                raise CounterError("no counters map at %s%s" % (path, hint), map_path=path, errno=errno.ENOENT)
            try:
                fd = libbpf.obj_get(path)
            except libbpf.BpfError as exc:
                raise CounterError("cannot open the counters map at %s (%s)" % (path, exc.msg),
                                   map_path=path, errno=exc.errno)
        self.fd = fd
        try:
            if self._own and fd_kind(fd) != "map":
                raise CounterError("%s is not a BPF map (give the path of the xl_stats map)" % path, map_path=path)
            self.info = libbpf.map_info(fd)
            check_shape(self.info, path or "fd %d" % fd)
        except BaseException:
            self.close()
            raise

    @property
    def shared(self):
        """True for the plain ARRAY of offloaded programs: one counter set, no per-CPU split."""
        return self.info["type"] == BPF_MAP_TYPE_ARRAY

    def read_raw(self):
        if self.shared:
            return [[libbpf.map_lookup(self.fd, key, VALUE_SIZE)] for key in range(NR_COUNTERS)]
        return [libbpf.map_lookup_percpu(self.fd, key, VALUE_SIZE) for key in range(NR_COUNTERS)]

    def read(self):
        """Per-CPU counters now, and the monotonic time they were read at."""
        raw = self.read_raw()
        return decode_per_cpu(raw), time.monotonic()

    def write(self, per_cpu):
        """Write per-CPU counters back (restore a saved sample)."""
        for key, name in enumerate(NAMES):
            if self.shared:
                libbpf.map_update(self.fd, key, encode_value(totals(per_cpu)[name]))
            else:
                libbpf.map_update_percpu(self.fd, key, [encode_value(cpu[name]) for cpu in per_cpu], VALUE_SIZE)

    def zero(self):
        ncpu = 1 if self.shared else libbpf.num_possible_cpus()
        self.write([dict((name, zero()) for name in NAMES) for _cpu in range(ncpu)])

    def close(self):
        if self._own and self.fd is not None and self.fd >= 0:
            os.close(self.fd)
        self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
