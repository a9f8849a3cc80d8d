# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An interface's counters: the kernel's IFLA_STATS64, the driver's ``ethtool -S``, its MAC.

Shared by ``xdplab.offload.link_stats`` (one reading) and ``xdplab.offload.traffic``
(a reading before and after its run, returned as a delta), and by the
``counter_delta`` filter (counter_delta itself lives in record.py). ``read_link_stats`` needs pyroute2 (through ``xdp``) and the
``ethtool`` command; the parsers and ``counter_delta`` are pure.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import subprocess

from ansible_collections.xdplab.offload.plugins.module_utils import xdp
from ansible_collections.xdplab.offload.plugins.module_utils.record import counter_delta


def ethtool_argv(args, netns):
    """Argument list for ethtool, inside ``netns`` when given (ethtool uses ioctls, /sys is not needed)."""
    argv = ["ethtool"] + args
    return ["ip", "netns", "exec", netns] + argv if netns else argv


def parse_driver_info(text):
    """``ethtool -i`` output as {driver, firmware_version, bus_info, version}."""
    info = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip().replace("-", "_")] = value.strip()
    return {"driver": info.get("driver", ""), "firmware_version": info.get("firmware_version", ""),
            "bus_info": info.get("bus_info", ""), "version": info.get("version", "")}


def parse_driver_stats(text):
    """``ethtool -S`` output as {name: int}."""
    stats = {}
    for line in text.splitlines():
        if ":" not in line or line.startswith("NIC statistics"):
            continue
        key, value = line.rsplit(":", 1)
        try:
            stats[key.strip()] = int(value.strip())
        except ValueError:
            continue
    return stats


def _run_command(argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def read_link_stats(interface, netns=None, driver_stats=True, run_command=None):
    """{interface, netns, ifindex, stats, kind, mac, driver[, driver_stats]} of ``interface``.

    ``run_command(argv) -> (rc, stdout, stderr)`` runs ethtool (AnsibleModule.run_command
    in a module; a subprocess by default). Raises xdp.XdpError when the interface is missing.
    """
    run_command = run_command or _run_command
    with xdp.open_netlink(netns) as ipr:
        ifindex = xdp.lookup(ipr, interface, netns)
        link = ipr.get_links(ifindex)[0]
        raw = link.get_attr("IFLA_STATS64") or {}
        stats = dict((k, int(v)) for k, v in dict(raw).items() if isinstance(v, int))
        kind = xdp.link_kind(ipr, ifindex) or ""
        mac = link.get_attr("IFLA_ADDRESS") or ""
    result = {"interface": interface, "netns": netns, "ifindex": ifindex, "stats": stats, "kind": kind, "mac": mac}
    rc, out, err = run_command(ethtool_argv(["-i", interface], netns))
    result["driver"] = parse_driver_info(out) if rc == 0 else {"driver": kind, "firmware_version": "",
                                                               "bus_info": "", "version": ""}
    if driver_stats:
        rc, out, err = run_command(ethtool_argv(["-S", interface], netns))
        if rc == 0:
            result["driver_stats"] = parse_driver_stats(out)
    return result


def delta(before, after):
    """What ``read_link_stats`` saw change between two readings: {stats, driver_stats, mac}."""
    return {"stats": counter_delta(after.get("stats"), before.get("stats")),
            "driver_stats": counter_delta(after.get("driver_stats"), before.get("driver_stats")),
            "mac": after.get("mac") or before.get("mac")}
