#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: nfp_firmware
short_description: Select and load the firmware flavour (bpf, nic, flower) of a Netronome Agilio card
version_added: 0.1.0
description:
  - Makes a Netronome/Corigine NFP card (Agilio CX/LX) run the wanted application firmware,
    V(bpf) for XDP/BPF offload, V(nic) for the basic NIC, V(flower) for OVS-TC offload,
    V(nic-sriov) for the NIC with SR-IOV.
  - The nfp driver asks the firmware loader, in this order, for C(netronome/serial-<serial>.nffw),
    C(netronome/pci-<pci address>.nffw) and C(netronome/nic_<part number>_<media>.nffw)
    (each also compressed as C(.zst)/C(.xz)). With O(method=load) the module points one of these
    names (O(link)) at the flavour's file, e.g. C(netronome/bpf/nic_AMDA0096-0001_2x10.nffw),
    reloads the driver for the card (O(reload)) and checks the running application
    (last word of the firmware-version C(ethtool -i) shows, C(ebpf), C(nic) or C(flower); devlink C(fw.app)
    where ethtool has none).
  - If the card does not run the wanted application after the reload, the link is put back as it
    was, the driver reloaded again, and the module fails.
  - With O(method=flash) the image is written to the card's flash through C(devlink dev flash)
    instead; this survives reboots and other operating systems, and is not rolled back.
  - Idempotent. A card that already runs the wanted application with the link in place is left
    alone. Check mode reports the steps (link, devlink, reload commands) without taking them.
author:
  - xdplab.offload developers (@xdplab)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    details: Reads the card and reports the link, devlink and reload steps it would take, without taking them.
    support: full
  diff_mode:
    details: Shows the link target, the running application and the fw_load_policy before and after.
    support: full
options:
  pci:
    description:
      - PCI address of the card's physical function (C(0000:02:00.0) or C(02:00.0)).
      - With neither O(pci) nor O(interface), the only NFP card of the host is used.
    type: str
  interface:
    description: A network interface of the card (e.g. C(enp2s0np0)); its PCI device is used.
    type: str
  flavor:
    description: The application firmware to run.
    type: str
    choices: [bpf, nic, flower, nic-sriov]
    default: bpf
  part_number:
    description:
      - The card's assembly part number (e.g. C(AMDA0096-0001) for the Agilio CX 2x10GbE).
      - Detected from C(devlink dev info) (C(board.id)) when omitted.
    type: str
  media:
    description:
      - The port configuration in the firmware file name (C(2x10), C(2x25), C(1x10_1x25), ...).
      - Detected when the card has only one, or only one file exists for it.
    type: str
  firmware_dir:
    description: The firmware directory (below O(root)) holding C(netronome/).
    type: path
    default: /lib/firmware
  link:
    description:
      - Which of the driver's names to point at the flavour's file. V(pci) and V(serial) affect
        only this card and are not owned by any package; V(part) replaces the
        C(nic_<part>_<media>.nffw) link that the firmware package ships (and may restore on upgrade)
        and affects every card of that type.
      - V(serial) needs the card's PCIe Device Serial Number (readable by root).
    type: str
    choices: [pci, serial, part]
    default: pci
  reload:
    description:
      - How to make the driver load the firmware again. V(pci_rescan) removes the card from the PCI
        bus and rescans (only this card). V(module) runs C(modprobe -r nfp) and C(modprobe nfp)
        (every NFP card of the host). V(none) only sets the link; the card keeps its firmware until
        the next driver load and nothing is verified.
    type: str
    choices: [pci_rescan, module, none]
    default: pci_rescan
  verify:
    description: After a reload, check that the card runs the flavour's application; roll back if not.
    type: bool
    default: true
  method:
    description:
      - V(load) sets the firmware file the driver loads from disk (see O(link)).
      - V(flash) writes the flavour's file to the card's flash with C(devlink dev flash). This
        persists and is not rolled back; keep the nic flavour at hand to flash back.
    type: str
    choices: [load, flash]
    default: load
  fw_load_policy:
    description:
      - Set devlink's C(fw_load_policy) (cmode permanent) first, where the driver offers it.
        V(disk) always loads the file from the host, V(flash) the flashed image, V(driver) lets the
        management firmware choose. Omit to leave it; with O(method=load) a card set to V(flash)
        is refused because the file would be ignored.
    type: str
    choices: [driver, flash, disk]
  state:
    description:
      - V(present) makes the card run O(flavor).
      - V(absent) removes the C(pci-)/C(serial-) link this module manages (O(link)) and reloads,
        so the card runs what the driver finds next (normally the package's C(nic_*) default).
        O(flavor), O(part_number), O(media), O(method) and O(verify) are not used.
    type: str
    choices: [present, absent]
    default: present
  timeout:
    description: Seconds to wait for the card's interfaces after a reload (loading takes 10-20 s).
    type: int
    default: 120
  root:
    description:
      - Prefix for every host path the module reads or writes (sysfs, O(firmware_dir)).
        Only tests set it, to run against a fixture tree.
    type: path
    default: /
requirements:
  - the nfp kernel driver, ethtool, devlink (iproute2)
  - the Netronome firmware files (Debian firmware-netronome, Ubuntu linux-firmware)
notes:
  - Reloading takes the card's interfaces down and recreates them (names may change); apply
    channel or ring settings after this module.
  - O(reload=module) reloads every NFP card of the host.
  - The C(serial-) and C(pci-) names are not included in an initramfs; if the nfp driver loads from
    the initramfs at boot, run this module (or update the initramfs) after boot.
seealso:
  - name: nfp driver documentation
    description: Firmware selection, devlink info and fw_load_policy of the nfp driver.
    link: https://docs.kernel.org/networking/device_drivers/ethernet/netronome/nfp.html
'''

EXAMPLES = r'''
- name: Run the BPF offload firmware on the Agilio CX of the device under test
  xdplab.offload.nfp_firmware:
    interface: enp2s0np0
    flavor: bpf
    fw_load_policy: disk

- name: Back to the basic NIC firmware, the whole nfp module reloaded
  xdplab.offload.nfp_firmware:
    pci: "0000:02:00.0"
    flavor: nic
    reload: module

- name: Remove the per-card link again; the card returns to the package's default firmware
  xdplab.offload.nfp_firmware:
    pci: "0000:02:00.0"
    state: absent

- name: Only set the link; the card picks it up at the next driver load
  xdplab.offload.nfp_firmware:
    pci: "0000:02:00.0"
    flavor: bpf
    reload: none
'''

RETURN = r'''
pci:
  description: PCI address of the card.
  returned: always
  type: str
  sample: "0000:02:00.0"
part_number:
  description: The card's part number.
  returned: always
  type: str
  sample: AMDA0096-0001
card:
  description: The card's name.
  returned: always
  type: str
  sample: Agilio CX 2x10GbE
media:
  description: The media configuration of the firmware file.
  returned: always
  type: str
  sample: 2x10
app:
  description: The application the card runs afterwards (check mode - before).
  returned: always
  type: str
  sample: ebpf
firmware_version:
  description: C(ethtool -i)'s firmware-version afterwards.
  returned: when the card has an interface
  type: str
  sample: 0.0.3.5 0.22 bpf-2.0.6.124 ebpf
link:
  description: The firmware name the module manages (with O(method=load)).
  returned: always
  type: str
  sample: /lib/firmware/netronome/pci-0000:02:00.0.nffw
link_target:
  description: Where the link points.
  returned: always
  type: str
  sample: bpf/nic_AMDA0096-0001_2x10.nffw
firmware_file:
  description: The flavour's firmware file.
  returned: always
  type: str
interfaces:
  description: The card's network interfaces afterwards.
  returned: always
  type: list
  elements: str
reload_needed:
  description: The driver must load again before the card runs the wanted flavour (O(reload=none)).
  returned: always
  type: bool
commands:
  description: The steps taken (or, in check mode, that would be taken), in order.
  returned: always
  type: list
  elements: str
read_commands:
  description: The commands that only read the card's state (ethtool -i, devlink info and param show).
  returned: when O(state=present)
  type: list
  elements: str
expected_app:
  description: The application the flavour should run.
  returned: on failed verification
  type: str
running_app:
  description: The application found after the reload.
  returned: on failed verification
  type: str
rolled_back:
  description: Whether the link was put back after a failed verification.
  returned: on failed verification
  type: bool
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xdplab.offload.plugins.module_utils import nfp


def remove(module, host):
    p = module.params
    try:
        plan = nfp.plan_removal(host, p)
        steps = list(plan.changes)
        after = plan.running
        if plan.changes and not module.check_mode:
            host.commands = []
            after = nfp.apply_removal(host, plan, reload_method=p["reload"], timeout=p["timeout"])
            steps = host.commands
    except nfp.NfpError as exc:
        module.fail_json(msg=exc.msg, **dict(dict(commands=host.commands), **exc.details))
    result = dict(changed=bool(plan.changes), pci=plan.bdf, state="absent",
                  link=nfp._display(host, plan.link_path), link_target=None,
                  app=after.get("ethtool_app") or after.get("devlink_app"),
                  firmware_version=after.get("firmware_version"), interfaces=after.get("netdevs", []),
                  reload=p["reload"], reload_needed=bool(plan.changes and (p["reload"] == "none" or module.check_mode)),
                  commands=steps)
    if plan.changes:
        result["diff"] = {"before": plan.before, "after": {"link_target": None}}
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pci=dict(type="str"),
            interface=dict(type="str"),
            flavor=dict(type="str", choices=["bpf", "nic", "flower", "nic-sriov"], default="bpf"),
            part_number=dict(type="str"),
            media=dict(type="str"),
            firmware_dir=dict(type="path", default="/lib/firmware"),
            link=dict(type="str", choices=list(nfp.LINK_KINDS), default="pci"),
            reload=dict(type="str", choices=list(nfp.RELOAD_METHODS), default="pci_rescan"),
            verify=dict(type="bool", default=True),
            method=dict(type="str", choices=["load", "flash"], default="load"),
            fw_load_policy=dict(type="str", choices=list(nfp.FW_LOAD_POLICIES)),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            timeout=dict(type="int", default=120),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def run(argv):
        return module.run_command(argv)

    host = nfp.NfpHost(run, root=p["root"])
    if p["state"] == "absent":
        remove(module, host)
    try:
        plan = nfp.plan_firmware(host, p, release=os.uname()[2])
    except nfp.NfpError as exc:
        module.fail_json(msg=exc.msg, **dict(dict(commands=host.commands), **exc.details))
    for warning in plan.warnings:
        module.warn(warning)
    if p["method"] == "flash" and plan.changes:
        module.warn("method flash writes %s to the flash of %s: it stays there across reboots and operating "
                    "systems; flash the nic flavour back when done" % (plan.firmware_name, plan.bdf))
    steps = list(plan.changes)
    read_commands = list(host.commands)
    changed = bool(steps)
    after = plan.running
    if changed and not module.check_mode:
        host.commands = []
        try:
            after = nfp.apply_firmware(host, plan, reload_method=p["reload"], verify=p["verify"],
                                       timeout=p["timeout"])
        except nfp.NfpError as exc:
            details = dict(dict(pci=plan.bdf, flavor=plan.flavor, commands=host.commands), **exc.details)
            module.fail_json(msg=exc.msg, **details)
        steps = host.commands
    if plan.reload_needed and p["reload"] == "none":
        module.warn("reload is none: %s keeps running %s until the nfp driver loads again"
                    % (plan.bdf, plan.before.get("app") or "its current firmware"))

    def display(path):
        return nfp._display(host, path) if path else None

    app_after = after.get("ethtool_app") or after.get("devlink_app")
    result = dict(
        changed=changed,
        pci=plan.bdf,
        part_number=plan.part_number,
        card=plan.card_name,
        media=plan.media,
        flavor=plan.flavor,
        method=plan.method,
        app=app_after,
        firmware_version=after.get("firmware_version"),
        link=display(plan.link_path),
        link_target=plan.link_target,
        firmware_file=display(plan.firmware_file),
        interfaces=after.get("netdevs", []),
        reload=p["reload"],
        reload_needed=bool(plan.reload_needed and (p["reload"] == "none" or module.check_mode)),
        commands=steps,
        read_commands=read_commands,
    )
    if changed:
        before = dict(plan.before)
        want = {"app": nfp.FLAVOURS[plan.flavor]["app"],
                "fw_load_policy": plan.policy_want or plan.policy_have}
        if plan.method == "load":
            want["link_target"] = plan.link_target
        else:
            before.pop("link_target", None)
        result["diff"] = {"before": before, "after": want}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
