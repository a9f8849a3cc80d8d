# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile inputs for xdplab.offload.traffic: where traffic goes and which interface sends it.

Each case runs the module as a program and asserts a clear refusal (failed, a
message naming the option or the rule, no traceback) and that nothing changed:
``ip -j link`` of every namespace used and the TX/RX counters of the interfaces
are the same before and after.

The namespaces:

* ``xl-hbA<tag>``: ``xl-hbD<tag>`` carries the default route (198.18.<x>.1/24,
  default via 198.18.<x>.2, which lives on its peer in ``xl-hbP<tag>``); a
  bridge ``xl-hbB<tag>`` carries a second default route and has the veth
  ``xl-hbQ<tag>`` as a port.
* ``xl-hbS<tag>``: no default route; ``xl-hbS<tag>`` holds 198.18.<x>.65, the
  "SSH server address" given to the module in ``SSH_CONNECTION``; ``xl-hbC<tag>``
  (peer in ``xl-hbP<tag>``) is a clean lab interface.
* ``xl-hbV<tag>``: an IPv6 default route only, on ``xl-hbV<tag>``.
* the root namespace: ``xl-hbR<tag>`` (198.18.<x>.97/27, peer in P) is the
  route to the "SSH client" 198.18.<x>.98; only this interface of the root
  namespace is read or compared.

IPv6 is off in A, S and P, so no stray frames touch the counters. The module
is always given ``binary: /bin/false``: even a guard that let a case through
could not send a frame. Nothing is ever sent to any address; every name starts
with ``xl-hb``; the namespaces go in a finalizer, also on failure.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import time
import uuid

import pytest

from lib.modrun import run_module

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and veths"),
]

TAG = uuid.uuid4().hex[:6]
NET = "198.18.%d" % (100 + int(TAG, 16) % 100)
NS = {k: "xl-hb%s%s" % (k, TAG) for k in ("A", "P", "S", "V")}
IF = {k: "xl-hb%s%s" % (k, TAG) for k in ("D", "d", "B", "Q", "q", "S", "s", "C", "c", "V", "v", "R", "r")}
SAFE = "/bin/false"


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, check=check, timeout=60)


def _no_ipv6(ns):
    for key in ("default", "all"):
        _ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key)


@pytest.fixture(scope="module")
def lab():
    try:
        for key in ("A", "P", "S", "V"):
            _ip("netns", "add", NS[key])
        for key in ("A", "P", "S"):
            _no_ipv6(NS[key])
        a, p, s, v = NS["A"], NS["P"], NS["S"], NS["V"]
        # A: the default route on xl-hbD, through its peer in P
        _ip("-n", a, "link", "add", IF["D"], "type", "veth", "peer", "name", IF["d"], "netns", p)
        _ip("-n", a, "addr", "add", NET + ".1/27", "dev", IF["D"])
        _ip("-n", p, "addr", "add", NET + ".2/27", "dev", IF["d"])
        # A: a bridge with a second default route and a veth port
        _ip("-n", a, "link", "add", IF["B"], "type", "bridge")
        _ip("-n", a, "link", "add", IF["Q"], "type", "veth", "peer", "name", IF["q"])
        _ip("-n", a, "link", "set", IF["Q"], "master", IF["B"])
        _ip("-n", a, "addr", "add", NET + ".33/27", "dev", IF["B"])
        # S: the "SSH" address, and a clean lab interface
        _ip("-n", s, "link", "add", IF["S"], "type", "veth", "peer", "name", IF["s"], "netns", p)
        _ip("-n", s, "addr", "add", NET + ".65/27", "dev", IF["S"])
        _ip("-n", p, "addr", "add", NET + ".66/27", "dev", IF["s"])
        _ip("-n", s, "link", "add", IF["C"], "type", "veth", "peer", "name", IF["c"], "netns", p)
        # V: an IPv6 default route only (no addresses: addr_gen_mode none)
        _ip("-n", v, "link", "add", IF["V"], "type", "veth", "peer", "name", IF["v"])
        for name in (IF["V"], IF["v"]):
            _ip("netns", "exec", v, "sysctl", "-qw", "net.ipv6.conf.%s.addr_gen_mode=1" % name)
            _ip("netns", "exec", v, "sysctl", "-qw", "net.ipv6.conf.%s.accept_ra=0" % name)
        for ns, names in ((a, ("D", "B", "Q", "q")), (p, ("d", "s", "c")), (s, ("S", "C")), (v, ("V", "v"))):
            for key in names:
                _ip("-n", ns, "link", "set", IF[key], "up")
        _ip("-n", a, "route", "add", "default", "via", NET + ".2", "dev", IF["D"])
        _ip("-n", a, "route", "add", "default", "via", NET + ".34", "dev", IF["B"], "metric", "200")
        _ip("-n", v, "-6", "route", "add", "default", "dev", IF["V"])
        # the root namespace: xl-hbR reaches the "SSH client" 198.18.<x>.98 (connected route), peer in P
        _ip("link", "add", IF["R"], "type", "veth", "peer", "name", IF["r"], "netns", p)
        _ip("netns", "exec", p, "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % IF["r"], check=False)
        subprocess.run(["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % IF["R"]], check=True)
        _ip("addr", "add", NET + ".97/27", "dev", IF["R"])
        _ip("link", "set", IF["R"], "up")
        _ip("-n", p, "link", "set", IF["r"], "up")
        settle()
        yield
    finally:
        _ip("link", "del", IF["R"], check=False)
        for ns in NS.values():
            _ip("netns", "del", ns, check=False)


def state():
    """ip -j link of every namespace (without statistics) and the counters of every interface."""
    links, counters = {}, {}
    for ns in list(NS.values()) + [None]:
        where = ["-n", ns] if ns else []
        # the root namespace: only this file's own interface
        mine = (lambda link: True) if ns else (lambda link: link["ifname"] == IF["R"])
        links[ns] = [link for link in json.loads(_ip(*(where + ["-j", "link", "show"])).stdout) if mine(link)]
        for link in json.loads(_ip(*(where + ["-j", "-s", "link", "show"])).stdout):
            if mine(link):
                stats = link.get("stats64", {})
                counters[(ns, link["ifname"])] = (stats.get("tx", {}).get("packets"),
                                                  stats.get("rx", {}).get("packets"))
    return links, counters


def settle(timeout=15.0, quiet=2.0):
    """Wait until links and counters stop changing for ``quiet`` seconds (veths come up, qdiscs
    attach, the kernel's link watch settles operstates with up to a second's delay)."""
    deadline = time.monotonic() + timeout
    last, since = state(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = state()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError("the namespaces' links did not settle within %s s" % timeout)


def _changed(before, after):
    """The entries of two state() halves that differ, for the assertion message."""
    keys = set(before) | set(after)
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


def refused(args, *fragments, check=False, v6=False):
    """Run the module, assert a clean refusal naming ``fragments``, and that nothing changed."""
    args = dict(args)
    args.setdefault("binary", SAFE)
    before = state()
    result = run_module("traffic", args, check=check, timeout=120)
    after = state()
    assert result.failed, result
    for fragment in fragments:
        assert fragment in result["msg"], result
    assert "Traceback" not in json.dumps(result) and "exception" not in result and "module_stderr" not in result
    assert not result.get("packets_sent") and "rc" not in result, result
    assert after[0] == before[0], _changed(before[0], after[0])
    if v6:
        # IPv6 stays on in xl-hbV (it needs it for the route): compare the other namespaces' counters
        before_c = {k: c for k, c in before[1].items() if k[0] != NS["V"]}
        after_c = {k: c for k, c in after[1].items() if k[0] != NS["V"]}
        assert after_c == before_c, _changed(before_c, after_c)
    else:
        assert after[1] == before[1], _changed(before[1], after[1])
    return result


CLEAN = dict(interface=IF["C"], netns=NS["S"])


# ------------------------------------------------------------------ destinations

@pytest.mark.parametrize("dst", ["8.8.8.8", "10.1.2.3", "192.168.1.1", "172.16.0.1", "2001:4860:4860::8888",
                                 "198.20.0.1"], ids=lambda dst: dst.replace(":", "_"))
def test_destinations_outside_the_benchmarking_range_are_refused(lab, dst):
    refused(dict(CLEAN, dst_ip=dst, duration=1), "dst_ip %s is outside 198.18.0.0/15" % dst,
            "traffic_allowed_destinations")


def test_a_source_outside_the_range_is_refused_since_replies_go_there(lab):
    refused(dict(CLEAN, src_ip="10.0.0.1"), "src_ip 10.0.0.1 is outside 198.18.0.0/15", "replies go to src_ip")


def test_allowed_destinations_admit_exactly_their_network(lab):
    refused(dict(CLEAN, dst_ip="10.1.3.1", allowed_destinations=["10.1.2.0/24"]), "dst_ip 10.1.3.1 is outside")
    refused(dict(CLEAN, dst_ip="10.1.2.3", allowed_destinations=["not-a-network"]),
            "allowed_destinations entry 'not-a-network' is not an IP network")
    # inside the allowed network: accepted, checked only (check mode sends nothing)
    before = state()
    result = run_module("traffic", dict(CLEAN, dst_ip="10.1.2.3", allowed_destinations=["10.1.2.0/24"],
                                        binary=SAFE, duration=1), check=True)
    assert not result.failed, result
    assert result["packets_sent"] == 0 and result["planned"]["dst_ip"] == "10.1.2.3"
    assert state() == before


def test_check_mode_refuses_a_destination_too(lab):
    refused(dict(CLEAN, dst_ip="8.8.8.8"), "dst_ip 8.8.8.8 is outside", check=True)


def test_latency_mode_refuses_a_target_outside_the_range(lab):
    refused(dict(CLEAN, mode="latency", rate=100, dst_ip="192.168.1.1"), "dst_ip 192.168.1.1 is outside")


def test_moongen_refuses_a_destination_outside_the_range(lab):
    refused(dict(generator="moongen", interface="0", dst_ip="8.8.8.8"), "dst_ip 8.8.8.8 is outside", check=True)


# ------------------------------------------------------------------ the interface guard

def test_the_interface_with_the_default_route_is_refused(lab):
    refused(dict(interface=IF["D"], netns=NS["A"], duration=1),
            "interface %s in namespace %s carries the default route (IPv4 via %s.2)" % (IF["D"], NS["A"], NET))


def test_the_default_route_interface_is_refused_in_check_mode(lab):
    refused(dict(interface=IF["D"], netns=NS["A"]), "%s in namespace %s carries the default route" % (
        IF["D"], NS["A"]), check=True)


def test_latency_mode_on_the_default_route_interface_is_refused(lab):
    refused(dict(interface=IF["D"], netns=NS["A"], mode="latency", rate=100, duration=1),
            "interface %s in namespace %s carries the default route" % (IF["D"], NS["A"]),
            "the latency client redirects every IPv4 frame of its queue")


def test_a_port_of_a_bridge_with_the_default_route_is_refused(lab):
    refused(dict(interface=IF["Q"], netns=NS["A"]),
            "interface %s in namespace %s is a port of %s, which carries the default route (IPv4 via %s.34)"
            % (IF["Q"], NS["A"], IF["B"], NET))


def test_an_ipv6_default_route_is_guarded_too(lab):
    refused(dict(interface=IF["V"], netns=NS["V"]), "%s in namespace %s carries the default route (IPv6)"
            % (IF["V"], NS["V"]), v6=True)


def test_the_interface_holding_the_ssh_server_address_is_refused(lab, monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "%s.66 50022 %s.65 22" % (NET, NET))
    refused(dict(interface=IF["S"], netns=NS["S"], duration=1),
            "interface %s in namespace %s holds %s.65, the address Ansible connects through (SSH_CONNECTION)"
            % (IF["S"], NS["S"], NET))
    refused(dict(interface=IF["S"], netns=NS["S"], mode="latency", rate=100), "holds %s.65" % NET, check=True)


def test_the_interface_with_the_route_back_to_the_ssh_client_is_refused_in_the_modules_namespace(lab, monkeypatch):
    """No netns: the module's own (root) namespace, where xl-hbR reaches the SSH client."""
    monkeypatch.setenv("SSH_CONNECTION", "%s.98 50022 198.19.254.254 22" % NET)
    refused(dict(interface=IF["R"], duration=1),
            "interface %s (root namespace) carries the route to the SSH client %s.98, Ansible's own connection"
            % (IF["R"], NET))
    refused(dict(interface=IF["R"], mode="latency", rate=100), "route to the SSH client", check=True)


def test_a_clean_lab_interface_passes_the_guard_in_check_mode(lab, monkeypatch):
    """The control: the same namespace, an interface without the SSH address or a default route."""
    monkeypatch.setenv("SSH_CONNECTION", "%s.66 50022 %s.65 22" % (NET, NET))
    before = state()
    result = run_module("traffic", dict(CLEAN, binary=SAFE, duration=1), check=True)
    assert not result.failed, result
    assert result["changed"] and result["packets_sent"] == 0
    assert state() == before


# ------------------------------------------------------------------ names and bounds

@pytest.mark.parametrize("name", ["eth0;reboot", "../../etc", "x" * 16, "a b"])
def test_bad_interface_names_are_refused(lab, name):
    refused(dict(interface=name, netns=NS["S"]), "interface %r is not an interface name" % name)


@pytest.mark.parametrize("name", ["../../proc/1/ns/net", ".hidden", "a b", "x" * 65])
def test_bad_namespace_names_are_refused(lab, name):
    refused(dict(interface=IF["C"], netns=name), "netns %r is not a valid network namespace name" % name)


def test_a_duration_over_the_bound_is_refused(lab):
    refused(dict(CLEAN, duration=3601), "duration 3601 s is above max_duration (3600 s)")
    refused(dict(CLEAN, duration=100000, max_duration=100000), "max_duration 100000 s is out of range")
    refused(dict(CLEAN, mode="latency", rate=100, duration=7200), "duration 7200 s is above max_duration",
            check=True)


def test_a_paced_run_over_the_packet_bound_is_refused(lab):
    refused(dict(CLEAN, rate=1000000, duration=1500), "rate x duration = 1500000000 frames is above max_packets")
    refused(dict(CLEAN, mode="latency", rate=1000, duration=60, max_packets=1000),
            "rate x duration = 60000 frames is above max_packets (1000)")
