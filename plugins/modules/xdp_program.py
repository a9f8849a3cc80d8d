#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: xdp_program
short_description: Build, load and attach an XDP program in driver, generic or offload mode
version_added: 0.1.0
description:
  - Builds one of the collection's experiment programs (or your own C source or ELF object),
    loads it with libbpf or BCC, attaches it to an interface through netlink in the chosen
    XDP mode and pins the program and its maps under bpffs.
  - Idempotent by program tag and mode; a different program or mode replaces the attached one.
  - In check mode the program is still compiled and loaded (never attached or pinned) to learn
    its tag, which is what decides whether anything would change.
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.interface
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
options:
  program:
    description:
      - A built-in program (V(drop), V(loop), V(checksum), V(dns_nxdomain)) from O(bpf_dir),
        or the path of your own C source (C(.c)) or compiled ELF object (C(.o)).
      - Required when O(state=attached).
    type: str
  defines:
    description:
      - Compile-time parameters passed as C(-DNAME=VALUE), for example C(N) with the
        number of iterations of V(loop) and V(checksum) (see the examples).
    type: dict
    default: {}
  mode:
    description:
      - V(driver) is native XDP in the device driver, V(generic) the kernel's skb-based XDP,
        V(offload) runs the program on an offload-capable NIC (Netronome Agilio with the BPF
        firmware).
    type: str
    choices: [driver, generic, offload]
    default: driver
  loader:
    description:
      - V(object) compiles with clang into an ELF object (cached) and loads it with libbpf.
      - V(bcc) compiles the same source with BCC (needs python3-bpfcc and kernel headers).
    type: str
    choices: [object, bcc]
    default: object
  function:
    description:
      - Name of the XDP function to load. Built-in programs know theirs; for your own
        source or object the first program is used, except with O(loader=bcc) where it is
        required.
    type: str
  state:
    description:
      - V(attached) makes sure the program runs on the interface in O(mode).
      - V(detached) removes whatever XDP program the interface has, and its pins.
    type: str
    choices: [attached, detached]
    default: attached
  pin_path:
    description:
      - bpffs directory for the program (C(prog)) and its maps (by map name, e.g. C(xl_stats)).
      - Defaults to C(/sys/fs/bpf/xdplab/<netns or root>/<interface>).
    type: path
  bpf_dir:
    description: Directory with the collection's C(bpf/) sources on the managed host.
    type: path
    default: /opt/xdplab/bpf
  build_dir:
    description: Cache directory for compiled objects.
    type: path
    default: /var/cache/xdplab/bpf
  clang:
    description: The clang executable used by O(loader=object).
    type: str
    default: clang
requirements:
  - pyroute2 >= 0.9.1
  - libbpf 1.x (libbpf.so.1)
  - clang for O(loader=object) with C sources
  - BCC (python3-bpfcc) for O(loader=bcc)
notes:
  - One XDP mode per interface at a time; switching mode detaches the old program first.
  - A failed call leaves no program attached to the interface and no stale pin.
'''

EXAMPLES = r'''
- name: Drop everything in the veth driver of the device under test
  xdplab.offload.xdp_program:
    interface: xl-dut0
    netns: xl-dut
    program: drop
    mode: driver

- name: The processing-complexity program with 1000 iterations, compiled by BCC, generic XDP
  xdplab.offload.xdp_program:
    interface: xl-dut0
    netns: xl-dut
    program: loop
    defines:
      N: 1000
    mode: generic
    loader: bcc

- name: Offload the DNS responder to a Netronome card
  xdplab.offload.xdp_program:
    interface: enp1s0np0
    program: dns_nxdomain
    mode: offload

- name: Remove the program again
  xdplab.offload.xdp_program:
    interface: xl-dut0
    netns: xl-dut
    state: detached
'''

RETURN = r'''
prog_id:
  description: Kernel id of the attached program (none after detaching).
  returned: always
  type: int
  sample: 142
tag:
  description: The program's tag (hash of its instructions), which decides idempotency.
  returned: always
  type: str
  sample: a35d91dbc7de96a4
mode:
  description: The XDP mode the program is attached in.
  returned: always
  type: str
  sample: driver
ifindex:
  description: Interface index inside its namespace.
  returned: always
  type: int
pin_path:
  description: bpffs directory of the program and its maps.
  returned: always
  type: str
  sample: /sys/fs/bpf/xdplab/xl-dut/xl-dut0
maps:
  description: Pinned maps, name to bpffs path.
  returned: when attached
  type: dict
  sample: {xl_stats: /sys/fs/bpf/xdplab/xl-dut/xl-dut0/xl_stats}
program_hash:
  description: sha256 over the source, the headers and the defines (or over the object).
  returned: when attached
  type: str
object_path:
  description: The ELF object that was loaded (loader object).
  returned: when attached with loader object
  type: str
load_time_ms:
  description: Time to load the program into the kernel (and, for BCC, to compile it).
  returned: when attached
  type: float
attach_time_ms:
  description: Time to attach and pin; 0 when nothing changed.
  returned: when attached
  type: float
verifier_log:
  description: The verifier's log when the kernel rejected the program.
  returned: on failure
  type: str
compiler_output:
  description: The compiler's messages when the source did not compile.
  returned: on failure
  type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import xdp
from ansible_collections.xdplab.offload.plugins.module_utils.counters import default_pin_path
from ansible_collections.xdplab.offload.plugins.module_utils.xdp_deploy import (
    DeployError, attached_program, check_bpffs, deploy, load_program, pinned_prog_id, remove_pins)


def _describe(state):
    return {k: state.get(k) for k in ("mode", "prog_id", "tag", "name")} if state.get("mode") else {}


def _attached(module, ipr, ifindex, have, pin_path):
    p = module.params
    offload = p["mode"] == "offload"
    try:
        source, loaded = load_program(p["program"], p["defines"], p["loader"], p["bpf_dir"], p["build_dir"],
                                      p["clang"], p["function"], ifindex=ifindex if offload else None)
    except DeployError as exc:
        if offload and exc.details.get("offload_reason"):
            raise DeployError("the NIC refused to run %s offloaded on %s: %s"
                              % (p["program"], p["interface"], exc.details["offload_reason"]), **exc.details)
        if offload and "compiler_output" not in exc.details:
            raise DeployError("mode offload needs an offload-capable NIC (e.g. a Netronome Agilio with the BPF "
                              "firmware): the kernel refused to bind the program to %s (%s)"
                              % (p["interface"], xdp.link_kind(ipr, ifindex) or "no offload support"),
                              **exc.details)
        raise
    try:
        want = {"mode": p["mode"], "tag": loaded.tag, "name": loaded.info["name"]}
        same = (have["mode"] == want["mode"] and have["tag"] == want["tag"]
                and pinned_prog_id(pin_path) == have["prog_id"])
        result = dict(ifindex=ifindex, pin_path=pin_path, program=source.name, loader=p["loader"],
                      program_hash=loaded.program_hash, object_path=loaded.object_path,
                      load_time_ms=round(loaded.load_time_ms, 3), attach_time_ms=0.0)
        if same:
            maps = {n: os.path.join(pin_path, n) for n in loaded.map_fds
                    if os.path.exists(os.path.join(pin_path, n))}
            result.update(changed=False, prog_id=have["prog_id"], tag=have["tag"], mode=have["mode"], maps=maps)
            return result
        after = dict(want, prog_id=None if module.check_mode else loaded.info["id"])
        result.update(changed=True, diff={"before": _describe(have), "after": after})
        if module.check_mode:
            result.update(prog_id=have["prog_id"], tag=want["tag"], mode=want["mode"], maps={})
            return result
        check_bpffs(pin_path)
        attach_ms, maps = deploy(ipr, ifindex, loaded, p["mode"], have, pin_path, p["interface"], p["netns"])
        result.update(prog_id=loaded.info["id"], tag=loaded.tag, mode=p["mode"], maps=maps,
                      attach_time_ms=round(attach_ms, 3))
        return result
    finally:
        loaded.close()


def _detached(module, ipr, ifindex, have, pin_path):
    pins = os.path.isdir(pin_path)
    result = dict(ifindex=ifindex, pin_path=pin_path, prog_id=None, tag=None, mode=None,
                  changed=bool(have["mode"]) or pins)
    if result["changed"]:
        result["diff"] = {"before": _describe(have), "after": {}}
    if result["changed"] and not module.check_mode:
        if have["mode"]:
            xdp.detach_all(ipr, ifindex, module.params["interface"], module.params["netns"])
        remove_pins(pin_path)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str", required=True),
            netns=dict(type="str"),
            program=dict(type="str"),
            defines=dict(type="dict", default={}),
            mode=dict(type="str", choices=["driver", "generic", "offload"], default="driver"),
            loader=dict(type="str", choices=["object", "bcc"], default="object"),
            function=dict(type="str"),
            state=dict(type="str", choices=["attached", "detached"], default="attached"),
            pin_path=dict(type="path"),
            bpf_dir=dict(type="path", default="/opt/xdplab/bpf"),
            build_dir=dict(type="path", default="/var/cache/xdplab/bpf"),
            clang=dict(type="str", default="clang"),
        ),
        required_if=[("state", "attached", ["program"])],
        supports_check_mode=True,
    )
    if not xdp.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 >= 0.9.1"), exception=str(xdp.PYROUTE2_IMPORT_ERROR))
    p = module.params
    pin_path = p["pin_path"] or default_pin_path(p["interface"], p["netns"])
    try:
        with xdp.open_netlink(p["netns"]) as ipr:
            ifindex = xdp.lookup(ipr, p["interface"], p["netns"])
            have = attached_program(ipr, ifindex)
            if p["state"] == "attached":
                result = _attached(module, ipr, ifindex, have, pin_path)
            else:
                result = _detached(module, ipr, ifindex, have, pin_path)
    except DeployError as exc:
        module.fail_json(msg=exc.msg, interface=p["interface"], netns=p["netns"], mode=p["mode"], **exc.details)
    except xdp.XdpError as exc:
        module.fail_json(msg=exc.msg, interface=p["interface"], netns=p["netns"], mode=p["mode"], errno=exc.errno)
    result.update(interface=p["interface"], netns=p["netns"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
