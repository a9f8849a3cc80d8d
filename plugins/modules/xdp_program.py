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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import safety, xdp
from ansible_collections.xdplab.offload.plugins.module_utils.xdp_deploy import (
    ATTACH_DEFAULTS, DeployError, ensure_attached_on, ensure_detached_on, target_pin_path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str", required=True),
            netns=dict(type="str"),
            program=dict(type="str"),
            defines=dict(type="dict", default=ATTACH_DEFAULTS["defines"]),
            mode=dict(type="str", choices=["driver", "generic", "offload"], default=ATTACH_DEFAULTS["mode"]),
            loader=dict(type="str", choices=["object", "bcc"], default=ATTACH_DEFAULTS["loader"]),
            function=dict(type="str"),
            state=dict(type="str", choices=["attached", "detached"], default="attached"),
            pin_path=dict(type="path"),
            bpf_dir=dict(type="path", default=ATTACH_DEFAULTS["bpf_dir"]),
            build_dir=dict(type="path", default=ATTACH_DEFAULTS["build_dir"]),
            clang=dict(type="str", default=ATTACH_DEFAULTS["clang"]),
            force=dict(type="bool", default=ATTACH_DEFAULTS["force"]),
        ),
        required_if=[("state", "attached", ["program"])],
        supports_check_mode=True,
    )
    if not xdp.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 >= 0.9.1"), exception=str(xdp.PYROUTE2_IMPORT_ERROR))
    p = module.params
    try:
        pin_path = target_pin_path(p, p["pin_path"])
    except safety.UnsafeInput as exc:
        module.fail_json(msg=exc.msg, option=exc.option, interface=p["interface"], netns=p["netns"])
    except DeployError as exc:
        module.fail_json(msg=exc.msg, interface=p["interface"], netns=p["netns"], pin_path=p["pin_path"],
                         **exc.details)
    ensure = ensure_attached_on if p["state"] == "attached" else ensure_detached_on
    try:
        result = ensure(p, pin_path, module.check_mode)
    except DeployError as exc:
        module.fail_json(msg=exc.msg, interface=p["interface"], netns=p["netns"], mode=p["mode"], **exc.details)
    except xdp.XdpError as exc:
        module.fail_json(msg=exc.msg, interface=p["interface"], netns=p["netns"], mode=p["mode"], errno=exc.errno)
    result.update(interface=p["interface"], netns=p["netns"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
