# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/vm_offload.yml's quick profile end to end on the emulated lab.

From a bare machine (or a warm one: the guest image cache is kept) the playbook
starts libvirt + QEMU and Open vSwitch, boots two real guests (the workload's
and the neighbour's) behind an OVS userspace bridge whose uplink is a veth
into the load generator's namespace, and runs the quick matrix: vm_drop at
nic / host_driver / vm_driver / vm_afxdp (the AF_XDP worker built on the host
and run in the guest, which has no compiler), vm_cpu_share (checksum N=100) at
host_driver / vm_driver, and neighbour (the second guest answers DNS while the
first one's checksum workload runs on the host's uplink or in its guest)
against a no-load baseline. The tests check that every
cell has a record, that the nic cells carry the kernel's refusal as
`unsupported`, that counts are consistent, that CPU shares and provenance are
recorded, that summary.csv exists, that a re-run with the same run id skips
every cell, and that the teardown leaves nothing behind (also when a test
fails: the fixture tears down and then removes leftovers by exact name).

Names start with ``xl-v``; addresses are from 198.19.21.0/24 and
198.19.22.0/24 so that the test does not collide with a lab that is up.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import csv
import glob
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest
import yaml

from ansible_collections.xdplab.offload.plugins.module_utils import matrix
from lib.labstate import alive, links, netns, read_json, stop_recorded_daemons
from lib.labstate import records as read_records
from lib.modrun import ROOT, recap_changed, run_playbook

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for libvirt, Open vSwitch, namespaces and XDP"),
]

PLAYBOOK = "playbooks/vm_offload.yml"
G1, G2 = "xl-vg1", "xl-vg2"
BRIDGE, UPLINK, GEN_DEV, GEN_NETNS, MGMT = "xl-vbr0", "xl-vup0", "xl-vlg0", "xl-vlg", "xl-vmgmt"
GUESTS_DIR = "/var/lib/xdplab/vtest-guests"
OBJECTS_DIR = "/var/cache/xdplab/vtest-objects"
OVS_STATE, HV_STATE = "/run/xdplab/vtest-ovs.json", "/run/xdplab/vtest-hypervisor.json"
STAGE_DIR = os.path.join(tempfile.gettempdir(), "xl-vtest-stage")


def _guest(name, last):
    return {"name": name, "vcpus": 1, "memory_mib": 384, "mgmt_address": "198.19.21.%d/24" % last,
            "data": [{"bridge": BRIDGE, "address": "198.19.22.%d/24" % last, "model": "virtio",
                      "checksum_offload": False}]}


VARS = {
    "profile": "quick",
    "results_report_enabled": False,
    "hypervisor_state_file": HV_STATE,
    "ovs_state_file": OVS_STATE,
    "ovs_bridges": [{"name": BRIDGE, "datapath_type": "auto",
                     "uplinks": [{"name": UPLINK, "peer": GEN_DEV, "peer_netns": GEN_NETNS,
                                  "peer_address": "198.19.22.1/24", "tx_checksum_offload": False}]}],
    "vm_guests_all": [_guest(G1, 10), _guest(G2, 11)],
    "guests_mgmt_bridge": MGMT,
    "guests_mgmt_host_address": "198.19.21.1/24",
    "guests_dir": GUESTS_DIR,
    "experiment_ship_build_dir": OBJECTS_DIR,
    "experiment_ship_stage_dir": STAGE_DIR,
}
# A few stray frames (the guests' own IPv6/ARP chatter) may reach a program too.
TOLERANCE_PACKETS = 64


def quick_profile():
    with open(os.path.join(ROOT, PLAYBOOK)) as handle:
        plays = yaml.safe_load(handle)
    for play in plays:
        profiles = (play.get("vars") or {}).get("xdplab_vm_profiles")
        if profiles:
            return profiles["quick"]
    raise AssertionError("no xdplab_vm_profiles in %s" % PLAYBOOK)


def _domains():
    if not shutil.which("virsh"):
        return set()
    res = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"], capture_output=True,
                         text=True, check=False, timeout=60)
    return set(res.stdout.split()) if res.returncode == 0 else set()


def leftovers():
    names = {BRIDGE, UPLINK, MGMT, G1 + "-0", G1 + "-1", G2 + "-0", G2 + "-1"}
    found = sorted(links() & names) + sorted(netns() & {GEN_NETNS}) + sorted(_domains() & {G1, G2})
    found += [p for p in (HV_STATE, OVS_STATE, OBJECTS_DIR, STAGE_DIR) if os.path.exists(p)]
    if os.path.isdir(GUESTS_DIR) and os.listdir(GUESTS_DIR):
        found.append(GUESTS_DIR)
    return found


def _force_cleanup():
    """Remove what the teardown left (normally nothing), by exact names and recorded PIDs."""
    if shutil.which("virsh"):
        for dom in (G1, G2):
            subprocess.run(["virsh", "-c", "qemu:///system", "destroy", dom], capture_output=True, check=False)
            subprocess.run(["virsh", "-c", "qemu:///system", "undefine", dom], capture_output=True, check=False)
    if shutil.which("ovs-vsctl"):
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", BRIDGE], capture_output=True,
                       check=False)
    for link in (UPLINK, MGMT, G1 + "-0", G1 + "-1", G2 + "-0", G2 + "-1"):
        if link in links():
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
    if GEN_NETNS in netns():
        subprocess.run(["ip", "netns", "del", GEN_NETNS], capture_output=True, check=False)
    stop_recorded_daemons((HV_STATE, OVS_STATE))
    for path in (GUESTS_DIR, OBJECTS_DIR, STAGE_DIR):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def run():
    if leftovers():
        pytest.skip("objects of this test exist already (%s); remove them first" % leftovers())
    run_id = "xl-vmtest-%s" % uuid.uuid4().hex[:8]
    extra = dict(VARS, run_id=run_id)
    info = {"run_id": run_id, "dir": os.path.join(ROOT, "results", run_id), "extra": extra,
            "hv": {}, "ovs": {}}
    try:
        # keep_lab: the re-run below finds the lab up; it then removes it as a run does by default.
        info["first"] = run_playbook(PLAYBOOK, dict(extra, keep_lab=True), timeout=3000)
        info["hv"], info["ovs"] = read_json(HV_STATE), read_json(OVS_STATE)
        yield info
    finally:
        if not info.get("torn_down"):
            run_playbook(PLAYBOOK, extra, tags=["teardown"], timeout=900)
        _force_cleanup()
        shutil.rmtree(info["dir"], ignore_errors=True)
        shutil.rmtree(os.path.join("/opt/xdplab/results", run_id), ignore_errors=True)


def _require(run):
    first = run["first"]
    assert first.returncode == 0, "the quick run failed:\n%s\n%s" % (first.stdout[-8000:], first.stderr[-3000:])


def records(run):
    return read_records(run["dir"])


def test_quick_profile_records_every_cell_of_the_matrix(run):
    _require(run)
    expected = [cell["id"] for cell in matrix.expand(quick_profile())]
    got = records(run)
    assert sorted(got) == sorted(expected)
    for cell_id, record in sorted(got.items()):
        print("%-58s %-11s %s" % (cell_id, record["status"], record.get("reason") or ""))


def test_nic_cells_are_unsupported_with_the_kernels_reason(run):
    _require(run)
    nic = [r for r in records(run).values() if r["location"] == "nic"]
    assert nic, "the quick profile has no nic cell"
    for record in nic:
        assert record["status"] == "unsupported", record
        assert "offload-capable NIC" in record["reason"] and UPLINK in record["reason"], record["reason"]


def test_throughput_cells_count_consistently_and_record_cpu_shares_and_provenance(run):
    _require(run)
    checked = 0
    for cell_id, record in records(run).items():
        if record["location"] in ("nic", "baseline") or record["experiment"] == "zero_loss":
            continue
        assert record["status"] == "ok", (cell_id, record["reason"])
        sent, seen = record["sent_packets"], record["processed_packets"]
        assert sent > 0 and seen > 0, (cell_id, sent, seen)
        # The program cannot see more than was sent (plus the guests' own stray frames).
        assert seen <= sent + TOLERANCE_PACKETS, (cell_id, sent, seen)
        # drop and checksum drop every frame they see
        assert record["dropped_packets"] == seen, cell_id
        assert record["lost_packets"] == sent - seen
        deploy = record["deploy"]
        assert deploy["mode"] in ("driver", "generic"), deploy
        assert deploy["requested_mode"] == "driver"
        assert deploy["mode"] == "driver" or deploy["fallback"] is True, deploy
        if record["location"] == "vm_afxdp":
            # the record's mode is what the socket does; the worker ran in the guest, built on the host
            assert record["mode"] in ("copy", "zerocopy") and deploy["bind_mode"] == record["mode"], deploy
            assert record["afxdp"]["worker_cpu_ns"], record["afxdp"]
        else:
            assert record["mode"] == deploy["mode"], deploy
        if record["location"] == "host_driver":
            assert deploy["interface"] == UPLINK and deploy["host"] not in (G1, G2), deploy
            assert deploy["target_ip"] == "198.19.22.10", deploy
        else:
            assert deploy["host"] == G1, deploy
        assert record["cpu_host_share"] is not None and record["cpu_host_share"] >= 0
        # libvirt's CPU time of two running QEMU guests: never zero over a measurement window
        assert record["cpu_vm_share"] is not None and record["cpu_vm_share"] > 0, (cell_id, record["cpu_vm_share"])
        prov = record["provenance"]
        assert prov["hypervisor"].split()[0] in ("qemu-tcg", "kvm"), prov
        assert prov["guest_kernel"] and prov["vnic_model"] == "virtio" and prov["program_hash"], prov
        checked += 1
    assert checked >= 5
    assert any(r["location"] == "vm_afxdp" and r["status"] == "ok" for r in records(run).values())


def test_zero_loss_searches_run_trial_by_trial_at_every_vm_location(run):
    _require(run)
    got = dict((r["location"], r) for r in records(run).values() if r["experiment"] == "zero_loss")
    assert got["nic"]["status"] == "unsupported"
    for location in ("host_driver", "vm_driver", "vm_afxdp"):
        record = got[location]
        assert record["status"] == "ok", (record["cell_id"], record["reason"])
        trials = record["zero_loss_trials"]
        assert 1 <= len(trials) <= record["zero_loss_parameters"]["max_trials"], trials
        # one trial only when the generator's maximum lost nothing (nothing to search below it)
        assert len(trials) > 1 or (trials[0]["passed"] and record["zero_loss_converged"]), trials
        for trial in trials:
            assert trial["sent"] > 0 and 0 <= trial["processed"] <= trial["sent"] + TOLERANCE_PACKETS, trial
            assert trial["passed"] == (trial["loss_ratio"] <= record["zero_loss_parameters"]["loss_tolerance"])
        # the overload trial comes first: its processed rate is the location's throughput
        assert trials[0]["target_pps"] == 0 and record["processed_pps"] > 0
        passed = [t["offered_pps"] for t in trials if t["passed"]]
        assert record["zero_loss_pps"] == (max(passed) if passed else None) or record["zero_loss_pps"] in passed
        print("%-60s zero-loss %s pps, overload %.0f pps, %d trials: %s" % (
            record["cell_id"], record["zero_loss_pps"], record["processed_pps"], len(trials), record["zero_loss_reason"]))


def test_neighbour_latency_is_measured_with_and_without_the_workload(run):
    _require(run)
    got = [r for r in records(run).values() if r["experiment"] == "neighbour"]
    base = [r for r in got if r["location"] == "baseline"]
    loaded = [r for r in got if r["location"] != "baseline"]
    assert base and loaded
    for record in got:
        assert record["status"] == "ok", (record["cell_id"], record["reason"])
        assert record["neighbour"]["host"] == G2 and record["neighbour"]["mode"] in ("driver", "generic")
        assert record["probe_sent"] > 0 and 0 < record["probe_received"] <= record["probe_sent"]
        assert record["rtt_us_p50"] > 0 and record["rtt_us_samples"], record["cell_id"]
        assert record["rtt_us_min"] <= record["rtt_us_p50"] <= record["rtt_us_p99"] <= record["rtt_us_max"]
        print("%-50s p50 %.0f us p99 %.0f us loss %.3f workload %s pps" % (
            record["cell_id"], record["rtt_us_p50"], record["rtt_us_p99"], record["loss"], record["rate_pps"]))
    for record in base:
        assert record["sent_packets"] == 0 and record["processed_packets"] == 0
    for record in loaded:
        assert record["sent_packets"] > 0 and record["processed_packets"] > 0
        # On the host's uplink the workload's program passes the neighbour's queries (they reached it, above)
        # and does not count them.
        assert record["processed_packets"] <= record["sent_packets"] + TOLERANCE_PACKETS, record["cell_id"]
    assert {r["location"] for r in loaded} >= {"host_driver", "vm_driver"}


def test_summary_csv_has_a_row_per_cell_group(run):
    _require(run)
    with open(os.path.join(run["dir"], "summary.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(matrix.expand(quick_profile()))
    assert {r["experiment"] for r in rows} == set(quick_profile()) == {"vm_drop", "vm_cpu_share", "neighbour", "zero_loss"}


def test_rerun_with_the_same_run_id_skips_recorded_cells_and_removes_the_lab_when_it_ends(run):
    _require(run)
    paths = glob.glob(os.path.join(run["dir"], "records", "*.json"))
    before = {p: os.stat(p).st_mtime_ns for p in paths}
    # A whole run without keep_lab: provisioning finds the lab up, every cell is recorded already,
    # and the lab goes when the run ends.
    second = run_playbook(PLAYBOOK, run["extra"], timeout=1800)
    run["torn_down"] = True
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-2000:]
    assert "TASK [xdplab.offload.experiment : Deploy at " not in second.stdout
    assert "TASK [xdplab.offload.experiment : Measure on the generator's host" not in second.stdout
    assert "TASK [xdplab.offload.experiment : Write the record" not in second.stdout
    assert {p: os.stat(p).st_mtime_ns for p in paths} == before
    assert leftovers() == []
    for entry in run["hv"].get("started", []) + run["ovs"].get("started", []):
        assert not alive(entry["pid"], entry["name"]), entry


def test_teardown_playbook_on_a_removed_lab_changes_nothing(run):
    _require(run)
    proc = run_playbook("playbooks/teardown.yml", run["extra"], timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert recap_changed(proc.stdout) == 0, proc.stdout[-6000:]
    assert leftovers() == []
