# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulated lab's wire: one veth pair between two network namespaces.

The load generator end (``lg``) and the device under test end (``dut``) each
live in a namespace of their own, with a stable MAC, one address from
198.18.0.0/15, the other end's address as a permanent neighbour, TX checksum
offload off (veth leaves partial checksums that an XDP responder passes on
unfixed) and, on the DUT end, GRO plus threaded NAPI pinned to one CPU so that
the DUT's receive work does not run on the generator's CPU. With ``queues`` > 1
both ends get that many RX and TX queues, the DUT end one NAPI (thread) per
queue, pinned over the allowed CPUs from ``napi_cpu`` on.

The module follows want -> have -> plan -> apply:

* ``build_want(params, cpus)``  validates the options (pure),
* ``read_have(want)``           reads the kernel (netlink, ethtool, sysfs),
* ``plan_present/plan_absent``  compute the ordered steps (pure),
* ``apply_steps``               carries them out.

Things that only work inside the namespace (ethtool ioctls, the netdev
generic-netlink family, ``/sys/class/net/<dev>/threaded``) run in a forked
child that enters the namespace with setns(); for sysfs the child first makes
a private mount namespace and mounts a sysfs of the target network namespace
over /sys, so nothing leaks into the caller's mounts and pinned BPF objects
under /sys/fs/bpf stay visible to everyone else.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import hashlib
import ipaddress
import json
import os
import re

from ansible_collections.xdplab.offload.plugins.module_utils.safety import BENCH_NET

try:
    import pyroute2
    from pyroute2 import IPRoute
    from pyroute2 import netns as pr_netns
    from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, genlmsg
    from pyroute2.netlink.generic import GenericNetlinkSocket
    from pyroute2.netlink.rtnl.ndmsg import NUD_PERMANENT
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    pyroute2 = None
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc
    NUD_PERMANENT = 0x80

OWNER = "xdplab.offload.lab_wire"
SIDES = ("lg", "dut")
IFNAMSIZ = 16
NETNS_DIR = "/run/netns"
MIN_PYROUTE2 = (0, 9, 1)

# What a veth looks like right after `ip link add` (used to predict the steps
# for a wire that does not exist yet, e.g. in check mode).
FRESH_VETH = {
    "mtu": 1500,
    "up": False,
    "addresses": [],
    "neighbours": {},
    "tx_checksum_offload": True,
    "gro": False,
    "threaded": False,
    "napi": [],
    "queues": 1,
    "max_queues": 1,
}
MAX_QUEUES = 64

TX_CSUM_PREFIX = "tx-checksum-"
GRO_FEATURE = "rx-gro"


class WireError(Exception):
    """A failure with one actionable sentence in ``msg`` and details apart."""

    def __init__(self, msg, **details):
        super(WireError, self).__init__(msg)
        self.msg = msg
        self.details = details


# --------------------------------------------------------------------------
# Pure validation and derivation
# --------------------------------------------------------------------------

def check_ifname(name, option):
    """Return ``name`` if it is a valid Linux interface name, else raise."""
    if not isinstance(name, str) or not name:
        raise WireError("%s must be a non-empty interface name." % option, option=option)
    if len(name.encode("utf-8")) > IFNAMSIZ - 1:
        raise WireError(
            "%s %r is %d characters long; Linux interface names have at most %d."
            % (option, name, len(name.encode("utf-8")), IFNAMSIZ - 1),
            option=option, value=name)
    if name in (".", "..") or re.search(r"[/:%\s]", name):
        raise WireError(
            "%s %r is not a valid interface name (no '/', ':', '%%' or whitespace, not '.' or '..')."
            % (option, name), option=option, value=name)
    return name


def check_netns_name(name, option):
    """Return ``name`` if it can name a namespace under /run/netns, else raise."""
    if not isinstance(name, str) or not name:
        raise WireError("%s must be a non-empty namespace name." % option, option=option)
    if name in (".", "..") or "/" in name or re.search(r"\s", name) or len(name) > 255:
        raise WireError(
            "%s %r is not a valid namespace name (no '/' or whitespace, not '.' or '..')."
            % (option, name), option=option, value=name)
    return name


def parse_address(value, option):
    """Parse ``a.b.c.d/len`` and make sure it lies inside 198.18.0.0/15."""
    try:
        iface = ipaddress.ip_interface(str(value))
    except ValueError:
        raise WireError("%s %r is not an IPv4 address with a prefix length (like 198.18.0.1/24)."
                        % (option, value), option=option, value=value)
    if iface.version != 4 or "/" not in str(value):
        raise WireError("%s %r must be an IPv4 address with a prefix length (like 198.18.0.1/24)."
                        % (option, value), option=option, value=value)
    if not iface.network.subnet_of(BENCH_NET):
        raise WireError(
            "%s %s is outside %s; the lab uses only RFC 2544's benchmarking range, pick an address "
            "(and prefix length of at least /%d) inside it." % (option, value, BENCH_NET, BENCH_NET.prefixlen),
            option=option, value=str(value), allowed=str(BENCH_NET))
    if iface.network.prefixlen <= 30 and iface.ip in (iface.network.network_address,
                                                      iface.network.broadcast_address):
        raise WireError("%s %s is the network or broadcast address of %s; pick a host address."
                        % (option, value, iface.network), option=option, value=str(value))
    return iface


def check_address_pair(lg, dut):
    """Both ends must share one subnet and have different addresses."""
    if lg.network != dut.network:
        raise WireError(
            "lg_address %s and dut_address %s are in different subnets; give both the same network "
            "and prefix length." % (lg, dut), lg_address=str(lg), dut_address=str(dut))
    if lg.ip == dut.ip:
        raise WireError("lg_address and dut_address are both %s; give each end its own address." % lg.ip,
                        lg_address=str(lg), dut_address=str(dut))


def derive_mac(netns_name, ifname):
    """A stable, locally administered unicast MAC for an interface of the lab."""
    digest = hashlib.sha256(("%s:%s/%s" % (OWNER, netns_name, ifname)).encode("utf-8")).digest()
    octets = bytearray(digest[:6])
    octets[0] = (octets[0] & 0xFC) | 0x02  # unicast, locally administered
    return ":".join("%02x" % b for b in octets)


def normalize_mac(value, option):
    """Lower-case colon form of a unicast MAC; raise on anything else."""
    text = str(value).strip().lower().replace("-", ":")
    if not re.match(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", text):
        raise WireError("%s %r is not a MAC address like 02:00:5e:00:00:01." % (option, value),
                        option=option, value=value)
    first = int(text[:2], 16)
    if first & 0x01:
        raise WireError("%s %s is a multicast address; an interface needs a unicast MAC." % (option, text),
                        option=option, value=text)
    if text == "00:00:00:00:00:00":
        raise WireError("%s must not be all zeros." % option, option=option, value=text)
    return text


def default_napi_cpu(cpus):
    """The last CPU the caller may run on."""
    return max(cpus)


def napi_cpus(first, cpus, queues):
    """CPUs for the NAPI threads of queues 0..queues-1: the allowed CPUs in turn from ``first`` on."""
    order = sorted(cpus)
    start = order.index(first)
    return [order[(start + i) % len(order)] for i in range(queues)]


def make_tag(created_netns, peer_netns, peer_ifname):
    """The ifalias that marks an end as made by lab_wire."""
    return "%s ns=%s peer=%s/%s" % (OWNER, "created" if created_netns else "existing",
                                    peer_netns, peer_ifname)


def parse_tag(alias):
    """Return ``{'created_netns': bool, 'peer': 'ns/if'}`` or None if not ours."""
    if not alias or not alias.startswith(OWNER + " "):
        return None
    fields = dict(part.split("=", 1) for part in alias.split()[1:] if "=" in part)
    return {"created_netns": fields.get("ns") == "created", "peer": fields.get("peer")}


def build_want(params, cpus):
    """Validate the module options and return the desired wire.

    ``cpus`` is the set of CPUs the caller may use (``os.sched_getaffinity(0)``).
    """
    want = {"state": params.get("state", "present")}
    names = {}
    for side in SIDES:
        names[side] = {
            "netns": check_netns_name(params["%s_netns" % side], "%s_netns" % side),
            "interface": check_ifname(params["%s_interface" % side], "%s_interface" % side),
        }
    if names["lg"]["netns"] == names["dut"]["netns"]:
        raise WireError("lg_netns and dut_netns are both %r; the wire joins two different namespaces."
                        % names["lg"]["netns"], netns=names["lg"]["netns"])
    for side in SIDES:
        want[side] = dict(names[side])
    if want["state"] == "absent":
        return want

    addresses = {side: parse_address(params["%s_address" % side], "%s_address" % side) for side in SIDES}
    check_address_pair(addresses["lg"], addresses["dut"])
    macs = {}
    for side in SIDES:
        given = params.get("%s_mac" % side)
        macs[side] = (normalize_mac(given, "%s_mac" % side) if given
                      else derive_mac(names[side]["netns"], names[side]["interface"]))
    if macs["lg"] == macs["dut"]:
        raise WireError("lg_mac and dut_mac are both %s; give each end its own MAC." % macs["lg"])
    mtu = params.get("mtu")
    mtu = 1500 if mtu is None else int(mtu)
    if not 68 <= mtu <= 65535:
        raise WireError("mtu %d is outside 68..65535." % mtu, mtu=mtu)

    queues = params.get("queues")
    queues = 1 if queues is None else int(queues)
    if not 1 <= queues <= MAX_QUEUES:
        raise WireError("queues %d is outside 1..%d." % (queues, MAX_QUEUES), queues=queues)

    threaded = bool(params.get("threaded_napi", True))
    gro = bool(params.get("dut_gro", True))
    napi_cpu = None
    if threaded:
        if not gro:
            raise WireError(
                "threaded_napi needs dut_gro: true, because a veth has a NAPI instance (and so a NAPI "
                "thread to pin) only while GRO is on or an XDP program is attached.",
                threaded_napi=threaded, dut_gro=gro)
        napi_cpu = params.get("napi_cpu")
        napi_cpu = default_napi_cpu(cpus) if napi_cpu is None else int(napi_cpu)
        if napi_cpu not in cpus:
            raise WireError("napi_cpu %d is not among the CPUs this host lets us use (%s)."
                            % (napi_cpu, ",".join(str(c) for c in sorted(cpus))),
                            napi_cpu=napi_cpu, cpus=sorted(cpus))
    napi_nice = params.get("napi_nice")
    if napi_nice is not None:
        napi_nice = int(napi_nice)
        if not -20 <= napi_nice <= 19:
            raise WireError("napi_nice %d is outside -20..19." % napi_nice, napi_nice=napi_nice)
    tx_csum = bool(params.get("tx_checksum_offload", False))

    other = {"lg": "dut", "dut": "lg"}
    for side in SIDES:
        peer = other[side]
        want[side].update({
            "mac": macs[side],
            "address": str(addresses[side]),
            "ip": str(addresses[side].ip),
            "mtu": mtu,
            "up": True,
            "addresses": [str(addresses[side])],
            "neighbours": {str(addresses[peer].ip): macs[peer]},
            "tx_checksum_offload": tx_csum,
            "gro": gro if side == "dut" else None,
            "threaded": threaded if side == "dut" else None,
            "napi_cpu": napi_cpu if side == "dut" else None,
            "napi_cpus": napi_cpus(napi_cpu, cpus, queues) if side == "dut" and napi_cpu is not None else None,
            "queues": queues,
            "napi_nice": napi_nice if side == "dut" and threaded else None,
        })
    return want


# --------------------------------------------------------------------------
# Pure planning
# --------------------------------------------------------------------------

def _step(side, action, text, **args):
    return {"side": side, "action": action, "text": text, "args": args}


def napi_cpu_of(threads):
    """The CPU all NAPI threads are pinned to, or None when not exactly one."""
    sets = {tuple(sorted(t.get("cpus") or [])) for t in threads}
    if len(sets) == 1:
        only = sets.pop()
        if len(only) == 1:
            return only[0]
    return None


def check_ownership(want, have):
    """Raise when the names are taken by something lab_wire did not make."""
    links = {side: have[side].get("link") for side in SIDES}
    for side in SIDES:
        link = links[side]
        where = "%s in namespace %s" % (want[side]["interface"], want[side]["netns"])
        if link is None:
            continue
        if link.get("kind") != "veth" or parse_tag(link.get("alias")) is None:
            raise WireError(
                "%s exists and was not made by lab_wire (kind %s); remove it or choose another %s_interface."
                % (where, link.get("kind") or "unknown", side),
                netns=want[side]["netns"], interface=want[side]["interface"],
                kind=link.get("kind"), ifalias=link.get("alias"))
    if (links["lg"] is None) != (links["dut"] is None):
        side = "lg" if links["lg"] is not None else "dut"
        peer = "dut" if side == "lg" else "lg"
        raise WireError(
            "%s in namespace %s is a lab_wire veth but its peer is not %s in namespace %s; remove the "
            "old wire with state=absent and its original names first."
            % (want[side]["interface"], want[side]["netns"], want[peer]["interface"], want[peer]["netns"]),
            netns=want[side]["netns"], interface=want[side]["interface"],
            ifalias=links[side].get("alias"))
    if links["lg"] is not None:
        lg, dut = links["lg"], links["dut"]
        expect = {"lg": "%s/%s" % (want["dut"]["netns"], want["dut"]["interface"]),
                  "dut": "%s/%s" % (want["lg"]["netns"], want["lg"]["interface"])}
        paired = (lg.get("peer_ifindex") == dut.get("ifindex") and dut.get("peer_ifindex") == lg.get("ifindex")
                  and parse_tag(lg.get("alias"))["peer"] == expect["lg"]
                  and parse_tag(dut.get("alias"))["peer"] == expect["dut"])
        if not paired:
            raise WireError(
                "%s in %s and %s in %s are lab_wire veths of two different wires; remove them with "
                "state=absent and their original names first."
                % (want["lg"]["interface"], want["lg"]["netns"], want["dut"]["interface"], want["dut"]["netns"]),
                lg_ifalias=lg.get("alias"), dut_ifalias=dut.get("alias"))
        return
    for side in SIDES:
        foreign = [name for name in have[side].get("interfaces", []) if name != "lo"]
        if have[side].get("netns_exists") and foreign:
            raise WireError(
                "Namespace %s already holds interfaces lab_wire did not make (%s); choose another %s_netns "
                "or remove them." % (want[side]["netns"], ", ".join(sorted(foreign)), side),
                netns=want[side]["netns"], interfaces=sorted(foreign))


def _current(side, want, have):
    """The state to compare with: the live link, or a fresh veth to be made."""
    link = have[side].get("link")
    if link is None:
        fresh = dict(FRESH_VETH)
        fresh["mac"] = want[side]["mac"]
        fresh["queues"] = fresh["max_queues"] = want[side].get("queues", 1)
        return fresh
    return link


def plan_side(side, want_side, cur):
    """Ordered steps that turn ``cur`` (one end) into ``want_side``."""
    steps = []
    dev = want_side["interface"]
    if cur.get("mac") != want_side["mac"]:
        steps.append(_step(side, "set_mac", "set MAC of %s to %s" % (dev, want_side["mac"]),
                           mac=want_side["mac"]))
    if cur.get("mtu") != want_side["mtu"]:
        steps.append(_step(side, "set_mtu", "set MTU of %s to %d" % (dev, want_side["mtu"]),
                           mtu=want_side["mtu"]))
    if not cur.get("up"):
        steps.append(_step(side, "set_up", "bring %s up" % dev))
    have_addrs = set(cur.get("addresses") or [])
    want_addrs = set(want_side["addresses"])
    if have_addrs != want_addrs:
        add, remove = sorted(want_addrs - have_addrs), sorted(have_addrs - want_addrs)
        steps.append(_step(side, "set_addresses", "set IPv4 addresses of %s to %s (add %s; remove %s)"
                           % (dev, ", ".join(sorted(want_addrs)), ", ".join(add) or "none",
                              ", ".join(remove) or "none"),
                           add=add, remove=remove))
    have_neigh = dict(cur.get("neighbours") or {})
    want_neigh = want_side["neighbours"]
    if have_addrs != want_addrs and have_addrs:
        # Removing addresses can flush the neighbour table; restore it afterwards.
        have_neigh = {}
    if have_neigh != want_neigh:
        put = {ip: mac for ip, mac in want_neigh.items() if have_neigh.get(ip) != mac}
        remove = sorted(ip for ip in have_neigh if ip not in want_neigh)
        steps.append(_step(side, "set_neighbours", "set permanent neighbours on %s to %s"
                           % (dev, ", ".join("%s lladdr %s" % kv for kv in sorted(want_neigh.items()))),
                           put=put, remove=remove))
    if bool(cur.get("tx_checksum_offload")) != want_side["tx_checksum_offload"]:
        steps.append(_step(side, "set_tx_checksum", "turn TX checksum offload %s on %s"
                           % ("on" if want_side["tx_checksum_offload"] else "off", dev),
                           enable=want_side["tx_checksum_offload"]))
    gro = want_side.get("gro")
    gro_step = None
    if gro is not None and bool(cur.get("gro")) != gro:
        gro_step = _step(side, "set_gro", "turn GRO %s on %s" % ("on" if gro else "off", dev), enable=gro)
    if gro_step is not None and gro:
        steps.append(gro_step)  # NAPI must exist before the threaded flag can be written
    threaded = want_side.get("threaded")
    napi_will_exist = bool(cur.get("napi")) or bool(gro) or bool(cur.get("gro"))
    if threaded is not None and napi_will_exist and bool(cur.get("threaded")) != threaded:
        steps.append(_step(side, "set_threaded", "turn threaded NAPI %s on %s" % ("on" if threaded else "off", dev),
                           enable=threaded))
    if gro_step is not None and not gro:
        steps.append(gro_step)
    cpus = want_side.get("napi_cpus")
    nice = want_side.get("napi_nice")
    if threaded and cpus:
        threads = sorted(cur.get("napi") or [], key=_napi_order)
        if (len(threads) != len(cpus) or cur.get("queues", 1) != want_side["queues"]
                or any(sorted(t.get("cpus") or []) != [cpu] for t, cpu in zip(threads, cpus))
                or (nice is not None and any(t.get("nice") != nice for t in threads))):
            args = {"cpus": cpus}
            if nice is not None:
                args["nice"] = nice
            steps.append(_step(side, "pin_napi", "pin the NAPI thread(s) of %s to CPU %s%s"
                               % (dev, ", ".join(str(c) for c in cpus),
                                  "" if nice is None else " at nice %d" % nice), **args))
    return steps


def _napi_order(thread):
    """veth registers one NAPI per RX queue in queue order, so NAPI ids ascend with the queue."""
    return (thread.get("napi_id") is None, thread.get("napi_id") or 0, thread.get("pid") or 0)


def plan_queues(want, cur):
    """The step that gives both ends want's queue count (None when they have it).

    Lowering goes generator end first, raising DUT end first: with an XDP program on the
    DUT end, veth refuses fewer DUT RX queues than the generator end has TX queues.
    """
    queues = want["dut"]["queues"]
    have = [cur[side].get("queues", 1) for side in SIDES]
    if have == [queues, queues]:
        return None
    order = list(SIDES) if queues < max(have) else list(reversed(SIDES))
    return _step(None, "set_queues", "set the RX and TX queues of %s and %s to %d"
                 % (want["lg"]["interface"], want["dut"]["interface"], queues), queues=queues, order=order)


def plan_present(want, have):
    """All steps, in order, that make the wire of ``want`` from ``have``."""
    check_ownership(want, have)
    steps = []
    for side in SIDES:
        if not have[side].get("netns_exists"):
            steps.append(_step(side, "create_netns", "create namespace %s" % want[side]["netns"]))
    for side in SIDES:
        if not have[side].get("lo_up"):
            steps.append(_step(side, "lo_up", "bring lo up in namespace %s" % want[side]["netns"]))
    links = [have[side].get("link") for side in SIDES]
    recreate = links[0] is not None and any(
        (link or {}).get("max_queues", 1) < want["dut"]["queues"] for link in links)
    if recreate:
        # veth cannot grow beyond the queues it was made with: make it again
        steps.append(_step("lg", "delete_veth", "delete veth %s (%s), made with fewer than %d queues" % (
            want["lg"]["interface"], want["lg"]["netns"], want["dut"]["queues"])))
        # the new pair inherits which namespaces lab_wire made (absent removes those)
        made = dict((side, parse_tag(link.get("alias"))["created_netns"]) for side, link in zip(SIDES, links))
        have = dict((side, dict(have[side], link=None)) for side in SIDES)
    if have["lg"].get("link") is None:
        steps.append(_step(None, "create_veth", "create veth %s (%s) <-> %s (%s)" % (
            want["lg"]["interface"], want["lg"]["netns"], want["dut"]["interface"], want["dut"]["netns"]),
            **({"created_netns": made} if recreate else {})))
    current = dict((side, _current(side, want, have)) for side in SIDES)
    queues = plan_queues(want, current)
    if queues:
        steps.append(queues)
    for side in SIDES:
        steps.extend(plan_side(side, want[side], current[side]))
    return steps


def plan_absent(want, have):
    """Steps that remove what lab_wire made, and warnings for what it leaves."""
    steps, warnings = [], []
    ours = {}
    for side in SIDES:
        link = have[side].get("link")
        tag = parse_tag(link.get("alias")) if link else None
        if link is not None and (link.get("kind") != "veth" or tag is None):
            warnings.append("%s in namespace %s was not made by lab_wire; left in place."
                            % (want[side]["interface"], want[side]["netns"]))
        elif link is not None:
            ours[side] = tag
    if ours:
        side = "lg" if "lg" in ours else "dut"
        steps.append(_step(side, "delete_veth", "delete veth %s (%s) and its peer" % (
            want[side]["interface"], want[side]["netns"])))
    for side in SIDES:
        if not have[side].get("netns_exists"):
            continue
        others = [n for n in have[side].get("interfaces", []) if n not in ("lo", want[side]["interface"])]
        if side in ours and ours[side]["created_netns"]:
            if others:
                warnings.append("Namespace %s still holds %s, which lab_wire did not make; left in place."
                                % (want[side]["netns"], ", ".join(sorted(others))))
            else:
                steps.append(_step(side, "delete_netns", "delete namespace %s" % want[side]["netns"]))
        elif side not in ours:
            warnings.append("Namespace %s exists but holds no lab_wire veth, so lab_wire cannot tell it made "
                            "it; left in place (remove it with `ip netns del %s` if it is yours)."
                            % (want[side]["netns"], want[side]["netns"]))
    return steps, warnings


def view(want, have, side):
    """A compact description of one end for diff output."""
    link = have[side].get("link")
    out = {"netns": want[side]["netns"], "netns_exists": bool(have[side].get("netns_exists")),
           "interface": want[side]["interface"], "exists": link is not None}
    if link is not None:
        out.update({
            "mac": link.get("mac"), "mtu": link.get("mtu"), "up": link.get("up"),
            "addresses": sorted(link.get("addresses") or []),
            "neighbours": dict(sorted((link.get("neighbours") or {}).items())),
            "tx_checksum_offload": link.get("tx_checksum_offload"), "queues": link.get("queues", 1),
        })
        if side == "dut":
            out.update({"gro": link.get("gro"), "threaded_napi": link.get("threaded"),
                        "napi_cpu": napi_cpu_of(link.get("napi") or [])})
    return out


def want_view(want, side):
    """The same shape as ``view`` for the desired end."""
    w = want[side]
    out = {"netns": w["netns"], "netns_exists": want["state"] == "present", "interface": w["interface"],
           "exists": want["state"] == "present"}
    if want["state"] == "present":
        out.update({"mac": w["mac"], "mtu": w["mtu"], "up": True, "addresses": sorted(w["addresses"]),
                    "neighbours": dict(sorted(w["neighbours"].items())),
                    "tx_checksum_offload": w["tx_checksum_offload"], "queues": w["queues"]})
        if side == "dut":
            out.update({"gro": w["gro"], "threaded_napi": w["threaded"], "napi_cpu": w["napi_cpu"]})
    return out


# --------------------------------------------------------------------------
# Kernel access
# --------------------------------------------------------------------------

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def pyroute2_problem():
    """None when pyroute2 is usable, else a sentence saying what is wrong."""
    if not HAS_PYROUTE2:
        return None  # the module reports missing_required_lib itself
    version = getattr(pyroute2, "__version__", "0")
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
    if parts and parts < MIN_PYROUTE2:
        return ("pyroute2 %s is too old; lab_wire needs >= %s (run the lab_host role or "
                "pip install 'pyroute2>=0.9.1' into the module venv)." % (version, ".".join(map(str, MIN_PYROUTE2))))
    return None


def netns_exists(name):
    return os.path.exists(os.path.join(NETNS_DIR, name))


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def _enter(netns_name, sysfs):
    libc = _libc()
    if sysfs:
        _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    fd = os.open(os.path.join(NETNS_DIR, netns_name), os.O_RDONLY)
    try:
        _check(libc.setns(fd, CLONE_NEWNET), "setns(%s)" % netns_name)
    finally:
        os.close(fd)
    if sysfs:
        _check(libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None), "mount sysfs on /sys")


def run_in_netns(netns_name, func, args=(), sysfs=False):
    """Run ``func(*args)`` in a forked child inside ``netns_name``; return its JSON-able result.

    With ``sysfs`` the child gets a private mount namespace with a sysfs of the
    target network namespace on /sys (what ``ip netns exec`` does, minus the
    side effects on the caller).
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(rfd)
            try:
                _enter(netns_name, sysfs)
                out = {"ok": func(*args)}
            except Exception as exc:  # report everything to the parent
                out = {"error": "%s" % exc, "type": type(exc).__name__,
                       "errno": getattr(exc, "errno", None)}
            data = json.dumps(out).encode("utf-8")
            while data:
                data = data[os.write(wfd, data):]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    os.waitpid(pid, 0)
    try:
        out = json.loads(b"".join(chunks).decode("utf-8"))
    except ValueError:
        raise OSError(errno.EIO, "helper process in namespace %s died without an answer" % netns_name)
    if "error" in out:
        raise OSError(out.get("errno") or errno.EIO, out["error"])
    return out["ok"]


if HAS_PYROUTE2:
    class _NapiMsg(genlmsg):
        """netdev generic netlink family, NAPI objects (Linux >= 6.9 for the pid)."""
        prefix = "NETDEV_A_NAPI_"
        nla_map = (
            ("NETDEV_A_NAPI_UNSPEC", "none"),
            ("NETDEV_A_NAPI_IFINDEX", "uint32"),
            ("NETDEV_A_NAPI_ID", "uint32"),
            ("NETDEV_A_NAPI_IRQ", "uint32"),
            ("NETDEV_A_NAPI_PID", "uint32"),
        )

NETDEV_CMD_NAPI_GET = 11


def _napi_list(ifindex):
    """NAPI instances of ``ifindex`` in the current namespace: [{napi_id, pid}]."""
    sock = GenericNetlinkSocket()
    try:
        sock.bind("netdev", _NapiMsg)
        msg = _NapiMsg()
        msg["cmd"] = NETDEV_CMD_NAPI_GET
        msg["version"] = 1
        msg["attrs"] = [("NETDEV_A_NAPI_IFINDEX", ifindex)]
        found = []
        for reply in sock.nlm_request(msg, msg_type=sock.prid, msg_flags=NLM_F_REQUEST | NLM_F_DUMP):
            if reply.get("NETDEV_A_NAPI_IFINDEX") not in (None, ifindex):
                continue
            found.append({"napi_id": reply.get("NETDEV_A_NAPI_ID"), "pid": reply.get("NETDEV_A_NAPI_PID")})
        return found
    finally:
        sock.close()


def _probe_dev(ifname, ifindex, with_sysfs, with_napi=True):
    """Runs inside the namespace: ethtool features; with sysfs the queue count and (with_napi) the
    threaded flag and the NAPI list."""
    from pyroute2.ethtool import Ethtool
    out = {"features": {}, "threaded": None, "napi": None, "queues": None}
    with Ethtool() as eth:
        feats = eth.get_features(ifname)
        for name, feat in feats.features.items():
            if name.startswith(TX_CSUM_PREFIX) or name == GRO_FEATURE:
                out["features"][name] = [bool(feat.enable), bool(feat.available)]
    if with_sysfs:
        # /sys/class/net/<dev>/queues holds rx-<n> and tx-<n> for the queues in use
        names = os.listdir("/sys/class/net/%s/queues" % ifname)
        out["queues"] = min(sum(1 for n in names if n.startswith("rx-")), sum(1 for n in names if n.startswith("tx-")))
    if with_sysfs and with_napi:
        with open("/sys/class/net/%s/threaded" % ifname) as handle:
            out["threaded"] = handle.read().strip()
        try:
            out["napi"] = _napi_list(ifindex)
        except Exception as exc:  # netdev family missing (Linux < 6.9): fall back in the parent
            out["napi_error"] = str(exc)
    return out


def _set_features(ifname, wanted):
    """Runs inside the namespace: set ethtool features {name: bool}."""
    from pyroute2.ethtool import Ethtool
    with Ethtool() as eth:
        feats = eth.get_features(ifname)
        for name, enable in wanted.items():
            feats.features[name].enable = enable
        eth.set_features(ifname, feats)
    return True


def _set_channels(ifname, queues):
    """Runs inside the namespace: RX and TX queues in use (ethtool -L)."""
    import subprocess
    proc = subprocess.run(["ethtool", "-L", ifname, "rx", str(queues), "tx", str(queues)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise OSError(errno.EINVAL, "ethtool -L %s rx %d tx %d: %s" % (ifname, queues, queues, proc.stderr.strip()))
    return True


def _write_threaded(ifname, value):
    """Runs inside a namespace with its own sysfs: write the threaded flag."""
    with open("/sys/class/net/%s/threaded" % ifname, "w") as handle:
        handle.write(value)
    return True


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def _napi_threads_by_name(ifname):
    """Fallback without the netdev family: kthreads named napi/<dev>-<id> (comm is cut at 15)."""
    prefix = ("napi/%s-" % ifname)[:15]
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            name = _comm(int(entry))
            if name and name.startswith(prefix):
                tail = name[len("napi/%s-" % ifname):]
                found.append({"napi_id": int(tail) if tail.isdigit() else None, "pid": int(entry)})
    return found


def _nice(pid):
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None


def _with_cpus(threads):
    out = []
    for thread in threads:
        pid = thread.get("pid")
        if not pid:
            continue
        try:
            cpus = sorted(os.sched_getaffinity(pid))
        except OSError:
            continue
        out.append({"pid": pid, "napi_id": thread.get("napi_id"), "name": _comm(pid), "cpus": cpus,
                    "nice": _nice(pid)})
    return sorted(out, key=lambda t: t["pid"])


def _ipr(netns_name):
    # flags=0: never create a namespace as a side effect of opening it
    return IPRoute(netns=netns_name, flags=0)


def _read_link(ipr, ifname):
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        return None
    link = ipr.get_links(found[0])[0]
    index = link["index"]
    addresses = ["%s/%d" % (a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)]
    neighbours = {}
    for entry in ipr.neigh("dump", ifindex=index, family=2):
        if entry["state"] & NUD_PERMANENT and entry.get("NDA_LLADDR"):
            neighbours[entry.get("NDA_DST")] = entry.get("NDA_LLADDR").lower()
    return {
        "ifindex": index,
        "kind": link.get(("IFLA_LINKINFO", "IFLA_INFO_KIND")),
        "peer_ifindex": link.get("IFLA_LINK"),
        "alias": link.get("IFLA_IFALIAS"),
        "mac": (link.get("IFLA_ADDRESS") or "").lower(),
        "mtu": link.get("IFLA_MTU"),
        "up": bool(link["flags"] & 1),
        "max_queues": min(link.get("IFLA_NUM_RX_QUEUES") or 1, link.get("IFLA_NUM_TX_QUEUES") or 1),
        "addresses": sorted(addresses),
        "neighbours": neighbours,
    }


def read_side(want_side, side):
    """Everything lab_wire manages on one end, as it is now."""
    name, ifname = want_side["netns"], want_side["interface"]
    out = {"netns_exists": netns_exists(name), "interfaces": [], "link": None, "lo_up": False}
    if not out["netns_exists"]:
        return out
    with _ipr(name) as ipr:
        links = ipr.get_links()
        out["interfaces"] = sorted(l.get("IFLA_IFNAME") for l in links)
        out["lo_up"] = any(l.get("IFLA_IFNAME") == "lo" and l["flags"] & 1 for l in links)
        link = _read_link(ipr, ifname)
    if link is None:
        return out
    if link.get("kind") == "veth" and parse_tag(link.get("alias")) is not None:
        probe = run_in_netns(name, _probe_dev, (ifname, link["ifindex"], True, side == "dut"), sysfs=True)
        feats = probe["features"]
        link["queues"] = probe["queues"]
        link["tx_checksum_offload"] = any(v[0] for k, v in feats.items() if k.startswith(TX_CSUM_PREFIX))
        link["gro"] = bool(feats.get(GRO_FEATURE, [False])[0])
        link["features"] = feats
        if side == "dut":
            link["threaded"] = probe["threaded"] not in (None, "0")
            napi = probe["napi"] if probe.get("napi") is not None else _napi_threads_by_name(ifname)
            link["napi"] = _with_cpus(napi)
    out["link"] = link
    return out


def read_have(want):
    return {side: read_side(want[side], side) for side in SIDES}


def _index(ipr, ifname):
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise OSError(errno.ENODEV, "no interface %s" % ifname)
    return found[0]


def _apply_step(want, step, created):
    side, action, args = step["side"], step["action"], step["args"]
    w = want[side] if side else None
    if action == "create_netns":
        pr_netns.create(w["netns"])
        created["netns"].append(w["netns"])
    elif action == "lo_up":
        with _ipr(w["netns"]) as ipr:
            ipr.link("set", index=_index(ipr, "lo"), state="up")
    elif action == "create_veth":
        lg, dut = want["lg"], want["dut"]
        with _ipr(lg["netns"]) as ipr:
            queues = dut["queues"]
            ipr.link("add", ifname=lg["interface"], kind="veth", address=lg["mac"], mtu=lg["mtu"],
                     num_tx_queues=queues, num_rx_queues=queues,
                     peer={"ifname": dut["interface"], "net_ns_fd": dut["netns"], "address": dut["mac"],
                           "mtu": dut["mtu"], "num_tx_queues": queues, "num_rx_queues": queues})
            created["veth"] = True
            made = args.get("created_netns") or {}
            ipr.link("set", index=_index(ipr, lg["interface"]),
                     ifalias=make_tag(made.get("lg") or lg["netns"] in created["netns"], dut["netns"], dut["interface"]))
        with _ipr(dut["netns"]) as ipr:
            ipr.link("set", index=_index(ipr, dut["interface"]),
                     ifalias=make_tag(made.get("dut") or dut["netns"] in created["netns"], lg["netns"],
                                      lg["interface"]))
    elif action in ("set_mac", "set_mtu", "set_up"):
        attrs = {"set_mac": {"address": args.get("mac")}, "set_mtu": {"mtu": args.get("mtu")},
                 "set_up": {"state": "up"}}[action]
        with _ipr(w["netns"]) as ipr:
            ipr.link("set", index=_index(ipr, w["interface"]), **attrs)
    elif action == "set_addresses":
        with _ipr(w["netns"]) as ipr:
            index = _index(ipr, w["interface"])
            # Remove first, then add what is missing *now*: deleting a primary
            # address also deletes the secondaries of its subnet. (Taking the
            # last address off flushes the neighbour table too; the neighbour
            # step that the plan puts after this one restores it.)
            wanted = set(w["addresses"])
            while True:
                unwanted = sorted(set(_read_link(ipr, w["interface"])["addresses"]) - wanted)
                if not unwanted:
                    break
                ip, plen = unwanted[0].split("/")
                ipr.addr("del", index=index, address=ip, prefixlen=int(plen))
            for addr in sorted(wanted - set(_read_link(ipr, w["interface"])["addresses"])):
                ip, plen = addr.split("/")
                ipr.addr("add", index=index, address=ip, prefixlen=int(plen))
    elif action == "set_neighbours":
        with _ipr(w["netns"]) as ipr:
            # Planned from the state before this run; address changes may have
            # flushed entries since, so work from what is there now.
            index = _index(ipr, w["interface"])
            live = _read_link(ipr, w["interface"])["neighbours"]
            for ip in sorted(set(live) - set(w["neighbours"])):
                ipr.neigh("del", dst=ip, ifindex=index)
            for ip, mac in sorted(w["neighbours"].items()):
                if live.get(ip) != mac:
                    ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=index, state=NUD_PERMANENT)
    elif action in ("set_tx_checksum", "set_gro"):
        probe = run_in_netns(w["netns"], _probe_dev, (w["interface"], 0, False))
        feats = probe["features"]
        if action == "set_gro":
            wanted = {GRO_FEATURE: args["enable"]}
        else:
            wanted = {k: args["enable"] for k, (enabled, available) in feats.items()
                      if k.startswith(TX_CSUM_PREFIX) and available and enabled != args["enable"]}
        run_in_netns(w["netns"], _set_features, (w["interface"], wanted))
    elif action == "set_queues":
        for name in args["order"]:
            run_in_netns(want[name]["netns"], _set_channels, (want[name]["interface"], args["queues"]))
    elif action == "set_threaded":
        run_in_netns(w["netns"], _write_threaded, (w["interface"], "1" if args["enable"] else "0"), sysfs=True)
    elif action == "pin_napi":
        with _ipr(w["netns"]) as ipr:
            index = _index(ipr, w["interface"])
        probe = run_in_netns(w["netns"], _probe_dev, (w["interface"], index, True), sysfs=True)
        threads = probe["napi"] if probe.get("napi") is not None else _napi_threads_by_name(w["interface"])
        threads = [t for t in threads if t.get("pid")]
        if not threads:
            raise WireError(
                "%s in namespace %s has no NAPI thread to pin; turn dut_gro and threaded_napi on (or attach "
                "an XDP program) so that the kernel starts one." % (w["interface"], w["netns"]),
                netns=w["netns"], interface=w["interface"])
        threads = sorted(threads, key=_napi_order)
        if len(threads) != len(args["cpus"]):
            raise WireError(
                "%s in namespace %s has %d NAPI thread(s) for %d queue(s); run the module again once the "
                "kernel made them." % (w["interface"], w["netns"], len(threads), len(args["cpus"])),
                netns=w["netns"], interface=w["interface"])
        for thread, cpu in zip(threads, args["cpus"]):
            os.sched_setaffinity(thread["pid"], {cpu})
            if args.get("nice") is not None:
                os.setpriority(os.PRIO_PROCESS, thread["pid"], args["nice"])
    elif action == "delete_veth":
        with _ipr(w["netns"]) as ipr:
            ipr.link("del", index=_index(ipr, w["interface"]))
    elif action == "delete_netns":
        pr_netns.remove(w["netns"])
    else:  # pragma: no cover - plan and apply are written together
        raise ValueError("unknown step %s" % action)


def apply_steps(want, steps):
    """Carry out ``steps``; on failure undo what this call created and raise WireError."""
    created = {"netns": [], "veth": False}
    for step in steps:
        try:
            _apply_step(want, step, created)
        except WireError:
            _rollback(want, created)
            raise
        except Exception as exc:
            _rollback(want, created)
            raise WireError("Could not %s: %s." % (step["text"], exc), step=step["text"],
                            error=str(exc), errno=getattr(exc, "errno", None))


def _rollback(want, created):
    """Remove what a failed run made, so that a bad run leaves nothing behind."""
    if created["veth"]:
        try:
            with _ipr(want["lg"]["netns"]) as ipr:
                found = ipr.link_lookup(ifname=want["lg"]["interface"])
                if found:
                    ipr.link("del", index=found[0])
        except Exception:
            pass
    for name in created["netns"]:
        try:
            pr_netns.remove(name)
        except Exception:
            pass


def result_side(want, have, side):
    """What the module returns about one end."""
    w = want[side]
    link = have[side].get("link") or {}
    out = {
        "netns": w["netns"],
        "interface": w["interface"],
        "ifindex": link.get("ifindex"),
        "mac": link.get("mac", w.get("mac")),
        "address": (link.get("addresses") or [w.get("address")])[0] if link else w.get("address"),
        "mtu": link.get("mtu", w.get("mtu")),
        "tx_checksum_offload": link.get("tx_checksum_offload", w.get("tx_checksum_offload")),
        "queues": link.get("queues", w.get("queues")),
    }
    if side == "dut":
        threads = link.get("napi") or []
        out.update({
            "gro": link.get("gro", w.get("gro")),
            "threaded_napi": link.get("threaded", w.get("threaded")),
            "napi_cpu": napi_cpu_of(threads) if threads else w.get("napi_cpu"),
            "napi_cpus": ([(t.get("cpus") or [None])[0] if len(t.get("cpus") or []) == 1 else None
                           for t in sorted(threads, key=_napi_order)] if threads else w.get("napi_cpus")),
            "napi_threads": threads,
        })
    return out
