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
  - Only a program the collection attached is replaced or detached - the one pinned at O(pin_path),
    or one named like the collection's programs (C(xl_drop), C(xl_loop), C(xl_checksum),
    C(xl_dns_nxdomain), C(xl_afxdp_redir)). Any other program fails the task (naming the interface
    and the program id) unless O(force=true).
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.interface
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode compiles nothing (no build cache is written), loads no program (an offload load
        would bind it to the NIC), attaches, pins and detaches nothing.
      - It predicts from what it can read - the attached program's id, name, tag and mode against the
        wanted program and mode. When the same collection program runs in the same mode, the wanted
        program's tag cannot be known without compiling and loading it, so the result is
        C(changed=true), RV(tag_known=false) and RV(check_mode_reason) says so.
  diff_mode:
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
      - V(detached) removes the XDP program the collection attached to the interface, and its pins
        (another program only with O(force=true)).
    type: str
    choices: [attached, detached]
    default: attached
  pin_path:
    description:
      - bpffs directory for the program (C(prog)) and its maps (by map name, e.g. C(xl_stats)).
      - Defaults to C(/sys/fs/bpf/xdplab/<netns or root>/<interface>).
      - Must resolve (symbolic links and C(..) followed) to a directory strictly below
        C(/sys/fs/bpf/xdplab); anything else is refused before anything is read or removed, since
        this directory is replaced on attach and removed on detach.
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
  force:
    description:
      - Replace or detach an attached XDP program that the collection did not attach (not pinned
        at O(pin_path) and not named like the collection's programs). Without it such a program is
        left alone and the task fails naming the interface and the program's id.
    type: bool
    default: false
    version_added: 0.3.0
requirements:
  - pyroute2 >= 0.9.1
  - libbpf 1.x (libbpf.so.1)
  - clang for O(loader=object) with C sources
  - BCC (python3-bpfcc) for O(loader=bcc)
notes:
  - One XDP mode per interface at a time; switching mode detaches the old (the collection's) program first.
  - A failed call leaves neither the new nor the replaced program of the collection attached and no stale pin;
    a program attached by someone else is never detached without O(force=true).
  - O(interface) and O(netns) must be plain names (they become parts of the default O(pin_path)).
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
tag_known:
  description: In check mode, whether the prediction knew the wanted program's tag (always false - check mode
    does not compile or load).
  returned: in check mode with state attached
  type: bool
  sample: false
check_mode_reason:
  description: In check mode, why the task would change something (or why the prediction is conservative).
  returned: in check mode with state attached
  type: str
foreign_programs:
  description: The attached programs the collection did not attach (C(mode), C(prog_id), C(name)) that made
    the task fail without O(force).
  returned: on failure
  type: list
  elements: dict
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

from ansible_collections.xdplab.offload.plugins.module_utils import programs, safety, xdp
from ansible_collections.xdplab.offload.plugins.module_utils.counters import PIN_ROOT, default_pin_path
from ansible_collections.xdplab.offload.plugins.module_utils.xdp_deploy import (
    OFFLOAD_DEFINE, DeployError, attached_program, check_bpffs, confined_pin_path, deploy, detach_programs,
    foreign_programs, load_program, pinned_prog_id, remove_pins)


def _describe(state):
    return {k: state.get(k) for k in ("mode", "prog_id", "tag", "name")} if state.get("mode") else {}


def _refuse_foreign(p, have, pin_path, action):
    """DeployError if a program the collection did not attach would be replaced or detached (and no force)."""
    foreign = foreign_programs(have, pin_path)
    if not foreign or p["force"]:
        return
    where = "%s in namespace %s" % (p["interface"], p["netns"]) if p["netns"] else p["interface"]
    progs = ", ".join("id %s (name %s, %s mode)" % (f["prog_id"], f["name"] or "unknown", f["mode"]) for f in foreign)
    raise DeployError("%s has an XDP program this collection did not attach: %s; it is neither pinned at %s nor "
                      "named like the collection's programs, so it is not %s. Detach it yourself, or set force: true "
                      "to %s it anyway" % (where, progs, pin_path, action, action),
                      prog_id=foreign[0]["prog_id"], foreign_programs=foreign, option="force")


def _planned(module, ifindex, have, pin_path):
    """Check mode of state=attached: what would change, from what can be read (no build, no load)."""
    p = module.params
    try:
        source = programs.resolve_program(p["program"], p["bpf_dir"])
        defines = dict(p["defines"] or {}, **{OFFLOAD_DEFINE: 1}) if (
            p["mode"] == "offload" and source.kind == "c") else (p["defines"] or {})
        if source.kind == "o" and p["defines"]:
            raise DeployError("defines apply to C sources only; %s is a compiled object" % source.source_path,
                              option="defines")
        program_hash = programs.program_hash(source.source_path, defines, [os.path.join(p["bpf_dir"], "include")])
    except programs.ProgramError as exc:
        raise DeployError(exc.msg)
    want_name = (p["function"] or source.function or "")[:15] or None
    result = dict(ifindex=ifindex, pin_path=pin_path, program=source.name, loader=p["loader"],
                  program_hash=program_hash, prog_id=have["prog_id"], tag=None, mode=p["mode"], maps={},
                  load_time_ms=0.0, attach_time_ms=0.0, changed=True, tag_known=False)
    ours = have["prog_id"] and pinned_prog_id(pin_path) == have["prog_id"]
    if not have["mode"]:
        reason = "no XDP program is attached"
    elif have["mode"] != p["mode"]:
        reason = "the attached program runs in mode %s, not %s" % (have["mode"], p["mode"])
    elif not ours:
        reason = "the attached program (id %s) is not the one pinned at %s" % (have["prog_id"], pin_path)
    elif want_name and have["name"] and have["name"] != want_name:
        reason = "the attached program is %s, not %s" % (have["name"], want_name)
    else:
        reason = ("check mode neither compiles nor loads, so the tag of the wanted program is unknown: the "
                  "attached program (id %s, tag %s) is reported as changed, which may be conservative"
                  % (have["prog_id"], have["tag"]))
    result["check_mode_reason"] = reason
    after = {"mode": p["mode"], "name": want_name, "tag": None, "prog_id": None}
    result["diff"] = {"before": _describe(have), "after": after}
    return result


def _attached(module, ipr, ifindex, have, pin_path):
    p = module.params
    offload = p["mode"] == "offload"
    _refuse_foreign(p, have, pin_path, "replaced")
    if module.check_mode:
        return _planned(module, ifindex, have, pin_path)
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
        after = dict(want, prog_id=loaded.info["id"])
        result.update(changed=True, diff={"before": _describe(have), "after": after})
        check_bpffs(pin_path)
        attach_ms, maps = deploy(ipr, ifindex, loaded, p["mode"], have, pin_path, p["interface"], p["netns"])
        result.update(prog_id=loaded.info["id"], tag=loaded.tag, mode=p["mode"], maps=maps,
                      attach_time_ms=round(attach_ms, 3))
        return result
    finally:
        loaded.close()


def _detached(module, ipr, ifindex, have, pin_path):
    _refuse_foreign(module.params, have, pin_path, "detached")
    pins = os.path.isdir(pin_path)
    result = dict(ifindex=ifindex, pin_path=pin_path, prog_id=None, tag=None, mode=None,
                  changed=bool(have["mode"]) or pins)
    if result["changed"]:
        result["diff"] = {"before": _describe(have), "after": {}}
    if result["changed"] and not module.check_mode:
        if have["mode"]:
            detach_programs(ipr, ifindex, have, module.params["interface"], module.params["netns"])
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
            force=dict(type="bool", default=False),
        ),
        required_if=[("state", "attached", ["program"])],
        supports_check_mode=True,
    )
    if not xdp.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 >= 0.9.1"), exception=str(xdp.PYROUTE2_IMPORT_ERROR))
    p = module.params
    try:
        safety.interface_name(p["interface"], "interface")
        safety.netns_name(p["netns"], "netns")
    except safety.UnsafeInput as exc:
        module.fail_json(msg=exc.msg, option=exc.option, interface=p["interface"], netns=p["netns"])
    try:
        pin_path = confined_pin_path(p["pin_path"] or default_pin_path(p["interface"], p["netns"]), PIN_ROOT,
                                     "pin_path")
    except DeployError as exc:
        module.fail_json(msg=exc.msg, interface=p["interface"], netns=p["netns"], pin_path=p["pin_path"],
                         **exc.details)
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
