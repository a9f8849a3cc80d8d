#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: bpf_testrun
short_description: Micro-benchmark an XDP program with BPF_PROG_TEST_RUN
version_added: 0.1.0
description:
  - Runs an XDP program in the kernel on one packet, O(repeat) times per round for O(rounds)
    rounds, with C(BPF_PROG_TEST_RUN), and returns the kernel-measured nanoseconds per run of
    every round with their median, minimum and maximum, plus the program's verdict.
  - The program is either the one M(xdplab.offload.xdp_program) attached and pinned (give
    O(interface) and O(netns), or O(pin_path)), or loaded fresh for the test from O(program)
    and O(defines) (never attached; unloaded again).
  - The packet is built in pure Python (V(udp), V(dns_query), V(tcp); full checksums,
    198.18.0.0/15 addresses) or given as hex.
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode runs nothing - no compile, no program load, no C(BPF_PROG_TEST_RUN) (test runs count in
        the program's maps) and no counter is written. It checks the inputs, builds the packet and reads the
        pinned program's identity; RV(ns_per_run), RV(verdict) and the counters are null and RV(runs) is 0.
  diff_mode:
    support: none
options:
  interface:
    description:
      - Interface a program was attached to by M(xdplab.offload.xdp_program); the test runs the
        program pinned under C(/sys/fs/bpf/xdplab/<netns or root>/<interface>/prog).
      - A plain interface name (it becomes part of that path).
    type: str
  netns:
    description: Network namespace of O(interface) (a plain name, part of the pin path).
    type: str
  pin_path:
    description:
      - bpffs directory of a pinned program (C(prog)) and its maps.
      - Must resolve (symbolic links and C(..) followed) to a directory below C(/sys/fs/bpf/xdplab), since the
        test writes the counters of the maps found there back.
    type: path
  program:
    description:
      - Load this program just for the test instead of using a pinned one - a built-in
        (V(drop), V(loop), V(checksum), V(dns_nxdomain)) from O(bpf_dir) or the path of a C
        source or ELF object, as in M(xdplab.offload.xdp_program).
    type: str
  defines:
    description: "Compile-time parameters for O(program), for example C({N: 1000})."
    type: dict
    default: {}
  loader:
    description: How O(program) is compiled and loaded (see M(xdplab.offload.xdp_program)).
    type: str
    choices: [object, bcc]
    default: object
  function:
    description: XDP function of O(program) to load (built-ins know theirs).
    type: str
  bpf_dir:
    description: Directory with the collection's C(bpf/) sources.
    type: path
    default: /opt/xdplab/bpf
  build_dir:
    description: Cache directory for compiled objects.
    type: path
    default: /var/cache/xdplab/bpf
  clang:
    description: The clang executable for O(loader=object).
    type: str
    default: clang
  packet:
    description:
      - V(udp) - Ethernet/IPv4/UDP from 198.18.0.1:9 to 198.18.0.2:9, payload filling O(size).
      - V(dns_query) - a DNS query (QR=0, type A) for O(qname) from port 40000 to port 53.
      - V(tcp) - a TCP SYN with an MSS option from port 40000 to port 80.
      - Anything else is read as the frame in hex (from the Ethernet header on; spaces and
        colons allowed).
    type: str
    default: udp
  size:
    description:
      - Frame length in bytes without FCS (60 is a 64-byte frame on the wire), at most 1518.
        Defaults to 60, or the natural length when larger. UDP frames fill it with payload;
        DNS and TCP frames are padded with an Ethernet trailer. Not for hex packets.
    type: int
  qname:
    description: The name asked for by a V(dns_query) packet.
    type: str
    default: example.com
  dst_ip:
    description:
      - Destination IPv4 address of a V(udp), V(dns_query) or V(tcp) packet instead of
        198.18.0.2, inside 198.18.0.0/15. Not for hex packets.
      - A program built with C(XL_TARGET_IP) acts only on frames to that address and passes
        the others uncounted; time it on frames to its target.
    type: str
    version_added: 0.2.0
  repeat:
    description:
      - Runs per round. The kernel reports the mean time per run of a round.
      - The kernel runs the repetitions of a round on the same buffer, so a program that
        rewrites the frame (like V(dns_nxdomain)) sees its own output from the second run on;
        RV(repeated_verdict) then differs from RV(verdict) and a warning says so.
    type: int
    default: 100000
  rounds:
    description: Number of rounds (each one C(BPF_PROG_TEST_RUN) call).
    type: int
    default: 5
  cpu:
    description:
      - Run the test on this CPU (the module pins itself to it). Default - wherever the
        scheduler puts it.
    type: int
  return_output:
    description: Return the frame after the first run as RV(data_out_hex).
    type: bool
    default: false
  restore_counters:
    description:
      - Test runs count in the program's C(xl_stats) map like real packets. For a pinned
        program the counters are read before the test and written back afterwards, so the
        live statistics are not polluted by the test packets.
      - Packets of live traffic counted while the test ran are lost by that restore; their
        number is returned as RV(live_packets_discarded) and a warning is issued. Set V(false)
        to keep them (and the test packets) counted.
      - Has no effect on a program loaded with O(program) (its maps are private to the test).
    type: bool
    default: true
notes:
  - The kernel's per-program run statistics (C(kernel.bpf_stats_enabled)) do count test runs and
    cannot be restored.
  - C(BPF_PROG_TEST_RUN) measures the program alone - no driver, no page allocation, no
    wire; compare locations with the experiments, not with this number.
  - Offloaded programs (bound to a device) cannot be test-run on the host.
requirements:
  - libbpf 1.x (libbpf.so.1)
  - clang (O(program) with O(loader=object)) or BCC (O(loader=bcc))
seealso:
  - module: xdplab.offload.xdp_program
  - module: xdplab.offload.xdp_stats
'''

EXAMPLES = r'''
- name: Cost of 1000 loop iterations per 64-byte packet
  xdplab.offload.bpf_testrun:
    program: loop
    defines:
      N: 1000
    bpf_dir: /opt/xdplab/bpf
    packet: udp
    size: 60
  register: loop1000

- name: What the attached DNS responder answers to a query
  xdplab.offload.bpf_testrun:
    interface: xl-dut0
    netns: xl-dut
    packet: dns_query
    qname: www.example.org
    repeat: 1
    rounds: 1
    return_output: true
  register: answer

- name: Cost of the uplink checksum program on frames to its target (built with XL_TARGET_IP)
  xdplab.offload.bpf_testrun:
    interface: xl-up0
    dst_ip: 198.18.2.10
    packet: udp
  register: uplink_cost

- name: A hand-made frame
  xdplab.offload.bpf_testrun:
    pin_path: /sys/fs/bpf/xdplab/xl-dut/xl-dut0
    packet: "0200c6120002 0200c6120001 0800 4500..."
'''

RETURN = r'''
ns_per_run:
  description:
    - Kernel-measured nanoseconds per run (integer mean of each round) - C(median), C(min),
      C(max) and the C(rounds) themselves.
  returned: always (null in check mode)
  type: dict
  sample: {median: 1104, min: 1098, max: 1131, rounds: [1104, 1131, 1098, 1100, 1110]}
retval:
  description: The program's return value on the packet as given (first run).
  returned: always (null in check mode)
  type: int
  sample: 1
verdict:
  description: RV(retval) as an XDP action name.
  returned: always (null in check mode)
  type: str
  sample: XDP_DROP
repeated_verdict:
  description:
    - Verdict of the last timed run; differs from RV(verdict) when the program rewrote the
      frame and later runs took another path.
  returned: always (null in check mode)
  type: str
packet:
  description: The packet kind (C(udp), C(dns_query), C(tcp) or C(hex)).
  returned: always
  type: str
packet_len:
  description: Frame length in bytes.
  returned: always
  type: int
packet_hex:
  description: The input frame in hex.
  returned: always
  type: str
data_out_hex:
  description: The frame after the first run, in hex.
  returned: when return_output is true
  type: str
runs:
  description: Program runs made in all (one verdict run plus O(repeat) times O(rounds)).
  returned: always
  type: int
prog:
  description: The tested program's C(id), C(tag) and C(name) (in check mode only for a pinned program).
  returned: always
  type: dict
check_mode_skipped:
  description: True in check mode, where nothing is run.
  returned: in check mode
  type: bool
counters_delta:
  description:
    - What the test runs (and any live traffic meanwhile) added to the program's C(xl_stats)
      counters, summed over CPUs, per counter with C(packets) and C(bytes).
  returned: when the program has an xl_stats map
  type: dict
counters_restored:
  description: Whether the pinned program's counters were written back to their values before the test.
  returned: always
  type: bool
live_packets_discarded:
  description: Packets of live traffic counted during the test and discarded by the restore.
  returned: when counters were restored
  type: int
elapsed_s:
  description: Wall-clock time of all test runs.
  returned: always
  type: float
'''

import os
import statistics
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xdplab.offload.plugins.module_utils import counters as ctr
from ansible_collections.xdplab.offload.plugins.module_utils import libbpf, packets, programs, safety
from ansible_collections.xdplab.offload.plugins.module_utils.counters import PIN_ROOT, default_pin_path
from ansible_collections.xdplab.offload.plugins.module_utils.xdp_deploy import DeployError, load_program

BPF_PROG_TYPE_XDP = 6
VERDICTS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
MAX_REPEAT = 2 ** 31 - 1
MAX_ROUNDS = 1000


class TestRunError(Exception):
    def __init__(self, msg, **details):
        super(TestRunError, self).__init__(msg)
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
        raise TestRunError("no program pinned at %s: attach a program with xdplab.offload.xdp_program first%s, "
                           "or give program to load one just for the test" % (path, where), prog_path=path)
    try:
        fd = libbpf.obj_get(path)
    except libbpf.BpfError as exc:
        raise TestRunError("cannot open the pinned program %s (%s)" % (path, exc.msg), prog_path=path,
                           errno=exc.errno)
    try:
        if ctr.fd_kind(fd) != "prog":
            raise TestRunError("%s is not a BPF program" % path, prog_path=path)
        info = libbpf.prog_info(fd)
        if info["type"] != BPF_PROG_TYPE_XDP:
            raise TestRunError("the program pinned at %s is not an XDP program (type %d)" % (path, info["type"]),
                               prog_path=path)
        if info["ifindex"]:
            raise TestRunError("the program pinned at %s is offloaded to a device (ifindex %d) and cannot be "
                               "test-run on the host; give program to test a host copy" % (path, info["ifindex"]),
                               prog_path=path)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def set_cpu(cpu, check_only=False):
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise TestRunError("cpu %d is not one this process may run on (%s)"
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
                raise TestRunError("defines apply to C sources only; %s is a compiled object" % source.source_path)
        except programs.ProgramError as exc:
            raise TestRunError(exc.msg)
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str"),
            netns=dict(type="str"),
            pin_path=dict(type="path"),
            program=dict(type="str"),
            defines=dict(type="dict", default={}),
            loader=dict(type="str", choices=["object", "bcc"], default="object"),
            function=dict(type="str"),
            bpf_dir=dict(type="path", default="/opt/xdplab/bpf"),
            build_dir=dict(type="path", default="/var/cache/xdplab/bpf"),
            clang=dict(type="str", default="clang"),
            packet=dict(type="str", default="udp"),
            size=dict(type="int"),
            qname=dict(type="str", default="example.com"),
            dst_ip=dict(type="str"),
            repeat=dict(type="int", default=100000),
            rounds=dict(type="int", default=5),
            cpu=dict(type="int"),
            return_output=dict(type="bool", default=False),
            restore_counters=dict(type="bool", default=True),
        ),
        required_one_of=[("interface", "pin_path", "program")],
        mutually_exclusive=[("program", "interface"), ("program", "pin_path")],
        required_by={"netns": "interface"},
        supports_check_mode=True,
    )
    p = module.params
    if not 1 <= p["repeat"] <= MAX_REPEAT:
        module.fail_json(msg="repeat must be 1..%d, got %d" % (MAX_REPEAT, p["repeat"]), repeat=p["repeat"])
    if not 1 <= p["rounds"] <= MAX_ROUNDS:
        module.fail_json(msg="rounds must be 1..%d, got %d" % (MAX_ROUNDS, p["rounds"]), rounds=p["rounds"])
    try:
        kind, frame = packets.build(p["packet"], p["size"], p["qname"], p["dst_ip"])
    except packets.PacketError as exc:
        module.fail_json(msg=exc.msg, packet=p["packet"], size=p["size"], dst_ip=p["dst_ip"])

    pin_dir = None
    try:
        if p["interface"]:
            safety.interface_name(p["interface"], "interface")
        safety.netns_name(p["netns"], "netns")
        if not p["program"]:
            pin_dir = safety.strictly_under(p["pin_path"] or default_pin_path(p["interface"], p["netns"]),
                                            PIN_ROOT, "pin_path" if p["pin_path"] else "interface")
    except safety.UnsafeInput as exc:
        module.fail_json(msg=exc.msg, option=exc.option, interface=p["interface"], netns=p["netns"],
                         pin_path=p["pin_path"])
    where = ""
    if p["interface"]:
        where = " (interface %s%s)" % (p["interface"], " in netns %s" % p["netns"] if p["netns"] else "")
    facts = dict(pin_path=pin_dir, program=p["program"], interface=p["interface"], netns=p["netns"])

    if module.check_mode:
        try:
            if p["cpu"] is not None:
                set_cpu(p["cpu"], check_only=True)
            result = planned(p, pin_dir, where, kind, frame)
        except TestRunError as exc:
            details = dict(facts)
            details.update(exc.details)
            module.fail_json(msg=exc.msg, **details)
        result.update(facts)
        module.exit_json(**result)

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
    except DeployError as exc:
        details = dict(facts)
        details.update(exc.details)
        module.fail_json(msg=exc.msg, **details)
    except (TestRunError, ctr.CounterError) as exc:
        details = dict(facts)
        details.update(exc.details)
        module.fail_json(msg=exc.msg, **details)
    except libbpf.BpfError as exc:
        module.fail_json(msg="the test run of %s failed: %s" % (info.get("name") or "the program", exc.msg),
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
    if last.retval != first.retval:
        module.warn("the program returned %s on the packet as given but %s on the later runs: it rewrites the "
                    "frame in place and the kernel repeats a round on the rewritten frame, so ns_per_run "
                    "measures the %s path" % (result["verdict"], result["repeated_verdict"],
                                              result["repeated_verdict"]))
    if res.get("warning"):
        module.warn(res["warning"])
    if res.get("live_packets_discarded"):
        module.warn("restoring the counters discarded %d packets of live traffic counted during the test "
                    "(set restore_counters: false to keep them)" % res["live_packets_discarded"])
    result.update(facts)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
