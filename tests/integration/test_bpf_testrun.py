"""bpf_testrun: verdicts and output of every program, the cost ordering of loop N, pinned
programs (counters restored or not), and errors.
"""
import os
import shutil
import socket
import struct
import tempfile
import threading
import time

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import packets
from lib.modrun import ROOT, run_module
from lib.netfix import VethPair, unique

pytestmark = [pytest.mark.root]

BPF_DIR = os.path.join(ROOT, "bpf")
PIN_ROOT = "/sys/fs/bpf/xdplab"
NAMES = ("seen", "dropped", "tx", "passed", "redirected")
QUICK = dict(repeat=1000, rounds=2)


@pytest.fixture(scope="module")
def build_dir():
    path = tempfile.mkdtemp(prefix="xl-build-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def wire():
    pair = VethPair(unique("xl-sa"), unique("xl-sb"), ns_b=unique("xl-sns"))
    try:
        pair.create()
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % pair.name_a, "w") as handle:
            handle.write("1\n")
        yield pair
    finally:
        shutil.rmtree(os.path.join(PIN_ROOT, pair.ns_b), ignore_errors=True)
        pair.destroy()
    assert not os.path.exists("/var/run/netns/%s" % pair.ns_b)


def run_testrun(build_dir, check=False, **kw):
    args = dict(bpf_dir=BPF_DIR, build_dir=build_dir)
    args.update(kw)
    return run_module("bpf_testrun", args, check=check)


def attach(pair, build_dir, program="drop", defines=None):
    res = run_module("xdp_program", dict(interface=pair.name_b, netns=pair.ns_b, program=program,
                                         defines=defines or {}, mode="driver", bpf_dir=BPF_DIR,
                                         build_dir=build_dir))
    assert not res.failed, res
    return res


def stats(pair):
    res = run_module("xdp_stats", dict(interface=pair.name_b, netns=pair.ns_b))
    assert not res.failed, res
    return res["counters"]


VERDICT_CASES = [
    ("drop", {}, "udp", "XDP_DROP", "dropped"),
    ("drop", {}, "tcp", "XDP_DROP", "dropped"),
    ("loop", {"N": 10}, "udp", "XDP_DROP", "dropped"),
    ("checksum", {"N": 10}, "udp", "XDP_DROP", "dropped"),
    ("dns_nxdomain", {}, "udp", "XDP_PASS", "passed"),
    ("dns_nxdomain", {}, "tcp", "XDP_PASS", "passed"),
]


@pytest.mark.parametrize("program,defines,packet,verdict,counter", VERDICT_CASES,
                         ids=["%s-%s" % (c[0], c[2]) for c in VERDICT_CASES])
def test_verdict_of_a_freshly_loaded_program(build_dir, program, defines, packet, verdict, counter):
    res = run_testrun(build_dir, program=program, defines=defines, packet=packet, **QUICK)
    assert not res.failed, res
    assert not res.changed
    assert res["verdict"] == verdict == res["repeated_verdict"]
    assert res["retval"] == {"XDP_DROP": 1, "XDP_PASS": 2}[verdict]
    assert res["runs"] == 1 + QUICK["repeat"] * QUICK["rounds"]
    assert res["prog"]["name"] == "xl_" + program
    ns = res["ns_per_run"]
    assert len(ns["rounds"]) == QUICK["rounds"]
    assert ns["min"] <= ns["median"] <= ns["max"] and ns["min"] >= 0
    # the program's own (private) counters saw exactly the test runs
    delta = res["counters_delta"]
    assert delta["seen"] == {"packets": res["runs"], "bytes": res["runs"] * res["packet_len"]}
    assert delta[counter] == delta["seen"]
    assert not res["counters_restored"]


def test_a_targeted_program_is_timed_on_frames_to_its_target(build_dir):
    """XL_TARGET_IP: frames to other addresses pass uncounted; dst_ip reaches the logic."""
    target = "198.18.0.9"
    defines = {"N": 10, "XL_TARGET_IP": int.from_bytes(socket.inet_aton(target), "big")}
    other = run_testrun(build_dir, program="checksum", defines=defines, packet="udp", **QUICK)
    assert not other.failed, other
    assert other["verdict"] == "XDP_PASS"
    assert all(c["packets"] == 0 for c in other["counters_delta"].values()), other["counters_delta"]
    aimed = run_testrun(build_dir, program="checksum", defines=defines, packet="udp", dst_ip=target, **QUICK)
    assert not aimed.failed, aimed
    assert aimed["verdict"] == "XDP_DROP"
    assert bytes.fromhex(aimed["packet_hex"])[30:34] == socket.inet_aton(target)
    assert aimed["counters_delta"]["dropped"]["packets"] == aimed["runs"]
    hexed = run_testrun(build_dir, program="drop", packet=packets.udp_frame().hex(), dst_ip=target, **QUICK)
    assert hexed.failed and "not for a hex packet" in hexed["msg"]


def udp_ok(frame):
    ip = frame[14:34]
    tot = int.from_bytes(ip[2:4], "big")
    l4 = frame[34:14 + tot]
    ph = ip[12:20] + bytes([0, 17]) + len(l4).to_bytes(2, "big")
    data = ph + l4 + (b"\0" if len(l4) % 2 else b"")
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    return total % 0xffff == 0


@pytest.mark.parametrize("loader", ["object", pytest.param("bcc", marks=pytest.mark.bcc)])
def test_dns_nxdomain_answers_a_query_with_xdp_tx(build_dir, loader):
    res = run_testrun(build_dir, program="dns_nxdomain", loader=loader, packet="dns_query", qname="www.xdplab.test",
                      return_output=True, **QUICK)
    assert not res.failed, res
    assert res["verdict"] == "XDP_TX" and res["retval"] == 3
    query = bytes.fromhex(res["packet_hex"])
    reply = bytes.fromhex(res["data_out_hex"])
    assert len(reply) == len(query) == res["packet_len"]
    assert reply[0:6] == query[6:12] and reply[6:12] == query[0:6], "MACs swapped"
    assert reply[26:30] == query[30:34] and reply[30:34] == query[26:30], "IPs swapped"
    assert reply[34:36] == query[36:38] and reply[36:38] == query[34:36], "ports swapped"
    flags = struct.unpack("!H", reply[44:46])[0]
    assert flags & 0x8000 and flags & 0xf == 3, "QR=1, RCODE=NXDOMAIN"
    assert reply[42:44] == query[42:44], "same DNS id"
    assert reply[46:] == query[46:], "question unchanged"
    assert udp_ok(reply), "UDP checksum still valid"
    # the kernel repeats a round on the rewritten frame: later runs see a reply and pass it
    assert res["repeated_verdict"] == "XDP_PASS"
    assert any("rewrites the frame" in str(w) for w in res.get("warnings", [])), res.get("warnings")
    assert res["counters_delta"]["tx"]["packets"] == 1 + QUICK["rounds"]
    assert res["counters_delta"]["passed"]["packets"] == (QUICK["repeat"] - 1) * QUICK["rounds"]


def test_hex_packet_and_size(build_dir):
    frame = packets.udp_frame(200, dport=53)
    res = run_testrun(build_dir, program="dns_nxdomain", packet=frame.hex(), return_output=True, **QUICK)
    assert not res.failed, res
    assert res["packet"] == "hex" and res["packet_len"] == 200
    # a UDP datagram to port 53 whose payload starts 00 01 02 03: a DNS header with QR=0, answered
    assert res["verdict"] == "XDP_TX"
    sized = run_testrun(build_dir, program="drop", packet="udp", size=1500, **QUICK)
    assert not sized.failed and sized["packet_len"] == 1500
    assert sized["counters_delta"]["seen"]["bytes"] == 1500 * sized["runs"]


@pytest.mark.slow
def test_loop_cost_grows_with_n(build_dir):
    """An ordering, not a threshold: 1000 iterations cost more per run than 1."""
    results = {}
    for n in (1, 1000):
        res = run_testrun(build_dir, program="loop", defines={"N": n}, packet="udp", repeat=200000, rounds=5)
        assert not res.failed, res
        assert res["verdict"] == "XDP_DROP"
        results[n] = res["ns_per_run"]
        print("loop N=%d: ns_per_run median %s (min %s, max %s, rounds %s)"
              % (n, res["ns_per_run"]["median"], res["ns_per_run"]["min"], res["ns_per_run"]["max"],
                 res["ns_per_run"]["rounds"]))
    assert results[1000]["median"] > results[1]["median"]
    assert results[1000]["min"] > results[1]["max"]


def test_pinned_program_by_interface_restores_its_counters(wire, build_dir):
    prog = attach(wire, build_dir, "drop")
    before = stats(wire)
    res = run_module("bpf_testrun", dict(interface=wire.name_b, netns=wire.ns_b, packet="udp", **QUICK))
    assert not res.failed, res
    assert res["prog"]["id"] == prog["prog_id"] and res["prog"]["tag"] == prog["tag"]
    assert res["verdict"] == "XDP_DROP"
    assert res["counters_restored"] is True
    assert res["live_packets_discarded"] == 0
    assert res["counters_delta"]["seen"]["packets"] == res["runs"]
    assert stats(wire) == before, "the live counters are as before the test"

    # still counting live traffic afterwards
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((wire.name_a, 0))
        for _unused in range(5):
            sock.send(packets.udp_frame(60))
    assert stats(wire)["dropped"]["packets"] == before["dropped"]["packets"] + 5


def test_restore_under_live_traffic_reports_what_it_discarded(wire, build_dir):
    attach(wire, build_dir, "drop")
    stop, sent = threading.Event(), [0]

    def sender():
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
            sock.bind((wire.name_a, 0))
            frame = packets.udp_frame(60)
            while not stop.is_set():
                sock.send(frame)
                sent[0] += 1

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        while sent[0] < 1000:
            time.sleep(0.01)
        res = run_module("bpf_testrun", dict(interface=wire.name_b, netns=wire.ns_b, packet="udp",
                                             repeat=1000000, rounds=2))
    finally:
        stop.set()
        thread.join()
    assert not res.failed, res
    assert res["counters_restored"]
    discarded = res["live_packets_discarded"]
    print("sent %d live frames; the restore discarded %d of them" % (sent[0], discarded))
    assert discarded > 0
    assert discarded == res["counters_delta"]["seen"]["packets"] - res["runs"]
    assert any("discarded %d packets" % discarded in str(w) for w in res.get("warnings", []))
    after = stats(wire)
    # the test runs are gone from the counters; what is left is live traffic only
    assert after["seen"]["packets"] <= sent[0] - discarded
    assert after["seen"]["bytes"] == 60 * after["seen"]["packets"]


def test_pinned_program_without_restore_counts_the_test_runs(wire, build_dir):
    prog = attach(wire, build_dir, "drop")
    before = stats(wire)
    res = run_module("bpf_testrun", dict(pin_path=prog["pin_path"], packet="udp", size=64, restore_counters=False,
                                         **QUICK))
    assert not res.failed, res
    assert res["counters_restored"] is False
    after = stats(wire)
    assert after["seen"]["packets"] - before["seen"]["packets"] == res["runs"]
    assert after["dropped"]["bytes"] - before["dropped"]["bytes"] == 64 * res["runs"]


def test_check_mode_runs_nothing_and_reports_no_change(tmp_path):
    cache = str(tmp_path / "cache")
    res = run_testrun(cache, check=True, program="drop", packet="udp", cpu=0, **QUICK)
    assert not res.failed, res
    assert not res.changed and res["check_mode_skipped"] is True and res["cpu"] == 0
    assert res["runs"] == 0 and res["verdict"] is None and res["ns_per_run"] is None
    assert not os.path.exists(cache), "check mode compiled into the build cache"
    bad = run_testrun(cache, check=True, program="nonexistent_prog", packet="udp", **QUICK)
    assert bad.failed and "nonexistent_prog" in bad["msg"]


def test_check_mode_on_a_pinned_program_writes_no_counters(wire, build_dir):
    prog = attach(wire, build_dir, "drop")
    before = stats(wire)
    res = run_module("bpf_testrun", dict(interface=wire.name_b, netns=wire.ns_b, packet="udp",
                                         restore_counters=False, **QUICK), check=True)
    assert not res.failed, res
    assert res["prog"]["id"] == prog["prog_id"] and res["runs"] == 0 and "counters_delta" not in res
    assert stats(wire) == before, "check mode ran the program (its counters moved)"


def test_no_pin_says_to_attach_first(wire, build_dir):
    res = run_module("bpf_testrun", dict(interface=wire.name_b, netns=wire.ns_b, packet="udp"))
    assert res.failed
    assert "attach a program with xdplab.offload.xdp_program first" in res["msg"]
    assert os.path.join(PIN_ROOT, wire.ns_b, wire.name_b, "prog") in res["msg"]


@pytest.mark.parametrize("args,words", [
    (dict(packet="icmp"), "neither a known kind (udp, dns_query, tcp)"),
    (dict(packet="udp", size=20), "too small"),
    (dict(packet="udp", size=9000), "larger than"),
    (dict(packet="0200c6120002", size=None), "at least 14 bytes"),
    (dict(packet="udp", repeat=0), "repeat must be"),
    (dict(packet="udp", cpu=4096), "cpu 4096"),
    (dict(packet="udp", program="nonexistent_prog"), "nonexistent_prog"),
])
def test_bad_input_is_refused_clearly(build_dir, args, words):
    kw = dict(program="drop")
    kw.update(args)
    res = run_testrun(build_dir, **kw)
    assert res.failed
    assert words in res["msg"], res["msg"]


def test_program_and_pin_are_exclusive(build_dir):
    res = run_testrun(build_dir, program="drop", pin_path="/sys/fs/bpf/xl-nothing")
    assert res.failed and "mutually exclusive" in res["msg"]
