"""The Xen parts of the module_utils: CPU accounting through libxl (dom0 = host share,
domUs = VM share) and Xen PV disks handed over by blkback.

libvirt's libxl driver cannot run here (no Xen): its two calls are a small fake
connection; the integration test (test_xen_lab.py) runs the real one in dom0.
"""
import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import cpu, vm


class FakeDomain(object):
    def __init__(self, cpu_time, vcpus=2, uuid="00000000-0000-0000-0000-000000000000"):
        self.cpu_time, self.vcpus, self.uuid = cpu_time, vcpus, uuid

    def info(self):
        return [1, 1048576, 1048576, self.vcpus, self.cpu_time]

    def UUIDString(self):
        return self.uuid


class FakeXenConnection(object):
    def __init__(self, dom0_time):
        self.dom0 = FakeDomain(dom0_time)

    def lookupByID(self, domid):
        assert domid == 0
        return self.dom0

    def getInfo(self):
        return ["x86_64", 3072, 2, 2000, 1, 1, 2, 1]


def test_xen_uris():
    assert cpu.is_xen_uri("xen:///system")
    assert cpu.is_xen_uri("xen+ssh://root@dom0/system")
    assert not cpu.is_xen_uri("qemu:///system")
    assert not cpu.is_xen_uri("test:///default")


def test_snapshot_xen_reads_domain0():
    snap = cpu.snapshot_xen(FakeXenConnection(5 * 10 ** 9), "xen:///system")
    assert snap == {"dom0_uuid": "00000000-0000-0000-0000-000000000000", "dom0_cpu_time": 5 * 10 ** 9,
                    "dom0_vcpus": 2, "pcpus": 2}


def _snap(mono_ns, dom0_ns, domu_ns, uuid="00000000-0000-0000-0000-000000000000"):
    stat = {"0": dict.fromkeys(cpu.CPU_FIELDS, 0), "1": dict.fromkeys(cpu.CPU_FIELDS, 0)}
    return {"mono_ns": mono_ns, "wall": 1700000000.0 + mono_ns / 1e9, "user_hz": 100, "uptime_ticks": 0,
            "stat": stat, "processes": {}, "programs": {},
            "domains": {"xl-xg1": {"uuid": "u1", "cpu_time": domu_ns, "user_time": None, "system_time": None,
                                   "vcpus": 1, "source": "info"}},
            "xen": {"dom0_uuid": uuid, "dom0_cpu_time": dom0_ns, "dom0_vcpus": 2, "pcpus": 2}}


def test_xen_shares_come_from_xen_accounting():
    selection = cpu.make_selection(domains=["xl-xg1"], uri="xen:///system")
    before = _snap(0, 10 ** 9, 2 * 10 ** 9)
    # 2 s window: dom0 ran 0.8 s (40 % of one CPU), the guest 1.5 s (75 %)
    after = _snap(2 * 10 ** 9, 18 * 10 ** 8, 35 * 10 ** 8)
    result = cpu.compute_usage(before, after, selection)
    assert result["vm_share_pct"] == 75.0
    assert result["host_share_pct"] == 40.0
    assert result["xen"]["dom0_pct"] == 40.0 and result["xen"]["domu_pct"] == 75.0
    assert result["xen"]["hypervisor_pct"] is None and "not exposed" in result["xen"]["hypervisor_note"]


def test_a_restarted_dom0_has_no_share():
    selection = cpu.make_selection(domains=["xl-xg1"], uri="xen:///system")
    result = cpu.compute_usage(_snap(0, 10 ** 9, 0), _snap(10 ** 9, 2 * 10 ** 9, 10 ** 8, uuid="other"), selection)
    assert result["host_share_pct"] is None
    assert any("Domain-0" in w for w in result["warnings"])


def test_qemu_snapshots_keep_the_proc_stat_shares():
    selection = cpu.make_selection(domains=["xl-xg1"], uri="qemu:///system")
    before, after = _snap(0, 0, 0), _snap(10 ** 9, 0, 5 * 10 ** 8)
    del before["xen"], after["xen"]
    result = cpu.compute_usage(before, after, selection)
    assert "xen" not in result and result["vm_share_pct"] == 50.0


def _pv(**extra):
    params = {"name": "xl-xg1", "hypervisor": "xen", "virt_type": "pv", "memory": 384,
              "kernel": "/boot/vmlinuz", "initrd": "/boot/initrd.img", "cmdline": "root=LABEL=xl-root"}
    params.update(extra)
    return params


def test_a_block_device_goes_through_blkback():
    want = vm.build_want(_pv(disk="/dev/vdb"))
    assert want["disks"][0]["device_type"] == "block" and want["disks"][0]["driver"] == "phy"
    xml = vm.render(want)
    assert "<disk type='block' device='disk'>" in xml
    assert "<driver name='phy' type='raw'/>" in xml and "<source dev='/dev/vdb'/>" in xml
    have = vm.parse(xml)
    assert vm.compare(want, have) == []


def test_a_file_keeps_qemu_qdisk():
    want = vm.build_want(_pv(disk="/var/lib/xen/xl-xg1.img"))
    assert "device_type" not in want["disks"][0]
    assert "<source file='/var/lib/xen/xl-xg1.img'/>" in vm.render(want)


def test_a_block_device_is_raw():
    with pytest.raises(vm.VmError, match="block device"):
        vm.build_want(_pv(disk="/dev/vdb", disk_format="qcow2"))
