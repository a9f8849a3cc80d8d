# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNS latency client behind ``xdplab.offload.traffic`` with ``mode: latency``.

``xl-latency`` (``bpf/latency/``) sends DNS A queries at a paced rate from an
AF_XDP socket (copy mode) on the client's interface, receives the replies on
the same socket, validates each one (QR=1, RCODE=NXDOMAIN, swapped MACs,
addresses and ports, valid IPv4 and UDP checksums, the question echoed) and
prints one JSON object with the round-trip times. An invalid reply counts as
loss (and in ``invalid``), never as a sample.

Plain functions, no Ansible imports: the module validates with
:func:`normalize`, builds the command with :func:`build_argv`, runs it with
``loadgen.run`` and turns the output into its return values with
:func:`parse_output` and :func:`summarize`; :func:`warnings` says what a user
should look at.

Result names are the ones records and figures use (``rtt_us_p50``,
``rtt_us_p90``, ``rtt_us_p99``, ``rtt_us_p999``, ``rtt_us_mean``, ``loss`` as
a fraction 0..1, ``rtt_us_hist`` ``{edges, counts}``, ``rtt_us_samples``).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math
import os

from ansible_collections.xdplab.offload.plugins.module_utils.loadgen import (
    DEFAULTS, LoadgenError, address_fields, check_duration, check_packets, dns_frame_length, kernel_target,
    run_limits)

DEFAULT_BINARY = "/opt/xdplab/bpf/latency/build/xl-latency"
CLIENT = "xl_latency"
MIN_SIZE = 60
MAX_SIZE = 1518
MAX_RATE = 10e6          # what xl-latency accepts; AF_XDP copy mode manages ~0.5 Mpps
MAX_QUERIES = 100000000  # rate x duration (the client keeps 4 bytes per RTT)
MAX_SAMPLES = 1000000
XDP_MODES = ("driver", "generic")
DEFAULT_REPLY_TIMEOUT = 0.5
DEFAULT_SAMPLES = 10000

# What the module returns from the client's JSON, with these names.
LATENCY_FIELDS = ("rtt_us_p50", "rtt_us_p90", "rtt_us_p99", "rtt_us_p999", "rtt_us_mean", "rtt_us_stddev",
                  "rtt_us_min", "rtt_us_max")
COUNT_FIELDS = ("sent", "received", "invalid", "unmatched", "lost")
EXTRA_FIELDS = ("invalid_reasons", "invalid_attributed", "rx_frames", "rx_timestamp", "rx_timestamp_fallbacks",
                "tx_timestamp", "late_sends", "max_send_lag_us", "tx_kicks", "tx_kick_errors", "tx_pool_empty",
                "xsk", "xdp", "bind_mode", "xdp_mode", "method", "queue", "rx_queues", "cpu", "driver",
                "src_mac", "dst_mac", "src_ip", "dst_ip", "src_port", "dst_port", "qname", "wall_s", "cpu_s", "version", "link")


def _number(value, name, what):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LoadgenError("%s %r is not %s" % (name, value, what))
    if math.isnan(number) or math.isinf(number):
        raise LoadgenError("%s %r is not %s" % (name, value, what))
    return number


def normalize(params, cpu_count=None):
    """Validate the module's parameters for ``mode: latency``; return the request or raise LoadgenError.

    ``params`` uses the traffic module's option names (plus ``reply_timeout``,
    ``samples``, ``histogram``, ``xdp_mode``, ``queue``).
    """
    p = dict(params)
    generator = p.get("generator") or "xl_loadgen"
    if generator != "xl_loadgen":
        raise LoadgenError("mode latency runs the lab's AF_XDP client (xl-latency), not %s; use generator "
                           "xl_loadgen (the default) with a kernel interface" % generator)
    interface = p.get("interface")
    if interface is None or str(interface) == "":
        raise LoadgenError("interface is required: the latency client's interface (e.g. xl-lg0)")
    interface = str(interface)
    netns = p.get("netns") or None
    kernel_target(interface, netns)
    limits = run_limits(p)

    rate = _number(p.get("rate") if p.get("rate") is not None else 0, "rate", "a number of queries per second")
    if rate <= 0:
        raise LoadgenError("rate %s is not a query rate: rate 0 (line rate) exists only in mode throughput; "
                           "give mode latency a rate of queries per second above 0" % (p.get("rate"),))
    if rate > MAX_RATE:
        raise LoadgenError("rate %.0f queries/s is above the latency client's limit of %.0f" % (rate, MAX_RATE))
    duration = check_duration(_number(p.get("duration", 10), "duration", "a number of seconds"), limits)
    check_packets(rate * duration, limits, "rate x duration")
    if rate * duration > MAX_QUERIES:
        raise LoadgenError("rate x duration = %.0f queries is more than the client keeps (%d); shorten the run "
                           "or lower the rate" % (rate * duration, MAX_QUERIES))

    frame = p.get("frame") or "dns_query"
    if frame != "dns_query":
        raise LoadgenError("frame %r is not supported in mode latency, which always sends DNS queries; leave frame "
                           "out or give dns_query" % (frame,))
    qname = p.get("qname") or DEFAULTS["qname"]
    natural = dns_frame_length(qname)
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
    if size < natural:
        raise LoadgenError("size %d is too small for a DNS query for %s (%d bytes); give size >= %d or a shorter "
                           "qname" % (size, qname, natural, natural))

    threads = p.get("threads") or 1
    if int(threads) != 1:
        raise LoadgenError("threads %s: the latency client is one thread (it sends and receives on one socket); "
                           "leave threads at 1" % threads)
    cpu = p.get("cpu")
    if isinstance(cpu, (list, tuple)):
        if len(cpu) > 1:
            raise LoadgenError("cpu %s: the latency client runs on one CPU; give one CPU number" % (list(cpu),))
        cpu = cpu[0] if cpu else None
    if cpu is not None and cpu != "":
        try:
            cpu = int(cpu)
        except (TypeError, ValueError):
            raise LoadgenError("cpu %r is not a CPU number" % (cpu,))
        if cpu_count is None:
            cpu_count = os.cpu_count() or 1
        if not 0 <= cpu < cpu_count:
            raise LoadgenError("cpu %d does not exist: this machine has CPUs 0..%d" % (cpu, cpu_count - 1))
    else:
        cpu = None

    reply_timeout = _number(p.get("reply_timeout", DEFAULT_REPLY_TIMEOUT)
                            if p.get("reply_timeout") is not None else DEFAULT_REPLY_TIMEOUT,
                            "reply_timeout", "a number of seconds")
    if not 0 <= reply_timeout <= 60:
        raise LoadgenError("reply_timeout %s s is out of range (0..60 seconds)" % reply_timeout)
    samples = p.get("samples")
    samples = DEFAULT_SAMPLES if samples is None else samples
    try:
        samples = int(samples)
    except (TypeError, ValueError):
        raise LoadgenError("samples %r is not a number of RTT samples" % (samples,))
    if not 0 <= samples <= MAX_SAMPLES:
        raise LoadgenError("samples %d is out of range (0..%d)" % (samples, MAX_SAMPLES))
    xdp_mode = p.get("xdp_mode") or "driver"
    if xdp_mode not in XDP_MODES:
        raise LoadgenError("xdp_mode %r is not supported; use one of %s" % (xdp_mode, ", ".join(XDP_MODES)))
    queue = int(p.get("queue") or 0)
    if not 0 <= queue < 64:
        raise LoadgenError("queue %d is out of range (0..63)" % queue)

    spec = {
        "generator": CLIENT,
        "mode": "latency",
        "interface": interface,
        "netns": netns,
        "rate": rate,
        "duration": duration,
        "size": size,
        "qname": qname,
        "cpu": cpu,
        "reply_timeout": reply_timeout,
        "samples": samples,
        "histogram": bool(p.get("histogram", True)) if p.get("histogram") is not None else True,
        "xdp_mode": xdp_mode,
        "queue": queue,
        "limits": limits,
    }
    spec.update(address_fields(p))
    for key in ("src_port", "dst_port"):
        if spec[key] == 0:
            raise LoadgenError("%s 0 is not a port the client can send from or to" % key)
    return spec


def _num_arg(value):
    return ("%d" % value) if float(value).is_integer() else ("%.6g" % value)


def build_argv(spec, binary=None):
    """Argument list for xl-latency."""
    argv = [binary or DEFAULT_BINARY, "--interface", spec["interface"]]
    if spec.get("netns"):
        argv += ["--netns", spec["netns"]]
    argv += ["--rate", _num_arg(spec["rate"]), "--duration", _num_arg(spec["duration"]),
             "--size", str(spec["size"])]
    if spec["qname"] != DEFAULTS["qname"]:
        argv += ["--qname", spec["qname"]]
    for key, flag in (("src_mac", "--src-mac"), ("dst_mac", "--dst-mac"), ("src_ip", "--src-ip"),
                      ("dst_ip", "--dst-ip"), ("src_port", "--src-port"), ("dst_port", "--dst-port")):
        if spec.get(key) is not None:
            argv += [flag, str(spec[key])]
    if spec.get("cpu") is not None:
        argv += ["--cpu", str(spec["cpu"])]
    if spec.get("queue"):
        argv += ["--queue", str(spec["queue"])]
    argv += ["--timeout", _num_arg(round(spec["reply_timeout"] * 1000.0, 3)),
             "--samples", str(spec["samples"])]
    if not spec["histogram"]:
        argv.append("--no-hist")
    if spec["xdp_mode"] != "driver":
        argv += ["--xdp-mode", spec["xdp_mode"]]
    return argv


def planned(spec):
    """What a run would send, for check mode."""
    return {
        "generator": CLIENT,
        "mode": "latency",
        "interface": spec["interface"],
        "netns": spec["netns"],
        "size": spec["size"],
        "duration_s": spec["duration"],
        "offered_rate_pps": spec["rate"],
        "cpu": spec["cpu"],
        "frame": "dns_query",
        "qname": spec["qname"],
        "src_mac": spec["src_mac"] or "the interface's",
        "dst_mac": spec["dst_mac"] or DEFAULTS["dst_mac"],
        "src_ip": spec["src_ip"] or DEFAULTS["src_ip"],
        "dst_ip": spec["dst_ip"] or DEFAULTS["dst_ip"],
        "src_port": spec["src_port"] if spec["src_port"] is not None else DEFAULTS["dns_src_port"],
        "dst_port": spec["dst_port"] if spec["dst_port"] is not None else DEFAULTS["dns_port"],
        "packets_planned": max(1, int(round(spec["rate"] * spec["duration"]))),
        "reply_timeout_s": spec["reply_timeout"],
    }


def parse_output(stdout):
    """The JSON object xl-latency prints (the last line that is one)."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "sent" in data and "received" in data:
                return data
    raise LoadgenError("xl-latency printed no result; see stdout/stderr", stdout=stdout)


def _float_or_none(value):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def summarize(spec, data):
    """The module's return values from the client's JSON.

    ``loss`` is recomputed from the counts as (sent - received) / sent, so an
    invalid reply is loss whatever the client printed.
    """
    sent = int(data.get("sent", 0))
    received = int(data.get("received", 0))
    duration = float(data.get("duration_s") or 0.0)
    rate = data.get("rate_pps")
    rate = float(rate) if rate is not None else (sent / duration if duration > 0 else 0.0)
    lost = max(0, sent - received)
    result = {
        "generator": CLIENT,
        "mode": "latency",
        "interface": spec["interface"],
        "netns": spec["netns"],
        "size": int(data.get("size", spec["size"])),
        "sent": sent,
        "received": received,
        "invalid": int(data.get("invalid", 0)),
        "unmatched": int(data.get("unmatched", 0)),
        "lost": lost,
        "loss": (float(lost) / sent) if sent else None,
        "packets_sent": sent,
        "bytes_sent": sent * int(data.get("size", spec["size"])),
        "duration_s": duration,
        "rate_pps": rate,
        "offered_rate_pps": spec["rate"],
        "requested_rate_pps": spec["rate"],
        "interrupted": bool(data.get("interrupted", False)),
    }
    for key in LATENCY_FIELDS:
        result[key] = _float_or_none(data.get(key))
    for key in EXTRA_FIELDS:
        if key in data:
            result[key] = data[key]
    result.setdefault("invalid_reasons", {})
    if "rtt_us_hist" in data:
        result["rtt_us_hist"] = check_hist(data["rtt_us_hist"])
    if "rtt_us_samples" in data:
        result["rtt_us_samples"] = [float(x) for x in data["rtt_us_samples"]]
    return result


def check_hist(hist):
    """``{edges, counts}`` with len(edges) == len(counts) + 1 (empty when there were no samples)."""
    edges = [float(e) for e in (hist or {}).get("edges", [])]
    counts = [int(n) for n in (hist or {}).get("counts", [])]
    if counts and len(edges) != len(counts) + 1:
        raise LoadgenError("xl-latency printed a histogram with %d edges for %d bins" % (len(edges), len(counts)))
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise LoadgenError("xl-latency printed histogram edges that do not ascend")
    return {"edges": edges, "counts": counts}


def warnings(spec, result):
    """Sentences a user should read next to the numbers."""
    out = []
    sent = result.get("sent") or 0
    if sent and not result.get("received"):
        out.append("no valid reply to any of %d queries: is a responder (e.g. dns_nxdomain) running on the "
                   "device under test, and is dst_mac its MAC?" % sent)
    if result.get("invalid"):
        reasons = ", ".join("%s %d" % kv for kv in sorted((result.get("invalid_reasons") or {}).items()))
        out.append("%d replies were invalid (%s); they count as lost" % (result["invalid"], reasons or "?"))
    if result.get("rate_pps") and result["rate_pps"] < 0.95 * spec["rate"]:
        out.append("the client sent %.0f queries/s, less than 95%% of the requested %.0f; its CPU could not keep "
                   "up (give it a CPU of its own with cpu)" % (result["rate_pps"], spec["rate"]))
    late = result.get("late_sends") or 0
    if sent and late > 0.01 * sent:
        out.append("%d of %d queries left more than 10 us behind schedule (longest %.0f us): the client's CPU "
                   "was busy with something else; RTTs include queueing behind those bursts"
                   % (late, sent, result.get("max_send_lag_us") or 0))
    fallbacks = result.get("rx_timestamp_fallbacks") or 0
    if fallbacks:
        out.append("%d replies had no kernel receive time stamp; the client's own time was used for them"
                   % fallbacks)
    dropped = (result.get("link") or {}).get("tx_dropped") or 0
    if dropped:
        out.append("%d queries were dropped by %s on the way out: the receiving end's ring was full (on a veth, the "
                   "responder's receive work did not get its CPU in time); they count as lost"
                   % (dropped, spec["interface"]))
    xdp = result.get("xdp") or {}
    if xdp.get("not_taken"):
        out.append("%d frames arrived on RX queues other than %d, where the client has no socket; they count as "
                   "lost" % (xdp["not_taken"], spec["queue"]))
    return out


def hist_percentile(hist, q):
    """Percentile ``q`` (0..100) from an ``{edges, counts}`` histogram (linear within the bin)."""
    counts = hist.get("counts") or []
    edges = hist.get("edges") or []
    total = sum(counts)
    if not total:
        return None
    target = q / 100.0 * total
    acc = 0
    for i, n in enumerate(counts):
        if n and acc + n >= target:
            frac = (target - acc) / float(n)
            return edges[i] + frac * (edges[i + 1] - edges[i])
        acc += n
    return edges[-1]


def percentile(values, q):
    """Percentile ``q`` (0..100) of ``values`` with linear interpolation (numpy's default, type 7)."""
    xs = sorted(values)
    if not xs:
        return None
    h = (len(xs) - 1) * q / 100.0
    lo = int(math.floor(h))
    if lo + 1 >= len(xs):
        return float(xs[-1])
    return xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])
