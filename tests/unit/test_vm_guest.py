# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm_guest's logic without libvirt: identities, validation, XML round trip, planning.

The module's ``run()`` is driven with a fake hypervisor (the libvirt boundary)
and a fake AnsibleModule; nothing here needs root, libvirt or a daemon.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import vm
from ansible_collections.xdplab.offload.plugins.modules import vm_guest

DEFAULTS = dict(name="xl-u1", uri=None, hypervisor="qemu", virt_type=None, vcpus=1, cpuset=None,
                cpu_pinning=[], emulator_cpuset=None, memory=384, kernel="/img/vmlinuz",
                initrd="/img/initrd.img", cmdline="root=LABEL=xl-root rw", disk="/img/xl-u1.qcow2",
                disk_format=None, interfaces=[], console_log=None, uuid=None, state="running",
                shutdown_timeout=5, restart_on_change=False)


def params(**kw):
    p = copy.deepcopy(DEFAULTS)
    p.update(kw)
    return p


def nic(**kw):
    d = dict(bridge="xl-br0", virtualport="openvswitch", vlan=None, model=None, mac=None,
             checksum_offload=None, target=None, interfaceid=None)
    d.update(kw)
    return d


# What libvirt 9.0 (qemu:///system) made of a domain this module defined: libvirt
# adds a machine version, <boot dev='hd'/>, a custom qemu64 CPU, controllers,
# PCI addresses, console targets, a memballoon - none of which is a change.
LIBVIRT_QEMU_XML = """<domain type='qemu'>
  <name>xl-g1</name>
  <uuid>{uuid}</uuid>
  <metadata>
    <xl:guest xmlns:xl="https://xdplab.invalid/offload/vm_guest/1" managed-by="xdplab.offload.vm_guest"/>
  </metadata>
  <memory unit='KiB'>393216</memory>
  <currentMemory unit='KiB'>393216</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>/img/vmlinuz</kernel>
    <initrd>/img/initrd.img</initrd>
    <cmdline>root=LABEL=xl-root rw</cmdline>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/img/xl-g1.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'/>
    <interface type='bridge'>
      <mac address='{mac0}'/>
      <source bridge='xl-mgmt'/>
      <target dev='xl-g1-0'/>
      <model type='virtio'/>
      <rom enabled='no'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </interface>
    <interface type='bridge'>
      <mac address='{mac1}'/>
      <source bridge='xl-br0'/>
      <virtualport type='openvswitch'>
        <parameters interfaceid='{ifid1}'/>
      </virtualport>
      <target dev='xl-g1-1'/>
      <model type='virtio'/>
      <driver>
        <host csum='off'/>
      </driver>
      <rom enabled='no'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <serial type='pty'>
      <log file='/img/xl-g1.console.log' append='off'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='pty'>
      <log file='/img/xl-g1.console.log' append='off'/>
      <target type='serial' port='0'/>
    </console>
    <input type='mouse' bus='ps2'/>
    <audio id='1' type='none'/>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </memballoon>
  </devices>
</domain>
"""


def g1_params():
    return params(name="xl-g1", disk="/img/xl-g1.qcow2", console_log="/img/xl-g1.console.log",
                  interfaces=[nic(bridge="xl-mgmt", virtualport="none"),
                              nic(bridge="xl-br0", checksum_offload=False)])


def g1_libvirt_xml():
    return LIBVIRT_QEMU_XML.format(uuid=vm.stable_uuid("xl-g1"), mac0=vm.stable_mac("xl-g1", 0, "qemu"),
                                   mac1=vm.stable_mac("xl-g1", 1, "qemu"), ifid1=vm.stable_uuid("xl-g1", "nic1"))


# ------------------------------------------------------------ identities

def test_identities_are_stable_and_distinct_per_name_and_nic():
    assert vm.stable_uuid("xl-a") == vm.stable_uuid("xl-a")
    assert vm.stable_uuid("xl-a") != vm.stable_uuid("xl-b")
    assert vm.stable_mac("xl-a", 0, "qemu") != vm.stable_mac("xl-a", 1, "qemu")
    assert vm.stable_mac("xl-a", 0, "qemu").startswith("52:54:00:")
    assert vm.stable_mac("xl-a", 0, "xen").startswith("00:16:3e:")
    assert re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", vm.stable_mac("xl-a", 3, "kvm"))


def test_mac_derivation_matches_the_guests_role_template():
    """The guests role derives the same MACs in Jinja (sha256 of '<name>/nic<i>', first 3 bytes)."""
    import hashlib
    digest = hashlib.sha256(b"xl-g1/nic1").hexdigest()
    assert vm.stable_mac("xl-g1", 1, "qemu") == "52:54:00:%s:%s:%s" % (digest[0:2], digest[2:4], digest[4:6])


def test_tap_names_carry_the_prefix_and_fit_ifnamsiz():
    assert vm.tap_name("xl-g1", 0) == "xl-g1-0"
    long_name = vm.tap_name("xl-a-very-long-guest-name", 12)
    assert long_name.startswith("xl-") and len(long_name) <= 15
    assert long_name != vm.tap_name("xl-a-very-long-guest-name", 11)
    assert vm.tap_name("guest", 1) == "xl-guest-1"


# ------------------------------------------------------------ validation

@pytest.mark.parametrize("kw, fragment", [
    (dict(hypervisor="xen", virt_type="pv", interfaces=[nic(model="e1000")]),
     "a Xen PV guest has no emulated devices: use model netfront"),
    (dict(hypervisor="qemu", interfaces=[nic(model="netfront")]), "netfront is Xen's paravirtual NIC"),
    (dict(hypervisor="xen", virt_type="hvm", interfaces=[nic(model="virtio")]), "Xen HVM guests get netfront"),
    (dict(interfaces=[nic(vlan=10, virtualport="none")]), "VLAN tags need virtualport openvswitch"),
    (dict(interfaces=[nic(vlan=5000)]), "outside 0-4095"),
    (dict(interfaces=[nic(model="e1000", checksum_offload=False)]), "virtio vNICs only"),
    (dict(interfaces=[nic(mac="01:00:5e:00:00:01")]), "multicast"),
    (dict(interfaces=[nic(mac="not-a-mac")]), "is not a MAC address"),
    (dict(interfaces=[nic(target="vnet7")]), "libvirt reserves those"),
    (dict(interfaces=[nic(bridge=None)]), "needs a bridge"),
    (dict(interfaces=[nic(mac="52:54:00:00:00:01"), nic(mac="52:54:00:00:00:01")]), "same mac"),
    (dict(memory=8), "at least 16"),
    (dict(cpu_pinning=["0", "1"]), "2 CPU sets for 1 vCPUs"),
    (dict(cpu_pinning=["zero"]), "is not a CPU list"),
    (dict(kernel=None, disk=None, initrd=None, cmdline=None), "give a kernel"),
    (dict(kernel=None, disk=None), "need a kernel"),
    (dict(hypervisor="xen", virt_type="pv", kernel=None, initrd=None, cmdline=None),
     "a Xen PV guest boots a kernel"),
    (dict(hypervisor="qemu", virt_type="pv"), "applies to Xen only"),
    (dict(name="xl bad"), "is not a usable domain name"),
    (dict(uuid="nope"), "is not a uuid"),
])
def test_bad_parameters_get_one_actionable_sentence(kw, fragment):
    with pytest.raises(vm.VmError) as exc:
        vm.build_want(params(**kw))
    assert fragment in exc.value.msg


def test_defaults_per_guest_kind():
    pv = vm.build_want(params(hypervisor="xen", interfaces=[nic()]))
    assert (pv["os_type"], pv["machine"], pv["interfaces"][0]["model"]) == ("xen", "xenpv", "netfront")
    assert pv["disks"][0]["target"] == "xvda" and pv["disks"][0]["bus"] == "xen"
    assert pv["interfaces"][0]["mac"].startswith("00:16:3e:")
    hvm = vm.build_want(params(hypervisor="xen", virt_type="hvm", kernel=None, initrd=None, cmdline=None,
                               interfaces=[nic(model="rtl8139")]))
    assert (hvm["os_type"], hvm["machine"], hvm["boot"]) == ("hvm", "xenfv", "hd")
    kvm = vm.build_want(params(hypervisor="kvm", interfaces=[nic()]))
    assert kvm["cpu_mode"] == "host-passthrough" and kvm["interfaces"][0]["model"] == "virtio"
    assert vm.build_want(params(disk="/x.img"))["disks"][0]["format"] == "raw"


# ------------------------------------------------------------ XML

@pytest.mark.parametrize("kw", [
    dict(hypervisor="xen", virt_type="pv", cpu_pinning=["3"], interfaces=[nic(vlan=10)]),
    dict(hypervisor="xen", virt_type="hvm", vcpus=2, cpuset="2-3", kernel=None, initrd=None, cmdline=None,
         interfaces=[nic(model="e1000"), nic(model="rtl8139", vlan=[10, 20]), nic(model="netfront")]),
    dict(hypervisor="qemu", emulator_cpuset="0", console_log="/tmp/c.log",
         interfaces=[nic(bridge="xl-mgmt", virtualport="none"), nic(checksum_offload=False, model="virtio")]),
    dict(hypervisor="kvm", vcpus=2, cpu_pinning=["0", "1"], interfaces=[nic(model="e1000e")]),
])
def test_render_then_parse_gives_back_the_wanted_domain(kw):
    want = vm.build_want(params(**kw))
    assert vm.parse(vm.render(want)) == want


def test_template_escapes_what_xml_would_choke_on():
    want = vm.build_want(params(cmdline="console=ttyS0 xl.note=a<b&c'd"))
    xml = vm.render(want)
    assert "a&lt;b&amp;c" in xml
    assert vm.parse(xml)["cmdline"] == "console=ttyS0 xl.note=a<b&c'd"


def test_libvirts_additions_are_not_changes():
    """Regression: boot dev, the qemu64 CPU, machine versions, addresses must not count as a difference."""
    want = vm.build_want(g1_params())
    have = vm.parse(g1_libvirt_xml())
    assert vm.compare(vm.parse(vm.render(want)), have) == []


def test_compare_names_the_fields_that_differ():
    want = vm.build_want(g1_params())
    have = vm.parse(g1_libvirt_xml().replace("<tag id", "<x").replace("393216", "524288"))
    p = g1_params()
    p["interfaces"][1]["vlan"] = 10
    changed = vm.compare(vm.parse(vm.render(vm.build_want(p))), have)
    assert changed == ["interfaces[1].vlan", "memory_kib"]
    assert vm.compare(vm.parse(vm.render(want)), vm.parse(g1_libvirt_xml().replace("<rom enabled='no'/>", ""))) == [
        "interfaces[0].rom", "interfaces[1].rom"]


def test_local_uri_detection():
    assert vm.uri_is_local("qemu:///system")
    assert vm.uri_is_local("xen:///system")
    assert not vm.uri_is_local("qemu+ssh://root@host/system")
    assert vm.uri_driver("test:///default") == "test"


def test_check_bridges_tells_which_bridge_is_missing():
    want = vm.build_want(params(interfaces=[nic(bridge="xl-nobr")]))
    with pytest.raises(vm.VmError) as exc:
        vm.check_bridges(want, lambda argv: (2, "", ""))
    assert "xl-nobr is not an Open vSwitch bridge" in exc.value.msg

    def missing(argv):
        raise OSError(2, "No such file or directory")
    with pytest.raises(vm.VmError) as exc:
        vm.check_bridges(want, missing)
    assert "ovs-vsctl cannot run" in exc.value.msg
    calls = []
    vm.check_bridges(want, lambda argv: calls.append(argv) or (0, "", ""))
    assert calls == [["ovs-vsctl", "--timeout=10", "br-exists", "xl-nobr"]]


# ------------------------------------------------------------ the module's plan, against a fake hypervisor

class FakeDomain:
    def __init__(self, xml, state="shutoff"):
        self.xml, self.st = xml, state

    def name(self):
        return vm.parse(self.xml)["name"]

    def isActive(self):
        return self.st in ("running", "paused")

    def ID(self):
        return 7


class FakeHypervisor:
    """The libvirt boundary: records calls, keeps domains by name."""

    uri = "qemu+ssh://lab-host/system"  # remote: the module skips its local file and bridge checks
    driver = "qemu"

    def __init__(self, domains=None):
        self.domains = dict(domains or {})
        self.calls = []

    def lookup(self, name):
        return self.domains.get(name)

    def lookup_uuid(self, uuid_str):
        return next((d for d in self.domains.values() if vm.parse(d.xml)["uuid"] == uuid_str), None)

    @staticmethod
    def inactive_xml(dom):
        return dom.xml

    @staticmethod
    def state(dom):
        return dom.st

    def check_domain_type(self, want):
        self.calls.append(("check_domain_type", want["domain_type"]))

    def define(self, xml, name):
        self.calls.append(("define", name))
        dom = self.domains.get(name) or FakeDomain(xml)
        dom.xml = xml
        self.domains[name] = dom
        return dom

    def start(self, dom):
        self.calls.append(("start", dom.name()))
        dom.st = "running"

    def resume(self, dom):
        self.calls.append(("resume", dom.name()))
        dom.st = "running"

    def destroy(self, dom):
        self.calls.append(("destroy", dom.name()))
        dom.st = "shutoff"

    def shutdown(self, dom, timeout):
        self.calls.append(("shutdown", dom.name()))
        dom.st = "shutoff"

    def undefine(self, dom):
        self.calls.append(("undefine", dom.name()))
        del self.domains[dom.name()]


class FakeModule:
    def __init__(self, p, check_mode=False):
        self.params, self.check_mode, self.warnings = p, check_mode, []

    def warn(self, msg):
        self.warnings.append(msg)

    def run_command(self, argv):
        return 0, "", ""


def run(p, hv, check=False):
    module = FakeModule(p, check)
    return vm_guest.run(module, hv, vm.build_want(p)), module


def test_check_mode_plans_define_and_start_without_acting():
    hv = FakeHypervisor()
    result = run(g1_params(), hv, check=True)[0]
    assert result["changed"] and result["actions"] == ["define", "start"]
    assert result["diff"]["before"] == "" and "<name>xl-g1</name>" in result["diff"]["after"]
    assert [c for c in hv.calls if c[0] != "check_domain_type"] == [] and hv.domains == {}


def test_existing_identical_running_domain_is_no_change():
    hv = FakeHypervisor({"xl-g1": FakeDomain(g1_libvirt_xml(), "running")})
    result = run(g1_params(), hv)[0]
    assert not result["changed"] and result["actions"] == [] and hv.calls == []
    assert result["state"] == "running" and result["id"] == 7


def test_changed_definition_of_a_running_guest_waits_for_a_restart_unless_asked():
    hv = FakeHypervisor({"xl-g1": FakeDomain(g1_libvirt_xml(), "running")})
    p = g1_params()
    p["memory"] = 512
    result, module = run(p, hv)
    assert result["actions"] == ["define"] and result["pending_restart"] and module.warnings
    assert result["changes"] == ["memory_kib"]
    hv = FakeHypervisor({"xl-g1": FakeDomain(g1_libvirt_xml(), "running")})
    p["restart_on_change"] = True
    result = run(p, hv)[0]
    assert [c[0] for c in hv.calls] == ["check_domain_type", "define", "destroy", "start"]
    assert not result["pending_restart"]


def test_foreign_domain_of_the_same_name_is_refused():
    foreign = g1_libvirt_xml().replace(vm.stable_uuid("xl-g1"), "00000000-0000-4000-8000-000000000001")
    hv = FakeHypervisor({"xl-g1": FakeDomain(foreign, "running")})
    for state in ("running", "absent"):
        with pytest.raises(vm.VmError) as exc:
            run(dict(g1_params(), state=state), hv)
        assert "was not made by this module" in exc.value.msg
    assert hv.calls == []


def _unmarked(xml):
    """The same domain without vm_guest's metadata: what someone else defined with the derived uuid."""
    start, end = xml.index("  <metadata>"), xml.index("</metadata>\n") + len("</metadata>\n")
    return xml[:start] + xml[end:]


@pytest.mark.parametrize("state", ["defined", "running", "shutdown", "destroyed", "absent"])
def test_a_domain_without_the_modules_metadata_is_refused_in_every_state_even_with_the_derived_uuid(state):
    foreign = _unmarked(g1_libvirt_xml())
    assert vm.parse(foreign)["uuid"] == vm.stable_uuid("xl-g1") and not vm.parse(foreign)["managed"]
    hv = FakeHypervisor({"xl-g1": FakeDomain(foreign, "running")})
    with pytest.raises(vm.VmError) as exc:
        run(dict(g1_params(), state=state), hv)
    assert exc.value.msg.startswith("domain xl-g1 at qemu+ssh://lab-host/system was not made by this module: it "
                                    "carries no xdplab.offload.vm_guest metadata")
    assert exc.value.details["rule"] == "metadata"
    assert hv.calls == [] and hv.domains["xl-g1"].xml == foreign and hv.domains["xl-g1"].st == "running"


def test_giving_the_uuid_of_a_foreign_domain_does_not_adopt_it():
    foreign = _unmarked(g1_libvirt_xml()).replace(vm.stable_uuid("xl-g1"), "00000000-0000-4000-8000-000000000002")
    hv = FakeHypervisor({"xl-g1": FakeDomain(foreign, "shutoff")})
    for state in ("running", "absent"):
        with pytest.raises(vm.VmError) as exc:
            run(dict(g1_params(), state=state, uuid="00000000-0000-4000-8000-000000000002"), hv)
        assert "carries no xdplab.offload.vm_guest metadata" in exc.value.msg
    assert hv.calls == []


def test_a_foreign_domain_holding_the_uuid_under_another_name_is_refused_also_when_absent():
    other = _unmarked(g1_libvirt_xml()).replace("<name>xl-g1</name>", "<name>xl-other</name>")
    hv = FakeHypervisor({"xl-other": FakeDomain(other, "running")})
    for state in ("running", "absent"):
        with pytest.raises(vm.VmError) as exc:
            run(dict(g1_params(), state=state), hv)
        assert "already used by domain xl-other" in exc.value.msg and "not made by this module" in exc.value.msg
    assert hv.calls == [] and list(hv.domains) == ["xl-other"]


def test_uuid_taken_by_another_name_is_refused():
    other = g1_libvirt_xml().replace("<name>xl-g1</name>", "<name>xl-other</name>")
    hv = FakeHypervisor({"xl-other": FakeDomain(other)})
    with pytest.raises(vm.VmError) as exc:
        run(g1_params(), hv)
    assert "already used by domain xl-other" in exc.value.msg


@pytest.mark.parametrize("state, have_state, expected", [
    ("shutdown", "running", ["shutdown"]),
    ("destroyed", "running", ["destroy"]),
    ("destroyed", "shutoff", []),
    ("defined", "running", []),
    ("running", "paused", ["resume"]),
    ("absent", "running", ["destroy", "undefine"]),
    ("absent", "shutoff", ["undefine"]),
])
def test_state_transitions(state, have_state, expected):
    hv = FakeHypervisor({"xl-g1": FakeDomain(g1_libvirt_xml(), have_state)})
    result = run(dict(g1_params(), state=state), hv)[0]
    assert result["actions"] == expected
    assert [c[0] for c in hv.calls] == expected
    assert result["changed"] == bool(expected)


def test_absent_needs_only_the_name():
    hv = FakeHypervisor({"xl-g1": FakeDomain(g1_libvirt_xml(), "running")})
    p = params(name="xl-g1", kernel=None, initrd=None, cmdline=None, disk=None, state="absent")
    result = vm_guest.run(FakeModule(p), hv, vm.build_identity(p))
    assert result["actions"] == ["destroy", "undefine"] and hv.domains == {}


def test_absent_when_there_is_nothing_is_no_change():
    result = run(dict(g1_params(), state="absent"), FakeHypervisor())[0]
    assert not result["changed"] and result["state"] == "absent"
