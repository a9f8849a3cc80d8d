# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/vm_offload.yml's quick profile on real Xen: ``-e hypervisor=xen``.

Xen 4.17 runs in a QEMU TCG guest (the xen_host role: Xen's ELF as QEMU's
kernel, a Debian dom0 with netback, blkback, libvirt's libxl driver and Open
vSwitch's kernel datapath); two PV guests boot in dom0 with netfront vNICs on
an OVS bridge whose uplink is dom0's virtio-net NIC; the load generator sends
from the host side of that NIC (a tap in its own namespace). Nothing is mocked.

Slow (dom0 and two PV guests boot under TCG; the dom0 image is built once and
cached): ``make test-xen`` runs it, ``make test`` does not.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import uuid

import pytest

from lib.labstate import links, netns
from lib.labstate import records as read_records
from lib.modrun import ROOT, run_playbook

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.timeout(7200),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for QEMU, namespaces and taps"),
    pytest.mark.skipif(not os.environ.get("XL_TEST_XEN"), reason="the Xen lab's run takes long: make test-xen"),
]

PLAYBOOK = "playbooks/vm_offload.yml"
HOST, G1, G2 = "xl-xen0", "xl-xg1", "xl-xg2"
UPLINK, GEN_DEV, GEN_NETNS = "xl-xup0", "xl-xlg0", "xl-xlg"
XEN_DIR = "/var/lib/xdplab/xen"
PIDFILE = os.path.join(XEN_DIR, HOST + ".pid")
VARS = {"profile": "quick", "hypervisor": "xen", "results_report_enabled": False}


def _qemu_alive():
    try:
        with open(PIDFILE) as handle:
            pid = int(handle.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return b"-name\x00" + HOST.encode() + b"\x00" in handle.read()
    except (OSError, ValueError):
        return False


def leftovers():
    found = sorted(links() & {GEN_DEV}) + sorted(netns() & {GEN_NETNS})
    if _qemu_alive():
        found.append("QEMU of " + HOST)
    if os.path.isdir(XEN_DIR) and os.listdir(XEN_DIR):
        found.append(XEN_DIR)
    return found


def _force_cleanup():
    """Remove what the teardown left (normally nothing): the QEMU by its pid file's PID, the namespace by name."""
    if _qemu_alive():
        with open(PIDFILE) as handle:
            subprocess.run(["kill", "-TERM", handle.read().strip()], check=False)
    if GEN_NETNS in netns():
        subprocess.run(["ip", "netns", "del", GEN_NETNS], capture_output=True, check=False)
    shutil.rmtree(XEN_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def run():
    if leftovers():
        pytest.skip("objects of this test exist already (%s); remove them first" % leftovers())
    run_id = "xl-xentest-%s" % uuid.uuid4().hex[:8]
    extra = dict(VARS, run_id=run_id)
    info = {"run_id": run_id, "dir": os.path.join(ROOT, "results", run_id), "extra": extra}
    try:
        info["first"] = run_playbook(PLAYBOOK, extra, timeout=5400)
        yield info
    finally:
        run_playbook(PLAYBOOK, extra, tags=["teardown"], timeout=900)
        _force_cleanup()
        shutil.rmtree(info["dir"], ignore_errors=True)
        shutil.rmtree(os.path.join("/opt/xdplab/results", run_id), ignore_errors=True)


def _require(run):
    first = run["first"]
    assert first.returncode == 0, "the Xen quick run failed:\n%s\n%s" % (first.stdout[-8000:], first.stderr[-3000:])


def test_drop_runs_at_every_location_but_the_nic(run):
    _require(run)
    got = read_records(run["dir"])
    drop = {r["location"]: r for r in got.values() if r["experiment"] == "vm_drop"}
    assert drop["nic"]["status"] == "unsupported", drop["nic"]
    for location in ("host_driver", "vm_driver", "vm_afxdp"):
        record = drop[location]
        assert record["status"] == "ok", (location, record.get("reason"))
        assert record["sent_packets"] > 0 and record["processed_packets"] > 0, record
        assert record["processed_packets"] <= record["sent_packets"] + 64, record
    assert drop["host_driver"]["deploy"]["host"] == HOST and drop["host_driver"]["deploy"]["interface"] == UPLINK
    assert drop["vm_driver"]["deploy"]["host"] == G1


def test_records_carry_the_xen_provenance(run):
    _require(run)
    for record in read_records(run["dir"]).values():
        if record["location"] == "nic":
            continue
        prov = record["provenance"]
        assert prov["hypervisor"].startswith("xen 4.17"), prov
        assert prov["xen_version"].startswith("4.17") and prov["dom0_kernel"], prov
        assert prov["vnic_model"] == "netfront" and "xen-netfront" in prov["vnic_driver"], prov
        assert prov["ovs_datapath"] == "system", prov


def test_cpu_share_and_neighbour_rows_exist(run):
    _require(run)
    got = read_records(run["dir"]).values()
    assert [r for r in got if r["experiment"] == "vm_cpu_share"]
    assert [r for r in got if r["experiment"] == "neighbour"]
    for record in got:
        print("%-58s %-11s %s" % (record["cell_id"], record["status"], record.get("reason") or ""))


def test_teardown_leaves_nothing(run):
    _require(run)
    proc = run_playbook(PLAYBOOK, run["extra"], tags=["teardown"], timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert leftovers() == []
