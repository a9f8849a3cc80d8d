# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""xdplab.offload.cell on a real veth pair: a whole cell in one call, and split into its phases.

The generator's end (``xl-c0...`` in ``xl-cl...``) sends into the device under
test (``xl-c1...`` in ``xl-cd...``). What the cell returns is checked against
the kernel: the program's counters against the DUT link's own rx counters, and
that nothing is left attached (or running) afterwards, also after a failure.
The Netronome card cannot exist here: the offload cell must come back
``unsupported`` with the kernel's refusal. Every name starts with ``xl-c``.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess

import pytest
from pyroute2 import IPRoute, netns

from ansible_collections.xdplab.offload.plugins.module_utils import record
from lib.modrun import run_module
from lib.netfix import VethPair, unique

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, veths and BPF"),
]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "bpf")


@pytest.fixture
def wire():
    pair = VethPair(unique("xl-c0"), unique("xl-c1"), ns_a=unique("xl-cl"), ns_b=unique("xl-cd"))
    for ns in pair.namespaces:  # no IPv6 chatter on the wire: every frame counted is the generator's
        netns.create(ns)
        for key in ("default", "all"):
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key],
                           check=True)
    pair.create()
    # A veth passes redirected frames on only when its peer has a NAPI: GRO gives it one.
    subprocess.run(["ip", "netns", "exec", pair.ns_b, "ethtool", "-K", pair.name_b, "gro", "on"], check=True,
                   capture_output=True)
    try:
        yield pair
    finally:
        pair.destroy()


def xdp_attached(pair):
    with IPRoute(netns=pair.ns_b) as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=pair.name_b)[0])[0]
        xdp = link.get_attr("IFLA_XDP")
        return xdp is not None and bool(xdp.get_attr("IFLA_XDP_ATTACHED"))


def args(pair, location="driver", kind="xdp", mode="driver", program="drop", measure="throughput", **cell):
    return {
        "cell": dict({"id": "c-%s-%s" % (program, location), "experiment": "drop", "program": program, "n": None,
                      "location": location, "size": 64, "rate": 0, "duration": 1, "repetition": 1,
                      "measure": measure}, **cell),
        "location": {"kind": kind, "mode": mode, "interface": pair.name_b, "netns": pair.ns_b, "host": "localhost"},
        "run": {"bpf_dir": BPF_DIR, "loader": "object"},
        # the generator make setup builds (lab_host: /opt/xdplab/bpf), the one the role uses
        "generator": {"interface": pair.name_a, "netns": pair.ns_a, "cpu": [0]},
        "sampling": {"processes": [{"comm": "^napi/", "name": "napi", "optional": True}]},
    }


def test_one_call_deploys_measures_collects_and_removes_the_program(wire):
    result = run_module("cell", args(wire), timeout=120)
    assert not result.failed, result
    assert result["error"] is None and result["teardown_error"] is None
    seen = result["collected"]["counters"]["seen"]["packets"]
    rx = result["collected"]["dut_after"]["stats"]["rx_packets"] - result["armed"]["dut_before"]["stats"]["rx_packets"]
    assert seen > 1000
    assert seen == rx  # the program saw every frame the DUT's NAPI took off the ring
    assert result["armed"]["deploy"]["mode"] == "driver"
    assert not xdp_attached(wire)
    rec = record.build(args(wire)["cell"], {"run_id": "t"}, args(wire)["location"], result["armed"],
                       result["window"], result["collected"])
    assert rec["status"] == "ok" and record.validate(rec) is None
    assert rec["processed_pps"] > 0 and rec["sent_packets"] >= seen


def test_the_phases_apart_do_the_same_and_leave_the_program_only_between_them(wire):
    base = args(wire, location="generic", mode="generic")
    armed = run_module("cell", dict(base, phase="armed"), timeout=60)
    assert armed["error"] is None, armed
    assert xdp_attached(wire)
    window = run_module("cell", dict(base, phase="window", dst_mac=armed["armed"]["dut_before"]["mac"]), timeout=60)
    assert window["error"] is None, window
    collected = run_module("cell", dict(base, phase="collected", armed=armed["armed"]), timeout=60)
    assert collected["error"] is None, collected
    assert not xdp_attached(wire)
    assert collected["collected"]["counters"]["seen"]["packets"] > 100
    assert window["window"]["traffic"]["packets_sent"] >= collected["collected"]["counters"]["seen"]["packets"]


def test_the_afxdp_worker_is_started_counted_and_stopped(wire):
    result = run_module("cell", args(wire, location="afxdp", kind="afxdp"), timeout=120)
    assert result["error"] is None, result
    assert result["collected"]["counters"]["seen"]["packets"] > 100
    assert result["armed"]["worker"]["bind_mode"] in ("copy", "zerocopy")
    assert not xdp_attached(wire)


def test_offload_without_a_smartnic_is_unsupported_with_the_kernels_reason(wire):
    # No Netronome card here (nothing to mock it with): the kernel refuses to bind the program to a veth.
    result = run_module("cell", args(wire, location="offload", mode="offload"), timeout=60)
    assert not result.failed, result
    assert "offload-capable NIC" in result["error"]
    assert record.status_of(result["error"]) == "unsupported"
    assert not xdp_attached(wire)


def test_a_failed_window_still_removes_the_program(wire):
    bad = args(wire)
    bad["generator"]["netns"] = unique("xl-cx")  # no such namespace
    result = run_module("cell", bad, timeout=60)
    assert result["error"].startswith("measure (throughput): network namespace"), result
    assert not xdp_attached(wire)


def test_check_mode_loads_nothing_and_sends_nothing(wire):
    result = run_module("cell", args(wire), check=True, timeout=60)
    assert result["planned"] and result["error"] is None
    assert "window" not in result and "armed" not in result
    assert not xdp_attached(wire)


@pytest.mark.parametrize("field, value, option", [
    ("interface", "xl-c0;reboot", "location.interface"),
    ("netns", "../../etc", "location.netns"),
    ("kind", "shell", "location"),
])
def test_names_that_become_paths_or_arguments_are_refused(wire, field, value, option):
    bad = args(wire)
    bad["location"][field] = value
    result = run_module("cell", bad, timeout=60)
    assert result.failed and result["option"] == option, result
