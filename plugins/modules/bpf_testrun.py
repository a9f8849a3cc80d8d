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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xdplab.offload.plugins.module_utils.testrun import TESTRUN_DEFAULTS as D
from ansible_collections.xdplab.offload.plugins.module_utils.testrun import TestrunError, time_program


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str"),
            netns=dict(type="str"),
            pin_path=dict(type="path"),
            program=dict(type="str"),
            defines=dict(type="dict", default=D["defines"]),
            loader=dict(type="str", choices=["object", "bcc"], default=D["loader"]),
            function=dict(type="str"),
            bpf_dir=dict(type="path", default=D["bpf_dir"]),
            build_dir=dict(type="path", default=D["build_dir"]),
            clang=dict(type="str", default=D["clang"]),
            packet=dict(type="str", default=D["packet"]),
            size=dict(type="int"),
            qname=dict(type="str", default=D["qname"]),
            dst_ip=dict(type="str"),
            repeat=dict(type="int", default=D["repeat"]),
            rounds=dict(type="int", default=D["rounds"]),
            cpu=dict(type="int"),
            return_output=dict(type="bool", default=D["return_output"]),
            restore_counters=dict(type="bool", default=D["restore_counters"]),
        ),
        required_one_of=[("interface", "pin_path", "program")],
        mutually_exclusive=[("program", "interface"), ("program", "pin_path")],
        required_by={"netns": "interface"},
        supports_check_mode=True,
    )
    try:
        result = time_program(module.params, module.check_mode)
    except TestrunError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
