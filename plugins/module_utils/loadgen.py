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

import ipaddress
import json
import math
import os
import re
import signal
import socket
import subprocess

from ansible_collections.xdplab.offload.plugins.module_utils import safety

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
# A run is bounded by default: at most DEFAULT_MAX_DURATION seconds and, when it is
# paced (or measures latency), DEFAULT_MAX_PACKETS frames. The options max_duration
# and max_packets raise the bounds explicitly, never beyond MAX_DURATION / MAX_PACKETS.
DEFAULT_MAX_DURATION = 3600.0
MAX_DURATION = 86400.0
DEFAULT_MAX_PACKETS = 1000000000
MAX_PACKETS = 10 ** 12
MAX_THREADS = 64
MAX_FLOWS = 65536
# Live progress: xl-loadgen appends {"elapsed_s", "duration_s", "sent", "pps"} about every
# second to a file directly in this directory (removed when the run ends).
PROGRESS_ROOT = "/run/xdplab/progress"
PROGRESS_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,199}$")
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
        raise LoadgenError("%s %r is not an IPv4 address" % (name, value), option=name)
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
    limits = run_limits(p)

    rate = p.get("rate", 0)
    try:
        rate = float(rate if rate is not None else 0)
    except (TypeError, ValueError):
        raise LoadgenError("rate %r is not a number of packets per second" % (rate,))
    if rate < 0 or math.isnan(rate):
        raise LoadgenError("rate %s is negative; give packets per second, or 0 for line rate" % rate)
    if rate > MAX_RATE:
        raise LoadgenError("rate %.0f pps is above %.0f pps; give packets per second" % (rate, MAX_RATE))

    duration = check_duration(p.get("duration", 10), limits)
    warmup = _warmup(p.get("warmup"), duration)
    if rate > 0:
        check_packets(rate * duration, limits, "rate x duration")

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

    flows = _flows(p.get("flows"), p.get("src_port"), dns)

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
        kernel_target(interface, netns)
    else:
        if not re.match(r"^\d+$", interface):
            raise LoadgenError("interface %r is not a DPDK port number; with generator moongen, interface is the "
                               "port MoonGen sends on (0, 1, ...)" % (interface,))
        if netns:
            raise LoadgenError("netns is not supported with generator moongen: MoonGen drives a DPDK port, "
                               "not a kernel interface")
        if flows > 1:
            raise LoadgenError("flows is not supported with generator moongen (xl-udp-load.lua sends one flow)",
                               option="flows")

    # after kernel_target: the default name is made from the (checked) interface name
    progress_file = progress_path(p.get("progress_file"), interface) if generator == "xl_loadgen" else None
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
        "limits": limits,
        "flows": flows,
        "progress_file": progress_file,
        "warmup": warmup,
        "nice": _nice(p.get("nice")),
    }
    spec.update(address_fields(p))
    return spec


def _flows(value, src_port, dns):
    """``flows`` as a number of UDP source ports 1..65536 that fit above the first source port."""
    flows = 1 if value is None else value
    try:
        flows = int(flows)
    except (TypeError, ValueError):
        raise LoadgenError("flows %r is not a number of flows" % (flows,), option="flows")
    if not 1 <= flows <= MAX_FLOWS:
        raise LoadgenError("flows %d is out of range (1..%d)" % (flows, MAX_FLOWS), option="flows")
    first = _port(src_port, "src_port")
    if first is None:
        first = DEFAULTS["dns_src_port"] if dns else DEFAULTS["src_port"]
    if first + flows - 1 > 65535:
        raise LoadgenError("flows %d from source port %d would go past port 65535; give a lower src_port"
                           % (flows, first), option="flows")
    return flows


def _nice(value):
    """The generator's scheduling priority (nice -20..19), None = inherited."""
    if value is None:
        return None
    try:
        nice = int(value)
    except (TypeError, ValueError):
        raise LoadgenError("nice %r is not a priority -20..19" % (value,), option="nice")
    if not -20 <= nice <= 19:
        raise LoadgenError("nice %d is out of range (-20..19)" % nice, option="nice")
    return nice


def _warmup(value, duration):
    """Seconds from the first frame to the measuring window (None: the generator's default)."""
    if value is None:
        return None
    try:
        warmup = float(value)
    except (TypeError, ValueError):
        raise LoadgenError("warmup %r is not a number of seconds" % (value,), option="warmup")
    if math.isnan(warmup) or not 0 <= warmup < duration:
        raise LoadgenError("warmup %s s is out of range; give 0 <= warmup < duration (%g s)" % (warmup, duration),
                           option="warmup")
    return warmup


def progress_path(value, interface):
    """The progress file: None (unset) is PROGRESS_ROOT/traffic-<interface>.jsonl, '' is none (None).

    A given path must name a file directly in PROGRESS_ROOT (resolved: no link or '..' out of it).
    """
    if value is None:
        value = os.path.join(PROGRESS_ROOT, "traffic-%s.jsonl" % interface)
    if value == "":
        return None
    try:
        real = safety.strictly_under(str(value), PROGRESS_ROOT, "progress_file")
    except safety.UnsafeInput as exc:
        raise _unsafe(exc)
    if os.path.dirname(real) != os.path.realpath(PROGRESS_ROOT) or not PROGRESS_NAME_RE.match(
            os.path.basename(real)):
        raise LoadgenError("progress_file %r must name a file directly in %s (letters, digits, '.', '_', '-')"
                           % (value, PROGRESS_ROOT), option="progress_file")
    return real


def _unsafe(exc):
    return LoadgenError(exc.msg, option=exc.option)


def kernel_target(interface, netns):
    """A kernel interface name and an optional namespace name (safety's rules), else LoadgenError."""
    try:
        safety.interface_name(interface, "interface")
        safety.netns_name(netns, "netns")
    except safety.UnsafeInput as exc:
        raise _unsafe(exc)


def _bound(p, key, default, maximum, cast, unit, symbol=""):
    """One of the run's bounds from the params: ``default`` when unset, 0 < value <= ``maximum``."""
    value = default if p.get(key) is None else p.get(key)
    try:
        value = cast(value)
    except (TypeError, ValueError):
        raise LoadgenError("%s %r is not a number of %s" % (key, value, unit), option=key)
    if not 0 < value <= maximum:
        raise LoadgenError("%s %g%s is out of range; give 0 < %s <= %d%s"
                           % (key, value, symbol, key, maximum, " " + unit if symbol else ""), option=key)
    return value


def run_limits(p):
    """The run's bounds: ``max_duration`` (s) and ``max_packets`` from the params, validated."""
    max_duration = _bound(p, "max_duration", DEFAULT_MAX_DURATION, MAX_DURATION, float, "seconds", " s")
    max_packets = _bound(p, "max_packets", DEFAULT_MAX_PACKETS, MAX_PACKETS, int, "frames")
    return {"max_duration": max_duration, "max_packets": max_packets}


def check_duration(value, limits):
    """``duration`` as seconds within 0 < duration <= max_duration, else LoadgenError."""
    try:
        duration = float(value)
    except (TypeError, ValueError):
        raise LoadgenError("duration %r is not a number of seconds" % (value,), option="duration")
    if math.isnan(duration) or not 0 < duration <= MAX_DURATION:
        raise LoadgenError("duration %s s is out of range; give 0 < duration <= %d seconds"
                           % (duration, MAX_DURATION), option="duration")
    if duration > limits["max_duration"]:
        raise LoadgenError("duration %g s is above max_duration (%g s), the bound on one run; give max_duration "
                           "explicitly (at most %d) to send longer" % (duration, limits["max_duration"], MAX_DURATION),
                           option="duration")
    return duration


def check_packets(count, limits, what):
    """A planned frame count within max_packets, else LoadgenError."""
    if count > limits["max_packets"]:
        raise LoadgenError("%s = %.0f frames is above max_packets (%d), the bound on one run; give max_packets "
                           "explicitly (at most %d) to send more" % (what, count, limits["max_packets"], MAX_PACKETS),
                           option="max_packets")


def address_fields(p):
    """Validated src/dst MACs, IPv4 addresses and ports from module-style params (None = default).

    ``dst_ip`` and ``src_ip`` (where a responder's replies go) must lie in
    198.18.0.0/15, loopback, or a network of ``allowed_destinations``.
    """
    fields = {}
    for key in ("src_mac", "dst_mac"):
        value = p.get(key)
        if value is not None and not MAC_RE.match(str(value)):
            raise LoadgenError("%s %r is not a MAC address like 02:00:c6:12:00:01" % (key, value), option=key)
        fields[key] = str(value).lower() if value is not None else None
    try:
        allowed = safety.allowed_networks(p.get("allowed_destinations"), "allowed_destinations")
    except safety.UnsafeInput as exc:
        raise _unsafe(exc)
    for key in ("src_ip", "dst_ip"):
        value = p.get(key)
        if value is not None:
            try:
                safety.destination(value, key, allowed)
            except safety.UnsafeInput as exc:
                if key == "src_ip":
                    raise LoadgenError(exc.msg + " (a responder's replies go to src_ip)", option=key)
                raise _unsafe(exc)
            _ipv4(value, key)
        fields[key] = value
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


# ---------------------------------------------------------------- the interface guard

RTN_UNICAST = 1
AF_NAMES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}


def _addr(value):
    """An ip_address from text (zone and IPv4-mapped IPv6 stripped), or None."""
    if not value:
        return None
    try:
        addr = ipaddress.ip_address(str(value).split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def ssh_connection(environ=None, proc="/proc", pid=None):
    """(client address, server address) of the SSH session Ansible runs in, or None.

    ``SSH_CONNECTION`` ("client port server port") comes from the module's
    environment or, when ``become`` (sudo) dropped it, from the nearest ancestor
    process that has it.
    """
    environ = os.environ if environ is None else environ
    value = environ.get("SSH_CONNECTION")
    pid = os.getppid() if pid is None else pid
    seen = 0
    while not value and pid > 1 and seen < 32:
        seen += 1
        try:
            with open(os.path.join(proc, str(pid), "environ"), "rb") as handle:
                for item in handle.read().split(b"\0"):
                    if item.startswith(b"SSH_CONNECTION="):
                        value = item.split(b"=", 1)[1].decode("ascii", "replace")
                        break
            with open(os.path.join(proc, str(pid), "stat")) as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    fields = (value or "").split()
    if len(fields) < 3:
        return None
    client, server = _addr(fields[0]), _addr(fields[2])
    if server is None:
        return None
    return client, server


def guarded_interfaces(links, routes, addresses, ssh=None, ssh_route_oifs=()):
    """Interfaces test traffic must not use: {ifindex: reason}. Pure.

    ``links``: [{"index", "ifname", "kind", "master", "link"}] (``link`` only for a
    lower device in the same namespace); ``routes``: [{"family", "dst_len", "type",
    "table", "oifs", "gateway", "nh_id"}]; ``addresses``: [{"index", "address"}];
    ``ssh``: (client, server) addresses or None; ``ssh_route_oifs``: interfaces of the
    route back to the SSH client. An interface is guarded when it carries a default
    route (IPv4 or IPv6, any table), holds the SSH server address or carries the route
    to the SSH client; the ports of a guarded bridge/bond and the lower device of a
    guarded VLAN/macvlan are guarded with it (same wire). Returns also key None when a
    default route's interface cannot be told (a nexthop object): then every interface
    is refused.
    """
    reasons = {}

    def add(index, reason):
        reasons.setdefault(index, reason)

    for route in routes:
        if route.get("dst_len") != 0 or route.get("type", RTN_UNICAST) != RTN_UNICAST:
            continue
        what = "the default route (%s%s%s)" % (
            AF_NAMES.get(route.get("family"), "IP"),
            " via %s" % route["gateway"] if route.get("gateway") else "",
            " in table %s" % route["table"] if route.get("table") not in (None, 254) else "")
        if not route.get("oifs"):
            if route.get("nh_id"):
                add(None, "the namespace has %s through nexthop object %s, whose interface this module does not "
                          "resolve" % (what, route["nh_id"]))
            continue
        for oif in route["oifs"]:
            add(oif, "carries %s" % what)
    if ssh:
        client, server = ssh
        for item in addresses:
            if _addr(item.get("address")) == server:
                add(item["index"], "holds %s, the address Ansible connects through (SSH_CONNECTION)" % server)
        for oif in ssh_route_oifs:
            add(oif, "carries the route to the SSH client %s, Ansible's own connection" % client)
    by_index = dict((link["index"], link) for link in links)
    pending = [index for index in reasons if index is not None]
    while pending:
        index = pending.pop()
        name = by_index.get(index, {}).get("ifname", "#%s" % index)
        related = [(link["index"], "is a port of %s, which %s" % (name, reasons[index]))
                   for link in links if link.get("master") == index]
        lower = by_index.get(index, {}).get("link")
        if lower and lower != index and by_index.get(index, {}).get("kind") != "veth":
            related.append((lower, "is the lower device of %s, which %s" % (name, reasons[index])))
        for other, reason in related:
            if other not in reasons:
                reasons[other] = reason
                pending.append(other)
    return reasons


def read_guard_view(ipr):
    """links, routes, addresses of the namespace ``ipr`` (a pyroute2 IPRoute) is in."""
    links = []
    for msg in ipr.get_links():
        info = msg.get_attr("IFLA_LINKINFO")
        lower = msg.get_attr("IFLA_LINK")
        if msg.get_attr("IFLA_LINK_NETNSID") is not None:
            lower = None
        links.append({"index": msg["index"], "ifname": msg.get_attr("IFLA_IFNAME"),
                      "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                      "master": msg.get_attr("IFLA_MASTER"), "link": lower})
    routes = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.route("dump", family=family):
            if msg["dst_len"] != 0:
                continue
            oifs = [msg.get_attr("RTA_OIF")] if msg.get_attr("RTA_OIF") else []
            for hop in msg.get_attr("RTA_MULTIPATH") or []:
                if hop.get("oif"):
                    oifs.append(hop["oif"])
            routes.append({"family": family, "dst_len": 0, "type": msg["type"],
                           "table": msg.get_attr("RTA_TABLE") or msg["table"], "oifs": oifs,
                           "gateway": msg.get_attr("RTA_GATEWAY"), "nh_id": msg.get_attr("RTA_NH_ID")})
    addresses = [{"index": msg["index"], "address": msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")}
                 for msg in ipr.get_addr()]
    return links, routes, addresses


def route_oifs(ipr, dst):
    """Interfaces the namespace would use to reach ``dst`` (none when it has no route)."""
    if dst is None:
        return []
    try:
        found = ipr.route("get", dst=str(dst))
    except Exception:  # pylint: disable=broad-except
        # no route there: nothing to guard
        return []
    return [msg.get_attr("RTA_OIF") for msg in found if msg.get_attr("RTA_OIF")]


def interface_refusal(ipr, interface, netns=None, ssh=None, mode="throughput"):
    """None when test traffic may go out of ``interface``, else the sentence that refuses it.

    ``ipr`` reads namespace ``netns`` (None: the module's own, where Ansible's SSH session is).
    """
    links, routes, addresses = read_guard_view(ipr)
    # The route back to the SSH client matters where sshd runs: the module's own namespace.
    back = route_oifs(ipr, ssh[0]) if ssh and not netns else []
    reasons = guarded_interfaces(links, routes, addresses, ssh, back)
    index = next((link["index"] for link in links if link["ifname"] == interface), None)
    reason = reasons.get(index) or reasons.get(None)
    if not reason:
        return None
    where = ("interface %s in namespace %s" % (interface, netns)) if netns else (
        "interface %s (root namespace)" % interface)
    what = ("the latency client redirects every IPv4 frame of its queue to its socket, which would cut the "
            "machine's own connections" if mode == "latency" else
            "test traffic there would reach the management or campus network and could cut Ansible's own "
            "connection")
    return ("%s %s: %s; the traffic module sends only on lab interfaces (a veth end, a dedicated test port) "
            "that carry no default route and not Ansible's connection" % (where, reason, what))


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
    if spec.get("flows", 1) > 1:
        argv += ["--flows", str(spec["flows"])]
    if spec.get("warmup") is not None:
        argv += ["--warmup", "%g" % spec["warmup"]]
    if spec.get("nice") is not None:
        argv += ["--nice", str(spec["nice"])]
    if spec.get("progress_file"):
        argv += ["--progress-file", spec["progress_file"]]
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
        "flows": spec.get("flows", 1),
        "progress_file": spec.get("progress_file"),
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

def _progress_file(argv):
    """The file given to ``--progress-file`` in ``argv``, or None."""
    for flag, value in zip(argv, argv[1:]):
        if flag == "--progress-file":
            return value
    return None


def run(argv, duration, grace=30.0, popen=subprocess.Popen):
    """Run the generator; return (rc, stdout, stderr, timed_out).

    A generator still running ``grace`` seconds after ``duration`` gets SIGINT
    (xl-loadgen then stops and still prints its counts), and SIGKILL 10 s later.
    Only the process started here is signalled, by its PID. The directory of the
    ``--progress-file`` in ``argv`` (a path ``normalize`` confined to PROGRESS_ROOT)
    is made first, and the file is removed afterwards, also when the generator died.
    """
    progress = _progress_file(argv)
    if progress:
        if not os.path.isdir(os.path.dirname(progress)):
            os.makedirs(os.path.dirname(progress), 0o755)
    try:
        return _run(argv, duration, grace, popen)
    finally:
        if progress and os.path.lexists(progress):
            os.unlink(progress)


def _run(argv, duration, grace, popen):
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
    result["flows"] = int(data.get("flows", spec.get("flows", 1)))
    for key in ("calls", "late_restarts", "wall_s", "cpu_s", "device_xdp_xmit", "device_xdp_xmit_errors",
                "rx_queues", "steering", "steered_queues", "warmup_s", "window"):
        if key in data:
            result[key] = data[key]
    return result
