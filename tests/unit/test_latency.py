# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""xdplab.offload.traffic mode latency without root: validation, argument lists, output, frames.

The client binary is built into a temporary directory (when clang and libxdp
are there) to prove, without sending anything, that its queries are the bytes
``packets.dns_query_frame`` builds (with the sequence number in the DNS id and
the IPv4 identification) and that bad options fail the documented way.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import latency, loadgen, packets
from lib.modrun import ROOT, run_module

LATENCY_DIR = os.path.join(ROOT, "bpf", "latency")

# Captured from `xl-latency -i xl-llgm0 -n xl-llgm --dst-mac d2:3f:a8:cd:5e:b5 --src-ip 198.18.41.1
# --dst-ip 198.18.41.2 --rate 1000 --duration 0.01 --cpu 0 --samples 4` against dns_nxdomain (driver).
CAPTURED = (
    '{"client": "xl_latency", "version": "1.0", "method": "af_xdp", "bind_mode": "copy", "xdp_mode": "driver", '
    '"rx_timestamp": "xdp_metadata", "tx_timestamp": "before_sendto", "interface": "xl-llgm0", "ifindex": 2, '
    '"netns": "xl-llgm", "driver": "veth", "queue": 0, "rx_queues": 1, "cpu": 0, "size": 76, '
    '"qname": "xl-query.example", "src_mac": "3e:48:b1:5d:e4:96", "dst_mac": "d2:3f:a8:cd:5e:b5", '
    '"src_ip": "198.18.41.1", "dst_ip": "198.18.41.2", "src_port": 40000, "dst_port": 53, '
    '"requested_rate_pps": 1000.000, "requested_duration_s": 0.010000, "sent": 10, "received": 10, '
    '"invalid": 0, "unmatched": 0, "lost": 0, "loss": 0.000000, "rate_pps": 1000.1, "duration_s": 0.009999, '
    '"rtt_us_p50": 28.677, "rtt_us_p90": 44.174, "rtt_us_p99": 50.331, "rtt_us_p999": 50.947, '
    '"rtt_us_mean": 31.563, "rtt_us_stddev": 10.986, "rtt_us_min": 14.331, "rtt_us_max": 51.015, '
    '"invalid_reasons": {}, "invalid_attributed": 0, "rtt_us_hist": {"edges": [14.1254, 15.8489, 17.7828, '
    '19.9526, 22.3872, 25.1189, 28.1838, 31.6228, 35.4813, 39.8107, 44.6684, 50.1187, 56.2341], '
    '"counts": [1, 0, 0, 1, 0, 2, 2, 1, 0, 2, 0, 1]}, "rtt_us_samples": [29.042, 26.239, 33.370, 22.322], '
    '"rx_frames": 10, "rx_timestamp_fallbacks": 0, "late_sends": 4, "max_send_lag_us": 1862.327, '
    '"tx_kicks": 9, "tx_kick_errors": 0, "tx_pool_empty": 0, "xsk": {"rx_dropped": 0, "rx_invalid_descs": 0, '
    '"tx_invalid_descs": 0, "rx_ring_full": 0, "rx_fill_ring_empty_descs": 0, "tx_ring_empty_descs": 9}, '
    '"xdp": {"prog_id": 5399, "to_socket": 10, "not_taken": 0, "passed": 0, "no_metadata": 0}, '
    '"cpu_s": 0.019546, "interrupted": false, "wall_s": 0.055910}\n')

# A run where a responder broke every reply: no samples, percentiles null.
ALL_INVALID = json.dumps({
    "client": "xl_latency", "size": 76, "sent": 5000, "received": 0, "invalid": 5000, "unmatched": 0,
    "lost": 5000, "loss": 1.0, "rate_pps": 9999.0, "duration_s": 0.50005, "rtt_us_p50": None,
    "rtt_us_p90": None, "rtt_us_p99": None, "rtt_us_p999": None, "rtt_us_mean": None, "rtt_us_stddev": None,
    "rtt_us_min": None, "rtt_us_max": None, "invalid_reasons": {"udp_checksum": 5000},
    "invalid_attributed": 5000, "rtt_us_hist": {"edges": [], "counts": []}, "rtt_us_samples": [],
    "late_sends": 0, "rx_timestamp_fallbacks": 0, "interrupted": False})


def spec(**overrides):
    params = {"interface": "xl-lg0", "netns": "xl-lg", "mode": "latency", "rate": 100000}
    params.update(overrides)
    return latency.normalize(params, cpu_count=2)


# ---------------------------------------------------------------- validation

def test_defaults_are_a_ten_second_run_of_plain_queries_with_samples_and_histogram():
    s = spec()
    assert (s["generator"], s["mode"], s["rate"], s["duration"], s["size"], s["cpu"]) == (
        "xl_latency", "latency", 100000.0, 10.0, 76, None)
    assert s["qname"] == "xl-query.example" and s["size"] == loadgen.dns_frame_length(s["qname"])
    assert (s["samples"], s["histogram"], s["reply_timeout"], s["xdp_mode"], s["queue"]) == (
        10000, True, 0.5, "driver", 0)


def test_a_rate_is_required_and_line_rate_is_a_throughput_thing():
    for rate in (0, None, -1):
        with pytest.raises(loadgen.LoadgenError) as err:
            spec(rate=rate)
        assert "rate" in err.value.msg and "throughput" in err.value.msg
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(rate=2e7)
    assert "limit" in err.value.msg
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(rate="fast")
    assert "rate" in err.value.msg


def test_size_pads_the_query_but_cannot_cut_it():
    assert spec(size=128)["size"] == 128
    assert spec(qname="xl")["size"] == 62
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(size=64)
    assert "too small for a DNS query" in err.value.msg and "76" in err.value.msg
    for size in (59, 1519):
        with pytest.raises(loadgen.LoadgenError) as err:
            spec(size=size)
        assert "60..1518" in err.value.msg


@pytest.mark.parametrize("key,value,text", [
    ("duration", 0, "duration"), ("duration", 86401, "duration"), ("threads", 2, "one thread"),
    ("cpu", [0, 1], "one CPU"), ("cpu", [5], "does not exist"), ("cpu", "x", "CPU number"),
    ("generator", "moongen", "xl_loadgen"), ("frame", "udp", "DNS queries"), ("reply_timeout", 61, "reply_timeout"),
    ("samples", -1, "samples"), ("samples", 2000000, "samples"), ("xdp_mode", "offload", "xdp_mode"),
    ("src_mac", "02:00:c6:12:00", "src_mac"), ("dst_mac", "zz:00:c6:12:00:02", "dst_mac"),
    ("src_ip", "198.18.0.300", "src_ip"), ("dst_ip", "fe80::1", "dst_ip"), ("src_port", 70000, "src_port"),
    ("dst_port", 0, "dst_port"), ("netns", "../etc", "netns"), ("interface", "", "interface"),
    ("interface", "x" * 16, "1 to 15 of the characters"), ("qname", "bad name", "qname"),
])
def test_bad_input_is_refused_naming_the_option(key, value, text):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(**{key: value})
    assert text in err.value.msg


def test_rate_times_duration_is_bounded_by_what_the_client_keeps():
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(rate=1000000, duration=1000)
    assert "shorten" in err.value.msg
    assert spec(rate=1000000, duration=100)["rate"] == 1e6


def test_the_throughput_generator_does_not_take_latency_requests():
    with pytest.raises(loadgen.LoadgenError) as err:
        loadgen.normalize({"interface": "xl-lg0", "mode": "latency"}, cpu_count=2)
    assert "mode" in err.value.msg
    assert loadgen.normalize({"interface": "xl-lg0"}, cpu_count=2)["mode"] == "throughput"


# ---------------------------------------------------------------- commands

def test_argv_names_every_choice_and_omits_defaults_the_client_has():
    s = spec(rate=50000, duration=2.5, size=80, cpu=[1], dst_mac="02:00:C6:12:00:02", src_ip="198.18.41.1",
             dst_ip="198.18.41.2", reply_timeout=0.25, samples=0, histogram=False)
    assert latency.build_argv(s, "/x/xl-latency") == [
        "/x/xl-latency", "--interface", "xl-lg0", "--netns", "xl-lg", "--rate", "50000", "--duration", "2.5",
        "--size", "80", "--dst-mac", "02:00:c6:12:00:02", "--src-ip", "198.18.41.1", "--dst-ip", "198.18.41.2",
        "--cpu", "1", "--timeout", "250", "--samples", "0", "--no-hist"]
    plain = latency.build_argv(spec(netns=None, qname="xl", xdp_mode="generic", queue=3))
    assert plain[0] == latency.DEFAULT_BINARY and "--netns" not in plain
    assert plain[plain.index("--qname") + 1] == "xl" and plain[plain.index("--xdp-mode") + 1] == "generic"
    assert plain[plain.index("--queue") + 1] == "3"


def test_planned_says_what_would_be_sent():
    plan = latency.planned(spec(rate=1000, duration=0.5))
    assert plan["packets_planned"] == 500 and plan["frame"] == "dns_query"
    assert (plan["dst_port"], plan["src_port"], plan["dst_ip"]) == (53, 40000, "198.18.0.2")


# ---------------------------------------------------------------- output

def test_captured_output_becomes_the_record_fields():
    s = spec(rate=1000, duration=0.01, cpu=[0])
    r = latency.summarize(s, latency.parse_output("xl-latency: note\n" + CAPTURED))
    assert (r["sent"], r["received"], r["invalid"], r["lost"], r["loss"]) == (10, 10, 0, 0, 0.0)
    assert r["packets_sent"] == 10 and r["bytes_sent"] == 760 and r["rate_pps"] == 1000.1
    for key in ("rtt_us_p50", "rtt_us_p90", "rtt_us_p99", "rtt_us_p999", "rtt_us_mean"):
        assert isinstance(r[key], float)
    assert r["rtt_us_p50"] <= r["rtt_us_p90"] <= r["rtt_us_p99"] <= r["rtt_us_p999"]
    assert len(r["rtt_us_hist"]["edges"]) == len(r["rtt_us_hist"]["counts"]) + 1
    assert sum(r["rtt_us_hist"]["counts"]) == r["received"]
    assert r["rtt_us_samples"] == [29.042, 26.239, 33.370, 22.322]
    assert r["rx_timestamp"] == "xdp_metadata" and r["cpu_s"] == 0.019546
    assert latency.warnings(s, r) == [
        "4 of 10 queries left more than 10 us behind schedule (longest 1862 us): the client's CPU was busy with "
        "something else; RTTs include queueing behind those bursts"]


def test_invalid_replies_are_loss_with_null_percentiles_and_a_warning():
    s = spec(rate=10000, duration=0.5)
    r = latency.summarize(s, latency.parse_output(ALL_INVALID))
    assert r["loss"] == 1.0 and r["lost"] == 5000 and r["received"] == 0
    assert all(r[k] is None for k in latency.LATENCY_FIELDS)
    text = " ".join(latency.warnings(s, r))
    assert "5000 replies were invalid (udp_checksum 5000)" in text and "no valid reply" in text


def test_loss_is_recomputed_from_the_counts():
    data = json.loads(ALL_INVALID)
    data.update(received=4000, loss=0.0, lost=0)
    r = latency.summarize(spec(rate=10000, duration=0.5), data)
    assert r["lost"] == 1000 and r["loss"] == pytest.approx(0.2)
    assert latency.summarize(spec(), dict(data, sent=0, received=0))["loss"] is None


def test_missing_or_broken_output_is_an_error():
    with pytest.raises(loadgen.LoadgenError):
        latency.parse_output("")
    with pytest.raises(loadgen.LoadgenError):
        latency.parse_output('{"packets_sent": 3}\n')
    with pytest.raises(loadgen.LoadgenError):
        latency.check_hist({"edges": [1, 2], "counts": [1, 2]})
    with pytest.raises(loadgen.LoadgenError):
        latency.check_hist({"edges": [2, 1], "counts": [1]})
    assert latency.check_hist({"edges": [], "counts": []}) == {"edges": [], "counts": []}


def test_error_lines_of_the_client_are_found():
    assert loadgen.error_line("x\nxl-latency: error: interface xl-lg0 does not exist\n") == \
        "interface xl-lg0 does not exist"


def test_percentiles_interpolate_like_numpy():
    xs = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert latency.percentile(xs, 50) == 3.0
    assert latency.percentile(xs, 90) == pytest.approx(4.6)
    assert latency.percentile([], 50) is None
    hist = {"edges": [1.0, 2.0, 4.0], "counts": [2, 2]}
    assert latency.hist_percentile(hist, 50) == 2.0
    assert latency.hist_percentile(hist, 100) == 4.0
    assert latency.hist_percentile({"edges": [], "counts": []}, 50) is None


# ---------------------------------------------------------------- the client binary

@pytest.fixture(scope="module")
def client_bin(tmp_path_factory):
    if not shutil.which("clang") or not os.path.exists("/usr/include/xdp/xsk.h"):
        pytest.skip("needs clang and libxdp-dev to build xl-latency")
    build = tmp_path_factory.mktemp("xl-latency-unit")
    proc = subprocess.run(["make", "-C", LATENCY_DIR, "BUILD=%s" % build], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, "building xl-latency failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    return str(build / "xl-latency")


def dump(client_bin, seq, *extra):
    proc = subprocess.run([client_bin, "--dump-frame", str(seq)] + list(extra), capture_output=True, text=True,
                          timeout=30, check=True)
    return bytes.fromhex(proc.stdout.strip())


@pytest.mark.parametrize("seq", [0, 1, 0x584c, 0xffff])
def test_queries_are_the_bytes_packets_builds_with_the_sequence_in_the_dns_id(client_bin, seq):
    assert dump(client_bin, seq) == packets.dns_query_frame("xl-query.example", txid=seq)
    padded = packets.dns_query_frame("xl-query.example", size=128, txid=seq)
    assert dump(client_bin, seq, "--size", "128") == padded
    assert dump(client_bin, seq, "--qname", "xl") == packets.dns_query_frame("xl", txid=seq)


@pytest.mark.parametrize("seq", [0x10000, 0x12345678, 0xffffffff])
def test_high_sequence_bits_ride_in_the_ipv4_identification_with_valid_checksums(client_bin, seq):
    frame = dump(client_bin, seq, "--src-ip", "198.18.41.1", "--dst-ip", "198.18.41.2", "--src-port", "41000")
    msg = packets.dns_query("xl-query.example", txid=seq & 0xffff)
    seg = packets.udp_segment("198.18.41.1", "198.18.41.2", 41000, 53, msg)
    expected = (packets.ethernet_header() +
                packets.ipv4_header("198.18.41.1", "198.18.41.2", packets.IPPROTO_UDP, len(seg), ident=seq >> 16) +
                seg)
    assert frame == expected


@pytest.mark.parametrize("argv,text", [
    (["--rate", "0", "-i", "xl-lg0"], "--rate"),
    (["--rate", "x", "-i", "xl-lg0"], "--rate"),
    (["--duration", "0", "-i", "xl-lg0"], "--duration"),
    (["--size", "64", "--dump-frame", "1"], "too small"),
    (["--size", "2000", "-i", "xl-lg0"], "--size"),
    (["--dst-mac", "02:00", "-i", "xl-lg0"], "--dst-mac"),
    (["--src-ip", "1.2.3", "-i", "xl-lg0"], "--src-ip"),
    (["--qname", "a..b", "--dump-frame", "1"], "qname"),
    (["--netns", "../x", "-i", "xl-lg0"], "--netns"),
    (["--xdp-mode", "offload", "-i", "xl-lg0"], "--xdp-mode"),
    (["--rate", "10000000", "--duration", "86400", "-i", "xl-lg0"], "shorten"),
    ([], "--interface"),
    (["-i", "xl-lg0", "extra"], "unexpected argument"),
])
def test_bad_options_exit_2_with_one_error_line_and_no_output(client_bin, argv, text):
    proc = subprocess.run([client_bin] + argv, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("xl-latency: error: ") and text in lines[0], lines


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the refusal without root")
def test_without_root_the_client_refuses_with_status_1(client_bin):
    proc = subprocess.run([client_bin, "-i", "lo", "--rate", "10", "--duration", "0.1"], capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 1 and "needs root" in proc.stderr and proc.stdout == ""


# ---------------------------------------------------------------- the module

def test_module_check_mode_returns_the_command_and_sends_nothing(client_bin):
    result = run_module("traffic", {"mode": "latency", "interface": "lo", "rate": 1000, "duration": 2,
                                    "cpu": [0], "binary": client_bin, "samples": 100}, check=True)
    assert not result.failed, result
    assert result.changed and result["sent"] == 0 and result["packets_sent"] == 0
    assert result["command"][:3] == [client_bin, "--interface", "lo"]
    assert result["planned"]["packets_planned"] == 2000 and result["planned"]["mode"] == "latency"


@pytest.mark.parametrize("args,text", [
    ({"rate": 0}, "throughput"),
    ({"rate": 1000, "size": 64}, "too small"),
    ({"rate": 1000, "threads": 4}, "one thread"),
    ({"rate": 1000, "netns": "xl-does-not-exist-%d" % os.getpid()}, "does not exist"),
    ({"rate": 1000, "binary": "/nonexistent/xl-latency"}, "make -C bpf"),
])
def test_module_refuses_bad_input_before_touching_anything(args, text):
    result = run_module("traffic", dict({"mode": "latency", "interface": "lo"}, **args), check=True)
    assert result.failed and text in result["msg"], result
