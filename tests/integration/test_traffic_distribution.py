# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic distribution on a real veth: flows from xl-loadgen, RX queues from lab_wire.

The wire is made by the lab_wire module (``queues``), the traffic by the traffic
module (``flows``); which RX queue a frame arrived on is read from the DUT end's
own per-queue counters (``ethtool -S``: ``rx_queue_<n>_xdp_packets``), and the
NAPI threads' work from their schedstat. Also here: the progress file the
generator writes while it runs and the counters the traffic module returns for
its own interface (``interface_stats``), checked against the kernel's.

Every name starts with ``xl-d``; every test removes what it made, also on failure.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from pyroute2 import netns

from ansible_collections.xdplab.offload.plugins.module_utils import packets
from lib.modrun import run_module

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, veths and BPF"),
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="two RX queues are fed from two CPUs"),
]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADGEN_DIR = os.path.join(ROOT, "bpf", "loadgen")
DROP_OBJ = os.path.join(ROOT, "bpf", "build", "drop.o")
PASS_SRC = ('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
            'SEC("xdp") int xl_d_pass(struct xdp_md *ctx) { return XDP_PASS; }\n'
            'char LICENSE[] SEC("license") = "GPL";\n')
DROP_SRC = PASS_SRC.replace("xl_d_pass", "xl_d_drop").replace("XDP_PASS", "XDP_DROP")


def _run(argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def loadgen_bin(tmp_path_factory):
    build = tmp_path_factory.mktemp("xl-d-loadgen")
    proc = _run(["make", "-C", LOADGEN_DIR, "BUILD=%s" % build], check=False)
    assert proc.returncode == 0, "building xl-loadgen failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    return str(build / "xl-loadgen")


@pytest.fixture(scope="module")
def objs(tmp_path_factory):
    out = tmp_path_factory.mktemp("xl-d-xdp")
    arch_inc = "/usr/include/%s" % _run(["gcc", "-dumpmachine"]).stdout.strip()
    built = {}
    for name, src in (("pass", PASS_SRC), ("drop", DROP_SRC)):
        if name == "drop" and os.path.exists(DROP_OBJ):
            built[name] = DROP_OBJ
            continue
        (out / (name + ".c")).write_text(src)
        _run(["clang", "-O2", "-target", "bpf", "-I", arch_inc, "-c", str(out / (name + ".c")),
              "-o", str(out / (name + ".o"))])
        built[name] = str(out / (name + ".o"))
    return built


class Wire(object):
    """A lab_wire wire with xl-d names."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.args = dict(lg_netns="xl-dl" + tag, dut_netns="xl-dd" + tag, lg_interface="xl-d0" + tag,
                         dut_interface="xl-d1" + tag, lg_address="198.18.97.1/24", dut_address="198.18.97.2/24")
        self.lg_ns, self.dut_ns = self.args["lg_netns"], self.args["dut_netns"]
        self.lg_if, self.dut_if = self.args["lg_interface"], self.args["dut_interface"]

    def present(self, **over):
        result = run_module("lab_wire", dict(self.args, **over))
        assert not result.failed, result
        for ns in (self.lg_ns, self.dut_ns):
            # no IPv6 chatter in the counters
            _run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        return result

    def absent(self):
        run_module("lab_wire", dict(self.args, state="absent"))
        for ns in (self.lg_ns, self.dut_ns):
            if ns in netns.listnetns():
                netns.remove(ns)

    def attach(self, obj):
        _run(["ip", "-n", self.dut_ns, "link", "set", "dev", self.dut_if, "xdpdrv", "obj", obj, "sec", "xdp"])

    def queue_packets(self):
        """{queue: frames its NAPI took off the ring} of the DUT end."""
        out = _run(["ip", "netns", "exec", self.dut_ns, "ethtool", "-S", self.dut_if]).stdout
        found = {}
        for line in out.splitlines():
            key, _sep, value = line.strip().rpartition(":")
            if key.startswith("rx_queue_") and key.endswith("_xdp_packets"):
                found[int(key.split("_")[2])] = int(value)
        return found

    def traffic(self, loadgen_bin, mac, **args):
        params = dict(interface=self.lg_if, netns=self.lg_ns, binary=loadgen_bin, dst_mac=mac, cpu=[0])
        params.update(args)
        result = run_module("traffic", params, timeout=120)
        assert not result.failed, result
        return result


@pytest.fixture
def wire():
    w = Wire()
    try:
        yield w
    finally:
        w.absent()
    assert w.lg_ns not in netns.listnetns() and w.dut_ns not in netns.listnetns()


def schedstat_ns(pid):
    with open("/proc/%d/schedstat" % pid) as handle:
        return int(handle.read().split()[0])


def _delta(before, after):
    return dict((q, after[q] - before.get(q, 0)) for q in after)


def test_flows_spread_over_two_rx_queues_and_one_flow_stays_on_one(wire, loadgen_bin, objs):
    made = wire.present(queues=2)
    dut = made["dut"]
    assert dut["queues"] == made["lg"]["queues"] == 2
    # one NAPI thread per queue, pinned over both CPUs from the last on
    assert dut["napi_cpus"] == [1, 0] and len(dut["napi_threads"]) == 2
    wire.attach(objs["drop"])
    threads = [t["pid"] for t in dut["napi_threads"]]

    runs = {}
    for flows in (1, 64):
        before, cpu_before = wire.queue_packets(), [schedstat_ns(p) for p in threads]
        result = wire.traffic(loadgen_bin, dut["mac"], duration=1, flows=flows)
        time.sleep(0.1)
        got = _delta(before, wire.queue_packets())
        napi_ns = [schedstat_ns(p) - b for p, b in zip(threads, cpu_before)]
        runs[flows] = (result, got, napi_ns)
        print("flows %d: sent %d, per RX queue %s, NAPI thread CPU ms %s, steering %s %s" % (
            flows, result["packets_sent"], got, [round(n / 1e6, 1) for n in napi_ns], result["steering"],
            result["steered_queues"]))

    one, one_queues = runs[1][:2]
    assert one["flows"] == 1 and one["rx_queues"] == 2
    # one flow: every frame on one queue (flow 0 -> queue 0, sent from CPU 0 itself)
    assert one_queues[0] > 0 and one_queues[1] == 0
    many, many_queues, many_napi = runs[64]
    assert many["flows"] == 64 and many["steering"] == "cpumap"
    assert many["steered_queues"] == [{"queue": 0, "cpu": 0}, {"queue": 1, "cpu": 1}]
    total = sum(many_queues.values())
    # 64 flows, flow f on queue f mod 2: both queues carry a real share (drops on the way may skew it)
    assert total > 0 and all(many_queues[q] > 0.2 * total for q in (0, 1)), many_queues
    # and both NAPI threads did receive work
    assert all(ns > 0 for ns in many_napi), many_napi


def test_queues_change_in_place_and_back_with_a_program_attached(wire, objs):
    wire.present(queues=2)
    wire.attach(objs["drop"])
    down = wire.present(queues=1)
    assert down["changed"] and down["changes"][0].startswith("set the RX and TX queues")
    assert down["dut"]["queues"] == 1 and down["dut"]["napi_cpus"] == [1]
    assert not wire.present(queues=1)["changed"]
    up = wire.present(queues=2)
    assert up["dut"]["queues"] == 2 and up["dut"]["napi_cpus"] == [1, 0]
    assert not wire.present(queues=2)["changed"]


def test_more_queues_than_the_veth_was_made_with_makes_it_again_and_absent_still_cleans_up(wire):
    wire.present()
    grown = wire.present(queues=2)
    created = "create veth %s (%s) <-> %s (%s)" % (wire.lg_if, wire.lg_ns, wire.dut_if, wire.dut_ns)
    assert grown["changes"][:2] == ["delete veth %s (%s), made with fewer than 2 queues" % (wire.lg_if, wire.lg_ns),
                                    created]
    assert grown["dut"]["queues"] == 2
    gone = run_module("lab_wire", dict(wire.args, state="absent"))
    assert not gone.failed and "delete namespace %s" % wire.lg_ns in gone["changes"]
    assert wire.lg_ns not in netns.listnetns() and wire.dut_ns not in netns.listnetns()


CAPTURE = r"""
import json, socket, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
sock.bind((sys.argv[1], 0))
sock.settimeout(0.2)
print("ready", flush=True)
frames, end = [], time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        data, addr = sock.recvfrom(4096)
    except socket.timeout:
        continue
    if addr[2] != socket.PACKET_OUTGOING:
        frames.append(data.hex())
print(json.dumps(frames), flush=True)
"""


@pytest.mark.parametrize("frame", ["udp", "dns_query"])
def test_each_flow_is_a_valid_frame_from_its_own_source_port(wire, loadgen_bin, objs, frame):
    made = wire.present()
    wire.attach(objs["pass"])
    dns = frame == "dns_query"
    capture = subprocess.Popen(["ip", "netns", "exec", wire.dut_ns, sys.executable, "-c", CAPTURE,
                                wire.dut_if, "4"], stdout=subprocess.PIPE, text=True)
    try:
        assert capture.stdout.readline().strip() == "ready"
        result = wire.traffic(loadgen_bin, made["dut"]["mac"], duration=1, rate=800, flows=8, frame=frame,
                              size=96)
        out = capture.communicate(timeout=30)[0]
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
    frames = [bytes.fromhex(f) for f in json.loads(out.strip().splitlines()[-1])]
    first = 40000 if dns else 9
    mac = made["dut"]["mac"]
    if dns:
        expected = [packets.dns_query_frame("xl-query.example", size=96, sport=first + k, dst_mac=mac)
                    for k in range(8)]
    else:
        expected = [packets.udp_frame(size=96, sport=first + k, dst_mac=mac) for k in range(8)]
    print("sent %d, captured %d" % (result["packets_sent"], len(frames)))
    # a paced run on a busy machine may fall behind (late_restarts) and a capture may miss some
    assert result["packets_sent"] > 400 and len(frames) > 0.5 * result["packets_sent"]
    # every frame is exactly the builder's frame for its source port: checksums recomputed right
    ports = [int.from_bytes(f[34:36], "big") for f in frames]
    assert set(ports) == set(range(first, first + 8))
    wrong = [n for n, f in enumerate(frames) if f != expected[ports[n] - first]]
    if wrong:
        bad = wrong[0]
        want = expected[ports[bad] - first]
        raise AssertionError("frame %d differs:\n%s\nexpected\n%s" % (bad, frames[bad].hex(), want.hex()))
    # in turn: the next frame comes from the next port (a missed frame skips one)
    in_turn = sum(1 for a, b in zip(ports, ports[1:]) if b == first + (a - first + 1) % 8)
    assert in_turn > 0.9 * (len(ports) - 1)


def test_progress_lines_appear_while_sending_and_the_file_goes_away(wire, loadgen_bin, objs):
    made = wire.present()
    wire.attach(objs["drop"])
    path = "/run/xdplab/progress/traffic-%s.jsonl" % wire.lg_if
    seen = []

    def watch():
        for attempt in range(60):
            time.sleep(0.1)
            try:
                with open(path) as handle:
                    seen.append(handle.read())
            except OSError:
                continue

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = wire.traffic(loadgen_bin, made["dut"]["mac"], duration=3)
    watcher.join()
    assert result["planned"]["progress_file"] == path
    lines = [json.loads(line) for line in max(seen, key=len).splitlines()]
    print(lines)
    assert len(lines) >= 3
    assert all(sorted(line) == ["duration_s", "elapsed_s", "pps", "sent"] for line in lines)
    assert all(line["duration_s"] == 3.0 for line in lines)
    # about a second apart, counts growing, a rate once a second has passed
    assert [line["elapsed_s"] for line in lines] == sorted(line["elapsed_s"] for line in lines)
    assert lines[2]["elapsed_s"] - lines[1]["elapsed_s"] == pytest.approx(1.0, abs=0.2)
    assert lines[-1]["sent"] > lines[0]["sent"] and lines[-1]["sent"] <= result["packets_sent"]
    assert lines[1]["pps"] > 0
    assert not os.path.exists(path)


def test_no_progress_file_when_turned_off(wire, loadgen_bin, objs):
    made = wire.present()
    wire.attach(objs["drop"])
    result = wire.traffic(loadgen_bin, made["dut"]["mac"], duration=0.5, progress_file="")
    assert "--progress-file" not in result["command"] and result["planned"]["progress_file"] is None


def test_interface_stats_are_the_generator_ends_counters_over_the_run(wire, loadgen_bin, objs):
    made = wire.present()
    wire.attach(objs["drop"])
    result = wire.traffic(loadgen_bin, made["dut"]["mac"], duration=1)
    stats = result["interface_stats"]
    assert stats["mac"] == made["lg"]["mac"]
    sent = result["packets_sent"]
    # every frame the generator handed over was queued to the peer or dropped for want of ring room
    assert stats["stats"]["tx_packets"] + stats["stats"]["tx_dropped"] == sent
    assert stats["driver_stats"]["tx_queue_0_xdp_xmit"] == stats["stats"]["tx_packets"] == result["device_xdp_xmit"]
    assert stats["driver_stats"]["tx_queue_0_xdp_xmit_errors"] == result["device_xdp_xmit_errors"]


def test_window_is_the_steady_stretch_after_the_warmup(wire, loadgen_bin, objs):
    made = wire.present()
    wire.attach(objs["drop"])
    result = wire.traffic(loadgen_bin, made["dut"]["mac"], duration=2)
    window = result["window"]
    print(window)
    assert result["warmup_s"] == 0.5
    # opened at the warm-up's end (the main thread looks every 10 ms), closed when the run was stopped
    assert window["start_s"] == pytest.approx(0.5, abs=0.05)
    assert window["seconds"] == pytest.approx(1.5, abs=0.1)
    assert 0 < window["sent"] < result["packets_sent"]
    assert window["device_xdp_xmit"] + window["device_xdp_xmit_errors"] == pytest.approx(window["sent"], rel=0.01)
    assert window["delivered_pps"] == pytest.approx(window["device_xdp_xmit"] / window["seconds"])
