# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm_guest's domain XML against libvirt's test driver (test:///default).

No Xen runs here, so the Xen path (PV netfront, HVM e1000/rtl8139, OVS
virtualport, VLAN access and trunk ports) is defined with
VIR_DOMAIN_DEFINE_VALIDATE (libvirt's schema check) in libvirt's test driver.
The test driver keeps its domains only while a connection to it is open in the
process, so the idempotency and check-mode tests run the module's ``run()`` in
this process with a connection held open by a fixture; the module is also run
as a program (a separate process) for its error paths.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import vm
from ansible_collections.xdplab.offload.plugins.modules import vm_guest
from lib.modrun import run_module

URI = "test:///default"

BASE = dict(name="xl-x1", uri=URI, hypervisor="xen", virt_type="pv", vcpus=1, cpuset=None, cpu_pinning=[],
            emulator_cpuset=None, memory=512, kernel="/var/lib/xen/xl/vmlinuz", initrd="/var/lib/xen/xl/initrd.img",
            cmdline="root=/dev/xvda rw console=hvc0", disk="/var/lib/xen/xl/xl-x1.img", disk_format=None,
            interfaces=[], console_log=None, uuid=None, state="defined", shutdown_timeout=5,
            restart_on_change=False)


def nic(**kw):
    d = dict(bridge="xl-br0", virtualport="openvswitch", vlan=None, model=None, mac=None,
             checksum_offload=None, target=None, interfaceid=None)
    d.update(kw)
    return d


def params(**kw):
    p = copy.deepcopy(BASE)
    p.update(kw)
    return p


class Module:
    """What vm_guest.run() needs of AnsibleModule."""

    def __init__(self, p, check_mode=False):
        self.params, self.check_mode, self.warnings = p, check_mode, []

    def warn(self, msg):
        self.warnings.append(msg)

    def run_command(self, argv):  # never called for the test driver
        raise AssertionError("no local checks expected for %s" % URI)


def _libvirt():
    """Imported when a test runs, not at collection: the hypervisor role (run by test_guests_qemu.py, which
    comes first) is what installs python3-libvirt on a fresh machine."""
    try:
        import libvirt
    except ImportError:
        pytest.skip("needs libvirt-python: run the xdplab.offload.hypervisor role (Debian: python3-libvirt)")
    return libvirt


@pytest.fixture
def libvirt():
    return _libvirt()


@pytest.fixture
def conn(libvirt):
    """Hold test:///default open so its domains live across Hypervisor connections; remove ours after."""
    held = libvirt.open(URI)
    yield held
    for dom in held.listAllDomains():
        if dom.name().startswith("xl-"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    held.close()


def module_args(p):
    """Parameters as a playbook would pass them: unset options left out."""
    args = {k: v for k, v in p.items() if v is not None}
    args["interfaces"] = [{k: v for k, v in n.items() if v is not None} for n in p["interfaces"]]
    return args


def run_in_process(p, check=False):
    hv = vm.Hypervisor(p["uri"])
    try:
        module = Module(p, check)
        return vm_guest.run(module, hv, vm.build_want(p))
    finally:
        hv.close()


XEN_CASES = {
    "pv_netfront_vlan": dict(virt_type="pv", cpu_pinning=["3"], interfaces=[nic(vlan=10)]),
    "pv_two_netfronts": dict(virt_type="pv", interfaces=[nic(), nic(bridge="xl-br1", vlan=[10, 20])]),
    "hvm_e1000": dict(virt_type="hvm", interfaces=[nic(model="e1000")]),
    "hvm_rtl8139_vlan": dict(virt_type="hvm", interfaces=[nic(model="rtl8139", vlan=30)]),
    "hvm_disk_boot_netfront": dict(virt_type="hvm", kernel=None, initrd=None, cmdline=None,
                                   interfaces=[nic(model="netfront")]),
}


@pytest.mark.parametrize("case", sorted(XEN_CASES))
def test_xen_domain_xml_passes_libvirt_schema_validation_and_reads_back_unchanged(libvirt, conn, case):
    p = params(name="xl-x-" + case.replace("_", "-")[:20], **XEN_CASES[case])
    want = vm.build_want(p)
    xml = vm.render(want)
    dom = conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    stored = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert vm.compare(vm.parse(xml), vm.parse(stored)) == []
    have = vm.parse(stored)
    assert have["domain_type"] == "xen" and have["uuid"] == want["uuid"]
    for got, wanted in zip(have["interfaces"], want["interfaces"]):
        assert got["virtualport"] == "openvswitch" and got["interfaceid"] == wanted["interfaceid"]
        assert got["model"] == wanted["model"] and got["vlan"] == wanted["vlan"] and got["mac"] == wanted["mac"]


def test_module_defines_then_reports_no_change_and_check_mode_only_plans(libvirt, conn):
    p = params(interfaces=[nic(vlan=10)])
    first = run_in_process(p)
    assert first["changed"] and first["actions"] == ["define"] and first["state"] == "shutoff"
    xml_before = conn.lookupByName("xl-x1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

    second = run_in_process(p)
    assert not second["changed"] and second["actions"] == [] and second["changes"] == []
    assert second["interfaces"] == first["interfaces"]  # same MAC, interface id, tap name

    bigger = params(interfaces=[nic(vlan=20)], memory=1024)
    planned = run_in_process(bigger, check=True)
    assert planned["changed"] and planned["changes"] == ["interfaces[0].vlan", "memory_kib"]
    assert "<tag id='10'/>" in planned["diff"]["before"] and "<tag id='20'/>" in planned["diff"]["after"]
    assert "1048576" in planned["diff"]["after"]
    assert conn.lookupByName("xl-x1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == xml_before

    applied = run_in_process(bigger)
    assert applied["changed"] and vm.parse(
        conn.lookupByName("xl-x1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["memory_kib"] == 1024 * 1024
    assert not run_in_process(bigger)["changed"]


def test_running_shutdown_and_absent_through_the_test_driver(conn):
    p = params(virt_type="hvm", interfaces=[nic(model="e1000")], state="running")
    assert run_in_process(p)["actions"] == ["define", "start"]
    assert conn.lookupByName("xl-x1").isActive()
    assert run_in_process(dict(p, state="shutdown"))["actions"] == ["shutdown"]
    assert not conn.lookupByName("xl-x1").isActive()
    assert run_in_process(dict(p, state="running"))["actions"] == ["start"]
    assert run_in_process(dict(p, state="destroyed"))["actions"] == ["destroy"]
    assert not conn.lookupByName("xl-x1").isActive()
    assert run_in_process(dict(p, state="absent"))["actions"] == ["undefine"]
    assert "xl-x1" not in [d.name() for d in conn.listAllDomains()]
    assert not run_in_process(dict(p, state="absent"))["changed"]


def test_module_program_validates_and_returns_identities(libvirt):
    result = run_module("vm_guest", module_args(params(interfaces=[nic(vlan=10)])), diff=True)
    assert not result.failed, result
    assert result["changed"] and result["interfaces"][0]["mac"] == vm.stable_mac("xl-x1", 0, "xen")
    assert result["interfaces"][0]["target"] == "xl-x1-0" and result["diff"]["before"] == ""


def test_module_refuses_the_test_drivers_own_domain(libvirt):
    """test:///default ships a domain called 'test': not ours, so not touched."""
    result = run_module("vm_guest", module_args(params(name="test", state="absent")))
    assert result.failed and "was not made by this module" in result["msg"]
    assert "carries no xdplab.offload.vm_guest metadata" in result["msg"] and result["rule"] == "metadata"
    assert result["existing_uuid"]


def test_module_names_the_unusable_vnic_model(libvirt):
    result = run_module("vm_guest", module_args(params(interfaces=[nic(model="e1000")])))
    assert result.failed
    assert result["msg"] == ("interfaces[0] model e1000 cannot be used by a Xen PV guest: a Xen PV guest has no "
                             "emulated devices: use model netfront, or virt_type hvm")


def test_module_says_which_hypervisor_is_unreachable_and_why(libvirt):
    result = run_module("vm_guest", module_args(params(uri="xen:///system", interfaces=[nic()])))
    assert result.failed
    assert result["msg"].startswith("cannot connect to the hypervisor at xen:///system: ")
    assert result["uri"] == "xen:///system" and result["libvirt_error"]
