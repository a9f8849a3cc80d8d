# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A guest destroyed in the middle of its cell: playbooks/vm_offload.yml records that cell
`failed` with the reason (the guest became unreachable), goes on with the next cell (XDP on
the host's uplink, whose VM share cannot be measured without the guest: recorded `failed`
with that reason, not a share of 0) and, when the run ends, removes the lab.

One real QEMU guest behind the OVS userspace bridge, as in test_vm_offload_playbook.py;
names start with ``xl-c`` and addresses come from 198.19.41.0/24 and 198.19.42.0/24 so
that nothing collides with a lab that is up.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from lib.labstate import alive, links, netns, read_json, stop_recorded_daemons
from lib.labstate import records as read_records
from lib.modrun import ROOT, run_playbook

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.timeout(3000),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for libvirt, Open vSwitch, namespaces and XDP"),
]

PLAYBOOK = "playbooks/vm_offload.yml"
GUEST = "xl-cg1"
BRIDGE, UPLINK, GEN_DEV, GEN_NETNS, MGMT = "xl-cbr0", "xl-cup0", "xl-clg0", "xl-clg", "xl-cmgmt"
GUESTS_DIR = "/var/lib/xdplab/ctest-guests"
OBJECTS_DIR = "/var/cache/xdplab/ctest-objects"
OVS_STATE, HV_STATE = "/run/xdplab/ctest-ovs.json", "/run/xdplab/ctest-hypervisor.json"
STAGE_DIR = os.path.join(tempfile.gettempdir(), "xl-ctest-stage")
DURATION = 20
EXPERIMENTS = {"vm_drop": {"programs": ["drop"], "locations": ["vm_driver", "host_driver"], "sizes": [64],
                           "rates": [50000], "repetitions": 1, "duration": DURATION}}
VM_CELL = "vm_drop-drop-vm_driver-s64-r50000-d%d-rep1" % DURATION
HOST_CELL = "vm_drop-drop-host_driver-s64-r50000-d%d-rep1" % DURATION

VARS = {
    "profile": "quick",
    "experiments": EXPERIMENTS,
    "results_report_enabled": False,
    "hypervisor_state_file": HV_STATE,
    "ovs_state_file": OVS_STATE,
    "ovs_bridges": [{"name": BRIDGE, "datapath_type": "auto",
                     "uplinks": [{"name": UPLINK, "peer": GEN_DEV, "peer_netns": GEN_NETNS,
                                  "peer_address": "198.19.42.1/24", "tx_checksum_offload": False}]}],
    "vm_guests_all": [{"name": GUEST, "vcpus": 1, "memory_mib": 384, "mgmt_address": "198.19.41.10/24",
                       "data": [{"bridge": BRIDGE, "address": "198.19.42.10/24", "model": "virtio",
                                 "checksum_offload": False}]}],
    "guests_mgmt_bridge": MGMT,
    "guests_mgmt_host_address": "198.19.41.1/24",
    "guests_dir": GUESTS_DIR,
    "experiment_ship_build_dir": OBJECTS_DIR,
    "experiment_ship_stage_dir": STAGE_DIR,
}


def _virsh(*args):
    return subprocess.run(["virsh", "-c", "qemu:///system"] + list(args), capture_output=True, text=True,
                          check=False, timeout=120)


def _generator_tx_packets():
    proc = subprocess.run(["ip", "-n", GEN_NETNS, "-j", "-s", "link", "show", GEN_DEV], capture_output=True,
                          text=True, check=False, timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return json.loads(proc.stdout)[0]["stats64"]["tx"]["packets"]


def _destroy_when_the_first_cell_sends(events, deadline_s=1500):
    """Wait until the generator sends (the first cell is vm_driver's), then destroy the guest."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < deadline_s and not events["stop"].is_set():
        now = _generator_tx_packets()
        if now is not None and last is not None and now - last > 10000:
            time.sleep(3)  # well inside the cell's 20 s window
            events["started"] = [e for path in (HV_STATE, OVS_STATE) for e in read_json(path).get("started", [])]
            events["destroy"] = _virsh("destroy", GUEST)
            events["destroyed_at"] = time.monotonic()
            return
        last = now
        time.sleep(0.5)


def leftovers():
    names = {BRIDGE, UPLINK, MGMT, GUEST + "-0", GUEST + "-1"}
    found = sorted(links() & names) + sorted(netns() & {GEN_NETNS})
    if shutil.which("virsh") and os.path.exists("/run/libvirt/libvirt-sock"):
        res = _virsh("list", "--all", "--name")
        found += sorted(set(res.stdout.split()) & {GUEST})
    found += [p for p in (HV_STATE, OVS_STATE, OBJECTS_DIR, STAGE_DIR) if os.path.exists(p)]
    if os.path.isdir(GUESTS_DIR) and os.listdir(GUESTS_DIR):
        found.append(GUESTS_DIR)
    return found


@pytest.fixture(scope="module")
def crashed_run():
    if leftovers():
        pytest.skip("objects of this test exist already (%s); remove them first" % leftovers())
    run_id = "xl-crash-%s" % uuid.uuid4().hex[:8]
    events = {"stop": threading.Event()}
    watcher = threading.Thread(target=_destroy_when_the_first_cell_sends, args=(events,), daemon=True)
    info = {"run_id": run_id, "dir": os.path.join(ROOT, "results", run_id), "events": events}
    watcher.start()
    try:
        info["proc"] = run_playbook(PLAYBOOK, dict(VARS, run_id=run_id), timeout=3000)
        info["after"] = leftovers()
        info["started"] = events.get("started", [])
        info["records"] = read_records(info["dir"])
        yield info
    finally:
        events["stop"].set()
        watcher.join(timeout=30)
        if leftovers():
            run_playbook("playbooks/teardown.yml", dict(VARS, run_id=run_id), timeout=900)
        if shutil.which("virsh"):
            _virsh("destroy", GUEST)
            _virsh("undefine", GUEST)
        stop_recorded_daemons((HV_STATE, OVS_STATE))
        for path in (GUESTS_DIR, OBJECTS_DIR, STAGE_DIR, info["dir"], os.path.join("/opt/xdplab/results", run_id)):
            shutil.rmtree(path, ignore_errors=True)


def test_the_guest_was_destroyed_while_its_cell_ran(crashed_run):
    destroy = crashed_run["events"].get("destroy")
    assert destroy is not None, "the generator never sent (no cell started):\n%s" % crashed_run["proc"].stdout[-4000:]
    assert destroy.returncode == 0, destroy.stderr


def test_the_run_went_on_and_recorded_the_dead_guests_cell_as_failed_with_the_reason(crashed_run):
    proc = crashed_run["proc"]
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    records = crashed_run["records"]
    assert sorted(records) == sorted([VM_CELL, HOST_CELL]), sorted(records)
    failed = records[VM_CELL]
    assert failed["status"] == "failed", failed
    assert "%s became unreachable during the cell" % GUEST in failed["reason"], failed["reason"]
    assert "processed_pps" not in failed


def test_the_next_cell_ran_and_refused_to_report_a_vm_share_without_the_guest(crashed_run):
    # The run went on to the next cell (XDP on the host's uplink). Its VM share cannot be
    # measured with the guest gone: the cell says so instead of recording a share of 0.
    record = crashed_run["records"][HOST_CELL]
    assert record["status"] == "failed", record
    assert "libvirt domain %s" % GUEST in record["reason"] and "is not running" in record["reason"], record["reason"]
    assert record["teardown_error"] is None, record["teardown_error"]


def test_the_run_removed_the_lab_when_it_ended(crashed_run):
    assert crashed_run["after"] == [], crashed_run["after"]
    for entry in crashed_run["started"]:
        assert not alive(entry["pid"], entry["name"]), entry
