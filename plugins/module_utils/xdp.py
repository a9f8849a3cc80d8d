# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach, query and detach XDP programs through netlink (pyroute2 >= 0.9.1).

pyroute2's ``xdp_fd=``/``xdp_flags=`` keywords drop the flags, so the nested
``xdp={'attrs': [...]}`` form is used throughout (and flags were mis-encoded
before pyroute2 0.9.1).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

    class NetlinkError(Exception):
        code = 0

NETNS_DIR = "/var/run/netns"

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3

MODE_FLAGS = {
    "generic": XDP_FLAGS_SKB_MODE,
    "driver": XDP_FLAGS_DRV_MODE,
    "offload": XDP_FLAGS_HW_MODE,
}

# IFLA_XDP_ATTACHED values; pyroute2 decodes them to iproute2's names.
_ATTACHED = {0: None, 1: "driver", 2: "generic", 3: "offload", 4: "multi",
             "none": None, "xdp": "driver", "xdpgeneric": "generic",
             "xdpoffload": "offload", "xdpmulti": "multi"}
_MODE_PROG_ID_ATTR = {
    "driver": "IFLA_XDP_DRV_PROG_ID",
    "generic": "IFLA_XDP_SKB_PROG_ID",
    "offload": "IFLA_XDP_HW_PROG_ID",
}


class XdpError(Exception):
    def __init__(self, msg, err=0, **details):
        super(XdpError, self).__init__(msg)
        self.msg = msg
        self.errno = err
        self.details = details


def netns_exists(name):
    return os.path.exists(os.path.join(NETNS_DIR, name))


def open_netlink(netns=None):
    """IPRoute in ``netns`` (None = the current namespace), which must exist.

    pyroute2 would create a missing namespace; we refuse instead.
    """
    if netns and not netns_exists(netns):
        raise XdpError("network namespace %s does not exist (looked in %s); create it first, "
                       "e.g. with the xdplab.offload.lab_wire role" % (netns, NETNS_DIR), errno.ENOENT)
    return IPRoute(netns=netns) if netns else IPRoute()


def _where(ifname, netns):
    return "%s in namespace %s" % (ifname, netns) if netns else "%s (root namespace)" % ifname


def lookup(ipr, ifname, netns=None):
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise XdpError("interface %s does not exist" % _where(ifname, netns), errno.ENODEV)
    return found[0]


def link_kind(ipr, ifindex):
    """'veth', 'tun', ... or None for a physical device."""
    link = ipr.get_links(ifindex)[0]
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info else None


def query(ipr, ifindex):
    """The XDP state of an interface: {'mode': ..., 'prog_id': ..., 'modes': {mode: id}}."""
    link = ipr.get_links(ifindex)[0]
    xdp = link.get_attr("IFLA_XDP")
    state = {"mode": None, "prog_id": 0, "modes": {}}
    if not xdp:
        return state
    attached = _ATTACHED.get(xdp.get_attr("IFLA_XDP_ATTACHED") or 0)
    if attached is None:
        return state
    if attached == "multi":
        for mode, attr in _MODE_PROG_ID_ATTR.items():
            prog_id = xdp.get_attr(attr)
            if prog_id:
                state["modes"][mode] = prog_id
        # Multi-attach only combines offload with one host mode; report the host one.
        host = [m for m in state["modes"] if m != "offload"]
        state["mode"] = host[0] if host else "offload"
        state["prog_id"] = state["modes"][state["mode"]]
    else:
        state["mode"] = attached
        state["prog_id"] = xdp.get_attr("IFLA_XDP_PROG_ID") or 0
        state["modes"][attached] = state["prog_id"]
    return state


def _set_xdp(ipr, ifindex, fd, flags):
    ipr.link("set", index=ifindex, xdp={"attrs": [("IFLA_XDP_FD", fd), ("IFLA_XDP_FLAGS", flags)]})


def attach(ipr, ifindex, fd, mode, ifname="", netns=None):
    """Attach ``fd`` in ``mode``; an existing program in the same mode is replaced atomically."""
    try:
        _set_xdp(ipr, ifindex, fd, MODE_FLAGS[mode])
    except NetlinkError as exc:
        code = exc.code
        kind = link_kind(ipr, ifindex)
        if mode == "offload":
            msg = ("mode offload needs an offload-capable NIC (e.g. a Netronome Agilio with the BPF "
                   "firmware); %s%s cannot run XDP in hardware" % (_where(ifname, netns), " (%s)" % kind if kind else ""))
        elif code == errno.EEXIST:
            msg = "%s already has an XDP program in another mode; detach it first" % _where(ifname, netns)
        elif code in (errno.EOPNOTSUPP, errno.EINVAL) and mode == "driver":
            msg = ("the driver of %s%s does not support native XDP; use mode generic"
                   % (_where(ifname, netns), " (%s)" % kind if kind else ""))
        else:
            msg = "cannot attach XDP in mode %s to %s: %s" % (mode, _where(ifname, netns), os.strerror(code))
        raise XdpError(msg, code)


def detach(ipr, ifindex, mode, ifname="", netns=None):
    try:
        _set_xdp(ipr, ifindex, -1, MODE_FLAGS[mode])
    except NetlinkError as exc:
        raise XdpError("cannot detach the %s-mode XDP program from %s: %s"
                       % (mode, _where(ifname, netns), os.strerror(exc.code)), exc.code)


def detach_all(ipr, ifindex, ifname="", netns=None):
    """Detach every XDP program of the interface; return the modes that had one."""
    modes = list(query(ipr, ifindex)["modes"])
    for mode in modes:
        detach(ipr, ifindex, mode, ifname, netns)
    return modes
