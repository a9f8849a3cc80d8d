# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One experiment cell on one host, in one process: the ``cell`` module's logic.

A cell, from the matrix to its record::

    matrix lookup  ->  cell (dict: id, experiment, program, n, location, size, rate, duration, measure, ...)
    arm()          at the location: deploy the program (XDP, or the AF_XDP worker), with the
                   fallback mode when the driver has no native XDP; zero its counters; the
                   DUT link's counters before
    window()       on the generator's host: CPU sampling around the traffic (load generator,
                   latency client, or a neighbour's probes beside a workload); the generator
                   link's counters before and after
    collect()      at the location: the program's counters (or the worker's final ones), the
                   DUT link's counters after, BPF_PROG_TEST_RUN when asked
    teardown()     at the location: stop the worker, detach the program (also after a failure)
    record.build() on the controller (the cell_record action): the record, validated and written

``measure_cell()`` runs all four in one process when the generator runs on
the location's host (the bare-metal lab; a host's uplink in the VM lab). A
guest location splits them: ``arm`` and ``collect`` in the guest, ``window``
on the host, three calls in all.

A failure is a result, not an exception: the returned ``error`` is the
sentence that becomes the record's reason (status ``unsupported`` when the
kernel or NIC cannot run the location at all, else ``failed``), and the
program is detached and the worker stopped whatever happened.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import threading
import time

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp, cpu, programs, sending, testrun, xdp
from ansible_collections.xdplab.offload.plugins.module_utils import safety, zero_loss
from ansible_collections.xdplab.offload.plugins.module_utils import counters as ctr
from ansible_collections.xdplab.offload.plugins.module_utils import linkstats, record
from ansible_collections.xdplab.offload.plugins.module_utils.xdp_deploy import (
    DeployError, ensure_attached_on, ensure_detached_on)

KINDS = ("xdp", "afxdp", "none")
MEASURES = ("throughput", "latency", "neighbour", "zero_loss")
EOPNOTSUPP = 95
# What every step can raise: each carries the sentence that becomes the record's reason.
STEP_ERRORS = (DeployError, xdp.XdpError, afxdp.AfxdpError, programs.BuildError, programs.ProgramError,
               ctr.CounterError, cpu.CpuError, sending.SendError, testrun.TestrunError, zero_loss.ZeroLossError,
               safety.UnsafeInput)


class CellError(Exception):
    def __init__(self, msg):
        super(CellError, self).__init__(msg)
        self.msg = msg


def _msg(exc):
    return getattr(exc, "msg", None) or str(exc) or exc.__class__.__name__


def native_refused(exc):
    """The driver has no native XDP (a vNIC without it): the one error a fallback mode answers."""
    return "does not support native XDP" in _msg(exc) or abs(int(getattr(exc, "errno", 0) or 0)) == EOPNOTSUPP


def with_fallback(start, location, mode, cleanup=None):
    """start(mode) in the location's mode; again in its fallback_mode only when native XDP is refused
    (after cleanup(), which removes what the refused attempt left). Returns (result, fallback_reason or None)."""
    try:
        return start(mode), None
    except STEP_ERRORS as exc:
        fallback = location.get("fallback_mode")
        if not fallback or mode != "driver" or not native_refused(exc):
            raise
        if cleanup is not None:
            cleanup()
        return start(fallback), _msg(exc)


def _defines(cell, location):
    """The program's compile-time defines: N, and XL_TARGET_IP for a program that must leave other
    addresses' frames alone (a host's uplink that also carries a neighbour's traffic)."""
    if location.get("object"):
        return {}  # built and shipped with its defines already
    defines = {"N": cell["n"]} if cell.get("n") is not None else {}
    if location.get("target_ip"):
        octets = [int(o) for o in location["target_ip"].split(".")]
        defines["XL_TARGET_IP"] = ((octets[0] * 256 + octets[1]) * 256 + octets[2]) * 256 + octets[3]
    return defines


def _deploy_xdp(cell, location, run):
    where = {"interface": location["interface"], "netns": location.get("netns") or None}
    params = dict(where, program=location.get("object") or cell["program"], defines=_defines(cell, location),
                  loader="object" if location.get("object") else run.get("loader", "object"),
                  bpf_dir=location.get("bpf_dir") or run.get("bpf_dir") or "/opt/xdplab/bpf")
    prog, fallback_reason = with_fallback(lambda mode: ensure_attached_on(dict(params, mode=mode)),
                                          location, location["mode"])
    with ctr.CounterMap(ctr.resolve_paths(prog["pin_path"], None)[0]) as cmap:
        cmap.zero()
    deploy = {"host": location.get("host"), "interface": location["interface"],
              "target_ip": location.get("target_ip"), "requested_mode": location["mode"], "mode": prog.get("mode"),
              "fallback": fallback_reason is not None, "fallback_reason": fallback_reason}
    return {"deploy": deploy, "prog": {"mode": prog.get("mode"), "tag": prog.get("tag"),
                                       "program_hash": prog.get("program_hash"), "pin_path": prog["pin_path"]}}


def worker_params(cell, location, run):
    options = run.get("afxdp") or {}
    params = {"interface": location["interface"], "netns": location.get("netns") or None,
              "program": cell["program"], "defines": {"N": cell["n"]} if cell.get("n") is not None else {},
              "copy_mode": options.get("copy_mode", "auto"), "busy_poll": bool(options.get("busy_poll", False)),
              "cpu": options.get("cpu"),
              "bpf_dir": location.get("bpf_dir") or run.get("bpf_dir") or "/opt/xdplab/bpf"}
    if location.get("object"):
        params["binary"] = location["object"]
    return params


def _start_worker(cell, location, run):
    params = worker_params(cell, location, run)
    requested = "generic" if cell["location"] == "afxdp_generic" or location.get("mode") == "generic" else "driver"
    worker, fallback_reason = with_fallback(
        lambda mode: afxdp.ensure_started(dict(params, state="started", xdp_mode=mode)), location, requested,
        # the refused worker may still hold its socket on the queue: stop it (by its recorded PID) first
        cleanup=lambda: afxdp.ensure_stopped(dict(params, state="stopped")))
    deploy = {"host": location.get("host"), "interface": location["interface"], "target_ip": None,
              "requested_mode": requested, "mode": worker.get("xdp_mode"), "bind_mode": worker.get("bind_mode"),
              "fallback": fallback_reason is not None, "fallback_reason": fallback_reason}
    return {"deploy": deploy,
            "prog": {"mode": worker.get("bind_mode") or worker.get("xdp_mode"), "tag": None,
                     "program_hash": worker.get("binary")},
            "worker": {"bind_mode": worker.get("bind_mode"), "fallback": worker.get("fallback")}}


def arm(cell, location, run):
    """Deploy at the location and read the DUT link's counters before the window."""
    armed = {"dut_before": linkstats.read_link_stats(location["interface"], location.get("netns") or None)}
    kind = location.get("kind")
    if kind == "xdp":
        armed.update(_deploy_xdp(cell, location, run))
    elif kind == "afxdp":
        armed.update(_start_worker(cell, location, run))
    else:
        armed.update(deploy={"host": location.get("host"), "interface": location["interface"], "mode": None},
                     prog={"mode": None, "tag": None, "program_hash": None})
    return armed


# ---------------------------------------------------------------------------
# The measurement window, on the generator's host
# ---------------------------------------------------------------------------

def _traffic_params(generator, cell, dst_mac, dst_ip, **extra):
    params = {"generator": generator.get("generator", "xl_loadgen"), "interface": generator["interface"],
              "netns": generator.get("netns") or None, "rate": float(cell["rate"]), "size": cell["size"],
              "duration": float(cell["duration"]), "cpu": generator.get("cpu"),
              "allowed_destinations": generator.get("allowed_destinations") or [],
              "dst_mac": dst_mac, "dst_ip": dst_ip, "binary": generator.get("binary"), "flows": cell.get("flows"),
              "nice": generator.get("nice"),
              # The matrix bounds rate and duration; a paced cell may plan more frames than the default bound.
              "max_packets": max(10 ** 9, int(float(cell["rate"]) * float(cell["duration"])))}
    params.update(extra)
    return dict((k, v) for k, v in params.items() if v is not None)


def _send_in_background(params):
    """Start the workload in a thread; returns (thread, box) with box['result'] or box['error'] when joined."""
    box = {}

    def work():
        try:
            box["result"], box["warnings"] = sending.send(params)
        except Exception as exc:  # pylint: disable=broad-except
            box["error"] = exc  # raised again by the caller when it joins the thread

    thread = threading.Thread(target=work, name="xl-cell-load")
    thread.daemon = True
    thread.start()
    return thread, box


def window(cell, location, generator, sampling, dst_mac, warnings):
    """Traffic at the cell's rate, size and duration, with the CPU usage sampled around it."""
    measure = cell.get("measure") or "throughput"
    dst_mac = location.get("dst_mac") or dst_mac
    dst_ip = location.get("dst_ip") or None
    selection = cpu.make_selection(processes=sampling.get("processes") or [], domains=sampling.get("domains") or [],
                                   uri=sampling.get("uri") or "qemu:///system")
    conn = cpu.open_libvirt(selection["uri"]) if selection["domains"] else None
    lg_netns = generator.get("netns") or None
    out = {"lg": {"name": generator["interface"],
                  "before": linkstats.read_link_stats(generator["interface"], lg_netns)}}
    try:
        before = cpu.take_snapshot(selection, conn=conn)
        packets = None
        if measure == "throughput":
            out["traffic"], more = sending.send(_traffic_params(generator, cell, dst_mac, dst_ip))
            warnings.extend(more)
        elif measure == "latency":
            out["traffic"], more = sending.measure_latency(_traffic_params(generator, cell, dst_mac, dst_ip,
                                                                           mode="latency"))
            warnings.extend(more)
            packets = out["traffic"].get("sent") or None
        else:
            out.update(_neighbour_window(cell, location, generator, dst_mac, dst_ip, warnings))
        after = cpu.take_snapshot(selection, conn=conn, require=False)
    finally:
        if conn is not None:
            try:
                conn.close()
            except Exception:  # pylint: disable=broad-except
                pass
    usage = cpu.compute_usage(before, after, selection, packets)
    warnings.extend(usage.pop("warnings", []))
    out["usage"] = usage
    out["lg"]["after"] = linkstats.read_link_stats(generator["interface"], lg_netns)
    return out


def _neighbour_window(cell, location, generator, dst_mac, dst_ip, warnings):
    """The neighbour's probes at a low rate while the cell's workload runs (none for a baseline)."""
    neighbour = generator.get("neighbour") or {}
    if not neighbour.get("mac"):
        raise CellError("cell %s measures a neighbour but no neighbour guest (host, interface, mac, ip) was given; "
                        "give the run a second guest" % cell["id"])
    load_s = float(cell["duration"]) + 2.0  # the load outlasts the probe window
    thread = box = None
    if location.get("kind") != "none":
        load = dict(cell, duration=load_s)
        thread, box = _send_in_background(_traffic_params(
            generator, load, dst_mac, dst_ip, max_duration=max(3600.0, load_s),
            max_packets=max(10 ** 9, int(float(cell["rate"]) * load_s))))
        time.sleep(0.5)  # the workload is up before the first probe
    try:
        probe_cell = dict(cell, rate=float(cell.get("probe_rate") or neighbour.get("probe_rate") or 1000),
                          size=cell.get("probe_size") or 80)
        probe, more = sending.measure_latency(_traffic_params(
            dict(generator, cpu=neighbour.get("probe_cpu", 1)), probe_cell, neighbour["mac"], neighbour.get("ip"),
            mode="latency", src_ip=neighbour.get("probe_src_ip")))
        warnings.extend(more)
    finally:
        if thread is not None:
            thread.join(load_s + 120)
    out = {"probe": probe, "neighbour": neighbour.get("responder") or {}}
    if box is not None:
        if "error" in box:
            raise box["error"]
        out["load"] = box["result"]
        warnings.extend(box.get("warnings", []))
    return out


# ---------------------------------------------------------------------------
# Zero-loss throughput (RFC 2544, 26.1): trials at the rates zero_loss.next_rate asks for
# ---------------------------------------------------------------------------

def live_counters(location, armed):
    """The program's counters now, without stopping it (the worker writes its own every 250 ms)."""
    if location.get("kind") == "xdp":
        with ctr.CounterMap(ctr.resolve_paths(armed["prog"]["pin_path"], None)[0]) as cmap:
            return ctr.totals(cmap.read()[0])
    if location.get("kind") == "afxdp":
        time.sleep(2.0 * afxdp.STATS_INTERVAL_MS / 1000.0)  # the worker's last count reaches its stats file
        sdir = afxdp.state_dir(location["interface"], location.get("netns") or None)
        return afxdp.summarize(afxdp.read_json(os.path.join(sdir, afxdp.STATS_FILE)))["counters"]
    return record.zero_counters()


# Frames still in the receiver's ring when the generator stops (up to 256: ~8 ms at 33 kpps) are not lost.
SETTLE_S = 0.3


def trial(cell, location, generator, dst_mac, rate, duration, warnings, counted):
    """One trial: traffic at ``rate`` for ``duration`` s; ``counted()`` gives the program's seen packets."""
    before = counted()
    traffic, more = sending.send(_traffic_params(generator, dict(cell, rate=rate, duration=duration),
                                                 location.get("dst_mac") or dst_mac, location.get("dst_ip")))
    warnings.extend(more)
    time.sleep(SETTLE_S)
    return {"target_pps": rate, "duration_s": traffic.get("duration_s") or duration,
            "sent": traffic["packets_sent"], "processed": counted() - before}


def search(cell, location, generator, armed, warnings):
    """The whole search on one host (the generator beside the program): its zero_loss.outcome."""
    params = zero_loss.parameters(zero_loss.parameters_of(cell))
    dst_mac = (armed.get("dut_before") or {}).get("mac")
    trials = []

    def counted():
        return live_counters(location, armed)["seen"]["packets"]

    while True:
        rate = zero_loss.next_rate(trials, params)
        if rate is None:
            return zero_loss.outcome(trials, params)
        trials.append(trial(cell, location, generator, dst_mac, rate, params["trial_duration"], warnings, counted))


# ---------------------------------------------------------------------------
# After the window, at the location
# ---------------------------------------------------------------------------

def collect(cell, location, run, armed):
    """The program's counters, the DUT link's counters after, and the test run when asked."""
    kind = location.get("kind")
    collected = {}
    if kind == "xdp":
        pin_path = armed["prog"]["pin_path"]
        with ctr.CounterMap(ctr.resolve_paths(pin_path, None)[0]) as cmap:
            collected["counters"] = ctr.totals(cmap.read()[0])
        if cell.get("testrun"):
            options = run.get("testrun") or {}
            collected["testrun"] = testrun.time_program({
                "pin_path": pin_path, "packet": "dns_query" if cell["program"] == "dns_nxdomain" else "udp",
                "size": cell["size"], "dst_ip": location.get("target_ip") or None,
                "repeat": int(options.get("repeat", 200000)), "rounds": int(options.get("rounds", 5))})
    elif kind == "afxdp":
        final = afxdp.ensure_stopped(dict(worker_params(cell, location, run), state="stopped"))
        if final.get("crashed"):
            # A worker that died during the window left counters from before it died.
            raise CellError("the AF_XDP worker (pid %s) on %s died during the cell; its counters are stale and are "
                            "not recorded (%s)" % (final.get("pid", "?"), location["interface"],
                                                   final.get("error") or final.get("msg") or "no message"))
        collected["counters"] = final["counters"]
        collected["afxdp"] = final
    else:
        collected["counters"] = record.zero_counters()
    collected["dut_after"] = linkstats.read_link_stats(location["interface"], location.get("netns") or None)
    return collected


def teardown(location, cell=None, run=None):
    """Stop the worker and detach the program; returns the error sentence or None (never raises)."""
    kind = location.get("kind")
    errors = []
    where = {"interface": location["interface"], "netns": location.get("netns") or None}
    if kind == "afxdp":
        try:
            afxdp.ensure_stopped(dict(where, state="stopped"))
        except STEP_ERRORS as exc:
            errors.append(_msg(exc))
    if kind in ("xdp", "afxdp"):
        try:
            ensure_detached_on(dict(where, state="detached"))
        except STEP_ERRORS as exc:
            errors.append(_msg(exc))
    return "; ".join(errors) or None


# ---------------------------------------------------------------------------
# Phases as the module runs them
# ---------------------------------------------------------------------------

def _step(name, fn, *args):
    try:
        return fn(*args)
    except CellError as exc:
        raise CellError("%s: %s" % (name, exc.msg))
    except STEP_ERRORS as exc:
        raise CellError("%s: %s" % (name, _msg(exc)))


def run_phase(phase, p, check_mode=False):
    """Run one phase ('measured', 'armed', 'window', 'counted', 'collected', 'absent'); return the result.

    Never raises for a failed step: the result's ``error`` says which step failed and why, and
    whatever was deployed is removed again (except after 'armed', which leaves it for the window).
    """
    cell, location, run = p["cell"], p["location"], p.get("run") or {}
    generator, sampling = p.get("generator") or {}, p.get("sampling") or {}
    if location.get("kind") == "afxdp":
        # An unpinned AF_XDP worker would get almost no CPU beside a generator at a raised priority.
        generator = dict(generator, nice=None)
    result = {"changed": not check_mode, "phase": phase, "error": None, "teardown_error": None, "warnings": []}
    if check_mode:
        result["planned"] = planned(phase, cell, location, generator)
        return result
    armed = p.get("armed") or {}
    # Only a phase that runs at the location removes what is there (window runs on the generator's host).
    at_location = phase in ("measured", "armed", "counted", "collected", "absent")
    tear = phase in ("measured", "collected", "absent")
    try:
        if phase in ("measured", "armed"):
            armed = _step("deploy at %s" % cell["location"], arm, cell, location, run)
            result["armed"] = armed
        zero = (cell.get("measure") or "throughput") == "zero_loss"
        if phase == "measured" and zero:
            result["search"] = _step("search the zero-loss rate", search, cell, location, generator, armed,
                                     result["warnings"])
        elif phase == "counted":
            result["counters"] = _step("read the counters at %s" % cell["location"], live_counters, location, armed)
        elif phase in ("measured", "window"):
            dst_mac = (armed.get("dut_before") or {}).get("mac") or p.get("dst_mac")
            result["window"] = _step("measure (%s)" % (cell.get("measure") or "throughput"), window, cell, location,
                                     generator, sampling, dst_mac, result["warnings"])
        if phase in ("measured", "collected"):
            result["collected"] = _step("collect at %s" % cell["location"], collect, cell, location, run, armed)
    except CellError as exc:
        result["error"] = exc.msg
        tear = at_location
    finally:
        if tear:
            result["teardown_error"] = teardown(location, cell, run)
    return result


def planned(phase, cell, location, generator):
    """What a phase would do (check mode: nothing is loaded, started, sent or written)."""
    steps = []
    if phase in ("measured", "armed"):
        steps.append("deploy %s (%s) on %s in mode %s" % (cell["program"], location.get("kind"),
                                                          location["interface"], location.get("mode")))
    if phase in ("measured", "window"):
        steps.append("send %s traffic on %s for %s s" % (cell.get("measure") or "throughput",
                                                         generator.get("interface"), cell.get("duration")))
    if phase in ("measured", "collected"):
        steps.append("read the counters at %s" % location["interface"])
    if phase in ("measured", "collected", "absent") and location.get("kind") in ("xdp", "afxdp"):
        steps.append("remove the program from %s" % location["interface"])
    return steps
