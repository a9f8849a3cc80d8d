# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load generators behind xdplab.offload.traffic: argument lists, runs, results.

Two generators:

* ``xl_loadgen`` (emulated lab): ``bpf/loadgen/build/xl-loadgen``, which injects
  frames into a veth end with BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES and
  prints one JSON object on stdout.
* ``moongen`` (physical testbed only): MoonGen running
  ``bpf/loadgen/moongen/xl-udp-load.lua`` on a DPDK port; the script prints one
  ``XL-LOADGEN-RESULT {json}`` line.

Mode ``latency`` of the module runs the DNS latency client instead; its
logic is in ``latency.py`` (this module only refuses it in :func:`normalize`).

Plain functions, no Ansible imports: the module validates with
:func:`normalize`, builds the command with :func:`build_argv`, runs it with
:func:`run` and turns the output into the module's return values with
:func:`parse_output` and :func:`summarize`.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math
import os
import re
import signal
import socket
import subprocess

GENERATORS = ("xl_loadgen", "moongen")
# "latency" is run by the DNS latency client (module_utils/latency.py), not here.
MODES = ("throughput", "latency")
FRAMES = ("udp", "dns_query")

DEFAULT_BINARY = {
    "xl_loadgen": "/opt/xdplab/bpf/loadgen/build/xl-loadgen",
    "moongen": "/opt/MoonGen/build/MoonGen",
}
DEFAULT_MOONGEN_SCRIPT = "/opt/xdplab/bpf/loadgen/moongen/xl-udp-load.lua"
NETNS_DIRS = ("/run/netns", "/var/run/netns")

MIN_SIZE = 60        # frame length without FCS: a 64-byte frame on the wire
MAX_SIZE = 1518      # what a veth with MTU 1500 accepts (MTU + 14 + VLAN tag)
MAX_DURATION = 86400.0
MAX_THREADS = 64
# Rates above this are certainly a typo (100 GbE line rate is ~148.8 Mpps).
MAX_RATE = 1e9

DEFAULTS = {
    "src_mac": "02:00:c6:12:00:01",
    "dst_mac": "02:00:c6:12:00:02",
    "src_ip": "198.18.0.1",
    "dst_ip": "198.18.0.2",
    "src_port": 9,
    "dst_port": 9,
    "dns_src_port": 40000,
    "dns_port": 53,
    "qname": "xl-query.example",
}

MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,255}$")
RESULT_PREFIX = "XL-LOADGEN-RESULT "
# libmoon's "plain" final TX line, the fallback when the script's own line is missing.
MOONGEN_TX_FINAL_RE = re.compile(
    r"TX\S*:\s*(?P<mpps>[0-9.]+)\s+\(StdDev [0-9.]+\)\s+Mpps.*?total\s+(?P<packets>\d+)\s+packets")


class LoadgenError(Exception):
    """A request the generator cannot carry out; ``msg`` is one actionable sentence."""

    def __init__(self, msg, **details):
        super(LoadgenError, self).__init__(msg)
        self.msg = msg
        self.details = details


# ---------------------------------------------------------------- validation

def _ipv4(value, name):
    try:
        socket.inet_pton(socket.AF_INET, value)
    except (OSError, TypeError, ValueError):
        raise LoadgenError("%s %r is not an IPv4 address" % (name, value))
    return value


def _port(value, name):
    if value is None:
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise LoadgenError("%s %r is not a port number" % (name, value))
    if not 0 <= port <= 65535:
        raise LoadgenError("%s %d is out of range (0..65535)" % (name, port))
    return port


def _cpus(value):
    """``cpu`` as a list of CPU numbers: None, an int, "0,1", or a list."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = str(value).split(",")
    cpus = []
    for item in items:
        try:
            cpu = int(str(item).strip())
        except ValueError:
            raise LoadgenError("cpu %r is not a CPU number or a comma-separated list of them" % (value,))
        if cpu < 0:
            raise LoadgenError("cpu %d is negative" % cpu)
        cpus.append(cpu)
    return cpus


def _qname_wire_length(name):
    labels = [label for label in name.split(".") if label]
    if not labels or any(len(label) > 63 for label in labels) or not all(
            re.match(r"^[A-Za-z0-9_-]+$", label) for label in labels):
        raise LoadgenError("qname %r is not a DNS name (letters, digits, '-' and '_' in dot-separated labels "
                           "of at most 63 characters)" % (name,))
    return sum(1 + len(label) for label in labels) + 1


def dns_frame_length(qname):
    """Length of a DNS A query frame for ``qname`` without FCS (Ethernet + IPv4 + UDP + DNS)."""
    return 14 + 20 + 8 + 12 + _qname_wire_length(qname) + 4


def normalize(params, cpu_count=None):
    """Validate the module parameters; return the normalized request or raise LoadgenError.

    ``params`` uses the module's option names. ``cpu_count`` (default: this
    machine's) bounds the CPU numbers for the emulated generator.
    """
    p = dict(params)
    generator = p.get("generator") or "xl_loadgen"
    if generator not in GENERATORS:
        raise LoadgenError("generator %r is not supported; use one of %s" % (generator, ", ".join(GENERATORS)))
    mode = p.get("mode") or "throughput"
    if mode not in MODES:
        raise LoadgenError("mode %r is not supported; use one of %s" % (mode, ", ".join(MODES)))
    if mode != "throughput":
        raise LoadgenError("mode %s is not run by the load generator; latency.normalize validates it" % mode)
    interface = p.get("interface")
    if interface is None or str(interface) == "":
        raise LoadgenError("interface is required: the generator's interface (emulated lab) or DPDK port (MoonGen)")
    interface = str(interface)
    netns = p.get("netns") or None

    rate = p.get("rate", 0)
    try:
        rate = float(rate if rate is not None else 0)
    except (TypeError, ValueError):
        raise LoadgenError("rate %r is not a number of packets per second" % (rate,))
    if rate < 0 or math.isnan(rate):
        raise LoadgenError("rate %s is negative; give packets per second, or 0 for line rate" % rate)
    if rate > MAX_RATE:
        raise LoadgenError("rate %.0f pps is above %.0f pps; give packets per second" % (rate, MAX_RATE))

    duration = p.get("duration", 10)
    try:
        duration = float(duration)
    except (TypeError, ValueError):
        raise LoadgenError("duration %r is not a number of seconds" % (duration,))
    if not 0 < duration <= MAX_DURATION:
        raise LoadgenError("duration %s s is out of range; give 0 < duration <= %d seconds" % (duration, MAX_DURATION))

    frame = p.get("frame") or "udp"
    if frame not in FRAMES:
        raise LoadgenError("frame %r is not supported; use one of %s" % (frame, ", ".join(FRAMES)))
    dns = frame == "dns_query"
    qname = p.get("qname") or DEFAULTS["qname"]
    natural = dns_frame_length(qname) if dns else MIN_SIZE
    size = p.get("size")
    if size is None:
        size = max(natural, MIN_SIZE)
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise LoadgenError("size %r is not a frame length in bytes" % (size,))
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise LoadgenError("size %d is out of range: the frame length without FCS must be %d..%d bytes "
                           "(60 = a 64-byte frame on the wire)" % (size, MIN_SIZE, MAX_SIZE))
    if dns and size < natural:
        raise LoadgenError("size %d is too small for a DNS query for %s (%d bytes)" % (size, qname, natural))

    threads = p.get("threads") or 1
    try:
        threads = int(threads)
    except (TypeError, ValueError):
        raise LoadgenError("threads %r is not a number" % (threads,))
    if not 1 <= threads <= MAX_THREADS:
        raise LoadgenError("threads %d is out of range (1..%d)" % (threads, MAX_THREADS))

    cpus = _cpus(p.get("cpu"))
    if cpu_count is None:
        cpu_count = os.cpu_count() or 1
    if generator == "xl_loadgen":
        bad = [c for c in cpus if c >= cpu_count]
        if bad:
            raise LoadgenError("cpu %s does not exist: this machine has CPUs 0..%d" % (bad[0], cpu_count - 1))
        if netns is not None and not NAME_RE.match(netns):
            raise LoadgenError("netns %r is not a network namespace name" % (netns,))
    else:
        if not re.match(r"^\d+$", interface):
            raise LoadgenError("interface %r is not a DPDK port number; with generator moongen, interface is the "
                               "port MoonGen sends on (0, 1, ...)" % (interface,))
        if netns:
            raise LoadgenError("netns is not supported with generator moongen: MoonGen drives a DPDK port, "
                               "not a kernel interface")

    spec = {
        "generator": generator,
        "mode": mode,
        "interface": interface,
        "netns": netns,
        "rate": rate,
        "size": size,
        "duration": duration,
        "threads": threads,
        "cpus": cpus,
        "frame": frame,
        "dns": dns,
        "qname": qname,
    }
    spec.update(address_fields(p))
    return spec


def address_fields(p):
    """Validated src/dst MACs, IPv4 addresses and ports from module-style params (None = default)."""
    fields = {}
    for key in ("src_mac", "dst_mac"):
        value = p.get(key)
        if value is not None and not MAC_RE.match(str(value)):
            raise LoadgenError("%s %r is not a MAC address like 02:00:c6:12:00:01" % (key, value))
        fields[key] = str(value).lower() if value is not None else None
    for key in ("src_ip", "dst_ip"):
        value = p.get(key)
        fields[key] = _ipv4(value, key) if value is not None else None
    for key in ("src_port", "dst_port"):
        fields[key] = _port(p.get(key), key)
    return fields


def resolve_binary(spec, binary=None):
    """The generator executable to run: ``binary`` or the generator's default."""
    return binary or DEFAULT_BINARY[spec["generator"]]


def netns_path(name):
    for directory in NETNS_DIRS:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


# ---------------------------------------------------------------- commands

def _rate_arg(rate):
    return ("%d" % rate) if float(rate).is_integer() else ("%.3f" % rate)


def _duration_arg(duration):
    return ("%d" % duration) if float(duration).is_integer() else ("%.6g" % duration)


def xl_loadgen_argv(spec, binary):
    """Argument list for xl-loadgen."""
    argv = [binary, "--interface", spec["interface"]]
    if spec.get("netns"):
        argv += ["--netns", spec["netns"]]
    argv += ["--size", str(spec["size"]), "--duration", _duration_arg(spec["duration"]),
             "--rate", _rate_arg(spec["rate"]), "--threads", str(spec["threads"])]
    if spec.get("cpus"):
        argv += ["--cpu", ",".join(str(c) for c in spec["cpus"])]
    argv += _common_frame_args(spec)
    return argv


def moongen_argv(spec, binary, script=DEFAULT_MOONGEN_SCRIPT):
    """Argument list for MoonGen running xl-udp-load.lua on DPDK port ``interface``."""
    argv = [binary, script, spec["interface"],
            "--rate", _rate_arg(spec["rate"]), "--size", str(spec["size"]),
            "--duration", _duration_arg(spec["duration"]), "--threads", str(spec["threads"])]
    argv += _common_frame_args(spec)
    return argv


def _common_frame_args(spec):
    argv = []
    for key, flag in (("src_mac", "--src-mac"), ("dst_mac", "--dst-mac"), ("src_ip", "--src-ip"),
                      ("dst_ip", "--dst-ip"), ("src_port", "--src-port"), ("dst_port", "--dst-port")):
        if spec.get(key) is not None:
            argv += [flag, str(spec[key])]
    if spec.get("dns"):
        argv.append("--dns")
        if spec.get("qname") and spec["qname"] != DEFAULTS["qname"]:
            argv += ["--qname", spec["qname"]]
    return argv


def build_argv(spec, binary=None, script=None):
    binary = resolve_binary(spec, binary)
    if spec["generator"] == "moongen":
        return moongen_argv(spec, binary, script or DEFAULT_MOONGEN_SCRIPT)
    return xl_loadgen_argv(spec, binary)


def planned(spec):
    """What a run would send, for check mode: frames and addresses, no measurement."""
    dns = spec["dns"]
    plan = {
        "generator": spec["generator"],
        "interface": spec["interface"],
        "netns": spec["netns"],
        "size": spec["size"],
        "duration_s": spec["duration"],
        "offered_rate_pps": spec["rate"] or None,
        "threads": spec["threads"],
        "cpus": spec["cpus"],
        "frame": spec["frame"],
        "src_mac": spec["src_mac"] or (DEFAULTS["src_mac"] if spec["generator"] == "xl_loadgen" else "port"),
        "dst_mac": spec["dst_mac"] or DEFAULTS["dst_mac"],
        "src_ip": spec["src_ip"] or DEFAULTS["src_ip"],
        "dst_ip": spec["dst_ip"] or DEFAULTS["dst_ip"],
        "src_port": spec["src_port"] if spec["src_port"] is not None else (
            DEFAULTS["dns_src_port"] if dns else DEFAULTS["src_port"]),
        "dst_port": spec["dst_port"] if spec["dst_port"] is not None else (
            DEFAULTS["dns_port"] if dns else DEFAULTS["dst_port"]),
    }
    if dns:
        plan["qname"] = spec["qname"]
    # Paced runs send an exact number of frames; line rate is open-ended.
    plan["packets_planned"] = int(round(spec["rate"] * spec["duration"])) if spec["rate"] else None
    return plan


# ---------------------------------------------------------------- running

def run(argv, duration, grace=30.0, popen=subprocess.Popen):
    """Run the generator; return (rc, stdout, stderr, timed_out).

    A generator still running ``grace`` seconds after ``duration`` gets SIGINT
    (xl-loadgen then stops and still prints its counts), and SIGKILL 10 s later.
    Only the process started here is signalled, by its PID.
    """
    proc = popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=duration + grace)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    except BaseException:
        # Interrupted ourselves: do not leave the generator running.
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    return proc.returncode, out or "", err or "", timed_out


def error_line(stderr):
    """The generator's own error sentence from its stderr, if any."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    for line in reversed(lines):
        for prefix in ("xl-loadgen: error: ", "xl-latency: error: ", "[FATAL] ", "[ERROR] "):
            if prefix in line:
                return line.split(prefix, 1)[1].strip()
    return lines[-1] if lines else ""


# ---------------------------------------------------------------- output

def parse_xl_loadgen_output(stdout):
    """The JSON object xl-loadgen prints (the last line that is one)."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "packets_sent" in data:
                return data
    raise LoadgenError("xl-loadgen printed no result; see stdout/stderr", stdout=stdout)


def parse_moongen_output(stdout):
    """The result of xl-udp-load.lua: its XL-LOADGEN-RESULT line or, failing that,
    libmoon's final TX statistics line (``... total N packets ...``)."""
    text = stdout or ""
    # libmoon colours its output; strip ANSI escapes before matching.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for line in reversed(plain.splitlines()):
        if RESULT_PREFIX in line:
            try:
                data = json.loads(line.split(RESULT_PREFIX, 1)[1].strip())
            except ValueError:
                continue
            if isinstance(data, dict) and "packets_sent" in data:
                return data
    for line in reversed(plain.splitlines()):
        match = MOONGEN_TX_FINAL_RE.search(line)
        if match:
            packets = int(match.group("packets"))
            mpps = float(match.group("mpps"))
            return {"generator": "moongen", "packets_sent": packets,
                    "rate_pps": mpps * 1e6,
                    "duration_s": packets / (mpps * 1e6) if mpps > 0 else 0.0,
                    "source": "libmoon_tx_counter"}
    raise LoadgenError("MoonGen printed no result line (XL-LOADGEN-RESULT or a final TX counter); see stdout/stderr",
                       stdout=stdout)


def parse_output(generator, stdout):
    if generator == "moongen":
        return parse_moongen_output(stdout)
    return parse_xl_loadgen_output(stdout)


def summarize(spec, data):
    """The module's return values from a parsed generator result.

    ``offered_rate_pps`` is the requested rate, or the achieved one at line rate
    (rate 0), where the generator offers whatever it manages.
    """
    packets = int(data.get("packets_sent", 0))
    duration = float(data.get("duration_s") or 0.0)
    rate = data.get("rate_pps")
    if rate is None:
        rate = packets / duration if duration > 0 else 0.0
    rate = float(rate)
    result = {
        "generator": spec["generator"],
        "mode": spec["mode"],
        "interface": spec["interface"],
        "netns": spec["netns"],
        "size": int(data.get("size", spec["size"])),
        "packets_sent": packets,
        "bytes_sent": int(data.get("bytes_sent", packets * spec["size"])),
        "duration_s": duration,
        "rate_pps": rate,
        "offered_rate_pps": spec["rate"] if spec["rate"] > 0 else rate,
        "requested_rate_pps": spec["rate"],
        "interrupted": bool(data.get("interrupted", False)),
        "threads": data.get("threads", []),
    }
    for key in ("calls", "late_restarts", "wall_s", "cpu_s", "device_xdp_xmit", "device_xdp_xmit_errors"):
        if key in data:
            result[key] = data[key]
    return result
