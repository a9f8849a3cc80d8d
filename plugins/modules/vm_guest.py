#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: vm_guest
short_description: Define, start, stop and undefine a libvirt guest (Xen, QEMU or KVM) with vNICs on Open vSwitch
version_added: 0.1.0
description:
  - Renders the domain XML of one guest from a Jinja2 template and makes libvirt hold exactly that
    definition, then brings the guest into the wanted O(state).
  - The uuid, every vNIC's MAC and Open vSwitch interface id and the host-side tap names are derived from
    O(name), so a second run with the same parameters reports no change and never re-numbers anything.
  - The definition is compared field by field with libvirt's inactive XML (the fields this module manages;
    what libvirt adds, such as PCI addresses and controllers, is left alone). Check mode computes the same
    difference and reports it, in diff mode as the inactive XML before and after, without acting.
  - Manages only the domains it defined, which carry its metadata element (C(<xl:guest
    managed-by='xdplab.offload.vm_guest'/>) in namespace C(https://xdplab.invalid/offload/vm_guest/1)). In
    every O(state), a domain of the same name without that metadata, a domain of the same name with another
    uuid, or another domain holding the uuid is refused with a message that names the domain and the rule,
    and nothing is changed - also O(state=absent) never undefines a foreign domain.
  - Names the vNIC models a guest type cannot use (no emulated NICs on a Xen PV guest, no netfront on
    QEMU/KVM), and, for a local hypervisor, checks that the kernel, initrd, disk image and bridges exist
    before defining.
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.libvirt
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Reads the current definition and state and reports the actions it would take.
  diff_mode:
    support: full
    details: The managed part of the inactive domain XML before and after.
options:
  name:
    description:
      - Domain name. Also the seed of the derived uuid, MACs, interface ids and tap names.
    type: str
    required: true
  hypervisor:
    description:
      - V(xen) for a Xen guest (libvirt's libxl driver), V(qemu) for a QEMU guest with software
        emulation (TCG), V(kvm) for a QEMU guest with hardware virtualization.
      - V(kvm) is refused when the hypervisor does not offer KVM domains; on hosts where C(/dev/kvm)
        exists but cannot run a guest, the xdplab.offload.hypervisor role's probe decides.
    type: str
    choices: [xen, qemu, kvm]
    default: qemu
  virt_type:
    description:
      - Xen only. V(pv) is a paravirtualized guest (netfront vNICs, direct kernel boot), V(hvm) a fully
        virtualized one (emulated e1000/rtl8139 or netfront vNICs, may boot from the disk).
      - Default V(pv) for Xen. QEMU and KVM guests are always hvm.
    type: str
    choices: [pv, hvm]
  vcpus:
    description: Number of virtual CPUs.
    type: int
    default: 1
  cpuset:
    description: Host CPUs all vCPUs may run on (libvirt syntax, for example V(1) or V(0-1,3)).
    type: str
  cpu_pinning:
    description:
      - Per-vCPU pinning, element I(i) is the host CPU set of vCPU I(i) (for example V(["1"])).
    type: list
    elements: str
    default: []
  emulator_cpuset:
    description: Host CPUs of the emulator threads (QEMU's I/O threads, Xen's device model).
    type: str
  memory:
    description: Memory of the guest in MiB.
    type: int
    default: 512
  kernel:
    description: Kernel image for direct kernel boot, a path on the hypervisor host.
    type: path
  initrd:
    description: Initramfs for direct kernel boot.
    type: path
  cmdline:
    description: Kernel command line for direct kernel boot.
    type: str
  disk:
    description:
      - Disk image attached as the first disk (C(vda) on QEMU/KVM, C(xvda) on Xen). Without O(kernel)
        the guest boots from it.
      - On Xen, a block device (a path under C(/dev/), format V(raw)) is given to the guest through dom0's
        blkback (libxl's C(phy) backend), so dom0 needs no device model; files go through QEMU's qdisk.
    type: path
  disk_format:
    description: Format of O(disk); default V(qcow2) for C(*.qcow2) files, V(raw) otherwise.
    type: str
    choices: [raw, qcow2]
  interfaces:
    description:
      - The guest's vNICs, in order.
    type: list
    elements: dict
    default: []
    suboptions:
      bridge:
        description: Bridge the vNIC is plugged into.
        type: str
        required: true
      virtualport:
        description:
          - V(openvswitch) for an Open vSwitch bridge (libvirt adds the tap as an OVS port with the interface
            id, the MAC and the VM's uuid in its external ids), V(none) for a Linux bridge.
        type: str
        choices: [openvswitch, none]
        default: openvswitch
      vlan:
        description:
          - VLAN id of the OVS port (access port), or a list of ids (trunk). Needs O(interfaces[].virtualport=openvswitch).
        type: raw
      model:
        description:
          - vNIC model. V(netfront) is Xen's paravirtual NIC (PV and HVM guests), V(e1000) and V(rtl8139) are
            emulated NICs (Xen HVM, QEMU, KVM), V(virtio) is virtio-net (QEMU, KVM), V(e1000e) QEMU/KVM only.
          - Default V(netfront) on Xen, V(virtio) on QEMU/KVM.
        type: str
        choices: [netfront, virtio, e1000, e1000e, rtl8139]
      mac:
        description:
          - MAC address. Default derived from O(name) and the vNIC's position (C(52:54:00:...) for QEMU/KVM,
            Xen's C(00:16:3e:...) for Xen).
        type: str
      checksum_offload:
        description:
          - virtio only. V(false) turns the host side's checksum offload off (C(<host csum='off'/>)), which a
            vNIC on an OVS userspace (netdev) bridge needs, because that datapath passes partial checksums on
            unfixed.
          - Unset leaves the hypervisor's default.
        type: bool
      target:
        description:
          - Name of the host-side device (tap or vif). Default C(xl-<name without xl->-<index>), or a hash
            when that is longer than 15 characters.
        type: str
      interfaceid:
        description: Open vSwitch interface id (uuid). Default derived from O(name) and the vNIC's position.
        type: str
  console_log:
    description:
      - File the guest's serial console is logged to (QEMU/KVM and Xen HVM), overwritten at every start.
    type: path
  uuid:
    description:
      - The domain's uuid. Default derived from O(name). A domain this module defined with another uuid
        is managed only when its uuid is given here; a domain without this module's metadata is never
        adopted, whatever uuid is given.
    type: str
  state:
    description:
      - V(defined) makes the definition match and leaves the guest running or not.
      - V(running) also starts it (or resumes it when paused).
      - V(shutdown) asks the guest to power off (ACPI power button, Xen's control node) and waits for it.
      - V(destroyed) forces it off.
      - V(absent) forces it off and undefines it. Only O(name) (and O(uuid) if not derived) matter then.
    type: str
    choices: [defined, running, shutdown, destroyed, absent]
    default: running
  shutdown_timeout:
    description: Seconds O(state=shutdown) waits for the guest to power off.
    type: int
    default: 120
  restart_on_change:
    description:
      - When a running guest's definition changed, force it off and start it again so that the change takes
        effect. Otherwise the new definition applies from the next start and RV(pending_restart) is true.
    type: bool
    default: false
notes:
  - The tap devices libvirt creates for the vNICs are named after O(interfaces[].target), which by default
    starts with C(xl-) like everything the lab makes; libvirt removes them (and their OVS ports) when the
    guest stops.
  - libvirt reads the kernel, initrd and disk as its QEMU user; the files and their directories must be
    readable by it.
seealso:
  - name: libvirt domain XML format
    description: The elements this module writes.
    link: https://libvirt.org/formatdomain.html
'''

EXAMPLES = r'''
- name: A QEMU guest with its data vNIC on an OVS userspace bridge and a management vNIC on a Linux bridge
  xdplab.offload.vm_guest:
    name: xl-g1
    hypervisor: qemu
    memory: 384
    kernel: /var/cache/xdplab/guest/3f2a.../vmlinuz
    initrd: /var/cache/xdplab/guest/3f2a.../initrd.img
    cmdline: root=LABEL=xl-root rw console=ttyS0 init=/sbin/xl-init
    disk: /var/lib/xdplab/guests/xl-g1.qcow2
    interfaces:
      - bridge: xl-mgmt
        virtualport: none
      - bridge: xl-br0
        checksum_offload: false
    state: running

- name: A Xen PV guest with a netfront vNIC in VLAN 10, pinned to CPU 3
  xdplab.offload.vm_guest:
    name: xl-pv1
    hypervisor: xen
    virt_type: pv
    vcpus: 1
    cpu_pinning: ["3"]
    memory: 1024
    kernel: /var/lib/xen/guest/vmlinuz
    initrd: /var/lib/xen/guest/initrd.img
    cmdline: root=/dev/xvda rw console=hvc0
    disk: /var/lib/xen/guest/xl-pv1.img
    interfaces:
      - bridge: xl-br0
        vlan: 10

- name: The same guest as a Xen HVM guest with an emulated e1000, validated against libvirt's test driver
  xdplab.offload.vm_guest:
    name: xl-hvm1
    uri: test:///default
    hypervisor: xen
    virt_type: hvm
    disk: /var/lib/xen/guest/xl-hvm1.img
    interfaces:
      - bridge: xl-br0
        model: e1000
    state: defined

- name: Remove the guest
  xdplab.offload.vm_guest:
    name: xl-g1
    state: absent
'''

RETURN = r'''
name:
  description: The domain name.
  returned: always
  type: str
uuid:
  description: The domain's uuid (derived from the name unless given).
  returned: always
  type: str
  sample: 1b4e28ba-2fa1-51d2-883f-0016d3cca427
uri:
  description: The libvirt URI used.
  returned: always
  type: str
state:
  description: libvirt's state of the domain afterwards (V(running), V(shutoff), V(paused), ... or V(absent)).
  returned: always
  type: str
actions:
  description: What was done (or would be done in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [define, start]
changes:
  description: The managed fields whose value differed (V(define) for a new domain).
  returned: always
  type: list
  elements: str
  sample: ["memory_kib", "interfaces[1].vlan"]
pending_restart:
  description: The definition changed while the guest ran and was not restarted.
  returned: always
  type: bool
xml:
  description: The domain XML the module defines (the template's output).
  returned: unless state is absent
  type: str
interfaces:
  description: The vNICs with their derived identities.
  returned: unless state is absent
  type: list
  elements: dict
  sample: [{bridge: xl-br0, mac: "52:54:00:6b:1f:02", target: xl-g1-0, model: virtio,
            interfaceid: 0c9a1d9e-5f51-5a2e-9c4a-1f0b5e9b8d11, vlan: []}]
disks:
  description: The disks of the domain.
  returned: unless state is absent
  type: list
  elements: dict
id:
  description: The hypervisor's domain id while it runs.
  returned: when running
  type: int
libvirt_error:
  description: libvirt's own error message.
  returned: on failure, when libvirt reported one
  type: str
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import vm

ACTIVE = ("running", "blocked", "paused", "pmsuspended", "nostate")


def _plan(p, want, have, have_state):
    """Actions turning ``have`` (None if undefined) into ``want`` in state p['state']."""
    target_xml = vm.render(want)
    target = vm.parse(target_xml)
    changes = ["define"] if have is None else vm.compare(target, have)
    actions = []
    if changes:
        actions.append("define")
    active = have_state in ACTIVE
    pending_restart = False
    if p["state"] == "running":
        if not active:
            actions.append("start")
        elif have_state == "paused":
            actions.append("resume")
        if active and changes:
            if p["restart_on_change"]:
                actions += ["destroy", "start"]
            else:
                pending_restart = True
    elif p["state"] == "shutdown" and active:
        actions.append("shutdown")
    elif p["state"] == "destroyed" and active:
        actions.append("destroy")
    return target_xml, changes, actions, pending_restart


def _apply(module, hv, dom, actions, target_xml, name):
    for action in actions:
        if action == "define":
            dom = hv.define(target_xml, name)
        elif action == "start":
            hv.start(dom)
        elif action == "resume":
            hv.resume(dom)
        elif action == "destroy":
            hv.destroy(dom)
        elif action == "shutdown":
            hv.shutdown(dom, module.params["shutdown_timeout"])
        elif action == "undefine":
            hv.undefine(dom)
    return dom


def run(module, hv, want):
    p = module.params
    name = want["name"]
    dom = hv.lookup(name)
    have, have_xml, have_state = None, "", "absent"
    if dom is not None:
        have_xml = hv.inactive_xml(dom)
        have = vm.parse(have_xml)
        have_state = hv.state(dom)
        if not have["managed"]:
            raise vm.VmError("domain %s at %s was not made by this module: it carries no %s metadata (%s), and "
                             "vm_guest manages only the domains it defined, whatever their name or uuid; nothing "
                             "was changed - choose another name" % (name, hv.uri, vm.MANAGED_BY, vm.METADATA_NS),
                             existing_uuid=have["uuid"], rule="metadata")
        if have["uuid"] != want["uuid"]:
            raise vm.VmError("domain %s at %s was not made by this module for these parameters (its uuid is %s, "
                             "not %s); nothing was changed - pass uuid: %s if it is the guest you mean, or choose "
                             "another name" % (name, hv.uri, have["uuid"], want["uuid"], have["uuid"]),
                             existing_uuid=have["uuid"], rule="uuid")
    else:
        other = hv.lookup_uuid(want["uuid"])
        if other is not None:
            mine = vm.parse(hv.inactive_xml(other))["managed"]
            raise vm.VmError("uuid %s is already used by domain %s at %s (%s); a uuid names one domain, so nothing "
                             "was changed - undefine that domain or pass another uuid"
                             % (want["uuid"], other.name(), hv.uri,
                                "made by this module under that name" if mine else
                                "not made by this module: it carries no %s metadata" % vm.MANAGED_BY),
                             existing_name=other.name(), rule="uuid")

    result = dict(name=name, uuid=want["uuid"], uri=hv.uri, hypervisor=want["domain_type"],
                  pending_restart=False)
    before = vm.render(have) if have else ""
    if p["state"] == "absent":
        actions = []
        if dom is not None:
            if have_state in ACTIVE:
                actions.append("destroy")
            actions.append("undefine")
        result.update(changed=bool(actions), actions=actions, changes=["undefine"] if dom is not None else [],
                      state="absent" if not module.check_mode else have_state)
        if actions:
            result["diff"] = {"before": before, "after": "", "before_header": "%s (%s)" % (name, have_state),
                              "after_header": "%s (absent)" % name}
        if actions and not module.check_mode:
            _apply(module, hv, dom, actions, None, name)
        return result

    target_xml, changes, actions, pending = _plan(p, want, have, have_state)
    if "define" in actions:
        hv.check_domain_type(want)
    if vm.uri_is_local(hv.uri) and hv.driver != "test" and ("define" in actions or "start" in actions):
        vm.check_local_files(want)
        vm.check_bridges(want, module.run_command)
    result.update(changed=bool(actions), actions=actions, changes=changes, pending_restart=pending,
                  xml=target_xml, **vm.summary(want))
    if actions:
        after_state = {"running": "running", "shutdown": "shutoff", "destroyed": "shutoff"}.get(
            p["state"], "shutoff" if have_state == "absent" else have_state)
        result["diff"] = {"before": before, "after": target_xml,
                          "before_header": "%s (%s)" % (name, have_state),
                          "after_header": "%s (%s)" % (name, after_state)}
    if pending:
        module.warn("domain %s runs with its old definition until it is restarted (set restart_on_change: true "
                    "to restart it now)" % name)
    if module.check_mode:
        result["state"] = have_state
        return result
    dom = _apply(module, hv, dom, actions, target_xml, name)
    result["state"] = hv.state(dom)
    if dom.isActive():
        result["id"] = dom.ID()
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            uri=dict(type="str"),
            hypervisor=dict(type="str", choices=list(vm.HYPERVISORS), default="qemu"),
            virt_type=dict(type="str", choices=list(vm.VIRT_TYPES)),
            vcpus=dict(type="int", default=1),
            cpuset=dict(type="str"),
            cpu_pinning=dict(type="list", elements="str", default=[]),
            emulator_cpuset=dict(type="str"),
            memory=dict(type="int", default=512),
            kernel=dict(type="path"),
            initrd=dict(type="path"),
            cmdline=dict(type="str"),
            disk=dict(type="path"),
            disk_format=dict(type="str", choices=list(vm.DISK_FORMATS)),
            interfaces=dict(type="list", elements="dict", default=[], options=dict(
                bridge=dict(type="str", required=True),
                virtualport=dict(type="str", choices=["openvswitch", "none"], default="openvswitch"),
                vlan=dict(type="raw"),
                model=dict(type="str", choices=list(vm.ALL_MODELS)),
                mac=dict(type="str"),
                checksum_offload=dict(type="bool"),
                target=dict(type="str"),
                interfaceid=dict(type="str"),
            )),
            console_log=dict(type="path"),
            uuid=dict(type="str"),
            state=dict(type="str", choices=list(vm.STATES), default="running"),
            shutdown_timeout=dict(type="int", default=120),
            restart_on_change=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not vm.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python (Debian: python3-libvirt)"),
                         exception=str(vm.LIBVIRT_IMPORT_ERROR))
    if not vm.HAS_JINJA2:
        module.fail_json(msg=missing_required_lib("jinja2 (Debian: python3-jinja2)"),
                         exception=str(vm.JINJA2_IMPORT_ERROR))
    uri = p["uri"] or vm.DEFAULT_URI[p["hypervisor"]]
    hv = None
    try:
        want = vm.build_identity(p) if p["state"] == "absent" else vm.build_want(p)
        hv = vm.Hypervisor(uri)
        result = run(module, hv, want)
    except vm.VmError as exc:
        details = dict(name=p["name"], uri=uri)
        details.update(exc.details)
        module.fail_json(msg=exc.msg, **details)
    finally:
        if hv is not None:
            hv.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
