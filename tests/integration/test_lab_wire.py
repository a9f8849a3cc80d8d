# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""xdplab.offload.lab_wire on real namespaces and veths, checked with independent tools.

Every name starts with ``xl-w``; every test removes what it made, also on failure.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import uuid

import pytest
from pyroute2 import netns

from lib.modrun import recap_changed, run_module, run_playbook
from lib.netfix import VethPair

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and veths"),
]

PLAYBOOK = "tests/integration/playbooks/lab_wire.yml"
SUBNET = "198.18.200"

# ICMP echo from inside a namespace with a raw socket (iputils-ping is not
# part of the lab's packages). Prints the number of replies; exit 0 if all came.
PING = r"""
import os, select, socket, struct, sys
def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF
dst, count = sys.argv[1], int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident, got, payload = os.getpid() & 0xFFFF, 0, b"xdplab-wire" * 4
for seq in range(count):
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    sock.sendto(struct.pack("!BBHHH", 8, 0, csum(head + payload), ident, seq) + payload, (dst, 0))
    while select.select([sock], [], [], 2.0)[0]:
        data, addr = sock.recvfrom(4096)
        ihl = (data[0] & 0x0F) * 4
        kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if kind == 0 and rid == ident and rseq == seq and addr[0] == dst:
            got += 1
            break
print(got)
sys.exit(0 if got == count else 1)
"""


def _remove_netns(*names):
    for name in names:
        if name in netns.listnetns():
            netns.remove(name)


@pytest.fixture
def names():
    """Unique xl-w names for one wire; whatever exists afterwards is removed."""
    tag = uuid.uuid4().hex[:6]
    spec = dict(lg_netns="xl-wlg-" + tag, dut_netns="xl-wdut-" + tag,
                lg_interface="xl-wl" + tag, dut_interface="xl-wd" + tag,
                lg_address=SUBNET + ".1/24", dut_address=SUBNET + ".2/24")
    yield spec
    run_module("lab_wire", dict(spec, state="absent"))
    _remove_netns(spec["lg_netns"], spec["dut_netns"])


def ipj(netns_name, *args):
    out = subprocess.run(["ip", "-j", "-n", netns_name] + list(args), capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")


def in_netns(netns_name, *argv):
    return subprocess.run(["ip", "netns", "exec", netns_name] + list(argv), capture_output=True, text=True,
                          check=False)


def ping(netns_name, dst, count=3):
    return in_netns(netns_name, sys.executable, "-c", PING, dst, str(count))


def ethtool_features(netns_name, dev):
    out = in_netns(netns_name, "ethtool", "-k", dev)
    assert out.returncode == 0, out.stderr
    feats = {}
    for line in out.stdout.splitlines()[1:]:
        key, _sep, value = line.strip().partition(": ")
        feats[key] = value.split()[0] if value else ""
    return feats


def napi_kthreads(dev):
    """pid -> comm of kernel threads named napi/<dev>-<id> (comm may be cut at 15 characters)."""
    prefix = ("napi/%s-" % dev)[:15]
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/comm" % entry) as handle:
                    comm = handle.read().strip()
            except OSError:
                continue
            if comm.startswith(prefix):
                found[int(entry)] = comm
    return found


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    return None


def schedstat_ns(pid):
    with open("/proc/%d/schedstat" % pid) as handle:
        return int(handle.read().split()[0])


def mounts():
    """(mount point, fs type) of our mount namespace, without the netns bind mounts."""
    out = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if not fields[4].startswith("/run/netns/"):
                out.append((fields[4], fstype))
    return sorted(out)


def present(spec, **extra):
    result = run_module("lab_wire", dict(spec, **extra))
    assert not result.failed, result.get("msg")
    return result


# ------------------------------------------------------------------ present

def test_present_builds_the_wire_that_independent_tools_see(names):
    result = present(names)
    assert result.changed
    for side, other in (("lg", "dut"), ("dut", "lg")):
        ns, dev = names["%s_netns" % side], names["%s_interface" % side]
        (link,) = ipj(ns, "-d", "link", "show", "dev", dev)
        assert link["ifindex"] == result[side]["ifindex"]
        assert link["address"] == result[side]["mac"]
        assert link["linkinfo"]["info_kind"] == "veth"
        assert "UP" in link["flags"] and link["mtu"] == 1500
        assert link["ifalias"].startswith("xdplab.offload.lab_wire ")
        mac_first = int(link["address"].split(":")[0], 16)
        assert mac_first & 0x03 == 0x02  # unicast, locally administered
        (addr,) = ipj(ns, "-4", "addr", "show", "dev", dev)
        assert ["%s/%d" % (a["local"], a["prefixlen"]) for a in addr["addr_info"]] == [names["%s_address" % side]]
        neighbours = ipj(ns, "neigh", "show", "dev", dev)
        assert [(n["dst"], n["lladdr"], n["state"]) for n in neighbours] == [
            (names["%s_address" % other].split("/")[0], result[other]["mac"], ["PERMANENT"])]
        feats = ethtool_features(ns, dev)
        assert feats["tx-checksumming"] == "off"
        assert result[side]["tx_checksum_offload"] is False
    assert ethtool_features(names["dut_netns"], names["dut_interface"])["generic-receive-offload"] == "on"
    # `ip netns exec` mounts the namespace's own sysfs: an independent view of the flag.
    threaded = in_netns(names["dut_netns"], "cat", "/sys/class/net/%s/threaded" % names["dut_interface"])
    assert threaded.stdout.strip() == "1"


def test_dut_napi_thread_is_pinned_to_the_last_cpu_and_does_the_receive_work(names):
    result = present(names)
    last_cpu = max(os.sched_getaffinity(0))
    threads = result["dut"]["napi_threads"]
    assert threads and result["dut"]["napi_cpu"] == last_cpu
    kthreads = napi_kthreads(names["dut_interface"])
    assert sorted(kthreads) == sorted(t["pid"] for t in threads)
    for pid in kthreads:
        assert proc_status(pid, "Cpus_allowed_list") == str(last_cpu)
    before = {pid: schedstat_ns(pid) for pid in kthreads}
    assert ping(names["lg_netns"], SUBNET + ".2", count=20).returncode == 0
    after = {pid: schedstat_ns(pid) for pid in kthreads}
    # Frames sent by the load generator end are received by the DUT's NAPI thread.
    assert any(after[pid] > before[pid] for pid in kthreads), (before, after)


def test_ping_crosses_the_wire_both_ways(names):
    present(names)
    forward = ping(names["lg_netns"], SUBNET + ".2")
    assert forward.returncode == 0, forward.stdout + forward.stderr
    back = ping(names["dut_netns"], SUBNET + ".1")
    assert back.returncode == 0, back.stdout + back.stderr


def test_second_run_reports_no_change(names):
    first = present(names)
    second = present(names)
    assert first.changed and not second.changed
    assert second["changes"] == []
    assert second["lg"]["ifindex"] == first["lg"]["ifindex"]
    assert second["dut"]["mac"] == first["dut"]["mac"]


def test_changed_parameters_converge_and_keep_the_wire_working(names):
    present(names)
    cpu = min(os.sched_getaffinity(0))
    changed = present(names, mtu=3000, lg_address=SUBNET + ".5/24", napi_cpu=cpu)
    assert changed.changed
    assert ipj(names["lg_netns"], "link", "show", "dev", names["lg_interface"])[0]["mtu"] == 3000
    (addr,) = ipj(names["lg_netns"], "-4", "addr", "show", "dev", names["lg_interface"])
    assert [a["local"] for a in addr["addr_info"]] == [SUBNET + ".5"]
    # The address change must not lose the static neighbours (removing the last
    # address flushes the neighbour table).
    neigh = ipj(names["lg_netns"], "neigh", "show", "dev", names["lg_interface"])
    assert [n["dst"] for n in neigh if "PERMANENT" in n["state"]] == [SUBNET + ".2"]
    for pid in napi_kthreads(names["dut_interface"]):
        assert proc_status(pid, "Cpus_allowed_list") == str(cpu)
    assert ping(names["lg_netns"], SUBNET + ".2").returncode == 0
    again = present(names, mtu=3000, lg_address=SUBNET + ".5/24", napi_cpu=cpu)
    assert not again.changed, again["changes"]


def test_tx_checksum_offload_and_threaded_napi_can_be_switched_back(names):
    present(names)
    result = present(names, tx_checksum_offload=True, threaded_napi=False, dut_gro=False)
    assert result.changed
    assert ethtool_features(names["lg_netns"], names["lg_interface"])["tx-checksumming"] == "on"
    assert ethtool_features(names["dut_netns"], names["dut_interface"])["generic-receive-offload"] == "off"
    assert napi_kthreads(names["dut_interface"]) == {}
    assert not present(names, tx_checksum_offload=True, threaded_napi=False, dut_gro=False).changed


def test_diff_shows_both_ends_before_and_after(names):
    result = run_module("lab_wire", names, diff=True)
    diff = result["diff"]
    assert diff["before"]["lg"]["exists"] is False
    assert diff["after"]["dut"]["addresses"] == [names["dut_address"]]
    assert diff["after"]["dut"]["threaded_napi"] is True


def test_sysfs_of_the_namespace_does_not_leak_into_our_mounts(names):
    before = mounts()
    present(names)
    assert mounts() == before


# ------------------------------------------------------------------ check mode

def test_check_mode_creates_nothing(names):
    result = run_module("lab_wire", names, check=True, diff=True)
    assert result.changed and not result.failed
    assert "create namespace %s" % names["lg_netns"] in result["changes"]
    assert names["lg_netns"] not in netns.listnetns()
    assert names["dut_netns"] not in netns.listnetns()
    root_links = [link["ifname"] for link in json.loads(subprocess.run(
        ["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)]
    assert names["lg_interface"] not in root_links and names["dut_interface"] not in root_links


def test_check_mode_on_an_existing_wire_changes_nothing(names):
    present(names)
    result = run_module("lab_wire", dict(names, mtu=2000), check=True)
    assert result.changed
    assert result["changes"] == ["set MTU of %s to 2000" % names["lg_interface"],
                                 "set MTU of %s to 2000" % names["dut_interface"]]
    assert ipj(names["lg_netns"], "link", "show", "dev", names["lg_interface"])[0]["mtu"] == 1500


# ------------------------------------------------------------------ absent

def test_absent_removes_the_veth_and_both_namespaces(names):
    present(names)
    gone = run_module("lab_wire", dict(names, state="absent"))
    assert gone.changed and not gone.failed
    assert names["lg_netns"] not in netns.listnetns()
    assert names["dut_netns"] not in netns.listnetns()
    again = run_module("lab_wire", dict(names, state="absent"))
    assert not again.changed and not again.failed


def test_absent_in_check_mode_removes_nothing(names):
    present(names)
    result = run_module("lab_wire", dict(names, state="absent"), check=True)
    assert result.changed
    assert names["lg_netns"] in netns.listnetns() and names["dut_netns"] in netns.listnetns()


def test_absent_keeps_a_namespace_it_did_not_create(names):
    netns.create(names["dut_netns"])
    present(names)
    run_module("lab_wire", dict(names, state="absent"))
    assert names["lg_netns"] not in netns.listnetns()
    assert names["dut_netns"] in netns.listnetns()
    assert [link["ifname"] for link in ipj(names["dut_netns"], "link", "show")] == ["lo"]


# ------------------------------------------------------------------ bad input

def test_namespace_with_a_foreign_interface_is_refused_and_nothing_is_left(names):
    tag = uuid.uuid4().hex[:6]
    foreign = VethPair("xl-wfa" + tag, "xl-wfb" + tag, ns_a=names["lg_netns"], ns_b=names["lg_netns"])
    foreign.create()
    try:
        result = run_module("lab_wire", names)
        assert result.failed
        assert "Namespace %s already holds interfaces lab_wire did not make" % names["lg_netns"] in result["msg"]
        assert "xl-wfa" + tag in result["msg"]
        assert names["dut_netns"] not in netns.listnetns()
        links = sorted(link["ifname"] for link in ipj(names["lg_netns"], "link", "show"))
        assert links == sorted(["lo", "xl-wfa" + tag, "xl-wfb" + tag])
    finally:
        foreign.destroy()


def test_interface_name_taken_by_a_foreign_interface_is_refused(names):
    foreign = VethPair(names["lg_interface"], "xl-wfx" + uuid.uuid4().hex[:6],
                       ns_a=names["lg_netns"], ns_b=names["lg_netns"])
    foreign.create()
    try:
        result = run_module("lab_wire", names)
        assert result.failed
        assert "exists and was not made by lab_wire" in result["msg"]
        gone = run_module("lab_wire", dict(names, state="absent"))
        assert not gone.changed and gone.get("warnings")
        assert names["lg_interface"] in [link["ifname"] for link in ipj(names["lg_netns"], "link", "show")]
    finally:
        foreign.destroy()


@pytest.mark.parametrize("bad,match", [
    (dict(lg_address="10.0.0.1/24"), "outside 198.18.0.0/15"),
    (dict(dut_address="192.168.0.2/24"), "outside 198.18.0.0/15"),
    (dict(dut_address="198.18.201.2/24"), "different subnets"),
    (dict(lg_interface="xl-wtoolongname0"), "at most 15"),
    (dict(napi_cpu=4096), "napi_cpu 4096"),
    (dict(dut_gro=False), "dut_gro: true"),
])
def test_bad_input_fails_clearly_and_creates_nothing(names, bad, match):
    result = run_module("lab_wire", dict(names, **bad))
    assert result.failed and match in result["msg"], result.get("msg")
    assert names["lg_netns"] not in netns.listnetns()
    assert names["dut_netns"] not in netns.listnetns()


def test_a_second_wire_with_other_names_cannot_take_over_an_end(names):
    present(names)
    other_dut = "xl-wdx-" + uuid.uuid4().hex[:6]
    try:
        result = run_module("lab_wire", dict(names, dut_netns=other_dut))
        assert result.failed and "its peer is not" in result["msg"]
        assert other_dut not in netns.listnetns()
    finally:
        _remove_netns(other_dut)


# ------------------------------------------------------------------ role

@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/opt/xdplab/venv/bin/python"),
                    reason="the module venv of the emulated inventory is missing; run `make setup` first")
def test_role_through_ansible_playbook_is_idempotent_and_cleans_up(names):
    role_vars = {"lab_wire_%s" % key: value for key, value in names.items()}
    first = run_playbook(PLAYBOOK, extra_vars=role_vars)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert recap_changed(first.stdout) >= 1
    assert names["lg_netns"] in netns.listnetns()
    assert ping(names["lg_netns"], SUBNET + ".2").returncode == 0
    second = run_playbook(PLAYBOOK, extra_vars=role_vars)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert recap_changed(second.stdout) == 0, second.stdout[-3000:]
    gone = run_playbook(PLAYBOOK, extra_vars=dict(role_vars, lab_wire_state="absent"))
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-3000:]
    assert recap_changed(gone.stdout) == 1
    assert names["lg_netns"] not in netns.listnetns()
    assert names["dut_netns"] not in netns.listnetns()
