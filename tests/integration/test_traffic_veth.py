# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""xdplab.offload.traffic and xl-loadgen on a real veth pair between two namespaces.

The generator's end (``xl-g0...`` in ``xl-gl...``) sends into the receiver's end
(``xl-g1...`` in ``xl-gd...``), which runs a native XDP program. What the
generator reports is checked against the kernel's own counters:

* the receiver's ``rx_packets`` counts every frame its NAPI took off the veth
  ring (``xdp_packets``), the XDP program's drops included;
* a frame that does not fit into the ring (256 slots) is dropped by
  ``veth_xdp_xmit`` and counted as ``peer_tq_xdp_xmit_err`` of the receiver's
  queue, which shows up as the receiver's ``rx_dropped``, the sender's
  ``tx_dropped`` and the sender's ``ethtool -S`` ``tx_queue_0_xdp_xmit_errors``.

So with one sending thread ``packets_sent == rx_packets + rx_dropped`` of the
receiver, exactly (tolerance 0). With two sending threads the veth drop counter
is updated outside the ring's lock and can lose increments, so those runs are
paced below the receiver's capacity and compared on ``rx_packets`` alone.

Every name starts with ``xl-g``; every test removes what it made, also on
failure. IPv6 is off in both namespaces, so no stray frames hit the counters.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from pyroute2 import IPRoute, netns

from ansible_collections.xdplab.offload.plugins.module_utils import packets
from lib.modrun import run_module
from lib.netfix import VethPair, unique

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, veths and BPF"),
]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADGEN_DIR = os.path.join(ROOT, "bpf", "loadgen")
DROP_OBJ = os.path.join(ROOT, "bpf", "build", "drop.o")
PREFIX = "xl-g"

XDP_SOURCES = {
    "drop": """
SEC("xdp") int xl_g_drop(struct xdp_md *ctx) { return XDP_DROP; }
""",
    "pass": """
SEC("xdp") int xl_g_pass(struct xdp_md *ctx) { return XDP_PASS; }
""",
    # Every other frame: overwrite what a responder would (the headers and,
    # with -DDNS, the DNS flags: QR and RCODE=NXDOMAIN) and drop it, so the
    # page goes back to the generator's pool dirty; pass the others untouched.
    "scribble": """
__u64 xl_g_count = 0;
SEC("xdp") int xl_g_scribble(struct xdp_md *ctx)
{
    unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 46 > end)
        return XDP_PASS;
    if (!(xl_g_count++ & 1))
        return XDP_PASS;
    __builtin_memset(data, 0xee, 42);
#ifdef DNS
    data[44] |= 0x80;
    data[45] |= 0x03;
#endif
    return XDP_DROP;
}
""",
}


def _run(argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def loadgen_bin(tmp_path_factory):
    """xl-loadgen built from bpf/loadgen into a temporary directory."""
    build = tmp_path_factory.mktemp("xl-loadgen-build")
    proc = _run(["make", "-C", LOADGEN_DIR, "BUILD=%s" % build], check=False)
    assert proc.returncode == 0, "building xl-loadgen failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    return str(build / "xl-loadgen")


@pytest.fixture(scope="module")
def xdp_obj(tmp_path_factory):
    """Compiles (once) and returns the path of a small receiver program by name."""
    out = tmp_path_factory.mktemp("xl-g-xdp")
    arch_inc = "/usr/include/%s" % _run(["gcc", "-dumpmachine"]).stdout.strip()
    built = {}

    def build(name, dns=False):
        if name == "drop" and os.path.exists(DROP_OBJ):
            return DROP_OBJ
        key = name + ("-dns" if dns else "")
        if key not in built:
            src = out / (key + ".c")
            src.write_text("#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n%s\n"
                           "char LICENSE[] SEC(\"license\") = \"GPL\";\n" % XDP_SOURCES[name])
            obj = out / (key + ".o")
            argv = ["clang", "-O2", "-g", "-target", "bpf", "-I", arch_inc, "-c", str(src), "-o", str(obj)]
            if dns:
                argv.insert(1, "-DDNS")
            _run(argv)
            built[key] = str(obj)
        return built[key]
    return build


class Wire(object):
    """Generator namespace/interface -> receiver namespace/interface."""

    def __init__(self):
        tag = unique("")
        self.lg_ns, self.dut_ns = "%sl%s" % (PREFIX, tag), "%sd%s" % (PREFIX, tag)
        self.lg_if, self.dut_if = "%s0%s" % (PREFIX, tag), "%s1%s" % (PREFIX, tag)
        self.pair = VethPair(self.lg_if, self.dut_if, ns_a=self.lg_ns, ns_b=self.dut_ns)

    def create(self):
        for ns in (self.lg_ns, self.dut_ns):
            netns.create(ns)
            for key in ("default", "all"):
                _run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key])
        self.pair.create()
        return self

    def destroy(self):
        self.pair.destroy()

    def attach(self, obj):
        _run(["ip", "-n", self.dut_ns, "link", "set", "dev", self.dut_if, "xdpdrv", "obj", obj, "sec", "xdp"])

    def threaded_napi(self, cpu):
        """Threaded NAPI on the receiver, its kthread pinned to ``cpu``."""
        path = "/sys/class/net/%s/threaded" % self.dut_if
        # `ip netns exec` mounts the namespace's own /sys, so the write lands on this veth.
        _run(["ip", "netns", "exec", self.dut_ns, sys.executable, "-c",
              "open(%r, 'w').write('1')" % path])
        name = "napi/%s-" % self.dut_if
        for attempt in range(50):
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open("/proc/%s/comm" % pid) as handle:
                            comm = handle.read().strip()
                    except OSError:
                        continue
                    if comm.startswith(name[:15]):
                        os.sched_setaffinity(int(pid), {cpu})
                        return int(pid)
            time.sleep(0.1)
        raise AssertionError("no %s* kthread appeared" % name)

    def link(self, side):
        ns, ifname = (self.dut_ns, self.dut_if) if side == "dut" else (self.lg_ns, self.lg_if)
        with IPRoute(netns=ns) as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            stats = ipr.get_links(idx)[0].get_attr("IFLA_STATS64")
        return {k: int(v) for k, v in dict(stats).items() if isinstance(v, int)}

    def ethtool(self, side):
        ns, ifname = (self.dut_ns, self.dut_if) if side == "dut" else (self.lg_ns, self.lg_if)
        out = _run(["ip", "netns", "exec", ns, "ethtool", "-S", ifname]).stdout
        stats = {}
        for line in out.splitlines()[1:]:
            key, sep, value = line.rpartition(":")
            if sep and value.strip().isdigit():
                stats[key.strip()] = int(value)
        return stats

    def counters(self):
        return {"dut": self.link("dut"), "lg": self.link("lg"),
                "dut_drv": self.ethtool("dut"), "lg_drv": self.ethtool("lg")}


@pytest.fixture
def wire():
    w = Wire()
    try:
        w.create()
        yield w
    finally:
        w.destroy()
    assert w.lg_ns not in netns.listnetns() and w.dut_ns not in netns.listnetns()


def delta(before, after):
    return {group: {k: after[group].get(k, 0) - v for k, v in before[group].items()} for group in before}


def traffic(wire, loadgen_bin, **args):
    params = {"interface": wire.lg_if, "netns": wire.lg_ns, "binary": loadgen_bin}
    params.update(args)
    return run_module("traffic", params, timeout=120)


def settle():
    time.sleep(0.1)     # the receiver's NAPI empties its ring


# ---------------------------------------------------------------- counts

@pytest.mark.parametrize("napi", ["shared_cpu", "threaded_napi"])
def test_every_frame_sent_is_received_or_counted_as_a_ring_drop(wire, loadgen_bin, xdp_obj, napi):
    wire.attach(xdp_obj("drop"))
    if napi == "threaded_napi":
        if (os.cpu_count() or 1) < 2:
            pytest.skip("threaded NAPI on its own CPU needs two CPUs")
        wire.threaded_napi(cpu=1)
    before = wire.counters()
    result = traffic(wire, loadgen_bin, duration=2, cpu=0)
    settle()
    d = delta(before, wire.counters())
    assert not result.failed, result
    assert result.changed and result["generator"] == "xl_loadgen"
    sent = result["packets_sent"]
    received, ring_drops = d["dut"]["rx_packets"], d["dut"]["rx_dropped"]
    print("%s: sent %d (%.2f Mpps), received %d, ring drops %d"
          % (napi, sent, result["rate_pps"] / 1e6, received, ring_drops))
    assert sent > 0
    # tolerance 0: one sending thread, every frame accounted for
    assert sent == received + ring_drops
    # the ring drops, seen from both ends of the pair
    assert ring_drops == d["lg"]["tx_dropped"] == d["lg_drv"]["tx_queue_0_xdp_xmit_errors"]
    assert received == d["lg_drv"]["tx_queue_0_xdp_xmit"]
    assert result["device_xdp_xmit"] + result["device_xdp_xmit_errors"] == sent
    # everything that came off the ring went to the XDP program, which dropped it
    assert d["dut_drv"]["rx_queue_0_xdp_drops"] == received
    assert result["duration_s"] == pytest.approx(2.0, rel=0.1)
    assert result["offered_rate_pps"] == result["rate_pps"] == pytest.approx(sent / result["duration_s"])


def test_paced_run_sends_the_planned_frames_at_the_requested_rate(wire, loadgen_bin, xdp_obj):
    """Paced: exactly rate x duration frames, never faster than asked.

    A sender that was off its CPU (other work on a small machine) catches up at
    twice the rate; one that fell more than 200 ms behind restarts its schedule
    and says so in late_restarts, and only then may the count fall short. Not
    pinned, so the scheduler can move it off a busy CPU.
    """
    wire.attach(xdp_obj("drop"))
    before = wire.counters()
    result = traffic(wire, loadgen_bin, duration=2, rate=20000)
    settle()
    d = delta(before, wire.counters())
    assert not result.failed, result
    print("paced: sent %d at %.1f pps in %.3f s, late restarts %d" % (
        result["packets_sent"], result["rate_pps"], result["duration_s"], result["late_restarts"]))
    assert result["planned"]["packets_planned"] == 40000
    assert result["offered_rate_pps"] == 20000
    # never faster than asked (tolerance 1 %: time stamps are per burst)
    assert result["rate_pps"] <= 20000 * 1.01
    if result["late_restarts"] == 0:
        assert result["packets_sent"] == 40000
        # tolerance 10 %: catching up on up to 200 ms of lag stretches the run
        assert result["rate_pps"] >= 20000 * 0.9
    # far below the receiver's capacity: no ring drops, every frame arrives
    assert d["dut"]["rx_dropped"] == 0
    assert d["dut"]["rx_packets"] == result["packets_sent"]


def test_two_threads_split_the_rate_and_every_frame_arrives(wire, loadgen_bin, xdp_obj):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two CPUs")
    wire.attach(xdp_obj("drop"))
    before = wire.counters()
    result = traffic(wire, loadgen_bin, duration=1, rate=20000, threads=2, cpu=[0, 1])
    settle()
    d = delta(before, wire.counters())
    assert not result.failed, result
    threads = result["threads"]
    assert [t["cpu"] for t in threads] == [0, 1]
    assert all(t["offered_rate_pps"] == 10000 and t["packets_sent"] > 0 for t in threads)
    assert sum(t["packets_sent"] for t in threads) == result["packets_sent"]
    assert d["dut"]["rx_packets"] == result["packets_sent"]


# ---------------------------------------------------------------- frames

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
def test_frames_match_the_reference_builder_even_after_a_receiver_scribbled_on_them(
        wire, loadgen_bin, xdp_obj, frame):
    dns = frame == "dns_query"
    wire.attach(xdp_obj("scribble", dns=dns))
    capture = subprocess.Popen(["ip", "netns", "exec", wire.dut_ns, sys.executable, "-c", CAPTURE,
                                wire.dut_if, "4"], stdout=subprocess.PIPE, text=True)
    try:
        assert capture.stdout.readline().strip() == "ready"
        size = 96 if dns else 128
        result = traffic(wire, loadgen_bin, duration=1, rate=2000, size=size, frame=frame, cpu=0)
        out = capture.communicate(timeout=30)[0]
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
    assert not result.failed, result
    frames = [bytes.fromhex(f) for f in json.loads(out.strip().splitlines()[-1])]
    if dns:
        expected = packets.dns_query_frame("xl-query.example", size=size, sport=40000)
    else:
        expected = packets.udp_frame(size=size)
    # the scribbler passes every other frame; the dropped half went back dirty
    assert result["packets_sent"] == 2000
    assert len(frames) == pytest.approx(1000, abs=5), len(frames)
    wrong = [f.hex() for f in frames if f != expected]
    assert not wrong, ("%d of %d frames differ from\n%s\nfirst:\n%s"
                       % (len(wrong), len(frames), expected.hex(), wrong[0]))


# ---------------------------------------------------------------- stopping and errors

def test_sigint_stops_the_generator_early_with_exact_counts(wire, loadgen_bin, xdp_obj):
    wire.attach(xdp_obj("drop"))
    before = wire.counters()
    proc = subprocess.Popen([loadgen_bin, "--netns", wire.lg_ns, "--interface", wire.lg_if, "--duration", "60",
                             "--cpu", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        started = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        stopped_after = time.time() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    settle()
    d = delta(before, wire.counters())
    assert proc.returncode == 0, err
    data = json.loads(out)
    assert data["interrupted"] is True and data["signal"] == "SIGINT"
    assert stopped_after < 5
    assert data["packets_sent"] > 0
    assert data["packets_sent"] == d["dut"]["rx_packets"] + d["dut"]["rx_dropped"]


@pytest.mark.parametrize("args,text", [
    (["--size", "20"], "--size 20 is out of range"),
    (["--size", "1519"], "60..1518"),
    (["--duration", "0"], "--duration"),
    (["--rate", "-5"], "negative"),
    (["--cpu", "99"], "--cpu"),
    (["--interface", "xl-gnope"], "interface 'xl-gnope' not found"),
    (["--netns", "xl-gnope"], "network namespace 'xl-gnope' not found"),
    (["--dns", "--size", "60"], "too small for a DNS query"),
])
def test_xl_loadgen_refuses_bad_arguments_with_a_clear_message(loadgen_bin, args, text):
    argv = [loadgen_bin] + (["--interface", "lo"] if "--interface" not in args else []) + args
    proc = _run(argv, check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert text in proc.stderr, proc.stderr
    assert proc.stderr.startswith("xl-loadgen: error: ")


def test_module_bad_inputs_fail_cleanly(wire, loadgen_bin):
    for args, text in (({"interface": "xl-gnope"}, "interface xl-gnope in namespace %s does not exist" % wire.lg_ns),
                       ({"netns": "xl-gnope"}, "network namespace xl-gnope does not exist"),
                       ({"rate": -1}, "negative"),
                       ({"size": 59}, "60..1518"),
                       ({"duration": 0}, "duration"),
                       ({"duration": 100000}, "duration"),
                       ({"mode": "latency"}, "throughput"),
                       ({"cpu": [64]}, "does not exist")):
        result = traffic(wire, loadgen_bin, **args)
        assert result.failed and text in result["msg"], (args, result)


def test_module_refuses_an_interface_that_is_down(wire, loadgen_bin):
    with IPRoute(netns=wire.lg_ns) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=wire.lg_if)[0], state="down")
    result = traffic(wire, loadgen_bin, duration=1)
    assert result.failed and "is down" in result["msg"], result
    assert result["rc"] != 0 and "command" in result


def test_module_warns_when_the_peer_takes_no_redirected_frames(wire, loadgen_bin):
    """No XDP program (and no GRO) on the receiver: veth drops redirected frames without counting them."""
    before = wire.counters()
    result = traffic(wire, loadgen_bin, duration=0.5)
    settle()
    d = delta(before, wire.counters())
    assert not result.failed, result
    assert result["packets_sent"] > 0 and d["dut"]["rx_packets"] == 0
    assert result["device_xdp_xmit"] == 0 and result["device_xdp_xmit_errors"] == 0
    # ansible-core 2.19 returns warnings as structured summaries: look at their text
    warnings = json.dumps(result.get("warnings", []))
    assert "took none of the" in warnings and "XDP program" in warnings, result


def test_check_mode_sends_nothing(wire, loadgen_bin, xdp_obj):
    wire.attach(xdp_obj("drop"))
    before = wire.counters()
    result = run_module("traffic", {"interface": wire.lg_if, "netns": wire.lg_ns, "binary": loadgen_bin,
                                    "rate": 1000, "duration": 1}, check=True)
    settle()
    d = delta(before, wire.counters())
    assert not result.failed and result.changed and result["packets_sent"] == 0
    assert result["planned"]["packets_planned"] == 1000
    assert d["dut"]["rx_packets"] == 0


def test_nothing_named_xl_g_is_left_behind(loadgen_bin):
    """Runs last in this file: the fixtures above removed all they made."""
    # exactly the names Wire() makes (the guests' NICs are xl-g<n>-<m>: not ours)
    leftovers = [ns for ns in netns.listnetns() if re.match(r"^xl-g[ld][0-9a-f]{6}$", ns)]
    with IPRoute() as ipr:
        links = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    leftovers += [name for name in links if re.match(r"^xl-g[01][0-9a-f]{6}$", name or "")]
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as handle:
                    if loadgen_bin.encode() in handle.read():
                        procs.append(pid)
            except OSError:
                pass
    assert not leftovers and not procs, (leftovers, procs)
