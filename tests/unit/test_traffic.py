# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""xdplab.offload.traffic without root: validation, argument lists, output parsing.

The MoonGen script is run under a plain Lua 5.1 interpreter (when one is
installed) against stand-ins for MoonGen's modules, to prove that the argument
list the module builds is what the script parses and that the script's result
line is what the module parses.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import loadgen
from lib.modrun import run_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LUA_SCRIPT = os.path.join(ROOT, "bpf", "loadgen", "moongen", "xl-udp-load.lua")
BIN = "/opt/xdplab/bpf/loadgen/build/xl-loadgen"

# Captured from `xl-loadgen -n xl-glg -i xl-g0 -d 3 --cpu 0` (trimmed to one thread).
XL_OUTPUT = (
    '{"generator": "xl_loadgen", "version": "1.0", "interface": "xl-g0", "ifindex": 16, "netns": "xl-glg", '
    '"size": 60, "dns": false, "src_ip": "198.18.0.1", "dst_ip": "198.18.0.2", "src_port": 9, "dst_port": 9, '
    '"packets_sent": 18574912, "bytes_sent": 1114494720, "duration_s": 3.000123, "rate_pps": 6191383.6, '
    '"offered_rate_pps": 0.0, "requested_duration_s": 3.000000, "wall_s": 3.024518, "calls": 1, '
    '"late_restarts": 0, "interrupted": false, "device_xdp_xmit": 18574912, "device_xdp_xmit_errors": 0, '
    '"threads": [{"thread": 0, "cpu": 0, "packets_sent": 18574912, "calls": 1, "duration_s": 3.000123, '
    '"rate_pps": 6191383.6, "offered_rate_pps": 0.0, "batch_size": 64, "late_restarts": 0}]}\n')

# What MoonGen prints around our result line: libmoon log lines and coloured stats.
MOONGEN_OUTPUT = (
    "[INFO]  Initializing DPDK. This will take a few seconds...\n"
    "[INFO]  Found 2 usable devices:\n"
    "   Device 0: 3C:FD:FE:9E:D6:B8 (Intel Corporation Ethernet Controller XL710 for 40GbE QSFP+)\n"
    "[INFO]  Waiting for devices to come up...\n"
    "[INFO]  Device 0 (3C:FD:FE:9E:D6:B8) is up: 40000 MBit/s\n"
    "\x1b[34m[Device: id=0] TX\x1b[0m: 14.88 Mpps, 7619 Mbit/s (9999 Mbit/s with framing)\n"
    'XL-LOADGEN-RESULT {"generator": "moongen", "port": 0, "size": 60, "dns": false, '
    '"packets_sent": 148800000, "bytes_sent": 8928000000, "duration_s": 10.000000, "rate_pps": 14880000.0, '
    '"offered_rate_pps": 0.0, "requested_duration_s": 10.000000, '
    '"threads": [{"thread": 0, "packets_sent": 148800000, "duration_s": 10.000000, "rate_pps": 14880000.0}]}\n')

MOONGEN_STATS_ONLY = (
    "\x1b[34m[Device: id=0] TX\x1b[0m: 1.00 (StdDev 0.00) Mpps, 512 (StdDev 0) Mbit/s (672 Mbit/s with framing), "
    "total 10000000 packets with 640000000 bytes (incl. CRC)\n")


def spec(**overrides):
    params = {"interface": "xl-lg0", "netns": "xl-lg"}
    params.update(overrides)
    return loadgen.normalize(params, cpu_count=2)


# ---------------------------------------------------------------- validation

def test_defaults_are_a_line_rate_run_of_64_byte_frames_for_ten_seconds():
    s = spec()
    assert (s["generator"], s["mode"], s["rate"], s["size"], s["duration"], s["threads"], s["cpus"]) == (
        "xl_loadgen", "throughput", 0.0, 60, 10.0, 1, [])
    assert s["frame"] == "udp" and not s["dns"]


@pytest.mark.parametrize("size", [60, 64, 1518])
def test_size_accepts_the_frame_lengths_without_fcs(size):
    assert spec(size=size)["size"] == size


@pytest.mark.parametrize("size", [59, 0, -1, 1519, 9000])
def test_size_outside_60_to_1518_is_refused_with_the_range(size):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(size=size)
    assert "60..1518" in err.value.msg and str(size) in err.value.msg


@pytest.mark.parametrize("rate", [-1, -0.5, "-3"])
def test_negative_rate_is_refused(rate):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(rate=rate)
    assert "negative" in err.value.msg


def test_rate_must_be_a_number_and_not_absurd():
    with pytest.raises(loadgen.LoadgenError):
        spec(rate="fast")
    with pytest.raises(loadgen.LoadgenError):
        spec(rate=5e9)
    assert spec(rate="250000")["rate"] == 250000.0


@pytest.mark.parametrize("duration", [0, -1, 86401, "soon"])
def test_duration_must_be_positive_and_at_most_a_day(duration):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(duration=duration)
    assert "duration" in err.value.msg


def test_threads_range():
    with pytest.raises(loadgen.LoadgenError):
        spec(threads=65)
    with pytest.raises(loadgen.LoadgenError):
        spec(threads=-1)
    assert spec(threads=2)["threads"] == 2


@pytest.mark.parametrize("cpu,expected", [(0, [0]), ("1", [1]), ("0,1", [0, 1]), ([1, 0], [1, 0]),
                                          (None, []), ([], [])])
def test_cpu_accepts_a_number_a_list_or_a_comma_separated_string(cpu, expected):
    assert spec(cpu=cpu)["cpus"] == expected


def test_cpu_that_does_not_exist_is_refused():
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(cpu=[0, 2])
    assert "cpu 2 does not exist" in err.value.msg
    with pytest.raises(loadgen.LoadgenError):
        spec(cpu="zero")


@pytest.mark.parametrize("key,value", [("src_mac", "02:00:c6:12:00"), ("dst_mac", "zz:00:c6:12:00:02"),
                                       ("src_ip", "198.18.0.300"), ("dst_ip", "fe80::1"),
                                       ("src_port", 70000), ("dst_port", -1)])
def test_bad_addresses_and_ports_are_refused_by_name(key, value):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(**{key: value})
    assert key in err.value.msg


def test_unknown_generator_mode_and_frame_are_refused():
    for key, value in (("generator", "pktgen"), ("mode", "latency"), ("frame", "tcp")):
        with pytest.raises(loadgen.LoadgenError) as err:
            spec(**{key: value})
        assert key in err.value.msg


def test_namespace_names_with_path_characters_are_refused():
    with pytest.raises(loadgen.LoadgenError):
        spec(netns="../etc")


def test_dns_frames_default_to_the_query_length_and_refuse_shorter_sizes():
    s = spec(frame="dns_query")
    # 14 + 20 + 8 + 12 + len("\x08xl-query\x07example\x00") 18 + 4
    assert s["size"] == loadgen.dns_frame_length("xl-query.example") == 76
    assert spec(frame="dns_query", size=128)["size"] == 128
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(frame="dns_query", size=60)
    assert "too small for a DNS query" in err.value.msg
    with pytest.raises(loadgen.LoadgenError):
        spec(frame="dns_query", qname="a..b" + "x" * 70)


def test_moongen_needs_a_dpdk_port_number_and_no_namespace():
    s = loadgen.normalize({"generator": "moongen", "interface": 0}, cpu_count=2)
    assert s["interface"] == "0"
    with pytest.raises(loadgen.LoadgenError) as err:
        loadgen.normalize({"generator": "moongen", "interface": "eth0"})
    assert "DPDK port" in err.value.msg
    with pytest.raises(loadgen.LoadgenError) as err:
        loadgen.normalize({"generator": "moongen", "interface": "0", "netns": "xl-lg"})
    assert "netns" in err.value.msg


# ---------------------------------------------------------------- the guard: destinations, bounds

@pytest.mark.parametrize("key,value", [("dst_ip", "8.8.8.8"), ("dst_ip", "10.1.2.3"), ("dst_ip", "192.168.1.1"),
                                       ("dst_ip", "172.16.0.1"), ("dst_ip", "198.20.0.1"), ("src_ip", "10.0.0.1")])
def test_destinations_outside_the_benchmarking_range_are_refused_by_name(key, value):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(**{key: value})
    assert err.value.msg.startswith("%s %s is outside 198.18.0.0/15" % (key, value))
    assert err.value.details["option"] == key


def test_allowed_destinations_admit_exactly_their_networks():
    assert spec(dst_ip="10.1.2.3", allowed_destinations=["10.1.2.0/24"])["dst_ip"] == "10.1.2.3"
    assert spec(dst_ip="127.0.0.1")["dst_ip"] == "127.0.0.1"
    assert spec(dst_ip="198.19.255.254")["dst_ip"] == "198.19.255.254"
    with pytest.raises(loadgen.LoadgenError, match="dst_ip 10.1.3.1 is outside"):
        spec(dst_ip="10.1.3.1", allowed_destinations=["10.1.2.0/24"])
    with pytest.raises(loadgen.LoadgenError, match="allowed_destinations entry 'campus'"):
        spec(allowed_destinations=["campus"])


@pytest.mark.parametrize("value", ["eth0:1", "a/b", "$(id)", "x" * 16, "..", "eth 0"])
def test_interface_names_are_checked_with_the_shared_rule(value):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(interface=value)
    assert err.value.msg.startswith("interface %r is not an interface name" % value)


def test_duration_and_paced_frames_are_bounded_unless_raised_explicitly():
    with pytest.raises(loadgen.LoadgenError, match="duration 3601 s is above max_duration"):
        spec(duration=3601)
    assert spec(duration=7200, max_duration=7200)["duration"] == 7200
    with pytest.raises(loadgen.LoadgenError, match="max_duration 90000 s is out of range"):
        spec(duration=7200, max_duration=90000)
    with pytest.raises(loadgen.LoadgenError, match="above max_packets"):
        spec(rate=1000000, duration=1001)
    assert spec(rate=1000000, duration=1001, max_packets=2000000000)["rate"] == 1000000
    # line rate: bounded by the duration alone
    assert spec(rate=0, duration=3600)["duration"] == 3600


LINKS = [{"index": 1, "ifname": "lo"}, {"index": 2, "ifname": "eth0"},
         {"index": 3, "ifname": "br0"}, {"index": 4, "ifname": "eth1", "master": 3},
         {"index": 5, "ifname": "eth2.10", "kind": "vlan", "link": 6}, {"index": 6, "ifname": "eth2"},
         {"index": 7, "ifname": "xl-lg0", "kind": "veth", "link": 8},
         {"index": 8, "ifname": "xl-lg1", "kind": "veth", "link": 7}]


def test_the_guard_finds_default_routes_their_ports_and_lower_devices():
    routes = [{"family": 2, "dst_len": 0, "type": 1, "table": 254, "oifs": [3], "gateway": "192.0.2.1"},
              {"family": 10, "dst_len": 0, "type": 1, "table": 100, "oifs": [5]},
              {"family": 2, "dst_len": 0, "type": 7, "table": 254, "oifs": []},   # unreachable default
              {"family": 2, "dst_len": 24, "type": 1, "table": 254, "oifs": [7]}]
    reasons = loadgen.guarded_interfaces(LINKS, routes, [])
    assert reasons[3] == "carries the default route (IPv4 via 192.0.2.1)"
    assert reasons[4].startswith("is a port of br0, which carries the default route")
    assert reasons[5] == "carries the default route (IPv6 in table 100)"
    assert reasons[6].startswith("is the lower device of eth2.10")
    assert set(reasons) == {3, 4, 5, 6}


def test_the_guard_finds_the_ssh_servers_address_and_the_route_back_to_the_client():
    ssh = loadgen.ssh_connection({"SSH_CONNECTION": "192.0.2.9 51000 ::ffff:192.0.2.20 22"}, pid=1)
    assert [str(a) for a in ssh] == ["192.0.2.9", "192.0.2.20"]
    addresses = [{"index": 2, "address": "192.0.2.20"}, {"index": 7, "address": "198.18.0.1"}]
    reasons = loadgen.guarded_interfaces(LINKS, [], addresses, ssh, ssh_route_oifs=[6])
    assert "holds 192.0.2.20, the address Ansible connects through" in reasons[2]
    assert "route to the SSH client 192.0.2.9" in reasons[6]
    assert 7 not in reasons and 8 not in reasons
    # A veth's peer is not its lower device: guarding one end leaves the other alone.
    assert 8 not in loadgen.guarded_interfaces(LINKS, [{"family": 2, "dst_len": 0, "oifs": [7]}], [])


def test_a_default_route_through_a_nexthop_object_refuses_every_interface():
    reasons = loadgen.guarded_interfaces(LINKS, [{"family": 2, "dst_len": 0, "type": 1, "oifs": [], "nh_id": 9}], [])
    assert "nexthop object 9" in reasons[None]


def test_ssh_connection_comes_from_the_nearest_ancestor_when_become_dropped_it(tmp_path):
    for pid, ppid, env in ((40, 30, b"PATH=/bin\0"), (30, 20, b"SSH_CONNECTION=198.18.5.5 5 198.18.5.1 22\0"),
                           (20, 1, b"")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "environ").write_bytes(env)
        (tmp_path / str(pid) / "stat").write_text("%d (sh) S %d 0 0" % (pid, ppid))
    client, server = loadgen.ssh_connection({}, proc=str(tmp_path), pid=40)
    assert (str(client), str(server)) == ("198.18.5.5", "198.18.5.1")
    assert loadgen.ssh_connection({}, proc=str(tmp_path), pid=20) is None
    assert loadgen.ssh_connection({"SSH_CONNECTION": "garbage"}, pid=1) is None


# ---------------------------------------------------------------- commands

def test_xl_loadgen_argument_list_for_defaults():
    assert loadgen.build_argv(spec()) == [
        BIN, "--interface", "xl-lg0", "--netns", "xl-lg", "--size", "60", "--duration", "10",
        "--rate", "0", "--threads", "1", "--progress-file", "/run/xdplab/progress/traffic-xl-lg0.jsonl"]


def test_xl_loadgen_argument_list_with_everything():
    argv = loadgen.build_argv(spec(rate=1500000.5, size=128, duration=2.5, threads=2, cpu="0,1",
                                   src_mac="02:00:C6:12:00:0A", dst_mac="02:00:c6:12:00:0b",
                                   src_ip="198.18.1.1", dst_ip="198.19.0.1", src_port=1000, dst_port=2000,
                                   frame="dns_query", qname="www.example", flows=64,
                                   progress_file="/run/xdplab/progress/mine.jsonl"), binary="/tmp/lg")
    assert argv == ["/tmp/lg", "--interface", "xl-lg0", "--netns", "xl-lg", "--size", "128",
                    "--duration", "2.5", "--rate", "1500000.500", "--threads", "2", "--cpu", "0,1",
                    "--flows", "64", "--progress-file", "/run/xdplab/progress/mine.jsonl",
                    "--src-mac", "02:00:c6:12:00:0a", "--dst-mac", "02:00:c6:12:00:0b",
                    "--src-ip", "198.18.1.1", "--dst-ip", "198.19.0.1", "--src-port", "1000",
                    "--dst-port", "2000", "--dns", "--qname", "www.example"]


def test_xl_loadgen_without_namespace_or_cpu_leaves_the_options_out():
    argv = loadgen.build_argv(loadgen.normalize({"interface": "xl-a"}), binary="lg")
    assert "--netns" not in argv and "--cpu" not in argv


def test_moongen_argument_list():
    s = loadgen.normalize({"generator": "moongen", "interface": "1", "rate": 2000000, "size": 60,
                           "duration": 30, "threads": 2, "dst_mac": "00:15:4d:00:00:01"}, cpu_count=2)
    assert loadgen.build_argv(s) == [
        "/opt/MoonGen/build/MoonGen", "/opt/xdplab/bpf/loadgen/moongen/xl-udp-load.lua", "1",
        "--rate", "2000000", "--size", "60", "--duration", "30", "--threads", "2",
        "--dst-mac", "00:15:4d:00:00:01"]
    assert loadgen.build_argv(s, binary="/usr/local/bin/MoonGen", script="/srv/x.lua")[:2] == [
        "/usr/local/bin/MoonGen", "/srv/x.lua"]


def test_plan_counts_frames_for_paced_runs_only():
    assert loadgen.planned(spec(rate=100000, duration=2))["packets_planned"] == 200000
    assert loadgen.planned(spec())["packets_planned"] is None
    plan = loadgen.planned(spec(frame="dns_query"))
    assert (plan["dst_port"], plan["frame"], plan["qname"]) == (53, "dns_query", "xl-query.example")


# ---------------------------------------------------------------- output

def test_xl_loadgen_output_is_parsed_from_its_json_line():
    data = loadgen.parse_xl_loadgen_output("libbpf: some warning\n" + XL_OUTPUT)
    assert data["packets_sent"] == 18574912 and data["threads"][0]["batch_size"] == 64


def test_missing_xl_loadgen_output_is_an_error():
    with pytest.raises(loadgen.LoadgenError):
        loadgen.parse_xl_loadgen_output("")
    with pytest.raises(loadgen.LoadgenError):
        loadgen.parse_xl_loadgen_output('{"not": "a result"}\n')


def test_moongen_result_line_is_found_among_log_lines():
    data = loadgen.parse_moongen_output(MOONGEN_OUTPUT)
    assert (data["packets_sent"], data["rate_pps"], data["duration_s"]) == (148800000, 14880000.0, 10.0)


def test_moongen_final_tx_counter_is_the_fallback():
    data = loadgen.parse_moongen_output("[INFO]  something\n" + MOONGEN_STATS_ONLY)
    assert data["packets_sent"] == 10000000 and data["rate_pps"] == pytest.approx(1e6)
    assert data["duration_s"] == pytest.approx(10.0)
    with pytest.raises(loadgen.LoadgenError):
        loadgen.parse_moongen_output("[FATAL] Lua error in task master\n")


def test_summary_reports_requested_rate_as_offered_when_paced_and_achieved_at_line_rate():
    data = loadgen.parse_xl_loadgen_output(XL_OUTPUT)
    line = loadgen.summarize(spec(), data)
    assert line["offered_rate_pps"] == line["rate_pps"] == 6191383.6
    assert (line["packets_sent"], line["duration_s"], line["generator"]) == (18574912, 3.000123, "xl_loadgen")
    assert line["device_xdp_xmit"] == 18574912
    paced = loadgen.summarize(spec(rate=5e6), data)
    assert paced["offered_rate_pps"] == 5e6 and paced["rate_pps"] == 6191383.6
    moon = loadgen.summarize(loadgen.normalize({"generator": "moongen", "interface": "0"}),
                             loadgen.parse_moongen_output(MOONGEN_STATS_ONLY))
    assert moon["generator"] == "moongen" and moon["bytes_sent"] == 10000000 * 60


def test_error_line_picks_the_generators_sentence():
    assert loadgen.error_line("libbpf: x\nxl-loadgen: error: interface 'x' not found\n") == "interface 'x' not found"
    assert loadgen.error_line("[FATAL] Could not initialize DPDK\n") == "Could not initialize DPDK"
    assert loadgen.error_line("") == ""


# ---------------------------------------------------------------- running

OVERRUN = r"""
import json, signal, sys, time
def stop(*_):
    print(json.dumps({"packets_sent": 42, "duration_s": 0.5, "interrupted": True}))
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
time.sleep(30)
"""


def test_a_generator_that_overruns_is_interrupted_and_still_reports():
    rc, out, err, timed_out = loadgen.run([sys.executable, "-c", OVERRUN], duration=0.2, grace=0.5)
    assert timed_out and rc == 0
    assert loadgen.parse_xl_loadgen_output(out)["packets_sent"] == 42


def test_a_generator_that_ignores_sigint_is_killed():
    script = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)\n"
    rc, out, err, timed_out = loadgen.run([sys.executable, "-c", script], duration=0.1, grace=0.2,
                                          popen=_fast_kill_popen)
    assert timed_out and rc != 0


def _fast_kill_popen(*args, **kwargs):
    """A Popen whose second communicate() times out quickly (the real one waits 10 s)."""
    proc = subprocess.Popen(*args, **kwargs)
    original = proc.communicate
    calls = []

    def communicate(timeout=None):
        calls.append(timeout)
        if len(calls) == 2:
            timeout = 0.3
        return original(timeout=timeout)
    proc.communicate = communicate
    return proc


# ---------------------------------------------------------------- the module

def test_module_refuses_bad_input_before_touching_anything():
    for args, text in (({"interface": "xl-lg0", "rate": -5}, "negative"),
                       ({"interface": "xl-lg0", "size": 2000}, "60..1518"),
                       ({"interface": "xl-lg0", "duration": 0}, "duration"),
                       ({"interface": "xl-lg0", "mode": "latency"}, "throughput"),
                       ({"interface": "xl-lg0", "netns": "xl-does-not-exist-%d" % os.getpid()}, "does not exist")):
        result = run_module("traffic", args)
        assert result.failed and text in result["msg"], result


def test_module_check_mode_for_moongen_reports_the_command_and_sends_nothing(tmp_path):
    fake = tmp_path / "MoonGen"
    fake.write_text("#!/bin/sh\necho should-not-run >&2\nexit 3\n")
    fake.chmod(0o755)
    script = tmp_path / "xl-udp-load.lua"
    script.write_text("-- stand-in\n")
    result = run_module("traffic", {"generator": "moongen", "interface": "0", "rate": 1000, "duration": 3,
                                    "binary": str(fake), "script": str(script)}, check=True)
    assert not result.failed, result
    assert result.changed and result["packets_sent"] == 0
    assert result["command"] == [str(fake), str(script), "0", "--rate", "1000", "--size", "60",
                                 "--duration", "3", "--threads", "1"]
    assert result["planned"]["packets_planned"] == 3000


def test_module_fails_clearly_when_the_generator_binary_is_missing():
    result = run_module("traffic", {"generator": "moongen", "interface": "0", "binary": "/nonexistent/MoonGen"},
                        check=True)
    assert result.failed and "/nonexistent/MoonGen" in result["msg"]


# ---------------------------------------------------------------- the MoonGen script

# Stand-ins for MoonGen's modules and argparse, enough to run xl-udp-load.lua's
# configure/master/loadTask under plain Lua 5.1: every send "sends" 63 frames and
# advances the clock by 1 ms; the run ends after 100 sends per task.
LUA_HARNESS = r"""
local sends, now = {}, 0.0
local log_lines = {}
package.preload["moongen"] = function()
  local mg = {}
  function mg.setRuntime(s) mg.runtime = s end
  function mg.getTime() return now end
  local running_calls = 0
  function mg.running() running_calls = running_calls + 1; return running_calls % 101 ~= 0 end
  function mg.startTask(name, ...)
    local args = {...}
    return { wait = function() return _G[name](unpack(args)) end }
  end
  return mg
end
package.preload["memory"] = function()
  return { createMemPool = function(init)
    local fields, bytes = {}, {}
    local buf = { getUdpPacket = function() return { fill = function(_, t) for k, v in pairs(t) do fields[k] = v end end } end,
                  getBytes = function() return bytes end }
    init(buf)
    FILLED, BYTES = fields, bytes
    return { bufArray = function() return {
      alloc = function(self, size) ALLOC = size end,
      offloadUdpChecksums = function() OFFLOAD = "udp" end,
      offloadIPChecksums = function() OFFLOAD = "ip" end } end }
  end }
end
package.preload["device"] = function()
  return {
    config = function(t) CONFIG = t; return { getTxQueue = function(_, i) return {
      id = i,
      setRateMpps = function(_, mpps, size) RATES = (RATES or "") .. string.format("%.6f@%d;", mpps, size) end,
      send = function(_, bufs) now = now + 0.001; return 63 end } end } end,
    waitForLinks = function() end }
end
package.preload["log"] = function()
  return { fatal = function(_, fmt, ...) error(string.format(fmt, ...)) end,
           warn = function() end, info = function() end }
end
package.preload["ffi"] = function() return {} end

-- argparse stand-in: --long options with one value, flags, positional arguments.
local Parser = {}
Parser.__index = Parser
local function element(parser, spec, kind)
  local name = spec:match("%-%-([%w%-]+)$") or spec
  local e = { target = name:gsub("%-", "_"), kind = kind }
  function e:default(v) self.def = v; return self end
  function e:convert(f) self.conv = f; return self end
  if kind == "argument" then table.insert(parser.args, e) else parser.opts["--" .. name] = e end
  return e
end
function Parser:description() return self end
function Parser:argument(name) return element(self, name, "argument") end
function Parser:option(spec) return element(self, spec, "option") end
function Parser:flag(spec) return element(self, spec, "flag") end
function Parser:error(msg) io.stderr:write("Error: " .. msg .. "\n"); os.exit(2) end
function Parser:parse()
  local out, pos, i = {}, 1, 1
  while i <= #ARGV do
    local a = ARGV[i]
    local e = self.opts[a]
    if e and e.kind == "flag" then out[e.target] = true
    elseif e then i = i + 1; out[e.target] = ARGV[i]
    elseif a:sub(1, 2) == "--" then self:error("unknown option " .. a)
    else local p = self.args[pos]; if not p then self:error("too many arguments") end; out[p.target] = a; pos = pos + 1 end
    i = i + 1
  end
  for _, e in pairs(self.opts) do if out[e.target] == nil and e.def ~= nil then out[e.target] = e.def end end
  for _, e in ipairs(self.args) do if out[e.target] == nil then self:error("missing argument " .. e.target) end end
  local all = {}
  for _, e in pairs(self.opts) do table.insert(all, e) end
  for _, e in ipairs(self.args) do table.insert(all, e) end
  for _, e in ipairs(all) do
    if e.conv and out[e.target] ~= nil then
      local v = e.conv(out[e.target]); if v == nil then self:error("malformed argument " .. tostring(out[e.target])) end
      out[e.target] = v
    end
  end
  return out
end

ARGV = {...}
dofile(SCRIPT)
local parser = setmetatable({ args = {}, opts = {} }, Parser)
master(configure(parser))
io.stderr:write(string.format("RATES=%s ALLOC=%s OFFLOAD=%s TXQ=%s PKTLEN=%s DNS0=%s\n", tostring(RATES),
  tostring(ALLOC), tostring(OFFLOAD), tostring(CONFIG.txQueues), tostring(FILLED.pktLength), tostring(BYTES[42])))
"""


def _lua():
    return shutil.which("lua5.1") or shutil.which("luajit")


def _run_lua_script(tmp_path, argv):
    harness = tmp_path / "harness.lua"
    harness.write_text("SCRIPT = %s\n%s" % (json.dumps(LUA_SCRIPT), LUA_HARNESS))
    return subprocess.run([_lua(), str(harness)] + argv, capture_output=True, text=True, timeout=60, check=False)


needs_lua = pytest.mark.skipif(_lua() is None, reason="no Lua 5.1 interpreter (apt install lua5.1)")


@needs_lua
def test_moongen_script_accepts_the_modules_arguments_and_reports_what_it_sent(tmp_path):
    s = loadgen.normalize({"generator": "moongen", "interface": "0", "rate": 2000000, "size": 64, "duration": 5,
                           "threads": 2, "dst_mac": "00:15:4d:00:00:01", "src_ip": "198.18.1.1"}, cpu_count=2)
    argv = loadgen.build_argv(s)[2:]          # what follows MoonGen and the script path
    proc = _run_lua_script(tmp_path, argv)
    assert proc.returncode == 0, proc.stderr
    data = loadgen.parse_moongen_output(proc.stdout)
    # two tasks, 100 sends of 63 frames each, 0.1 s of (stand-in) time
    assert data["packets_sent"] == 2 * 100 * 63 and len(data["threads"]) == 2
    assert data["size"] == 64 and data["offered_rate_pps"] == 2000000
    # rate split over the two queues, in Mpps for frames of 64 bytes
    assert "RATES=1.000000@64;1.000000@64;" in proc.stderr and "ALLOC=64" in proc.stderr
    assert "TXQ=2" in proc.stderr and "OFFLOAD=ip" in proc.stderr
    summary = loadgen.summarize(s, data)
    assert summary["packets_sent"] == 12600 and summary["offered_rate_pps"] == 2000000


@needs_lua
def test_moongen_script_builds_dns_queries_and_sends_at_line_rate_without_a_rate(tmp_path):
    s = loadgen.normalize({"generator": "moongen", "interface": "0", "frame": "dns_query", "duration": 1},
                          cpu_count=2)
    proc = _run_lua_script(tmp_path, loadgen.build_argv(s)[2:])
    assert proc.returncode == 0, proc.stderr
    data = loadgen.parse_moongen_output(proc.stdout)
    assert data["dns"] is True and data["size"] == 76
    # no rate limiter at line rate; UDP checksums for the queries; IP length covers the query
    assert "RATES=nil" in proc.stderr and "OFFLOAD=udp" in proc.stderr and "PKTLEN=76" in proc.stderr
    assert "DNS0=88" in proc.stderr            # the DNS id 0x584c ("XL") starts the UDP payload


@needs_lua
def test_moongen_script_refuses_a_size_out_of_range(tmp_path):
    proc = _run_lua_script(tmp_path, ["0", "--size", "20"])
    assert proc.returncode != 0 and "60..1518" in proc.stderr


# ---------------------------------------------------------------- the guard on (fake) netlink

class _Msg(dict):
    """Enough of a pyroute2 message: fields by key, attributes by get_attr."""

    def __init__(self, fields, attrs):
        super(_Msg, self).__init__(fields)
        self.attrs = attrs

    def get_attr(self, name):
        return self.attrs.get(name)


class _FakeIPRoute:
    def __init__(self, links, routes4, routes6, addrs, route_to=None):
        self.links, self.routes, self.addrs, self.route_to = links, {2: routes4, 10: routes6}, addrs, route_to
        self.gets = []

    def get_links(self):
        return self.links

    def get_addr(self):
        return self.addrs

    def route(self, cmd, family=None, dst=None):
        if cmd == "dump":
            return self.routes[family]
        self.gets.append(dst)
        if self.route_to is None:
            raise OSError("no route")
        return [_Msg({}, {"RTA_OIF": self.route_to})]


def _fake_ipr(route_to=None, routes4=(), routes6=()):
    links = [_Msg({"index": 1}, {"IFLA_IFNAME": "lo"}),
             _Msg({"index": 2}, {"IFLA_IFNAME": "mgmt0"}),
             _Msg({"index": 3}, {"IFLA_IFNAME": "xl-lg0", "IFLA_LINK": 4, "IFLA_LINK_NETNSID": 0,
                                 "IFLA_LINKINFO": _Msg({}, {"IFLA_INFO_KIND": "veth"})}),
             _Msg({"index": 5}, {"IFLA_IFNAME": "test0"})]
    addrs = [_Msg({"index": 2}, {"IFA_LOCAL": "192.0.2.20", "IFA_ADDRESS": "192.0.2.20"}),
             _Msg({"index": 3}, {"IFA_LOCAL": "198.18.0.1", "IFA_ADDRESS": "198.18.0.1"})]
    return _FakeIPRoute(links, list(routes4), list(routes6), addrs, route_to)


def test_interface_refusal_reads_multipath_default_routes():
    hop = {"oif": 5}
    route = _Msg({"dst_len": 0, "type": 1, "table": 254}, {"RTA_MULTIPATH": [{"oif": 2}, hop], "RTA_TABLE": 254})
    ipr = _fake_ipr(routes4=[route])
    assert "test0 (root namespace) carries the default route (IPv4)" in loadgen.interface_refusal(ipr, "test0")
    assert loadgen.interface_refusal(ipr, "xl-lg0") is None


def test_interface_refusal_checks_the_route_to_the_ssh_client_only_in_the_modules_own_namespace():
    ssh = loadgen.ssh_connection({"SSH_CONNECTION": "192.0.2.9 5 192.0.2.20 22"}, pid=1)
    ipr = _fake_ipr(route_to=5)
    assert "carries the route to the SSH client 192.0.2.9" in loadgen.interface_refusal(ipr, "test0", None, ssh)
    ipr = _fake_ipr(route_to=5)
    assert loadgen.interface_refusal(ipr, "test0", "xl-lg", ssh) is None and ipr.gets == []
    # the server address is refused in any namespace
    assert "holds 192.0.2.20" in loadgen.interface_refusal(_fake_ipr(), "mgmt0", "xl-lg", ssh)
    latency_msg = loadgen.interface_refusal(_fake_ipr(), "mgmt0", "xl-lg", ssh, mode="latency")
    assert latency_msg.startswith("interface mgmt0 in namespace xl-lg holds 192.0.2.20")
    assert "redirects every IPv4 frame of its queue" in latency_msg


def test_interface_refusal_refuses_everything_behind_an_unresolved_nexthop_object():
    ipr = _fake_ipr(routes6=[_Msg({"dst_len": 0, "type": 1, "table": 254}, {"RTA_NH_ID": 7})])
    assert "nexthop object 7" in loadgen.interface_refusal(ipr, "xl-lg0")


# ---------------------------------------------------------------- flows and progress

def test_flows_default_to_one_and_leave_the_argument_list_as_before():
    s = spec(progress_file="")
    assert s["flows"] == 1 and s["progress_file"] is None
    assert "--flows" not in loadgen.build_argv(s) and "--progress-file" not in loadgen.build_argv(s)


@pytest.mark.parametrize("flows, src_port, text", [
    (0, None, "flows 0 is out of range"),
    (65537, None, "flows 65537 is out of range"),
    ("many", None, "flows 'many' is not a number"),
    (65530, 9, "flows 65530 from source port 9 would go past port 65535"),
    (2, 65535, "flows 2 from source port 65535 would go past port 65535"),
])
def test_flows_are_refused_outside_the_port_range(flows, src_port, text):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(flows=flows, src_port=src_port)
    assert err.value.msg.startswith(text), err.value.msg
    assert err.value.details["option"] == "flows"


def test_flows_fill_the_ports_up_to_65535_exactly():
    assert spec(flows=65527)["flows"] == 65527
    assert spec(flows=25536, frame="dns_query")["flows"] == 25536   # 40000 .. 65535


def test_moongen_refuses_flows():
    with pytest.raises(loadgen.LoadgenError) as err:
        loadgen.normalize({"generator": "moongen", "interface": "0", "flows": 4})
    assert "flows is not supported with generator moongen" in err.value.msg


def test_progress_file_defaults_to_one_per_interface_under_run_xdplab():
    assert spec()["progress_file"] == "/run/xdplab/progress/traffic-xl-lg0.jsonl"
    assert loadgen.planned(spec())["progress_file"] == "/run/xdplab/progress/traffic-xl-lg0.jsonl"
    assert loadgen.normalize({"generator": "moongen", "interface": "0"})["progress_file"] is None


@pytest.mark.parametrize("path", [
    "/tmp/progress.jsonl", "/run/xdplab/progress", "/run/xdplab/progress/", "/run/xdplab/progress/../lab.lock",
    "/run/xdplab/progress/sub/x.jsonl", "relative.jsonl", "/run/xdplab/progress/.hidden",
])
def test_progress_file_must_be_a_file_directly_in_the_progress_directory(path):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(progress_file=path)
    assert err.value.details["option"] == "progress_file"


def test_run_makes_the_progress_directory_and_removes_the_file_even_when_the_generator_fails(tmp_path, monkeypatch):
    root = tmp_path / "progress"
    target = root / "traffic-x.jsonl"
    seen = {}

    class Proc(object):
        returncode = 1

        def __init__(self, argv, **kwargs):
            seen["dir_existed"] = root.is_dir()
            target.write_text('{"elapsed_s": 1.0}\n')

        def communicate(self, timeout=None):
            return "", "xl-loadgen: error: boom\n"

    rc, out, err, timed_out = loadgen.run(["lg", "--progress-file", str(target)], 1.0, popen=Proc)
    assert rc == 1 and seen["dir_existed"] and not target.exists()


def test_summary_carries_flows_and_the_steering_the_generator_reports():
    data = {"packets_sent": 10, "duration_s": 1.0, "rate_pps": 10.0, "flows": 64, "rx_queues": 2,
            "steering": "cpumap", "steered_queues": [{"queue": 0, "cpu": 0}, {"queue": 1, "cpu": 1}]}
    result = loadgen.summarize(spec(flows=64), data)
    assert result["flows"] == 64 and result["rx_queues"] == 2 and result["steering"] == "cpumap"
    assert result["steered_queues"][1] == {"queue": 1, "cpu": 1}


@pytest.mark.parametrize("warmup, text", [(-1, "warmup -1.0 s is out of range"), (10, "warmup 10.0 s is out of range"),
                                          ("soon", "warmup 'soon' is not a number")])
def test_warmup_must_leave_a_window(warmup, text):
    with pytest.raises(loadgen.LoadgenError) as err:
        spec(warmup=warmup, duration=10)
    assert err.value.msg.startswith(text) and err.value.details["option"] == "warmup"


def test_warmup_is_passed_on_only_when_given():
    assert "--warmup" not in loadgen.build_argv(spec())
    argv = loadgen.build_argv(spec(warmup=0.25, duration=2))
    assert argv[argv.index("--warmup") + 1] == "0.25"


def test_summary_carries_the_window():
    window = {"start_s": 0.5, "seconds": 1.5, "sent": 15, "rate_pps": 10.0, "device_xdp_xmit": 12,
              "device_xdp_xmit_errors": 3, "delivered_pps": 8.0}
    result = loadgen.summarize(spec(), {"packets_sent": 20, "duration_s": 2.0, "warmup_s": 0.5, "window": window})
    assert result["window"] == window and result["warmup_s"] == 0.5


def test_nice_is_bounded_and_passed_on_only_when_given():
    assert "--nice" not in loadgen.build_argv(spec())
    argv = loadgen.build_argv(spec(nice=-20))
    assert argv[argv.index("--nice") + 1] == "-20"
    for bad in (-21, 20, "high"):
        with pytest.raises(loadgen.LoadgenError) as err:
            spec(nice=bad)
        assert err.value.details["option"] == "nice"
