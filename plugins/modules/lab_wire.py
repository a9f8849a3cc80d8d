#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: lab_wire
short_description: The emulated lab's wire, a veth pair between a load generator and a DUT namespace
version_added: 0.1.0
description:
  - Creates (or removes) two network namespaces joined by one veth pair, the load generator end
    and the device under test (DUT) end of the emulated lab.
  - Each end gets a stable, locally administered MAC (derived from its namespace and name unless
    given), one IPv4 address from 198.18.0.0/15 (RFC 2544's benchmarking range; nothing else is
    accepted), the other end's address as a permanent neighbour, and TX checksum offload off
    (veth leaves partial checksums that XDP responders and the OVS userspace datapath pass on unfixed).
  - On the DUT end it turns GRO on (veth keeps a NAPI instance only with GRO or an XDP program, and
    generic XDP needs one) and threaded NAPI on, and pins the C(napi/<dev>-*) kernel thread to one CPU,
    so that the DUT's receive work does not run on the load generator's CPU.
  - The module owns the IPv4 addresses and the permanent neighbour entries of both ends; others
    on those two interfaces are removed.
  - Both ends carry an ifalias that marks them as made by this module. O(state=absent) deletes the
    veth and exactly the namespaces this module created (when nothing else is left inside them).
  - Needs root. Namespace-local settings (ethtool features, C(/sys/class/net/<dev>/threaded), the
    netdev generic netlink family) are read and written from a forked child that enters the namespace
    with setns() and mounts its own sysfs in a private mount namespace, so pinned BPF objects under
    C(/sys/fs/bpf) stay visible to everyone.
author:
  - xdplab.offload developers (!UNKNOWN)
requirements:
  - pyroute2 >= 0.9.1
  - Linux >= 6.9 to report NAPI threads through the netdev netlink family (older kernels fall back to
    matching thread names)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Reads the current state and reports the steps it would take, without acting.
  diff_mode:
    support: full
    details: Shows both ends before and after.
options:
  state:
    description: Whether the wire should exist.
    type: str
    choices: [present, absent]
    default: present
  lg_netns:
    description: Namespace of the load generator end.
    type: str
    default: xl-lg
  dut_netns:
    description: Namespace of the DUT end; must differ from O(lg_netns).
    type: str
    default: xl-dut
  lg_interface:
    description: Name of the load generator's veth end (at most 15 characters).
    type: str
    default: xl-lg0
  dut_interface:
    description: Name of the DUT's veth end (at most 15 characters).
    type: str
    default: xl-dut0
  lg_address:
    description: IPv4 address with prefix length of the load generator end, inside 198.18.0.0/15.
    type: str
    default: 198.18.0.1/24
  dut_address:
    description: IPv4 address with prefix length of the DUT end, inside 198.18.0.0/15 and in the same subnet.
    type: str
    default: 198.18.0.2/24
  lg_mac:
    description:
      - MAC of the load generator end. Default is derived from O(lg_netns) and O(lg_interface)
        (stable across runs, locally administered, unicast).
    type: str
  dut_mac:
    description: MAC of the DUT end; default derived like O(lg_mac).
    type: str
  mtu:
    description: MTU of both ends.
    type: int
    default: 1500
  tx_checksum_offload:
    description: TX checksum offload (all changeable C(tx-checksum-*) features) on both ends.
    type: bool
    default: false
  dut_gro:
    description:
      - GRO on the DUT end. A veth has a NAPI instance only while GRO is on or an XDP program is
        attached; generic XDP and threaded NAPI need one.
    type: bool
    default: true
  threaded_napi:
    description: Threaded NAPI on the DUT end (needs O(dut_gro=true)).
    type: bool
    default: true
  napi_cpu:
    description:
      - CPU to pin the DUT end's NAPI thread to. Default is the last CPU this host lets the module use.
      - With O(queues) above 1, the NAPI thread of queue i goes to the i-th allowed CPU from this one on, in turn
        (two queues on CPUs 0 and 1 with the default - queue 0 on CPU 1, queue 1 on CPU 0).
      - Only used with O(threaded_napi=true).
    type: int
  napi_nice:
    description:
      - Scheduling priority (nice, -20 to 19) of the DUT end's NAPI thread(s); default left as the kernel made them (0).
      - Threaded NAPI runs as an ordinary thread, where a NIC's NAPI runs in softirq context ahead of every process;
        V(-20) gives it back that precedence over the orchestration and other work on a small machine. Other work on
        the same CPU (an AF_XDP worker) then gets little of it.
      - Only used with O(threaded_napi=true).
    type: int
  queues:
    description:
      - RX and TX queues of both ends (veth C(numrxqueues)/C(numtxqueues), then C(ethtool -L)); the DUT end gets
        one NAPI instance and, with O(threaded_napi=true), one pinned NAPI thread per queue.
      - "A veth puts a frame that is redirected into it (as C(xl-loadgen) does) on the RX queue (sending CPU mod
        queues) of its peer; M(xdplab.offload.traffic) with O(xdplab.offload.traffic#module:flows) above 1 steers
        flow f to queue f mod queues."
      - Lowering the count, or raising it up to the count the veth was made with, changes it in place; raising it
        beyond makes the veth pair again (an XDP program attached to it is gone then).
    type: int
    default: 1
notes:
  - The NAPI threads are created by the kernel when threaded NAPI goes on; it survives XDP attach and
    detach as long as GRO stays on. If something turns GRO off, the thread and its pinning are gone;
    run the module again.
seealso:
  - name: Threaded NAPI
    description: The C(threaded) attribute of network devices.
    link: https://docs.kernel.org/networking/napi.html#threaded
"""

EXAMPLES = r"""
- name: Build the emulated lab's wire
  xdplab.offload.lab_wire:
    state: present
  register: wire

- name: A second wire with its own names and subnet, DUT NAPI on CPU 1
  xdplab.offload.lab_wire:
    lg_netns: xl-lg2
    dut_netns: xl-dut2
    lg_interface: xl-lg2a
    dut_interface: xl-dut2a
    lg_address: 198.18.2.1/24
    dut_address: 198.18.2.2/24
    napi_cpu: 1

- name: Two RX queues on the DUT end, one NAPI thread each (CPU 1 and CPU 0)
  xdplab.offload.lab_wire:
    queues: 2

- name: Remove the wire
  xdplab.offload.lab_wire:
    state: absent
"""

RETURN = r"""
changes:
  description: The steps taken (or, in check mode, that would be taken), in order.
  returned: always
  type: list
  elements: str
  sample: ["create namespace xl-lg", "create veth xl-lg0 (xl-lg) <-> xl-dut0 (xl-dut)"]
lg:
  description: The load generator end.
  returned: when O(state=present)
  type: dict
  contains:
    netns: {description: Namespace., type: str, returned: always, sample: xl-lg}
    interface: {description: Interface name., type: str, returned: always, sample: xl-lg0}
    ifindex: {description: Interface index inside its namespace (null in check mode before creation)., type: int,
              returned: always, sample: 2}
    mac: {description: MAC address., type: str, returned: always, sample: "0e:5c:1d:9a:41:07"}
    address: {description: IPv4 address with prefix length., type: str, returned: always, sample: 198.18.0.1/24}
    mtu: {description: MTU., type: int, returned: always, sample: 1500}
    tx_checksum_offload: {description: Whether any TX checksum offload is on., type: bool, returned: always,
                          sample: false}
    queues: {description: RX (and TX) queues in use., type: int, returned: always, sample: 1}
dut:
  description: The DUT end; the keys of RV(lg) plus the NAPI settings.
  returned: when O(state=present)
  type: dict
  contains:
    netns: {description: Namespace., type: str, returned: always, sample: xl-dut}
    interface: {description: Interface name., type: str, returned: always, sample: xl-dut0}
    ifindex: {description: Interface index inside its namespace., type: int, returned: always, sample: 2}
    mac: {description: MAC address., type: str, returned: always, sample: "5a:90:2e:11:c4:3b"}
    address: {description: IPv4 address with prefix length., type: str, returned: always, sample: 198.18.0.2/24}
    mtu: {description: MTU., type: int, returned: always, sample: 1500}
    tx_checksum_offload: {description: Whether any TX checksum offload is on., type: bool, returned: always,
                          sample: false}
    gro: {description: Whether GRO is on., type: bool, returned: always, sample: true}
    threaded_napi: {description: Whether threaded NAPI is on., type: bool, returned: always, sample: true}
    napi_cpu: {description: CPU the NAPI thread(s) are pinned to (null when not pinned to one CPU)., type: int,
               returned: always, sample: 1}
    napi_cpus: {description: CPU of each queue's NAPI thread in queue order (null for one not pinned to one CPU).,
                type: list, elements: int, returned: always, sample: [1, 0]}
    queues: {description: RX (and TX) queues in use., type: int, returned: always, sample: 2}
    napi_threads:
      description: The DUT end's NAPI kernel threads.
      type: list
      elements: dict
      returned: always
      sample: [{"pid": 4283, "napi_id": 8193, "name": "napi/xl-dut0-81", "cpus": [1], "nice": 0}]
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import wire


def argument_spec():
    return dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        lg_netns=dict(type="str", default="xl-lg"),
        dut_netns=dict(type="str", default="xl-dut"),
        lg_interface=dict(type="str", default="xl-lg0"),
        dut_interface=dict(type="str", default="xl-dut0"),
        lg_address=dict(type="str", default="198.18.0.1/24"),
        dut_address=dict(type="str", default="198.18.0.2/24"),
        lg_mac=dict(type="str"),
        dut_mac=dict(type="str"),
        mtu=dict(type="int", default=1500),
        tx_checksum_offload=dict(type="bool", default=False),
        dut_gro=dict(type="bool", default=True),
        threaded_napi=dict(type="bool", default=True),
        napi_cpu=dict(type="int"),
        queues=dict(type="int", default=1),
        napi_nice=dict(type="int"),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not wire.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2>=0.9.1"),
                         exception=str(wire.PYROUTE2_IMPORT_ERROR))
    problem = wire.pyroute2_problem()
    if problem:
        module.fail_json(msg=problem)
    if os.geteuid() != 0:
        module.fail_json(msg="lab_wire needs root to manage namespaces and veth interfaces; run it with become: true.")

    state = module.params["state"]
    try:
        want = wire.build_want(module.params, os.sched_getaffinity(0))
        have = wire.read_have(want)
        if state == "present":
            steps, warnings = wire.plan_present(want, have), []
        else:
            steps, warnings = wire.plan_absent(want, have)
        after = have
        if steps and not module.check_mode:
            wire.apply_steps(want, steps)
            after = wire.read_have(want)
            if state == "present":
                left = wire.plan_present(want, after)
                if left:
                    module.fail_json(
                        msg="The wire did not converge: %s is still needed after applying the changes." % left[0]["text"],
                        remaining=[s["text"] for s in left], changes=[s["text"] for s in steps], changed=True)
    except wire.WireError as exc:
        module.fail_json(msg=exc.msg, **exc.details)

    for text in warnings:
        module.warn(text)
    result = dict(changed=bool(steps), state=state, changes=[s["text"] for s in steps])
    if state == "present":
        shown = after
        if steps and module.check_mode:
            result["lg"] = wire.result_side(want, {s: {} for s in wire.SIDES}, "lg")
            result["dut"] = wire.result_side(want, {s: {} for s in wire.SIDES}, "dut")
            for side in wire.SIDES:
                link = have[side].get("link") or {}
                result[side]["ifindex"] = link.get("ifindex")
        else:
            result["lg"] = wire.result_side(want, shown, "lg")
            result["dut"] = wire.result_side(want, shown, "dut")
    if module._diff:
        before = {side: wire.view(want, have, side) for side in wire.SIDES}
        if not steps:
            after_view = before
        elif module.check_mode:
            after_view = {side: wire.want_view(want, side) for side in wire.SIDES}
        else:
            after_view = {side: wire.view(want, after, side) for side in wire.SIDES}
        result["diff"] = dict(before=before, after=after_view)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
