# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""xdplab.offload.traffic in mode latency (xl-latency, AF_XDP) on a real veth pair.

The wire is the lab's own (``lab_wire``: namespaces ``xl-llg``/``xl-ldut``,
TX checksum offload off, threaded NAPI of the DUT end pinned to the last CPU);
the responder is attached to the DUT end with ``xdp_program``:

* ``dns_nxdomain`` in driver mode: every query is answered, the percentiles
  are ordered and positive, no reply is invalid, and the client's own
  percentiles agree with the RTT samples when the sample holds every RTT;
* deliberately broken responders wrapping the same logic - one that restores
  the query's UDP checksum after rewriting the flags, one that answers
  NOERROR instead of NXDOMAIN, one that does not swap the MACs - are reported
  as invalid replies and loss with the right reason, never as latency.

Bad input fails before anything is sent, and nothing is left behind (no
namespace, no XDP program, no pins). Every name starts with ``xl-l``.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import time

import pytest
from pyroute2 import netns

from ansible_collections.xdplab.offload.plugins.module_utils import latency
from lib.modrun import ROOT, run_module

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, veths, AF_XDP and BPF"),
]

BPF_DIR = os.path.join(ROOT, "bpf")
LATENCY_DIR = os.path.join(BPF_DIR, "latency")
NCPU = os.cpu_count() or 1
CLIENT_CPU = 0
WIRE = dict(lg_netns="xl-llg", dut_netns="xl-ldut", lg_interface="xl-llg0", dut_interface="xl-ldut0",
            lg_address="198.18.41.1/24", dut_address="198.18.41.2/24")
DUT = dict(interface=WIRE["dut_interface"], netns=WIRE["dut_netns"])
RATE, DURATION = 10000, 1.0

# Responders that get one thing wrong. Each runs the real dns_nxdomain logic
# first (so everything else in the reply is right), then breaks its reply.
BROKEN = {
    # Sets QR/RCODE and swaps addresses but leaves the query's UDP checksum.
    "stale_udp_checksum": ("udp_checksum", r"""
    __u16 check = *(__u16 *)(data + 40);
    int verdict = xl_dns_nxdomain_logic(data, data_end);
    if (verdict == XDP_TX)
        *(__u16 *)(data + 40) = check;
    return verdict;
"""),
    # A correct reply, except RCODE NOERROR (0) instead of NXDOMAIN (3); checksum fixed.
    "noerror": ("dns_rcode", r"""
    int verdict = xl_dns_nxdomain_logic(data, data_end);
    if (verdict == XDP_TX) {
        struct xl_dnshdr *dns = data + 42;
        struct xl_udphdr *udp = data + 34;
        xl_u16 old = dns->flags, new_ = old & ~xl_htons(XL_DNS_RCODE_MASK);
        dns->flags = new_;
        udp->check = xl_csum_replace16(udp->check, old, new_);
    }
    return verdict;
"""),
    # Swaps IPs and ports but sends the reply to its own MAC.
    "unswapped_mac": ("mac", r"""
    int verdict = xl_dns_nxdomain_logic(data, data_end);
    if (verdict == XDP_TX) {
        unsigned char *eth = data;
        for (int k = 0; k < 6; k++) {
            unsigned char m = eth[k];
            eth[k] = eth[6 + k];
            eth[6 + k] = m;
        }
    }
    return verdict;
"""),
}

BROKEN_SOURCE = r"""
#include "xdplab/kern.h"
#include "xdplab/dns_nxdomain.h"

SEC("xdp") int xl_l_broken(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 54 > data_end)
        return XDP_PASS;
%s
}

char _license[] SEC("license") = "GPL";
"""


def _run(argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def client_bin(tmp_path_factory):
    """xl-latency built from bpf/latency into a temporary directory."""
    build = tmp_path_factory.mktemp("xl-latency-build")
    proc = _run(["make", "-C", LATENCY_DIR, "BUILD=%s" % build], check=False)
    assert proc.returncode == 0, "building xl-latency failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    return str(build / "xl-latency")


def _gone():
    """Namespaces, pins and state left by this module's wire (empty when clean)."""
    left = [ns for ns in (WIRE["lg_netns"], WIRE["dut_netns"]) if ns in netns.listnetns()]
    pins = "/sys/fs/bpf/xdplab/%s" % WIRE["dut_netns"]
    if os.path.exists(pins):
        left.append(pins)
    return left


@pytest.fixture(scope="module")
def wire():
    """The lab's wire with this module's names; removed again, also on failure."""
    made = run_module("lab_wire", dict(WIRE, state="present", napi_cpu=NCPU - 1))
    try:
        assert not made.failed, made
        yield made
    finally:
        run_module("xdp_program", dict(DUT, state="detached", bpf_dir=BPF_DIR))
        run_module("lab_wire", dict(WIRE, state="absent"))
        shutil.rmtree("/sys/fs/bpf/xdplab/%s" % WIRE["dut_netns"], ignore_errors=True)
    assert not _gone(), "left behind: %s" % _gone()


@pytest.fixture
def responder(wire, tmp_path):
    """Attach a responder (built-in name or broken variant) to the DUT end in driver mode; detach after."""
    attached = []

    def attach(program):
        if program in BROKEN:
            src = tmp_path / ("xl_l_%s.c" % program)
            src.write_text(BROKEN_SOURCE % BROKEN[program][1])
            program = str(src)
        result = run_module("xdp_program", dict(DUT, program=program, mode="driver", bpf_dir=BPF_DIR,
                                                build_dir=str(tmp_path / "build")))
        assert not result.failed, result
        attached.append(result)
        return result
    try:
        yield attach
    finally:
        if attached:
            detached = run_module("xdp_program", dict(DUT, state="detached", bpf_dir=BPF_DIR))
            assert not detached.failed, detached


def measure(wire, client_bin, **overrides):
    args = dict(mode="latency", interface=WIRE["lg_interface"], netns=WIRE["lg_netns"], rate=RATE,
                duration=DURATION, cpu=[CLIENT_CPU], dst_mac=wire["dut"]["mac"], src_ip="198.18.41.1",
                dst_ip="198.18.41.2", binary=client_bin)
    args.update(overrides)
    return run_module("traffic", args)


def client_xdp_attached():
    out = _run(["ip", "-n", WIRE["lg_netns"], "-d", "link", "show", "dev", WIRE["lg_interface"]]).stdout
    return "prog/xdp" in out or " xdp " in out


# ---------------------------------------------------------------- the real responder

def test_driver_mode_responder_gives_ordered_positive_percentiles_and_no_invalid_replies(
        wire, client_bin, responder):
    responder("dns_nxdomain")
    result = measure(wire, client_bin, samples=int(RATE * DURATION) * 2)
    assert not result.failed, result
    planned = int(RATE * DURATION)
    assert result["sent"] == planned and result["packets_sent"] == planned
    assert result["invalid"] == 0 and result["invalid_reasons"] == {}, result["invalid_reasons"]
    assert result["unmatched"] == 0
    assert result["received"] > 0
    assert result["received"] + result["lost"] == result["sent"]
    assert result["loss"] == pytest.approx(result["lost"] / float(result["sent"]))
    p = [result[k] for k in ("rtt_us_min", "rtt_us_p50", "rtt_us_p90", "rtt_us_p99", "rtt_us_p999", "rtt_us_max")]
    assert all(v is not None and v > 0 for v in p), p
    assert p == sorted(p), p
    assert p[0] <= result["rtt_us_mean"] <= p[-1]
    assert result["rate_pps"] == pytest.approx(RATE, rel=0.05)
    assert result["rx_timestamp"] == "xdp_metadata" and result["rx_timestamp_fallbacks"] == 0
    # where the lost ones went: the DUT end's ring (the sender's tx_dropped) or nowhere to be found
    link = result["link"]
    assert result["received"] <= link["tx_packets"] and link["tx_dropped"] <= result["lost"]
    # the histogram holds every valid reply; the sample holds them all here
    hist = result["rtt_us_hist"]
    assert sum(hist["counts"]) == result["received"]
    assert hist["edges"][0] <= p[0] and hist["edges"][-1] >= p[-1]
    samples = result["rtt_us_samples"]
    assert len(samples) == result["received"]
    for key, q in (("rtt_us_p50", 50), ("rtt_us_p90", 90), ("rtt_us_p99", 99), ("rtt_us_p999", 99.9)):
        assert latency.percentile(samples, q) == pytest.approx(result[key], abs=0.002), key
    # the responder answered what it saw; the client's program is gone with the client
    stats = run_module("xdp_stats", DUT)
    assert not stats.failed, stats
    assert stats["counters"]["tx"]["packets"] >= result["received"]
    assert not client_xdp_attached()


def test_padded_queries_of_the_requested_size_are_answered(wire, client_bin, responder):
    responder("dns_nxdomain")
    result = measure(wire, client_bin, size=128, duration=0.3, samples=0, histogram=False)
    assert not result.failed, result
    assert result["size"] == 128 and result["invalid"] == 0 and result["received"] > 0
    assert "rtt_us_samples" not in result and "rtt_us_hist" not in result


# ---------------------------------------------------------------- broken responders

@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_a_broken_responder_is_reported_as_invalid_and_loss_not_as_latency(wire, client_bin, responder, variant):
    reason = BROKEN[variant][0]
    responder(variant)
    result = measure(wire, client_bin, duration=0.5)
    assert not result.failed, result
    sent = result["sent"]
    assert sent == int(RATE * 0.5)
    assert result["received"] == 0 and result["lost"] == sent and result["loss"] == 1.0
    assert result["invalid"] > 0 and set(result["invalid_reasons"]) == {reason}, result["invalid_reasons"]
    assert result["invalid_reasons"][reason] == result["invalid"]
    assert all(result[k] is None for k in ("rtt_us_p50", "rtt_us_p99", "rtt_us_p999", "rtt_us_mean"))
    assert result["rtt_us_samples"] == [] and sum(result["rtt_us_hist"]["counts"]) == 0
    assert any("invalid" in str(w) for w in result.get("warnings", [])), result.get("warnings")


def test_without_a_responder_every_query_is_lost_and_the_module_says_why(wire, client_bin):
    result = measure(wire, client_bin, duration=0.2, reply_timeout=0.1)
    assert not result.failed, result
    assert result["received"] == 0 and result["loss"] == 1.0
    # the DUT's own stack may answer some queries with ICMP port unreachable (rate-limited)
    assert set(result["invalid_reasons"]) <= {"icmp"}, result["invalid_reasons"]
    assert any("no valid reply" in str(w) for w in result.get("warnings", [])), result.get("warnings")


# ---------------------------------------------------------------- bad input, leftovers

@pytest.mark.parametrize("overrides,text", [
    (dict(rate=0), "throughput"),
    (dict(size=64), "too small for a DNS query"),
    (dict(threads=2), "one thread"),
    (dict(cpu=[0, 1]), "one CPU"),
    (dict(interface="xl-lnothere0"), "xl-lnothere0"),
    (dict(netns="xl-lnothere"), "does not exist"),
    (dict(binary="/nonexistent/xl-latency"), "not an executable"),
    (dict(generator="moongen"), "xl_loadgen"),
])
def test_bad_input_fails_clearly_before_sending(wire, client_bin, overrides, text):
    result = measure(wire, client_bin, **overrides)
    assert result.failed and text in result["msg"], result
    assert "sent" not in result or not result["sent"]
    assert not client_xdp_attached()


def test_an_interface_with_another_xdp_program_is_refused_and_kept(wire, client_bin, tmp_path):
    lg = dict(interface=WIRE["lg_interface"], netns=WIRE["lg_netns"])
    other = run_module("xdp_program", dict(lg, program="drop", mode="driver", bpf_dir=BPF_DIR,
                                           build_dir=str(tmp_path / "build")))
    assert not other.failed, other
    try:
        result = measure(wire, client_bin, duration=0.2)
        assert result.failed and "already has an XDP program" in result["msg"], result
        still = run_module("xdp_program", dict(lg, program="drop", mode="driver", bpf_dir=BPF_DIR,
                                               build_dir=str(tmp_path / "build")))
        assert not still.failed and not still.changed, still
    finally:
        gone = run_module("xdp_program", dict(lg, state="detached", bpf_dir=BPF_DIR))
        shutil.rmtree("/sys/fs/bpf/xdplab/%s" % WIRE["lg_netns"], ignore_errors=True)
    assert not gone.failed, gone


def test_an_interrupted_client_still_reports_and_detaches(wire, client_bin, responder):
    responder("dns_nxdomain")
    argv = [client_bin, "--interface", WIRE["lg_interface"], "--netns", WIRE["lg_netns"], "--rate", "10000",
            "--duration", "30", "--dst-mac", wire["dut"]["mac"], "--src-ip", "198.18.41.1", "--dst-ip",
            "198.18.41.2", "--samples", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        proc.send_signal(2)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    data = latency.parse_output(out)
    assert data["interrupted"] is True and 0 < data["sent"] < 300000
    assert data["invalid"] == 0 and data["received"] > 0
    assert not client_xdp_attached()
