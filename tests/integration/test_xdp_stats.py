"""xdp_stats on a real veth pair: exact counts of frames sent across, reset, rates, errors.

The truth the counters are checked against is independent of the program:
the test itself sends a known number of frames of a known size from the peer
end with an AF_PACKET socket. The frames come from module_utils/packets.py;
the last tests show the kernel's own IPv4/UDP/TCP stack accepts them (and
rejects a corrupted copy), which verifies their checksums independently.
"""
import ctypes
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
from pyroute2 import IPRoute

from ansible_collections.xdplab.offload.plugins.module_utils import packets
from lib.modrun import ROOT, run_module
from lib.netfix import VethPair, unique

pytestmark = [pytest.mark.root]

BPF_DIR = os.path.join(ROOT, "bpf")
PIN_ROOT = "/sys/fs/bpf/xdplab"
CLONE_NEWNET = 0x40000000
NAMES = ("seen", "dropped", "tx", "passed", "redirected")


@pytest.fixture(scope="module")
def build_dir():
    path = tempfile.mkdtemp(prefix="xl-build-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def quiet(ifname):
    """No IPv6 autoconfiguration, router solicitations or MLD from the sending end."""
    with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % ifname, "w") as handle:
        handle.write("1\n")


@pytest.fixture
def wire():
    pair = VethPair(unique("xl-sa"), unique("xl-sb"), ns_b=unique("xl-sns"))
    try:
        pair.create()
        quiet(pair.name_a)
        yield pair
    finally:
        shutil.rmtree(os.path.join(PIN_ROOT, pair.ns_b), ignore_errors=True)
        pair.destroy()
    assert not os.path.exists("/var/run/netns/%s" % pair.ns_b)


def attach(pair, build_dir, program="drop", mode="driver", defines=None):
    res = run_module("xdp_program", dict(interface=pair.name_b, netns=pair.ns_b, program=program,
                                         defines=defines or {}, mode=mode, bpf_dir=BPF_DIR, build_dir=build_dir))
    assert not res.failed, res
    return res


def stats(pair, check=False, **kw):
    return run_module("xdp_stats", dict(interface=pair.name_b, netns=pair.ns_b, **kw), check=check)


def send(ifname, frame, count):
    """Send ``count`` copies of ``frame`` out of ``ifname`` (root namespace); return how many went."""
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))
        for _unused in range(count):
            sent += sock.send(frame) == len(frame)
    return sent


def veth_drops(pair):
    """Peer drops of the sending veth end (frames that never reached the XDP program)."""
    out = subprocess.run(["ethtool", "-S", pair.name_a], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if line.strip().startswith("peer_tx_drops") or line.strip().startswith("tx_drops"):
            return line.strip()
    return out


def zeroed(pair):
    res = stats(pair, reset=True)
    assert not res.failed, res
    after = stats(pair)
    assert all(after["counters"][n] == {"packets": 0, "bytes": 0} for n in NAMES), after["counters"]
    return after


@pytest.mark.parametrize("mode", ["driver", "generic"])
def test_counts_exactly_the_frames_sent(wire, build_dir, mode):
    prog = attach(wire, build_dir, mode=mode)
    zeroed(wire)
    size, count = 100, 1000
    assert send(wire.name_a, packets.udp_frame(size), count) == count
    res = stats(wire)
    assert not res.failed, res
    assert not res.changed
    c = res["counters"]
    assert c["seen"] == {"packets": count, "bytes": count * size}, veth_drops(wire)
    assert c["dropped"] == {"packets": count, "bytes": count * size}
    for name in ("tx", "passed", "redirected"):
        assert c[name] == {"packets": 0, "bytes": 0}
    assert len(res["per_cpu"]) == res["ncpus"] >= 1
    for name in NAMES:
        for field in ("packets", "bytes"):
            assert sum(cpu[name][field] for cpu in res["per_cpu"]) == c[name][field]
    assert res["prog"]["id"] == prog["prog_id"]
    assert res["prog"]["tag"] == prog["tag"]
    assert res["prog"]["name"] == "xl_drop"
    assert res["map_path"] == os.path.join(PIN_ROOT, wire.ns_b, wire.name_b, "xl_stats")
    assert "rates" not in res and res["elapsed_s"] == 0.0


def test_pin_path_and_map_path_read_the_same_map(wire, build_dir):
    prog = attach(wire, build_dir)
    zeroed(wire)
    assert send(wire.name_a, packets.udp_frame(60), 7) == 7
    by_pin = run_module("xdp_stats", dict(pin_path=prog["pin_path"]))
    by_map = run_module("xdp_stats", dict(map_path=prog["maps"]["xl_stats"]))
    for res in (by_pin, by_map):
        assert not res.failed, res
        assert res["counters"]["seen"] == {"packets": 7, "bytes": 420}
        assert res["prog"]["id"] == prog["prog_id"]


def test_reset_zeroes_is_idempotent_and_check_mode_only_reports(wire, build_dir):
    attach(wire, build_dir)
    zeroed(wire)
    assert send(wire.name_a, packets.udp_frame(60), 10) == 10

    dry = stats(wire, check=True, reset=True)
    assert not dry.failed, dry
    assert dry.changed
    assert stats(wire)["counters"]["seen"]["packets"] == 10, "check mode must not reset"

    real = stats(wire, reset=True)
    assert real.changed
    assert real["counters"]["seen"] == {"packets": 10, "bytes": 600}, "returns the values read before the reset"
    after = stats(wire)
    assert all(after["counters"][n] == {"packets": 0, "bytes": 0} for n in NAMES)
    assert all(cpu[n]["packets"] == 0 for cpu in after["per_cpu"] for n in NAMES)

    again = stats(wire, reset=True)
    assert not again.failed and not again.changed
    again_dry = stats(wire, check=True, reset=True)
    assert not again_dry.changed

    # counting goes on after a reset
    assert send(wire.name_a, packets.udp_frame(60), 3) == 3
    assert stats(wire)["counters"]["dropped"] == {"packets": 3, "bytes": 180}


def test_interval_without_traffic_gives_zero_rates(wire, build_dir):
    attach(wire, build_dir)
    res = stats(wire, interval=0.3)
    assert not res.failed, res
    assert res["elapsed_s"] >= 0.3
    for name in NAMES:
        assert res["rates"][name] == {"pps": 0.0, "bytes_per_s": 0.0}
    assert all(v == 0.0 for cpu in res["rates"]["per_cpu"] for v in cpu.values())


def test_interval_rates_are_consistent_with_the_traffic_sent(wire, build_dir):
    attach(wire, build_dir)
    size = 128
    frame = packets.udp_frame(size)
    stop = threading.Event()
    sent = [0]

    def sender():
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
            sock.bind((wire.name_a, 0))
            while not stop.is_set():
                sock.send(frame)
                sent[0] += 1

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        time.sleep(0.2)
        res = stats(wire, interval=1.0)
    finally:
        stop.set()
        thread.join()
    assert not res.failed, res
    rates, elapsed = res["rates"], res["elapsed_s"]
    print("sender: %d frames; xdp_stats over %.3f s: %.0f pps seen" % (sent[0], elapsed, rates["seen"]["pps"]))
    assert elapsed >= 1.0
    assert rates["seen"]["pps"] > 0
    # the counters are read one key (and one CPU) at a time while packets keep arriving, so a
    # few packets may land between two reads: allow that much, nothing more
    slack = 0.001 * rates["seen"]["pps"] + 10
    assert abs(rates["seen"]["pps"] - rates["dropped"]["pps"]) <= slack
    # every frame has the same size: bytes/s is size times packets/s
    assert abs(rates["seen"]["bytes_per_s"] - size * rates["seen"]["pps"]) <= size * slack
    assert abs(sum(cpu["seen"] for cpu in rates["per_cpu"]) - rates["seen"]["pps"]) < 0.01 * len(rates["per_cpu"])
    # the window cannot have seen more frames than the sender sent in all
    assert rates["seen"]["pps"] * elapsed <= sent[0] + 1
    assert rates["passed"]["pps"] == rates["tx"]["pps"] == 0.0


def test_no_pin_says_to_attach_with_xdp_program(wire):
    res = stats(wire)
    assert res.failed
    assert "attach a program with xdplab.offload.xdp_program first" in res["msg"]
    assert os.path.join(PIN_ROOT, wire.ns_b, wire.name_b, "xl_stats") in res["msg"]
    assert wire.name_b in res["msg"] and wire.ns_b in res["msg"]
    bad = run_module("xdp_stats", dict(map_path="/sys/fs/bpf/xl-none-%s/xl_stats" % uuid.uuid4().hex[:6]))
    assert bad.failed and "no counters map at" in bad["msg"]


def test_a_program_pin_is_not_a_counters_map(wire, build_dir):
    prog = attach(wire, build_dir)
    res = run_module("xdp_stats", dict(map_path=os.path.join(prog["pin_path"], "prog")))
    assert res.failed
    assert "is not a BPF map" in res["msg"]


@pytest.fixture
def pin_dir():
    path = "/sys/fs/bpf/xl-stest-%s" % uuid.uuid4().hex[:8]
    os.mkdir(path, 0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("value,entries,words", [
    (8, 5, "value size 8 instead of 16"),
    (16, 3, "3 entries instead of at least 5"),
])
def test_a_map_of_unexpected_shape_is_refused(pin_dir, value, entries, words):
    path = os.path.join(pin_dir, "xl_stats")
    subprocess.run(["bpftool", "map", "create", path, "type", "percpu_array", "key", "4", "value", str(value),
                    "entries", str(entries), "name", "xl_stats"], check=True)
    res = run_module("xdp_stats", dict(map_path=path))
    assert res.failed
    assert words in res["msg"] and path in res["msg"]
    assert res["map_info"]["value_size"] == value
    res = run_module("xdp_stats", dict(pin_path=pin_dir))
    assert res.failed and words in res["msg"]


def test_bad_interval_is_refused(wire, build_dir):
    attach(wire, build_dir)
    res = stats(wire, interval=0)
    assert res.failed and "interval" in res["msg"]


# ------------------------------------------------ the frames, checked by the kernel

def _in_netns(ns, func):
    """Run ``func()`` in a forked child inside netns ``ns``; return its JSON-able result."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(rfd)
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open("/var/run/netns/%s" % ns, os.O_RDONLY)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            out = json.dumps({"ok": func()})
        except BaseException as exc:  # report everything to the parent
            out = json.dumps({"error": repr(exc)})
            code = 1
        os.write(wfd, out.encode())
        os.close(wfd)
        os._exit(code)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks).decode())
    if "error" in result:
        raise AssertionError("in netns %s: %s" % (ns, result["error"]))
    return result["ok"]


def snmp(proto):
    with open("/proc/net/snmp") as handle:
        lines = [line.split() for line in handle if line.startswith(proto + ":")]
    return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))


@pytest.fixture
def stack(wire):
    """The peer end as an ordinary host: 198.18.0.2/24, the frames' destination MAC, no RX csum offload."""
    with IPRoute(netns=wire.ns_b) as ipr:
        idx = ipr.link_lookup(ifname=wire.name_b)[0]
        ipr.link("set", index=idx, address=packets.DST_MAC)
        ipr.addr("add", index=idx, address=packets.DST_IP, prefixlen=24)
    subprocess.run(["ip", "netns", "exec", wire.ns_b, "ethtool", "-K", wire.name_b, "rx", "off"],
                   check=True, capture_output=True)
    return wire


def corrupt(frame, offset):
    return frame[:offset] + bytes([frame[offset] ^ 0x5a]) + frame[offset + 1:]


@pytest.mark.parametrize("kind", ["udp", "dns_query"])
def test_kernel_stack_accepts_the_built_udp_frames(stack, kind):
    frame = packets.build(kind, 120 if kind == "udp" else None)[1]
    port = 9 if kind == "udp" else 53
    payload = frame[42:] if kind == "udp" else frame[42:14 + int.from_bytes(frame[16:18], "big")]
    ready_r, ready_w = os.pipe()

    def receive():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((packets.DST_IP, port))
        sock.settimeout(2.0)
        os.write(ready_w, b"1")
        got = []
        try:
            while True:
                data, addr = sock.recvfrom(4096)
                got.append([data.hex(), addr[0], addr[1]])
        except socket.timeout:
            pass
        return {"got": got, "udp": snmp("Udp"), "ip": snmp("Ip")}

    result = {}
    receiver = threading.Thread(target=lambda: result.update(r=_in_netns(stack.ns_b, receive)))
    receiver.start()
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    os.close(ready_w)
    # the good frame, then copies with a broken UDP checksum byte and a broken IPv4 header checksum byte
    send(stack.name_a, frame, 1)
    send(stack.name_a, corrupt(frame, 40), 1)
    send(stack.name_a, corrupt(frame, 24), 1)
    receiver.join()
    got, udp = result["r"]["got"], result["r"]["udp"]
    assert got == [[payload.hex(), packets.SRC_IP, int.from_bytes(frame[34:36], "big")]]
    assert udp["InCsumErrors"] == 1, udp
    assert result["r"]["ip"]["InHdrErrors"] == 1, result["r"]["ip"]


def test_kernel_stack_accepts_the_built_tcp_syn(stack):
    """A SYN to a closed port is answered with a RST only when its checksum holds."""
    frame = packets.tcp_syn_frame()

    def count():
        return snmp("Tcp")

    before = _in_netns(stack.ns_b, count)
    send(stack.name_a, frame, 1)
    time.sleep(0.1)
    middle = _in_netns(stack.ns_b, count)
    send(stack.name_a, corrupt(frame, 50), 1)  # TCP checksum, high byte
    time.sleep(0.1)
    after = _in_netns(stack.ns_b, count)
    assert middle["OutRsts"] - before["OutRsts"] == 1, (before, middle)
    assert middle["InCsumErrors"] == before["InCsumErrors"]
    assert after["InCsumErrors"] - middle["InCsumErrors"] == 1, (middle, after)
    assert after["OutRsts"] == middle["OutRsts"]


@pytest.fixture
def bpf_run_stats():
    """Kernel BPF run-time statistics on while the fd from bpf_enable_stats() is open (scoped, unlike the sysctl)."""
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    lib.bpf_enable_stats.argtypes = [ctypes.c_int]
    fd = lib.bpf_enable_stats(0)  # BPF_STATS_RUN_TIME
    if fd < 0:
        pytest.skip("BPF_ENABLE_STATS not available: %s" % os.strerror(-fd))
    yield
    os.close(fd)


def test_prog_run_statistics_when_enabled(wire, build_dir, bpf_run_stats):
    attach(wire, build_dir)
    zeroed(wire)
    assert send(wire.name_a, packets.udp_frame(60), 500) == 500
    res = stats(wire)
    prog = res["prog"]
    assert prog["run_cnt"] == 500 == res["counters"]["seen"]["packets"]
    assert prog["run_time_ns"] > 0 and prog["ns_per_run"] == round(prog["run_time_ns"] / 500, 1)

    stop = threading.Event()

    def sender():
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
            sock.bind((wire.name_a, 0))
            while not stop.is_set():
                sock.send(packets.udp_frame(60))

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        window = stats(wire, interval=0.5)
    finally:
        stop.set()
        thread.join()
    assert not window.failed, window
    print("drop program on live traffic: %s ns per run" % window["rates"]["prog_ns_per_run"])
    assert window["rates"]["prog_ns_per_run"] > 0
