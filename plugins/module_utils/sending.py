# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Send a cell's traffic: the load generator (throughput) or the latency client.

What the ``traffic`` module and the ``cell`` module both do between their
argument parsing and their exit: validate the request (``loadgen.normalize`` /
``latency.normalize``), check that the generator's interface is a lab one (it
exists, carries no default route and not Ansible's own connection), run the
generator and summarise its output. Failures raise :class:`SendError` with a
sentence and details for ``fail_json``; warnings are returned.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.xdplab.offload.plugins.module_utils import latency, linkstats, loadgen

try:
    from ansible_collections.xdplab.offload.plugins.module_utils import xdp
    HAS_XDP_UTILS = xdp.HAS_PYROUTE2
except ImportError:  # pragma: no cover - pyroute2 missing: the guard refuses to run
    xdp = None
    HAS_XDP_UTILS = False


class SendError(Exception):
    """A sentence for the user, with details for fail_json."""

    def __init__(self, msg, **details):
        super(SendError, self).__init__(msg)
        self.msg = msg
        self.details = details


def check_target(spec):
    """The namespace and the interface must exist (xl_loadgen, xl_latency) and the interface must be
    a lab interface (no default route, not Ansible's connection); raise SendError otherwise."""
    if spec["generator"] not in ("xl_loadgen", latency.CLIENT):
        return
    if spec["netns"] and not loadgen.netns_path(spec["netns"]):
        raise SendError("network namespace %s does not exist (looked in %s); create it first, e.g. with the "
                        "xdplab.offload.lab_wire role" % (spec["netns"], ", ".join(loadgen.NETNS_DIRS)),
                        netns=spec["netns"], interface=spec["interface"])
    if not HAS_XDP_UTILS:
        # Without netlink the guard cannot tell a management interface from a lab one: refuse.
        raise SendError("pyroute2 is not importable, so the module cannot check that interface %s carries no "
                        "default route and not Ansible's connection; install pyroute2 (the lab_host role "
                        "puts it into the module venv)" % spec["interface"], interface=spec["interface"])
    try:
        with xdp.open_netlink(spec["netns"]) as ipr:
            xdp.lookup(ipr, spec["interface"], spec["netns"])
            refusal = loadgen.interface_refusal(ipr, spec["interface"], spec["netns"], loadgen.ssh_connection(),
                                                spec["mode"])
    except xdp.XdpError as exc:
        raise SendError("%s; give the generator's interface" % exc.msg,
                        interface=spec["interface"], netns=spec["netns"])
    if refusal:
        raise SendError(refusal, interface=spec["interface"], netns=spec["netns"], option="interface")


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def read_interface(spec, run_command=None):
    """The generator interface's counters (xl_loadgen), or None (MoonGen drives a DPDK port)."""
    if spec["generator"] != "xl_loadgen":
        return None
    try:
        return linkstats.read_link_stats(spec["interface"], spec["netns"], run_command=run_command)
    except xdp.XdpError as exc:
        raise SendError("%s; give the generator's interface" % exc.msg, interface=spec["interface"],
                        netns=spec["netns"])


def send(params, check_mode=False, run_command=None):
    """mode throughput: run the load generator; return (result, warnings).

    The result has ``interface_stats``: the generator interface's counters over the run (xl_loadgen)."""
    try:
        spec = loadgen.normalize(params)
    except loadgen.LoadgenError as exc:
        raise SendError(exc.msg, **exc.details)
    binary = loadgen.resolve_binary(spec, params.get("binary"))
    script = params.get("script") or loadgen.DEFAULT_MOONGEN_SCRIPT
    argv = loadgen.build_argv(spec, binary, script)
    planned = loadgen.planned(spec)

    check_target(spec)
    if not _executable(binary):
        hint = ("build it with 'make -C bpf' (or make -C bpf/loadgen) and/or set binary"
                if spec["generator"] == "xl_loadgen" else "install MoonGen or set binary")
        raise SendError("load generator %s is not an executable file; %s" % (binary, hint),
                        binary=binary, command=argv)
    if spec["generator"] == "moongen" and not os.path.isfile(script):
        raise SendError("MoonGen script %s does not exist; copy bpf/loadgen/moongen/ there or set script"
                        % script, script=script, command=argv)
    if check_mode:
        return dict(changed=True, command=argv, planned=planned, generator=spec["generator"],
                    packets_sent=0, bytes_sent=0, duration_s=0.0, rate_pps=0.0,
                    offered_rate_pps=spec["rate"], requested_rate_pps=spec["rate"]), []
    if spec["generator"] == "xl_loadgen" and os.geteuid() != 0:
        raise SendError("xl-loadgen needs root (BPF and network namespaces); run the task with become: true",
                        command=argv)

    grace = params.get("timeout", 30)
    before = read_interface(spec, run_command)
    rc, out, err, timed_out = loadgen.run(argv, spec["duration"], grace=grace)
    interface_stats = linkstats.delta(before, read_interface(spec, run_command)) if before else None
    name = os.path.basename(binary)
    try:
        data = loadgen.parse_output(spec["generator"], out)
    except loadgen.LoadgenError as exc:
        reason = loadgen.error_line(err)
        msg = ("%s failed: %s" % (name, reason)) if reason else exc.msg
        if timed_out:
            msg = "%s did not finish within %s s after its duration and was stopped" % (name, grace)
        raise SendError(msg, rc=rc, stdout=out, stderr=err, command=argv)
    result = loadgen.summarize(spec, data)
    if interface_stats is not None:
        result["interface_stats"] = interface_stats
    if rc != 0:
        details = dict(result, rc=rc, stdout=out, stderr=err, command=argv)
        raise SendError("%s failed after sending %d frames: %s" % (
            name, result["packets_sent"], loadgen.error_line(err) or "exit code %d" % rc), **details)
    warnings = []
    if timed_out:
        warnings.append("the generator overran its duration by more than %s s and was interrupted" % grace)
    if spec["generator"] == "moongen" and spec["cpus"]:
        warnings.append("cpu is ignored with MoonGen; it takes its cores from dpdk-conf.lua")
    if spec["rate"] > 0 and result["rate_pps"] < 0.95 * spec["rate"]:
        warnings.append("achieved %.0f pps, less than 95%% of the requested %.0f pps" % (
            result["rate_pps"], spec["rate"]))
    if result["packets_sent"] and "device_xdp_xmit" in result and not (
            result["device_xdp_xmit"] or result.get("device_xdp_xmit_errors")):
        warnings.append("%s took none of the %d frames: a veth passes redirected frames on only when its peer "
                        "runs an XDP program (or has GRO on); attach one to the peer"
                        % (spec["interface"], result["packets_sent"]))
    result.update(changed=True, command=argv, planned=planned, stderr=err)
    return result, warnings


def measure_latency(params, check_mode=False, run_command=None):
    """mode latency: run xl-latency; return (result, warnings)."""
    try:
        spec = latency.normalize(params)
    except loadgen.LoadgenError as exc:
        raise SendError(exc.msg, **exc.details)
    binary = params.get("binary") or latency.DEFAULT_BINARY
    argv = latency.build_argv(spec, binary)
    planned = latency.planned(spec)

    check_target(spec)
    if not _executable(binary):
        raise SendError("latency client %s is not an executable file; build it with 'make -C bpf' (or make -C "
                        "bpf/latency) and/or set binary" % binary, binary=binary, command=argv)
    if check_mode:
        return dict(changed=True, command=argv, planned=planned, generator=latency.CLIENT, mode="latency",
                    packets_sent=0, bytes_sent=0, duration_s=0.0, rate_pps=0.0, sent=0, received=0,
                    offered_rate_pps=spec["rate"], requested_rate_pps=spec["rate"]), []
    if os.geteuid() != 0:
        raise SendError("xl-latency needs root (AF_XDP, BPF and network namespaces); run the task with "
                        "become: true", command=argv)

    grace = params.get("timeout", 30)
    rc, out, err, timed_out = loadgen.run(argv, spec["duration"] + spec["reply_timeout"] + 5.0, grace=grace)
    name = os.path.basename(binary)
    if rc != 0:
        reason = loadgen.error_line(err) or "exit code %d" % rc
        raise SendError("%s failed: %s" % (name, reason), rc=rc, stdout=out, stderr=err, command=argv)
    try:
        result = latency.summarize(spec, latency.parse_output(out))
    except loadgen.LoadgenError as exc:
        msg = exc.msg
        if timed_out:
            msg = "%s did not finish within %s s after its duration and was stopped" % (name, grace)
        raise SendError(msg, rc=rc, stdout=out, stderr=err, command=argv)
    warnings = latency.warnings(spec, result)
    if timed_out:
        warnings.append("the client overran its duration by more than %s s and was interrupted" % grace)
    result.update(changed=True, command=argv, planned=planned, stderr=err)
    return result, warnings
