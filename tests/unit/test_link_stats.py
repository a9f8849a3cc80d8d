"""Parsing of ethtool's output in link_stats (no root needed)."""
from ansible_collections.xdplab.offload.plugins.modules import link_stats

DRVINFO = """driver: nfp
version: 6.1.0-18-amd64
firmware-version: 0.0.3.5 0.22 nic-2.1.13 nic
expansion-rom-version:
bus-info: 0000:02:00.0
supports-statistics: yes
"""

STATS = """NIC statistics:
     peer_ifindex: 7
     rx_queue_0_xdp_packets: 1200
     rx_queue_0_drops: 3
     weird: n/a
"""


def test_driver_info_fields():
    info = link_stats.parse_driver_info(DRVINFO)
    assert info == {"driver": "nfp", "firmware_version": "0.0.3.5 0.22 nic-2.1.13 nic",
                    "bus_info": "0000:02:00.0", "version": "6.1.0-18-amd64"}


def test_driver_stats_keep_integers_only():
    assert link_stats.parse_driver_stats(STATS) == {"peer_ifindex": 7, "rx_queue_0_xdp_packets": 1200,
                                                    "rx_queue_0_drops": 3}


def test_ethtool_runs_inside_the_namespace_as_an_argument_list():
    assert link_stats.ethtool_argv(["-i", "xl-dut0"], "xl-dut") == ["ip", "netns", "exec", "xl-dut", "ethtool",
                                                                    "-i", "xl-dut0"]
    assert link_stats.ethtool_argv(["-S", "eth0"], None) == ["ethtool", "-S", "eth0"]
