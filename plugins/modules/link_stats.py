#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: link_stats
short_description: Read an interface's counters, driver and firmware
version_added: 0.1.0
description:
  - Returns the kernel's 64-bit interface statistics (netlink C(IFLA_STATS64)), the driver's own
    counters (C(ethtool -S)), and the driver, firmware version and bus address (C(ethtool -i)).
  - Used by the experiments to cross-check what the generator sent against what the device
    under test received, and to record the NIC's provenance.
  - Only reads; never changes anything.
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.interface
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  driver_stats:
    description: Also return the driver's counters from C(ethtool -S).
    type: bool
    default: true
requirements:
  - pyroute2 >= 0.9.1
  - ethtool
'''

EXAMPLES = r'''
- name: Counters of the device under test
  xdplab.offload.link_stats:
    interface: xl-dut0
    netns: xl-dut
  register: dut_counters
'''

RETURN = r'''
stats:
  description: IFLA_STATS64 counters (rx_packets, tx_packets, rx_dropped, tx_dropped, rx_bytes, ...).
  returned: always
  type: dict
driver_stats:
  description: The driver's counters as C(ethtool -S) names them (for veth e.g. C(rx_xdp_drops), C(peer_tx_drops)).
  returned: when driver_stats is true and ethtool answers
  type: dict
driver:
  description: Driver name, firmware version and bus address from C(ethtool -i).
  returned: always
  type: dict
  sample: {driver: veth, firmware_version: "", bus_info: ""}
kind:
  description: Link kind for virtual devices (veth, tun, ...), empty for physical ones.
  returned: always
  type: str
mac:
  description: The interface's MAC address.
  returned: always
  type: str
  sample: "02:00:c6:12:00:02"
ifindex:
  description: Interface index inside its namespace.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import xdp


def ethtool_argv(args, netns):
    """Argument list for ethtool, inside ``netns`` when given (ethtool uses ioctls, /sys is not needed)."""
    argv = ["ethtool"] + args
    return ["ip", "netns", "exec", netns] + argv if netns else argv


def parse_driver_info(text):
    info = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip().replace("-", "_")] = value.strip()
    return {"driver": info.get("driver", ""), "firmware_version": info.get("firmware_version", ""),
            "bus_info": info.get("bus_info", ""), "version": info.get("version", "")}


def parse_driver_stats(text):
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str", required=True),
            netns=dict(type="str"),
            driver_stats=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not xdp.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 >= 0.9.1"), exception=str(xdp.PYROUTE2_IMPORT_ERROR))
    ifname, netns = module.params["interface"], module.params["netns"]
    try:
        with xdp.open_netlink(netns) as ipr:
            ifindex = xdp.lookup(ipr, ifname, netns)
            link = ipr.get_links(ifindex)[0]
            raw = link.get_attr("IFLA_STATS64") or {}
            stats = {k: int(v) for k, v in dict(raw).items() if isinstance(v, int)}
            kind = xdp.link_kind(ipr, ifindex) or ""
            mac = link.get_attr("IFLA_ADDRESS") or ""
    except xdp.XdpError as exc:
        module.fail_json(msg=exc.msg, interface=ifname, netns=netns)
    result = dict(changed=False, ifindex=ifindex, stats=stats, kind=kind, mac=mac, interface=ifname, netns=netns)
    rc, out, err = module.run_command(ethtool_argv(["-i", ifname], netns))
    result["driver"] = parse_driver_info(out) if rc == 0 else {"driver": kind, "firmware_version": "", "bus_info": "",
                                                               "version": ""}
    if module.params["driver_stats"]:
        rc, out, err = module.run_command(ethtool_argv(["-S", ifname], netns))
        if rc == 0:
            result["driver_stats"] = parse_driver_stats(out)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
