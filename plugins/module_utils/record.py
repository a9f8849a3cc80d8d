# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of one experiment cell: its fields, units, derived values and checks.

One place for what a record is. The ``cell`` module measures (on the host
where the program runs and on the generator's host) and returns raw parts; the
``cell_record`` action builds the record from them here, validates it and
writes it; ``results.py`` loads records with :func:`validate` and aggregates
them. Pure Python, no Ansible imports, unit-tested in tests/unit/test_record.py.

Parts (what the ``cell`` module returns, by phase):

``armed``      where and how the program runs: ``deploy`` (host, interface,
               requested_mode, mode, fallback, fallback_reason, ...), ``prog``
               (mode, tag, program_hash), ``dut_before`` (the DUT link's
               stats, driver_stats, mac, driver)
``window``     the measurement window on the generator's host: ``traffic``
               (the generator's or latency client's result), ``usage`` (the CPU
               sampling over the window, cpu.compute_usage), ``lg`` (the
               generator link's stats before/after), and for a neighbour cell
               ``probe`` (the probe client's result) and ``load`` (the workload)
``search``     a zero-loss cell's search instead of a window (zero_loss.outcome: the rate, every trial)
``collected``  after the window at the location: ``counters`` (the program's
               seen/dropped/tx/passed/redirected), ``dut_after``, ``testrun``
               (BPF_PROG_TEST_RUN), ``afxdp`` (the worker's final state)

Units: rates in packets/s; CPU in percent of one CPU (two busy CPUs = 200);
``ns_per_packet`` in CPU nanoseconds per packet; RTTs in microseconds;
``loss`` a fraction 0..1. See results.py for the aggregation of these fields.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import re

SCHEMA = 1
SUPPORTED_SCHEMAS = (1,)
STATUSES = ("ok", "unsupported", "failed")
# The cell's description: copied from the matrix's cell into every record.
CELL_FIELDS = ("experiment", "program", "n", "location", "size", "rate", "repetition")
# Numeric record fields that describe the cell instead of measuring it.
PARAMETER_FIELDS = frozenset(("schema", "n", "size", "rate", "repetition", "duration_s", "flows", "queues"))
COUNTER_NAMES = ("seen", "dropped", "tx", "passed", "redirected")
LATENCY_FIELDS = ("rtt_us_p50", "rtt_us_p90", "rtt_us_p99", "rtt_us_p999", "rtt_us_mean", "rtt_us_min",
                  "rtt_us_max")
LATENCY_CLIENT_FIELDS = ("method", "bind_mode", "rx_timestamp", "tx_timestamp", "cpu", "cpu_s")
# A kernel or NIC that cannot run the location at all: the cell is unsupported, not failed.
UNSUPPORTED_PATTERN = r"offload-capable NIC|the NIC refused"


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value):
    """A record's value as a float (numbers written as text too), or None (missing, bool, NaN, infinite)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def validate(record):
    """Return None when ``record`` is a usable record, else the reason it is not."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("schema") not in SUPPORTED_SCHEMAS:
        return "unsupported schema %r (supported: %s)" % (
            record.get("schema"), ", ".join(str(s) for s in SUPPORTED_SCHEMAS))
    for key in ("cell_id", "experiment", "program", "location", "status"):
        if not isinstance(record.get(key), str) or not record.get(key):
            return "field %r missing or not a non-empty string" % key
    if record["status"] not in STATUSES:
        return "status %r is not one of %s" % (record["status"], ", ".join(STATUSES))
    for key in ("size", "rate"):
        if key not in record:
            return "field %r missing" % key
    for key in ("n", "size", "rate", "repetition"):
        value = record.get(key)
        if value is not None and not _is_number(value):
            return "field %r is %r, expected a number or null" % (key, value)
    if record["status"] == "ok":
        for key in ("processed_pps", "rate_pps"):
            if key in record and record[key] is not None and not _is_number(record[key]):
                return "field %r is %r, expected a number" % (key, record[key])
    return None


# ---------------------------------------------------------------------------
# Derived values
# ---------------------------------------------------------------------------

def counter_delta(after, before):
    """``after[k] - before[k]`` for every key whose values are integers in both (missing before: 0)."""
    before = before or {}
    delta = {}
    for key, value in (after or {}).items():
        old = before.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or isinstance(old, bool) or not isinstance(old, int):
            continue
        delta[key] = value - old
    return delta


def zero_counters():
    return {name: {"packets": 0, "bytes": 0} for name in COUNTER_NAMES}


def _pct_of_window(cpu_s, window_s):
    return 100.0 * (cpu_s or 0.0) / window_s if window_s else 0.0


def cpu_fields(usage, generator_cpu_s=0.0, generator_local=True, kind="throughput"):
    """The record's CPU figures from a sampling window (cpu.compute_usage's result).

    host share = busy time outside the sampled domains, minus the generator's
    (or latency client's) own CPU time when it runs on the sampled host;
    VM share = the sampled domains' time (None without domains).
    """
    if not usage:
        return {}
    window_s = usage.get("window_s") or 0.0
    own_pct = _pct_of_window(generator_cpu_s, window_s)
    host = usage.get("host_share_pct")
    host = usage.get("busy_pct") if host is None else host
    processes = usage.get("processes") or {}
    fields = {
        "cpu_window_s": window_s,
        "cpu_busy_pct": usage.get("busy_pct"),
        "cpu_host_share": round(max(0.0, (host or 0.0) - (own_pct if generator_local else 0.0)), 3),
        "cpu_vm_share": usage.get("vm_share_pct"),
        "cpu_processes": {name: proc.get("cpu_pct") for name, proc in processes.items()},
    }
    if kind == "latency":
        fields["cpu_client_pct"] = round(own_pct, 3)
        fields["cpu_pids"] = {name: proc.get("pids") for name, proc in processes.items()}
        per_packet = sum((usage.get("ns_per_packet") or {}).get("processes", {}).values() or [0])
        # Null, not 0, when no DUT thread ran: the responder then ran in the client's softirq.
        fields["ns_per_packet"] = round(per_packet, 1) if per_packet > 0 else None
    else:
        fields["cpu_generator_pct"] = round(own_pct, 3)
        if kind == "throughput":
            fields["cpu_dut_ns"] = sum((processes.get(n) or {}).get("cpu_ns", 0) for n in ("napi", "afxdp"))
    return fields


def throughput_fields(traffic, counters, duration_s, cpu_dut_ns=0, testrun=None):
    """Offered, processed and lost packets, rates and the cost per packet."""
    seen = counters["seen"]["packets"]
    window = traffic.get("duration_s") or duration_s
    ns_run = (testrun or {}).get("ns_per_run")
    return {
        "sent_packets": traffic.get("packets_sent", 0),
        "rate_pps": traffic.get("rate_pps", 0.0),
        "offered_rate_pps": traffic.get("offered_rate_pps"),
        "measure_s": window,
        "processed_packets": seen,
        "processed_pps": round(seen / window, 1) if window else 0.0,
        "dropped_packets": counters["dropped"]["packets"],
        "tx_packets": counters["tx"]["packets"],
        "passed_packets": counters["passed"]["packets"],
        "redirected_packets": counters["redirected"]["packets"],
        "lost_packets": traffic.get("packets_sent", 0) - seen,
        "ns_per_packet": round(cpu_dut_ns / seen, 1) if seen and cpu_dut_ns and cpu_dut_ns > 0 else None,
        "ns_per_run": ns_run.get("median") if ns_run else None,
        "testrun": ns_run or None,
    }


def latency_fields(traffic):
    """A latency cell's RTT percentiles, loss and counts (xl-latency's result)."""
    fields = {k: traffic.get(k) for k in LATENCY_FIELDS}
    fields.update({
        "rtt_us_stddev": traffic.get("rtt_us_stddev"),
        "loss": traffic.get("loss"),
        "rate_pps": traffic.get("rate_pps"),
        "offered_rate_pps": traffic.get("offered_rate_pps"),
        "sent": traffic.get("sent"),
        "received": traffic.get("received"),
        "invalid": traffic.get("invalid"),
        "unmatched": traffic.get("unmatched"),
        "lost": traffic.get("lost"),
        "invalid_reasons": traffic.get("invalid_reasons"),
        "late_sends": traffic.get("late_sends"),
        "rtt_us_hist": traffic.get("rtt_us_hist"),
        "rtt_us_samples": traffic.get("rtt_us_samples") or [],
        "latency_client": {k: traffic.get(k) for k in LATENCY_CLIENT_FIELDS},
    })
    return fields


def neighbour_fields(probe, neighbour):
    """The neighbour's RTTs under the cell's workload (the probe client's result)."""
    fields = {k: probe.get(k) for k in LATENCY_FIELDS}
    fields.update({
        "rtt_us_stddev": probe.get("rtt_us_stddev"),
        "rtt_us_hist": probe.get("rtt_us_hist"),
        "rtt_us_samples": probe.get("rtt_us_samples") or [],
        "loss": probe.get("loss"),
        "probe_rate_pps": probe.get("rate_pps"),
        "probe_offered_rate_pps": probe.get("offered_rate_pps"),
        "probe_sent": probe.get("sent"),
        "probe_received": probe.get("received"),
        "probe_invalid": probe.get("invalid"),
        "probe_lost": probe.get("lost"),
        "probe_invalid_reasons": probe.get("invalid_reasons"),
        "neighbour": neighbour or {},
    })
    return fields


def afxdp_fields(final, started):
    """The AF_XDP worker's own view: bind mode, kernel/XSK counters, CPU time per packet."""
    seen = ((final.get("counters") or {}).get("seen") or {}).get("packets") or 0
    cpu_ns = final.get("cpu_ns")
    return {"afxdp": {
        "bind_mode": (started or {}).get("bind_mode"),
        "fallback": (started or {}).get("fallback"),
        "kernel_counters": final.get("kernel_counters") or {},
        "xsk_stats": final.get("xsk_stats") or {},
        "worker_cpu_ns": cpu_ns,
        "worker_ns_per_packet": round(cpu_ns / seen, 1) if cpu_ns and seen else None,
    }}


def interfaces_field(armed, collected, window, location):
    dut_before, dut_after = armed.get("dut_before") or {}, collected.get("dut_after") or {}
    lg = window.get("lg") or {}
    return {"interfaces": {
        "dut": {"name": location.get("interface"), "host": location.get("host"),
                "stats": counter_delta(dut_after.get("stats"), dut_before.get("stats")),
                "driver_stats": counter_delta(dut_after.get("driver_stats"), dut_before.get("driver_stats"))},
        "lg": {"name": lg.get("name"),
               "stats": counter_delta((lg.get("after") or {}).get("stats"), (lg.get("before") or {}).get("stats")),
               "driver_stats": counter_delta((lg.get("after") or {}).get("driver_stats"),
                                             (lg.get("before") or {}).get("driver_stats"))},
    }}


def overload_pps(search):
    """What the program processed per second in the as-fast-as-possible trial (passed or not), else None."""
    overload = [t for t in search.get("trials") or [] if t.get("target_pps") == 0 and t.get("duration_s")]
    return overload[-1]["processed"] / float(overload[-1]["duration_s"]) if overload else None


def zero_loss_fields(search):
    """A zero-loss search's result (zero_loss.outcome): the rate, the overload trial's throughput, every trial."""
    return {
        "zero_loss_pps": search.get("zero_loss_pps"),
        # The as-fast-as-possible trial is the location's throughput under overload, drawn beside the zero-loss rate.
        "processed_pps": overload_pps(search),
        "zero_loss_converged": search.get("converged"),
        "zero_loss_reason": search.get("reason"),
        "zero_loss_low_pps": search.get("low_pps"),
        "zero_loss_high_pps": search.get("high_pps"),
        "zero_loss_parameters": search.get("parameters"),
        "zero_loss_trials": search.get("trials") or [],
    }


def measured_fields(cell, location, armed, window, collected, generator_local=True, search=None):
    """Every measured field of an ok cell, by measure (throughput, latency, neighbour, zero_loss)."""
    measure = cell.get("measure") or "throughput"
    if measure == "zero_loss":
        fields = zero_loss_fields(search or {})
        fields.update(interfaces_field(armed, collected, window, location))
        if collected.get("afxdp"):
            fields.update(afxdp_fields(collected["afxdp"], armed.get("worker")))
        return fields
    traffic = window.get("traffic") or {}
    counters = collected.get("counters") or zero_counters()
    if measure == "neighbour":
        load = window.get("load") or {}
        traffic = load or {"packets_sent": 0, "rate_pps": 0.0, "offered_rate_pps": 0.0,
                           "duration_s": float(cell["duration"]), "cpu_s": 0.0}
        probe = window.get("probe") or {}
        own_cpu_s = (load.get("cpu_s") or 0.0) + (probe.get("cpu_s") or 0.0)
        cpu = cpu_fields(window.get("usage"), own_cpu_s, generator_local, kind="neighbour")
    else:
        cpu = cpu_fields(window.get("usage"), traffic.get("cpu_s") or 0.0, generator_local, kind=measure)
    fields = throughput_fields(traffic, counters, float(cell["duration"]), cpu.get("cpu_dut_ns", 0),
                               collected.get("testrun"))
    fields.update(interfaces_field(armed, collected, window, location))
    fields.update(cpu)
    if measure == "latency":
        fields.update(latency_fields(traffic))
    elif measure == "neighbour":
        fields.update(neighbour_fields(window.get("probe") or {}, window.get("neighbour")))
    if collected.get("afxdp"):
        fields.update(afxdp_fields(collected["afxdp"], armed.get("worker")))
    return fields


def status_of(error):
    """ok without an error; unsupported when the kernel or NIC cannot run the location; failed otherwise."""
    if not error:
        return "ok"
    return "unsupported" if re.search(UNSUPPORTED_PATTERN, error) else "failed"


def build(cell, run, location, armed=None, window=None, collected=None, error=None, teardown_error=None,
          started_at=None, finished_at=None, wall_s=None, facts=None, generator_local=True, search=None):
    """The record of one cell: its description, status, provenance and (when ok) its measurements.

    ``run``: run_id, loader, lab, collection_version; ``location``: the
    location's description (kind, host, interface, provenance, ...);
    ``facts``: kernel, cpu_model, hostname of the host the cell ran on.
    """
    armed, window, collected, facts = armed or {}, window or {}, collected or {}, facts or {}
    prog = armed.get("prog") or {}
    nic = (armed.get("dut_before") or {}).get("driver") or {}
    status = status_of(error)
    record = {
        "schema": SCHEMA,
        "run_id": run.get("run_id"),
        "cell_id": cell["id"],
        "experiment": cell["experiment"],
        "program": cell["program"],
        "n": cell.get("n"),
        "location": cell["location"],
        "mode": prog.get("mode"),
        "loader": run.get("loader"),
        "size": cell.get("size"),
        "rate": cell.get("rate"),
        "repetition": cell.get("repetition"),
        "duration_s": cell.get("duration"),
        "status": status,
        "reason": error or None,
        "teardown_error": teardown_error,
        "deploy": armed.get("deploy") or {},
        "started_at": started_at,
        "finished_at": finished_at,
        "wall_s": wall_s,
        "provenance": dict({
            "kernel": facts.get("kernel"),
            "cpu_model": facts.get("cpu_model"),
            "hostname": facts.get("hostname"),
            "nic_driver": nic.get("driver"),
            "nic_firmware": nic.get("firmware_version"),
            "program_hash": prog.get("program_hash"),
            "prog_tag": prog.get("tag"),
            "collection_version": run.get("collection_version"),
            "lab": run.get("lab"),
        }, **(location.get("provenance") or {})),
    }
    for key in ("flows", "queues", "rate_fraction_of_zero_loss"):
        if cell.get(key) is not None:
            record[key] = cell[key]
    if status == "ok":
        record.update(measured_fields(cell, location, armed, window, collected, generator_local, search))
    return record
