#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: xdp_stats
short_description: Read, sample or reset the per-CPU counters of an xdplab XDP program
version_added: 0.1.0
description:
  - Reads the C(xl_stats) per-CPU counters map that every xdplab program keeps (packets and bytes
    the program C(seen), C(dropped), sent back with XDP_TX (C(tx)), C(passed) to the stack and
    C(redirected)), summed and per CPU, together with the program's id, tag and name.
  - With O(interval) it samples twice and returns packet and byte rates over the measured window.
  - With O(reset=true) it zeroes the counters afterwards.
  - The map is found through the bpffs pins made by M(xdplab.offload.xdp_program) - give the
    O(interface) (and O(netns)) the program was attached to, its O(pin_path), or the O(map_path).
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: In check mode O(reset) only reports whether the counters would be zeroed.
  diff_mode:
    support: full
    details: With O(reset) the diff shows the summed counters before and after.
options:
  interface:
    description:
      - Interface the program was attached to; selects the default pin directory
        C(/sys/fs/bpf/xdplab/<netns or root>/<interface>).
      - Only names the pins; the interface itself is not looked up.
    type: str
  netns:
    description: Network namespace of O(interface), as given to M(xdplab.offload.xdp_program).
    type: str
  pin_path:
    description:
      - bpffs directory holding the program (C(prog)) and its maps (C(xl_stats)), as given to
        M(xdplab.offload.xdp_program). Overrides the default derived from O(interface).
    type: path
  map_path:
    description:
      - Path of a pinned counters map with the C(xl_stats) layout (per-CPU array, 4-byte key,
        16-byte C(struct xl_counter) value, at least 5 entries). A C(prog) pin beside it is
        reported when present.
    type: path
  reset:
    description:
      - Zero the counters on every CPU after reading them. Reports a change only when a
        counter was not zero. The returned counters are the values read before the reset.
      - Packets counted between the last read and the reset are lost (microseconds).
    type: bool
    default: false
  interval:
    description:
      - Seconds between two samples; returns RV(rates) over the measured window RV(elapsed_s).
    type: float
notes:
  - Reading never changes anything (C(changed=false)).
  - The counters are read one key at a time (and the kernel copies one CPU after the other), so
    under live traffic a sample is not an atomic snapshot - C(seen) and C(dropped) may differ by
    the few packets that arrived between two reads.
  - Test runs (M(xdplab.offload.bpf_testrun)) of the pinned program count in the same map unless
    that module restores it.
  - C(run_time_ns) and C(run_cnt) come from the kernel's BPF statistics, which grow only while
    collection is on - C(kernel.bpf_stats_enabled=1) (costs about 20 ns per run; switch it off
    afterwards) or a C(BPF_ENABLE_STATS) file descriptor held open by some process (not shown
    by the sysctl). Otherwise they stay 0 or at their last value.
requirements:
  - libbpf 1.x (libbpf.so.1)
  - bpffs mounted at /sys/fs/bpf
seealso:
  - module: xdplab.offload.xdp_program
  - module: xdplab.offload.bpf_testrun
'''

EXAMPLES = r'''
- name: Counters of the program on the device under test
  xdplab.offload.xdp_stats:
    interface: xl-dut0
    netns: xl-dut
  register: stats

- name: Processed packet rate over two seconds
  xdplab.offload.xdp_stats:
    interface: xl-dut0
    netns: xl-dut
    interval: 2
  register: window

- name: Show it
  ansible.builtin.debug:
    msg: "{{ window.rates.seen.pps }} pps seen, {{ window.rates.dropped.pps }} pps dropped"

- name: Zero the counters before the next measurement
  xdplab.offload.xdp_stats:
    interface: xl-dut0
    netns: xl-dut
    reset: true
'''

RETURN = r'''
counters:
  description: Counters summed over all CPUs, each with C(packets) and C(bytes).
  returned: always
  type: dict
  sample:
    seen: {packets: 1000, bytes: 100000}
    dropped: {packets: 1000, bytes: 100000}
    tx: {packets: 0, bytes: 0}
    passed: {packets: 0, bytes: 0}
    redirected: {packets: 0, bytes: 0}
per_cpu:
  description: The same counters per possible CPU (list index = CPU number).
  returned: always
  type: list
  elements: dict
rates:
  description:
    - Per counter C(pps) (packets/s) and C(bytes_per_s) over the window, and C(per_cpu), a list
      with the packet rate of every counter per CPU.
    - C(prog_ns_per_run) is the program's mean run time over the window when the kernel's BPF
      statistics are enabled and the program ran, otherwise null.
  returned: when interval is given
  type: dict
  sample:
    seen: {pps: 1000000.0, bytes_per_s: 60000000.0}
    per_cpu: [{seen: 0.0, dropped: 0.0, tx: 0.0, passed: 0.0, redirected: 0.0}]
    prog_ns_per_run: 71.3
elapsed_s:
  description: Measured time between the two samples (0 without interval).
  returned: always
  type: float
prog:
  description:
    - The pinned program's C(id), C(tag), C(name), the kernel's run statistics C(run_time_ns) and
      C(run_cnt) (see the notes) and their quotient C(ns_per_run) (null before the first counted run).
  returned: when a program is pinned beside the map
  type: dict
  sample: {id: 142, tag: a35d91dbc7de96a4, name: xl_drop, run_time_ns: 0, run_cnt: 0, ns_per_run: null}
bpf_stats_enabled:
  description: The value of the sysctl C(kernel.bpf_stats_enabled) (see the notes).
  returned: always
  type: bool
map_path:
  description: The counters map that was read.
  returned: always
  type: str
  sample: /sys/fs/bpf/xdplab/xl-dut/xl-dut0/xl_stats
ncpus:
  description: Number of possible CPUs (entries of RV(per_cpu)); 1 when RV(shared) is true.
  returned: always
  type: int
shared:
  description:
    - True when the counters are one shared set, a plain array map as offloaded programs use because a
      SmartNIC cannot hold per-CPU maps. RV(per_cpu) then has a single entry. Reads from a NIC are slower.
  returned: always
  type: bool
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xdplab.offload.plugins.module_utils import counters as ctr
from ansible_collections.xdplab.offload.plugins.module_utils import libbpf
# not from xdp_deploy: that would import pyroute2, seconds of start-up in an emulated guest
from ansible_collections.xdplab.offload.plugins.module_utils.counters import default_pin_path

MAX_INTERVAL = 3600.0


def _where(p):
    if p["interface"]:
        return "interface %s%s" % (p["interface"], " in netns %s" % p["netns"] if p["netns"] else "")
    return ""


def _missing_hint(p, pin_dir):
    where = _where(p)
    if pin_dir and os.path.isdir(pin_dir):
        return (": the program pinned under %s has no xl_stats map (is it an xdplab program? "
                "attach one with xdplab.offload.xdp_program)" % pin_dir)
    return (": attach a program with xdplab.offload.xdp_program first%s (nothing is pinned there; "
            "bpffs must be mounted at /sys/fs/bpf)" % (" (%s)" % where if where else ""))


def sample(cmap, prog_pin):
    per_cpu, stamp = cmap.read()
    prog = ctr.prog_summary(prog_pin) if prog_pin and os.path.exists(prog_pin) else None
    return per_cpu, stamp, prog


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str"),
            netns=dict(type="str"),
            pin_path=dict(type="path"),
            map_path=dict(type="path"),
            reset=dict(type="bool", default=False),
            interval=dict(type="float"),
        ),
        required_one_of=[("interface", "pin_path", "map_path")],
        mutually_exclusive=[("map_path", "interface"), ("map_path", "pin_path")],
        required_by={"netns": "interface"},
        supports_check_mode=True,
    )
    p = module.params
    if p["interval"] is not None and not 0 < p["interval"] <= MAX_INTERVAL:
        module.fail_json(msg="interval must be more than 0 and at most %d seconds, got %s"
                         % (MAX_INTERVAL, p["interval"]), interval=p["interval"])
    pin_dir = None
    if not p["map_path"]:
        pin_dir = p["pin_path"] or default_pin_path(p["interface"], p["netns"])
    map_path, prog_pin = ctr.resolve_paths(pin_dir, p["map_path"])
    facts = dict(map_path=map_path, pin_path=pin_dir, interface=p["interface"], netns=p["netns"])

    try:
        with ctr.CounterMap(map_path, hint=_missing_hint(p, pin_dir)) as cmap:
            per_cpu, first_at, prog = sample(cmap, prog_pin)
            result = dict(changed=False, elapsed_s=0.0)
            if p["interval"]:
                time.sleep(p["interval"])
                later, later_at, later_prog = sample(cmap, prog_pin)
                elapsed = later_at - first_at
                rates = ctr.rates(per_cpu, later, elapsed)
                rates["prog_ns_per_run"] = ctr.run_rate(prog, later_prog)
                result.update(rates=rates, elapsed_s=round(elapsed, 6))
                per_cpu, prog = later, later_prog
            summed = ctr.totals(per_cpu)
            if p["reset"] and not ctr.is_zero(per_cpu):
                result["changed"] = True
                result["diff"] = {"before": {"counters": summed},
                                  "after": {"counters": ctr.totals([dict((n, ctr.zero()) for n in ctr.NAMES)])}}
                if not module.check_mode:
                    cmap.zero()
            result.update(counters=summed, per_cpu=per_cpu, ncpus=len(per_cpu), shared=cmap.shared,
                          bpf_stats_enabled=ctr.bpf_stats_enabled())
            if prog is not None:
                result["prog"] = prog
    except ctr.CounterError as exc:
        details = dict(facts)
        details.update(exc.details)
        module.fail_json(msg=exc.msg, **details)
    except libbpf.BpfError as exc:
        module.fail_json(msg="cannot read the counters at %s: %s" % (map_path, exc.msg), errno=exc.errno, **facts)
    result.update(facts)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
