# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time an XDP program with BPF_PROG_TEST_RUN: the bpf_testrun module's work, callable in one process.

``time_program(params)`` takes the module's options as a plain dict (missing ones
from TESTRUN_DEFAULTS) and returns the module's result, or raises TestrunError
whose ``msg`` and ``details`` are what the module fails with.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import statistics
import time

from ansible_collections.xdplab.offload.plugins.module_utils import counters as ctr
from ansible_collections.xdplab.offload.plugins.module_utils import libbpf, packets, programs, safety
from ansible_collections.xdplab.offload.plugins.module_utils.counters import PIN_ROOT, default_pin_path
from ansible_collections.xdplab.offload.plugins.module_utils.xdp_deploy import DeployError, load_program

BPF_PROG_TYPE_XDP = 6
VERDICTS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
MAX_REPEAT = 2 ** 31 - 1
MAX_ROUNDS = 1000


class TestrunError(Exception):
    def __init__(self, msg, **details):
        super(TestrunError, self).__init__(msg)
        self.msg = msg
        self.details = details


def verdict_name(retval):
    return VERDICTS.get(retval, "UNKNOWN(%d)" % retval)


def summarize(durations):
    return {"median": statistics.median(durations), "min": min(durations), "max": max(durations),
            "rounds": list(durations)}


def open_pinned(pin_dir, where):
    """fd of the XDP program pinned in ``pin_dir`` (caller closes it)."""
    path = os.path.join(pin_dir, ctr.PROG_PIN)
    if not os.path.exists(path):
        raise TestrunError("no program pinned at %s: attach a program with xdplab.offload.xdp_program first%s, "
                           "or give program to load one just for the test" % (path, where), prog_path=path)
    try:
        fd = libbpf.obj_get(path)
    except libbpf.BpfError as exc:
        raise TestrunError("cannot open the pinned program %s (%s)" % (path, exc.msg), prog_path=path,
                           errno=exc.errno)
    try:
        if ctr.fd_kind(fd) != "prog":
            raise TestrunError("%s is not a BPF program" % path, prog_path=path)
        info = libbpf.prog_info(fd)
        if info["type"] != BPF_PROG_TYPE_XDP:
            raise TestrunError("the program pinned at %s is not an XDP program (type %d)" % (path, info["type"]),
                               prog_path=path)
        if info["ifindex"]:
            raise TestrunError("the program pinned at %s is offloaded to a device (ifindex %d) and cannot be "
                               "test-run on the host; give program to test a host copy" % (path, info["ifindex"]),
                               prog_path=path)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def set_cpu(cpu, check_only=False):
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise TestrunError("cpu %d is not one this process may run on (%s)"
                           % (cpu, ", ".join(str(c) for c in sorted(allowed))), cpu=cpu)
    if not check_only:
        os.sched_setaffinity(0, {cpu})


def planned(p, pin_dir, where, kind, frame):
    """Check mode: check what can be checked without running, compiling or loading anything."""
    info = {}
    if pin_dir:
        prog_fd, info = open_pinned(pin_dir, where)
        os.close(prog_fd)
    else:
        try:
            source = programs.resolve_program(p["program"], p["bpf_dir"])
            if source.kind == "c":
                programs.validate_defines(p["defines"])
            elif p["defines"]:
                raise TestrunError("defines apply to C sources only; %s is a compiled object" % source.source_path)
        except programs.ProgramError as exc:
            raise TestrunError(exc.msg)
    return dict(changed=False, check_mode_skipped=True, ns_per_run=None, retval=None, verdict=None,
                repeated_verdict=None, packet=kind, packet_len=len(frame), packet_hex=frame.hex(), repeat=p["repeat"],
                rounds=p["rounds"], runs=0, elapsed_s=0.0, counters_restored=False, cpu=p["cpu"],
                prog={"id": info.get("id"), "tag": info.get("tag"), "name": info.get("name")},
                msg="check mode: nothing was run (a test run counts in the program's maps)")


def run(prog_fd, frame, repeat, rounds, cmap=None, restore=False):
    """The test itself: one verdict run on the fresh frame, then the timed rounds."""
    saved = cmap.read()[0] if cmap is not None else None
    started = time.monotonic()
    first = libbpf.test_run(prog_fd, frame, repeat=1)
    durations, last = [], first
    for _round in range(rounds):
        last = libbpf.test_run(prog_fd, frame, repeat=repeat)
        durations.append(last.duration_ns)
    elapsed = time.monotonic() - started
    out = dict(first=first, last=last, durations=durations, elapsed_s=elapsed, runs=1 + repeat * rounds)
    if cmap is None:
        return out
    after = cmap.read()[0]
    try:
        delta = ctr.totals(ctr.subtract(after, saved))
    except ctr.CounterError as exc:
        out.update(counters_restored=False, warning="counters not restored: %s" % exc.msg)
        return out
    out["counters_delta"] = delta
    if restore:
        cmap.write(saved)
        out.update(counters_restored=True,
                   live_packets_discarded=max(0, delta["seen"]["packets"] - out["runs"]))
    return out


# The bpf_testrun module's options and their defaults (None: not given).
TESTRUN_DEFAULTS = {
    "interface": None,
    "netns": None,
    "pin_path": None,
    "program": None,
    "defines": {},
    "loader": "object",
    "function": None,
    "bpf_dir": "/opt/xdplab/bpf",
    "build_dir": "/var/cache/xdplab/bpf",
    "clang": "clang",
    "packet": "udp",
    "size": None,
    "qname": "example.com",
    "dst_ip": None,
    "repeat": 100000,
    "rounds": 5,
    "cpu": None,
    "return_output": False,
    "restore_counters": True,
}


def _with_defaults(params):
    """``params`` over TESTRUN_DEFAULTS (None counts as not given, as in Ansible), with the module's option rules."""
    p = dict(TESTRUN_DEFAULTS, defines={})
    p.update((key, value) for key, value in params.items() if value is not None)
    if not (p["interface"] or p["pin_path"] or p["program"]):
        raise TestrunError("one of the following is required: interface, pin_path, program")
    if p["program"] and (p["interface"] or p["pin_path"]):
        raise TestrunError("program is mutually exclusive with interface and pin_path")
    if p["netns"] and not p["interface"]:
        raise TestrunError("netns needs interface")
    return p


def time_program(params, check_mode=False):
    """Run (or in check mode only check) the test of the program ``params`` names; see the module's documentation.

    Returns the module's result with ``warnings`` (a list of messages for the
    caller to show); raises TestrunError.
    """
    p = _with_defaults(params)
    if not 1 <= p["repeat"] <= MAX_REPEAT:
        raise TestrunError("repeat must be 1..%d, got %d" % (MAX_REPEAT, p["repeat"]), repeat=p["repeat"])
    if not 1 <= p["rounds"] <= MAX_ROUNDS:
        raise TestrunError("rounds must be 1..%d, got %d" % (MAX_ROUNDS, p["rounds"]), rounds=p["rounds"])
    try:
        kind, frame = packets.build(p["packet"], p["size"], p["qname"], p["dst_ip"])
    except packets.PacketError as exc:
        raise TestrunError(exc.msg, packet=p["packet"], size=p["size"], dst_ip=p["dst_ip"])

    pin_dir = None
    try:
        if p["interface"]:
            safety.interface_name(p["interface"], "interface")
        safety.netns_name(p["netns"], "netns")
        if not p["program"]:
            pin_dir = safety.strictly_under(p["pin_path"] or default_pin_path(p["interface"], p["netns"]),
                                            PIN_ROOT, "pin_path" if p["pin_path"] else "interface")
    except safety.UnsafeInput as exc:
        raise TestrunError(exc.msg, option=exc.option, interface=p["interface"], netns=p["netns"],
                           pin_path=p["pin_path"])
    where = ""
    if p["interface"]:
        where = " (interface %s%s)" % (p["interface"], " in netns %s" % p["netns"] if p["netns"] else "")
    facts = dict(pin_path=pin_dir, program=p["program"], interface=p["interface"], netns=p["netns"])

    if check_mode:
        try:
            if p["cpu"] is not None:
                set_cpu(p["cpu"], check_only=True)
            result = planned(p, pin_dir, where, kind, frame)
        except TestrunError as exc:
            details = dict(facts)
            details.update(exc.details)
            raise TestrunError(exc.msg, **details)
        result.update(facts, warnings=[])
        return result

    loaded = prog_fd = cmap = None
    info = {}
    try:
        if p["cpu"] is not None:
            set_cpu(p["cpu"])
        if pin_dir:
            prog_fd, info = open_pinned(pin_dir, where)
            map_path = os.path.join(pin_dir, ctr.MAP_NAME)
            if os.path.exists(map_path):
                cmap = ctr.CounterMap(map_path)
        else:
            _source, loaded = load_program(p["program"], p["defines"], p["loader"], p["bpf_dir"], p["build_dir"],
                                           p["clang"], p["function"])
            prog_fd, info = loaded.prog_fd, loaded.info
            if ctr.MAP_NAME in loaded.map_fds:
                cmap = ctr.CounterMap(fd=loaded.map_fds[ctr.MAP_NAME], path="%s (fresh load)" % ctr.MAP_NAME)
        res = run(prog_fd, frame, p["repeat"], p["rounds"], cmap, restore=bool(p["restore_counters"] and pin_dir))
    except (DeployError, TestrunError, ctr.CounterError) as exc:
        details = dict(facts)
        details.update(exc.details)
        raise TestrunError(exc.msg, **details)
    except libbpf.BpfError as exc:
        raise TestrunError("the test run of %s failed: %s" % (info.get("name") or "the program", exc.msg),
                           errno=exc.errno, **facts)
    finally:
        if cmap is not None:
            cmap.close()
        if loaded is not None:
            loaded.close()
        elif prog_fd is not None:
            os.close(prog_fd)

    first, last = res["first"], res["last"]
    result = dict(changed=False, ns_per_run=summarize(res["durations"]), retval=first.retval,
                  verdict=verdict_name(first.retval), repeated_verdict=verdict_name(last.retval),
                  packet=kind, packet_len=len(frame), packet_hex=frame.hex(), repeat=p["repeat"],
                  rounds=p["rounds"], runs=res["runs"], elapsed_s=round(res["elapsed_s"], 6),
                  prog={"id": info["id"], "tag": info["tag"], "name": info["name"]},
                  counters_restored=bool(res.get("counters_restored")), cpu=p["cpu"])
    for key in ("counters_delta", "live_packets_discarded"):
        if key in res:
            result[key] = res[key]
    if p["return_output"]:
        result["data_out_hex"] = first.data_out.hex()
    warnings = []
    if last.retval != first.retval:
        warnings.append("the program returned %s on the packet as given but %s on the later runs: it rewrites the "
                        "frame in place and the kernel repeats a round on the rewritten frame, so ns_per_run "
                        "measures the %s path" % (result["verdict"], result["repeated_verdict"],
                                                  result["repeated_verdict"]))
    if res.get("warning"):
        warnings.append(res["warning"])
    if res.get("live_packets_discarded"):
        warnings.append("restoring the counters discarded %d packets of live traffic counted during the test "
                        "(set restore_counters: false to keep them)" % res["live_packets_discarded"])
    result.update(facts, warnings=warnings)
    return result
