"""Hostile inputs and faults for the matrix, the cell's record, resume and the run lock.

Bad matrix values are refused before any cell runs (by the lookup, and by the
experiment role for a hand-made cell); broken records are re-run; a failed one
only with retry_failed; a SIGKILLed AF_XDP worker makes its cell ``failed`` and
the run goes on; a fallback to generic XDP happens only when the driver has no
native XDP; a second run is refused while the lab's lock is held, and can go
once the holder's owner is gone.

Everything this file creates is named xl-hc*: a wire of its own (namespaces,
veth, a bridge), records under a temporary directory, lock files under
/run/xdplab; all of it is removed in finalizers, also on failure.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp, matrix
from lib.labstate import read_json
from lib.modrun import ROOT, run_module, run_playbook

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, XDP and /run/xdplab"),
]

CELLS = "tests/integration/playbooks/hostile_cells.yml"
LOCK = "tests/integration/playbooks/hostile_lock.yml"
TAG = uuid.uuid4().hex[:6]


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def wire():
    """An emulated wire of this file's own (xl-hc names, 198.19.<x>.0/24) with a bridge in the DUT namespace."""
    subnet = "198.19.%d" % (200 + int(TAG, 16) % 50)
    spec = dict(lg_netns="xl-hc-lg-" + TAG, dut_netns="xl-hc-dut-" + TAG, lg_interface="xl-hcl" + TAG,
                dut_interface="xl-hcd" + TAG, lg_address=subnet + ".1/24", dut_address=subnet + ".2/24")
    bridge = "xl-hcb" + TAG
    try:
        result = run_module("lab_wire", spec)
        assert not result.failed, result
        _ip("-n", spec["dut_netns"], "link", "add", bridge, "type", "bridge")
        _ip("-n", spec["dut_netns"], "link", "set", bridge, "up")
        yield dict(spec, bridge=bridge)
    finally:
        _ip("-n", spec["dut_netns"], "link", "del", bridge, check=False)
        run_module("lab_wire", dict(spec, state="absent"))
        for name in (spec["lg_netns"], spec["dut_netns"]):
            _ip("netns", "del", name, check=False)


@pytest.fixture
def workdir():
    """A directory of the test's own for records and programs, removed afterwards."""
    path = tempfile.mkdtemp(prefix="xl-hc-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_id():
    return "xl-hc-%s" % uuid.uuid4().hex[:8]


def cells_extra(wire, rid, records_dir, **extra):
    base = {"run_id": rid, "records_dir": records_dir, "lg_netns": wire["lg_netns"],
            "dut_netns": wire["dut_netns"], "lg_if": wire["lg_interface"], "dut_if": wire["dut_interface"]}
    base.update(extra)
    return base


def record_of(records_dir, cell_id):
    return read_json(os.path.join(records_dir, cell_id + ".json"))


def fabricated(cell, rid, status="ok"):
    """A valid record of ``cell`` as if an earlier run had written it."""
    return {"schema": 1, "run_id": rid, "cell_id": cell["id"], "experiment": cell["experiment"],
            "program": cell["program"], "n": cell["n"], "location": cell["location"], "size": cell["size"],
            "rate": cell["rate"], "repetition": cell["repetition"], "duration_s": cell["duration"],
            "status": status, "reason": "fabricated by the test" if status == "failed" else None}


# ------------------------------------------------------------------ the matrix

BASE = {"programs": ["loop"], "n": [1], "locations": ["driver"], "duration": 1}


@pytest.mark.parametrize("name,key,value,rule", [
    ("complexity", "n", ["1$(shell id)"], "integer from 0"),
    ("complexity", "n", [-1], "integer from 0"),
    ("complexity", "n", [1.5], "integer from 0"),
    ("complexity", "n", ["abc"], "integer from 0"),
    ("complexity", "programs", ["no_such_program"], "built-in programs"),
    ("complexity", "locations", ["nowhere"], "must be one of"),
    ("complexity", "duration", 0, "above 0"),
    ("complexity", "duration", -5, "above 0"),
    ("complexity", "rates", [10 ** 12], "packets per second"),
    ("complexity", "durration", 2, "unknown key"),
    ("a/b", None, None, "experiment name"),
])
def test_bad_matrix_values_are_refused_naming_experiment_key_value_and_rule(name, key, value, rule):
    spec = dict(BASE)
    if key is not None:
        spec[key] = value
    with pytest.raises(matrix.MatrixError) as err:
        matrix.expand({name: spec})
    msg = str(err.value)
    assert rule in msg and name in msg, msg
    if key is not None:
        assert key in msg, msg
        if key != "durration":
            assert repr(value[0] if isinstance(value, list) else value) in msg, msg


@pytest.mark.parametrize("name,key,value,expected", [
    ("complexity", "n", "1$(shell touch {canary})", "integer from 0"),
    ("complexity", "locations", ["nowhere"], "must be one of"),
    ("x/../../y", None, None, "experiment name"),
])
def test_the_playbook_refuses_a_bad_matrix_before_any_cell_runs(wire, workdir, name, key, value, expected):
    canary = os.path.join(workdir, "canary")
    spec = dict(BASE)
    if key is not None:
        spec[key] = [value.format(canary=canary)] if isinstance(value, str) else value
    records = os.path.join(workdir, "records")
    proc = run_playbook(CELLS, cells_extra(wire, run_id(), records, experiments={name: spec}))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert expected in out, out[-3000:]
    assert "TASK [xdplab.offload.experiment" not in out
    assert not os.path.exists(records) and not os.path.exists(canary)


@pytest.mark.parametrize("key,value,expected", [
    ("n", "1$(shell touch {canary})", "integer from 0"),
    ("id", "../../../../../..{canary}", "must be the id of the cell's values"),
])
def test_the_role_refuses_a_hand_made_cell(wire, workdir, key, value, expected):
    canary = os.path.join(workdir, "canary")
    cell = dict(matrix.expand({"complexity": BASE})[0])
    cell[key] = value.format(canary=canary)
    records = os.path.join(workdir, "records")
    proc = run_playbook(CELLS, cells_extra(wire, run_id(), records, cell=cell))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "TASK [xdplab.offload.experiment : Check the cell and decide" in out and expected in out, out[-3000:]
    assert "TASK [xdplab.offload.experiment : Deploy" not in out and "Run cell" not in out
    assert not os.path.exists(records) and not os.path.exists(canary) and not os.path.exists(canary + ".json")


# --------------------------------------------------------------------- resume

def test_broken_records_run_again_and_failed_ones_only_with_retry_failed(wire, workdir):
    rid = run_id()
    records = os.path.join(workdir, "records")
    os.makedirs(records)
    experiments = {"resume": {"programs": ["drop"], "locations": ["driver"], "duration": 1, "repetitions": 5}}
    cells = matrix.expand(experiments)
    assert len(cells) == 5
    paths = [os.path.join(records, cell["id"] + ".json") for cell in cells]
    valid = json.dumps(fabricated(cells[0], rid))
    with open(paths[0], "w") as handle:
        handle.write(valid[:len(valid) // 2])                     # truncated
    open(paths[1], "w").close()                                   # empty
    with open(paths[2], "w") as handle:
        handle.write("\x00{corrupt")                              # not JSON
    with open(paths[3], "w") as handle:
        json.dump(fabricated(cells[3], rid), handle)              # valid, kept
    with open(paths[4], "w") as handle:
        json.dump(fabricated(cells[4], rid, status="failed"), handle)   # failed
    before = [os.stat(p).st_mtime_ns for p in paths]

    second = run_playbook(CELLS, cells_extra(wire, rid, records, experiments=experiments))
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr
    after = [os.stat(p).st_mtime_ns for p in paths]
    for i in range(3):
        assert after[i] != before[i], cells[i]["id"]
        rec = record_of(records, cells[i]["id"])
        assert rec["status"] == "ok" and rec["cell_id"] == cells[i]["id"], rec
        assert rec["sent_packets"] > 0 and rec["processed_packets"] > 0, rec
    assert after[3] == before[3] and after[4] == before[4]
    assert record_of(records, cells[4]["id"])["status"] == "failed"
    for word in ("is empty", "not valid JSON"):
        assert word in second.stdout, word

    third = run_playbook(CELLS, cells_extra(wire, rid, records, experiments=experiments, retry_failed=True))
    assert third.returncode == 0, third.stdout[-4000:] + third.stderr
    final = [os.stat(p).st_mtime_ns for p in paths]
    assert final[:4] == after[:4]
    assert final[4] != after[4]
    rec = record_of(records, cells[4]["id"])
    assert rec["status"] == "ok" and rec["reason"] is None, rec
    assert not [n for n in os.listdir(records) if not n.endswith(".json")], os.listdir(records)


# --------------------------------------------------------------------- faults

def _kill_worker_when_it_runs(wire, killed, stop):
    sdir = afxdp.state_dir(wire["dut_interface"], wire["dut_netns"])
    while not stop.is_set():
        rec = read_json(os.path.join(sdir, afxdp.RECORD_FILE)) if os.path.isdir(sdir) else None
        if rec and rec.get("pid"):
            time.sleep(1.0)
            try:
                os.kill(rec["pid"], signal.SIGKILL)
                killed.append(rec["pid"])
            except ProcessLookupError:
                pass
            return
        time.sleep(0.1)


def test_a_sigkilled_afxdp_worker_fails_its_cell_and_the_run_goes_on(wire, workdir):
    rid = run_id()
    records = os.path.join(workdir, "records")
    experiments = {"a_afxdp": {"programs": ["drop"], "locations": ["afxdp"], "duration": 5},
                   "b_after": {"programs": ["drop"], "locations": ["driver"], "duration": 1}}
    crashed, after = matrix.expand(experiments)
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_worker_when_it_runs, args=(wire, killed, stop))
    killer.start()
    try:
        proc = run_playbook(CELLS, cells_extra(wire, rid, records, experiments=experiments))
    finally:
        stop.set()
        killer.join()
    assert killed, "the worker never ran:\n" + proc.stdout[-4000:]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    rec = record_of(records, crashed["id"])
    print("killed worker %s; record %s: %s: %s" % (killed, crashed["id"], rec["status"], rec["reason"]))
    assert rec["status"] == "failed", rec
    assert rec["reason"] and ("died" in rec["reason"] or "crash" in rec["reason"]), rec["reason"]
    assert "sent_packets" not in rec, "a dead worker's counters were recorded"
    assert record_of(records, after["id"])["status"] == "ok"
    # The lab is clean: no worker state, no program on the interface.
    assert not os.path.exists(afxdp.state_dir(wire["dut_interface"], wire["dut_netns"]))
    link = json.loads(_ip("-n", wire["dut_netns"], "-j", "link", "show", wire["dut_interface"]).stdout)[0]
    assert "xdp" not in link, link


def test_fallback_to_generic_only_when_the_driver_has_no_native_xdp(wire, workdir):
    rid = run_id()
    records = os.path.join(workdir, "records")
    broken = os.path.join(workdir, "broken.c")
    with open(broken, "w") as handle:
        handle.write("this is not C;\n")
    location_map = {
        # A bridge has no native XDP: the kernel says so, and the role falls back to generic.
        "vm_driver": {"kind": "xdp", "mode": "driver", "fallback_mode": "generic", "host": "localhost",
                      "interface": wire["bridge"], "netns": wire["dut_netns"]},
        # A program that does not compile is no reason to fall back.
        "host_driver": {"kind": "xdp", "mode": "driver", "fallback_mode": "generic", "host": "localhost",
                        "interface": wire["dut_interface"], "netns": wire["dut_netns"]},
    }
    experiments = {"fb_bridge": {"programs": ["drop"], "locations": ["vm_driver"], "duration": 1},
                   "fb_broken": {"programs": [broken], "locations": ["host_driver"], "duration": 1}}
    bridge_cell, broken_cell = matrix.expand(experiments)
    proc = run_playbook(CELLS, cells_extra(wire, rid, records, experiments=experiments, location_map=location_map))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    rec = record_of(records, bridge_cell["id"])
    assert rec["status"] == "ok", rec
    assert rec["deploy"]["fallback"] is True and rec["mode"] == "generic", rec["deploy"]
    assert rec["deploy"]["requested_mode"] == "driver"
    assert "native XDP" in rec["deploy"]["fallback_reason"], rec["deploy"]
    bad = record_of(records, broken_cell["id"])
    print("fallback: %s; broken: %s" % (rec["deploy"], bad["reason"]))
    assert bad["status"] == "failed", bad
    assert "broken.c" in bad["reason"], bad["reason"]
    assert not bad["deploy"].get("fallback"), bad["deploy"]
    assert "Attach in the fallback mode" not in proc.stdout.split(broken_cell["id"])[-1]


# ----------------------------------------------------------------------- lock

@pytest.fixture
def lock_path():
    path = "/run/xdplab/xl-hc-%s.lock" % uuid.uuid4().hex[:8]
    owners = []
    yield path, owners
    for owner in owners:
        if owner.poll() is None:
            owner.kill()
        owner.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _held_by(path):
        time.sleep(0.1)
    for pid in _held_by(path):
        if "xdplab-run-lock-holder" in open("/proc/%d/cmdline" % pid).read():
            os.kill(pid, signal.SIGTERM)
    if os.path.exists(path):
        os.unlink(path)


def _held_by(path):
    from ansible_collections.xdplab.offload.plugins.module_utils import lock
    return lock.flock_holders(path)


def _owner(owners):
    proc = subprocess.Popen(["sleep", "120"])
    owners.append(proc)
    return proc


def test_a_second_lock_fails_naming_the_holder_and_is_free_once_the_owner_exits(lock_path, workdir):
    path, owners = lock_path
    first_owner, second_owner = _owner(owners), _owner(owners)
    run_dir = os.path.join(workdir, "xl-hc-run")
    first = run_module("run_lock", {"path": path, "run_id": "xl-hc-first", "owner_pid": first_owner.pid,
                                    "run_dir": run_dir, "results_root": workdir})
    assert not first.failed and first.changed, first
    holder = first["holder_pid"]
    assert _held_by(path) == [holder] and _held_by(os.path.join(run_dir, ".lock")) == [holder]

    again = run_module("run_lock", {"path": path, "run_id": "xl-hc-first", "owner_pid": first_owner.pid,
                                    "run_dir": run_dir, "results_root": workdir})
    assert not again.failed and not again.changed and again["holder_pid"] == holder, again

    started = time.monotonic()
    second = run_module("run_lock", {"path": path, "run_id": "xl-hc-second", "owner_pid": second_owner.pid})
    assert time.monotonic() - started < 10
    assert second.failed, second
    for text in ("pid %d" % holder, "run id xl-hc-first", "started 20", "ansible-playbook pid %d" % first_owner.pid):
        assert text in second["msg"], second["msg"]

    check = run_module("run_lock", {"path": path, "run_id": "xl-hc-second", "owner_pid": second_owner.pid},
                       check=True)
    assert check.failed and "xl-hc-first" in check["msg"]
    assert _held_by(path) == [holder]

    refused = run_module("run_lock", {"state": "released", "path": path, "owner_pid": second_owner.pid})
    assert refused.failed and "another run" in refused["msg"], refused
    assert _held_by(path) == [holder]

    first_owner.kill()
    first_owner.wait()
    deadline = time.monotonic() + 5
    while _held_by(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _held_by(path) == [], "the holder outlived its owner"
    taken = run_module("run_lock", {"path": path, "run_id": "xl-hc-second", "owner_pid": second_owner.pid})
    assert not taken.failed and taken.changed, taken
    released = run_module("run_lock", {"state": "released", "path": path, "owner_pid": second_owner.pid})
    assert not released.failed and released.changed, released
    assert _held_by(path) == []


@pytest.mark.parametrize("args,option", [
    ({"path": "/etc/xl-hc.lock"}, "path"),
    ({"path": "/run/xdplab/../../etc/xl-hc.lock"}, "path"),
    ({"run_dir": "/etc"}, "run_dir"),
    ({"run_dir": "/opt/xdplab/results/../../../etc"}, "run_dir"),
    ({"run_id": "a/b"}, "run_id"),
])
def test_lock_paths_are_confined(args, option):
    result = run_module("run_lock", dict({"owner_pid": os.getpid()}, **args))
    assert result.failed and result.get("option") == option, result
    assert not os.path.exists("/etc/xl-hc.lock")


def test_a_second_playbook_is_refused_while_the_first_holds_the_lock(lock_path, workdir):
    path, _owners = lock_path
    extra = {"lock_path": path, "results_root": workdir}
    first_id, second_id = run_id(), run_id()
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), LOCK,
           "-e", json.dumps(dict(extra, run_id=first_id, hold_s=15))]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _held_by(path):
            time.sleep(0.2)
        holder = _held_by(path)
        assert holder, "the first playbook did not take the lock"
        second = run_playbook(LOCK, dict(extra, run_id=second_id))
        assert second.returncode != 0, second.stdout[-3000:]
        assert "another run holds the lock" in second.stdout and first_id in second.stdout, second.stdout[-3000:]
        assert "pid %d" % holder[0] in second.stdout
        assert first.poll() is None, "the first playbook ended while the second was refused"
        # The holder belongs to the first ansible-playbook: it ends when that does.
        first.send_signal(signal.SIGINT)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    deadline = time.monotonic() + 5
    while _held_by(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _held_by(path) == [], "the lock outlived the ansible-playbook that took it"
    third = run_playbook(LOCK, dict(extra, run_id=second_id, release=True))
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr
    assert _held_by(path) == []
    assert os.path.exists(os.path.join(workdir, second_id, ".lock"))


def test_lock_check_mode_takes_nothing(lock_path):
    path, owners = lock_path
    result = run_module("run_lock", {"path": path, "owner_pid": _owner(owners).pid}, check=True)
    assert not result.failed and result.changed, result
    assert not os.path.exists(path) and _held_by(path) == []


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
