"""linkstats.read_link_stats called directly on a real veth pair, checked against `ip -j -s link` and ethtool."""
import json
import subprocess

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import xdp
from ansible_collections.xdplab.offload.plugins.module_utils.linkstats import read_link_stats
from lib.netfix import VethPair, unique

pytestmark = [pytest.mark.root]


@pytest.fixture
def pair():
    ns = unique("xl-mns")
    veth = VethPair(unique("xl-ma"), unique("xl-mb"), ns_b=ns)
    veth.create()
    yield veth
    veth.destroy()


def ip_link(pair):
    out = subprocess.run(["ip", "-j", "-s", "-n", pair.ns_b, "link", "show", "dev", pair.name_b],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def test_reads_what_ip_and_ethtool_see(pair):
    before = ip_link(pair)
    got = read_link_stats(pair.name_b, pair.ns_b)
    after = ip_link(pair)
    assert got["ifindex"] == before["ifindex"] and got["mac"] == before["address"]
    assert got["kind"] == "veth" and got["driver"]["driver"] == "veth"
    assert before["stats64"]["tx"]["packets"] <= got["stats"]["tx_packets"] <= after["stats64"]["tx"]["packets"]
    assert before["stats64"]["rx"]["bytes"] <= got["stats"]["rx_bytes"] <= after["stats64"]["rx"]["bytes"]
    # ethtool -S of a veth names its peer: the root-namespace end.
    peer = json.loads(subprocess.run(["ip", "-j", "link", "show", "dev", pair.name_a], capture_output=True,
                                     text=True, check=True).stdout)[0]
    assert got["driver_stats"]["peer_ifindex"] == peer["ifindex"]
    assert (got["interface"], got["netns"]) == (pair.name_b, pair.ns_b)


def test_runner_is_the_callers_and_driver_stats_optional(pair):
    calls = []

    def failing(argv):
        calls.append(argv)
        return 1, "", "no ethtool here"

    got = read_link_stats(pair.name_b, pair.ns_b, driver_stats=False, run_command=failing)
    assert calls == [["ip", "netns", "exec", pair.ns_b, "ethtool", "-i", pair.name_b]]
    assert got["driver"] == {"driver": "veth", "firmware_version": "", "bus_info": "", "version": ""}
    assert "driver_stats" not in got


def test_missing_interface_raises(pair):
    with pytest.raises(xdp.XdpError) as exc:
        read_link_stats("xl-mnosuch0", pair.ns_b)
    assert "does not exist" in exc.value.msg
