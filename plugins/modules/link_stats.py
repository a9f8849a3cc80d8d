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
# ethtool_argv and the parsers lived here before module_utils/linkstats.py; importable from here as before.
from ansible_collections.xdplab.offload.plugins.module_utils.linkstats import (  # pylint: disable=unused-import
    ethtool_argv, parse_driver_info, parse_driver_stats, read_link_stats)


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
        result = read_link_stats(ifname, netns, module.params["driver_stats"], module.run_command)
    except xdp.XdpError as exc:
        module.fail_json(msg=exc.msg, interface=ifname, netns=netns)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
