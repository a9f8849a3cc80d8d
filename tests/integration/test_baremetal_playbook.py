"""playbooks/baremetal_offload.yml end to end on the emulated lab.

A small matrix (drop at offload/driver/generic, one complexity cell with a
BPF_PROG_TEST_RUN cost, and one cell whose program does not compile) runs
through real namespaces, veth, XDP and the live-frames generator. The test
checks the records' counts against the interfaces' own statistics, that a
re-run with the same run id skips every recorded cell, that the bad cell is
recorded as failed while the run goes on, and that teardown leaves nothing.
"""
import csv
import glob
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import matrix
from lib import labstate
from lib.modrun import ROOT, run_playbook

pytestmark = [pytest.mark.root, pytest.mark.slow]

PLAYBOOK = "playbooks/baremetal_offload.yml"
EXPERIMENTS = {
    "drop": {"programs": ["drop"], "locations": ["offload", "driver", "generic"], "sizes": [64],
             "repetitions": 1, "duration": 2},
    "complexity": {"programs": ["loop", "NOWHERE"], "n": [100], "locations": ["driver"], "repetitions": 1,
                   "duration": 1, "testrun": True},
}
# The program of the cell that fails (the matrix refuses unknown locations before any cell runs,
# so the bad cell is a program that exists but does not compile).
BROKEN_PROGRAM = "nowhere.c"


def experiments(broken):
    spec = json.loads(json.dumps(EXPERIMENTS))
    spec["complexity"]["programs"] = [broken if p == "NOWHERE" else p for p in spec["complexity"]["programs"]]
    return spec


def broken_id(run):
    return [c["id"] for c in matrix.expand(run["experiments"]) if c["program"] == run["broken"]][0]


# Frames the veth ring could not take are counted by the receiver as rx_dropped;
# a few stray frames (e.g. IPv6 neighbour discovery) may be seen by the program too.
TOLERANCE_PACKETS = 16


def xl_objects():
    netns = [n.split()[0] for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                                  check=True).stdout.splitlines()]
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    return sorted([n for n in netns if n in ("xl-lg", "xl-dut")]
                  + [link["ifname"] for link in links if link["ifname"] in ("xl-lg0", "xl-dut0")])


def _record_mtimes(run_id):
    paths = glob.glob(os.path.join(ROOT, "results", run_id, "records", "*.json"))
    return dict((os.path.basename(p)[:-len(".json")], os.stat(p).st_mtime_ns) for p in paths)


@pytest.fixture(scope="module")
def run():
    if xl_objects():
        pytest.skip("the emulated lab (xl-lg/xl-dut) is already up; this test builds and removes it itself")
    run_id = "test-%s" % uuid.uuid4().hex[:8]
    workdir = tempfile.mkdtemp(prefix="xl-bm-")
    broken = os.path.join(workdir, BROKEN_PROGRAM)
    with open(broken, "w") as handle:
        handle.write("this is not C;\n")
    extra = {"run_id": run_id, "experiments": experiments(broken), "results_report_enabled": False}
    # The first two runs keep the lab for the next; the third, a whole run without
    # keep_lab, removes what it brought up when it ends.
    first = run_playbook(PLAYBOOK, dict(extra, keep_lab=True))
    second = run_playbook(PLAYBOOK, extra, tags=["measure"])
    mtimes = _record_mtimes(run_id)
    third = run_playbook(PLAYBOOK, dict(extra, retry_failed=True))
    after_third = xl_objects()
    yield {"run_id": run_id, "first": first, "second": second, "third": third, "mtimes": mtimes,
           "after_third": after_third, "dir": os.path.join(ROOT, "results", run_id),
           "experiments": extra["experiments"], "broken": broken}
    shutil.rmtree(workdir, ignore_errors=True)
    teardown = run_playbook(PLAYBOOK, {"run_id": run_id}, tags=["teardown"])
    shutil.rmtree(os.path.join(ROOT, "results", run_id), ignore_errors=True)
    shutil.rmtree(os.path.join("/opt/xdplab/results", run_id), ignore_errors=True)
    assert teardown.returncode == 0, teardown.stdout + teardown.stderr
    assert xl_objects() == [], "teardown left %s behind" % xl_objects()


def records(run):
    return labstate.records(run["dir"])


def test_every_cell_has_a_record_and_the_run_went_on(run):
    assert run["first"].returncode == 0, run["first"].stdout[-4000:] + run["first"].stderr
    got = records(run)
    assert broken_id(run).startswith("complexity-nowhere.c_") and broken_id(run).endswith("-driver-s64-r0-d1-tr-rep1")
    assert sorted(got) == sorted([
        "complexity-loop-n100-driver-s64-r0-d1-tr-rep1",
        broken_id(run),
        "drop-drop-driver-s64-r0-d2-rep1",
        "drop-drop-generic-s64-r0-d2-rep1",
        "drop-drop-offload-s64-r0-d2-rep1",
    ])
    assert got[broken_id(run)]["status"] == "failed"
    assert "nowhere" in got[broken_id(run)]["reason"]
    offload = got["drop-drop-offload-s64-r0-d2-rep1"]
    assert offload["status"] == "unsupported"
    assert "offload-capable NIC" in offload["reason"]
    for cell in ("drop-drop-driver-s64-r0-d2-rep1", "drop-drop-generic-s64-r0-d2-rep1",
                 "complexity-loop-n100-driver-s64-r0-d1-tr-rep1"):
        assert got[cell]["status"] == "ok", got[cell]


def test_counts_are_consistent_with_the_interfaces(run):
    for cell_id, record in records(run).items():
        if record["status"] != "ok":
            continue
        sent = record["sent_packets"]
        seen = record["processed_packets"]
        dut = record["interfaces"]["dut"]["stats"]
        assert sent > 0 and seen > 0, cell_id
        # Every frame the generator sent reached the DUT's veth: taken off the ring
        # (rx_packets, all of which the XDP program saw) or dropped by the full ring.
        assert abs(dut["rx_packets"] - seen) <= TOLERANCE_PACKETS, (cell_id, dut, seen)
        assert abs(sent - (dut["rx_packets"] + dut["rx_dropped"])) <= TOLERANCE_PACKETS, (cell_id, sent, dut)
        assert record["lost_packets"] == sent - seen
        # drop and loop drop every frame they see.
        assert record["dropped_packets"] == seen
        assert record["provenance"]["prog_tag"] and record["provenance"]["kernel"]
    complexity = records(run)["complexity-loop-n100-driver-s64-r0-d1-tr-rep1"]
    assert complexity["ns_per_run"] > 0


def test_rerun_with_the_same_run_id_skips_recorded_cells(run):
    second = run["second"]
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr
    assert "TASK [xdplab.offload.experiment : Deploy, measure, collect and remove in one call" not in second.stdout
    assert "TASK [xdplab.offload.experiment : Write the record" not in second.stdout
    assert second.stdout.count("TASK [xdplab.offload.experiment : Check the cell and decide whether it runs") == 5


def test_retry_failed_runs_only_the_failed_cell_again(run):
    third = run["third"]
    assert third.returncode == 0, third.stdout[-4000:] + third.stderr
    after = _record_mtimes(run["run_id"])
    assert sorted(after) == sorted(run["mtimes"])
    rewritten = sorted(cell for cell in after if after[cell] != run["mtimes"][cell])
    assert rewritten == [broken_id(run)]
    assert records(run)[broken_id(run)]["status"] == "failed"


def test_a_run_without_keep_lab_removes_the_wire_when_it_ends(run):
    assert run["third"].returncode == 0, run["third"].stdout[-6000:]
    assert "Remove the wire and everything on it" in run["third"].stdout
    assert run["after_third"] == [], "the run left %s behind" % run["after_third"]
    # keep_lab=true kept it: the second run (measure only) found the wire up and measured nothing again.
    assert "Remove the wire and everything on it" not in run["first"].stdout


def test_summary_has_one_row_per_cell_group(run):
    with open(os.path.join(run["dir"], "summary.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    driver = [r for r in rows if r["experiment"] == "drop" and r["location"] == "driver"][0]
    assert driver["status"] == "ok"
    assert float(driver["processed_pps_median"]) > 0
