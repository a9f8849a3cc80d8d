# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/safety.py: the names, paths and destinations the collection refuses."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import safety


@pytest.mark.parametrize("value", ["eth0", "xl-dut", "veth@1", "lo", "a" * 15, "br.10"])
def test_interface_names_the_kernel_allows_pass(value):
    assert safety.interface_name(value) == value


@pytest.mark.parametrize("value", ["", ".", "..", "a" * 16, "../../etc", "eth 0", "eth0:1", "a/b", "$(id)", None, 3])
def test_interface_names_that_could_leave_a_path_or_a_command_line_are_refused(value):
    with pytest.raises(safety.UnsafeInput) as err:
        safety.interface_name(value, "interface")
    assert err.value.option == "interface" and "interface" in err.value.msg


@pytest.mark.parametrize("value", ["20261203T100000Z", "my-run.2", "a", "x" * 64])
def test_run_ids_that_are_path_parts_pass(value):
    assert safety.run_id(value) == value


@pytest.mark.parametrize("value", ["", ".hidden", "..", "a/b", "../x", "x" * 65, "a b", "1$(shell id)", None])
def test_run_ids_that_are_not_plain_path_parts_are_refused(value):
    with pytest.raises(safety.UnsafeInput, match="run_id"):
        safety.run_id(value)


def test_an_empty_netns_means_the_hosts_namespace():
    assert safety.netns_name("") == "" and safety.netns_name(None) is None
    with pytest.raises(safety.UnsafeInput, match="netns"):
        safety.netns_name("../root")


def test_confined_resolves_dotdot_and_symlinks_before_comparing(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert safety.confined(str(root / "sub"), str(root), "p") == os.path.realpath(str(root / "sub"))
    for bad in (str(root / ".." / "outside"), str(root / "link"), str(root / "link" / "x"), "/", str(tmp_path)):
        with pytest.raises(safety.UnsafeInput, match="outside"):
            safety.confined(bad, str(root), "pin_path")
    # A sibling whose name starts with the root's name is not under it.
    with pytest.raises(safety.UnsafeInput):
        safety.confined(str(root) + "-other", str(root), "p")


def test_strictly_under_refuses_the_root_itself(tmp_path):
    with pytest.raises(safety.UnsafeInput, match="itself"):
        safety.strictly_under(str(tmp_path), str(tmp_path), "pin_path")


@pytest.mark.parametrize("value", ["198.18.0.2", "198.19.255.254", "127.0.0.1", "::1"])
def test_benchmark_range_and_loopback_are_allowed_destinations(value):
    assert safety.destination(value) == value


@pytest.mark.parametrize("value", ["8.8.8.8", "10.0.0.1", "172.16.0.1", "192.168.1.1", "198.20.0.1", "nope"])
def test_other_destinations_are_refused_without_an_allow_list(value):
    with pytest.raises(safety.UnsafeInput, match="dst_ip"):
        safety.destination(value)


def test_an_allow_list_admits_exactly_its_networks():
    assert safety.destination("192.0.2.7", allowed=["192.0.2.0/24"]) == "192.0.2.7"
    with pytest.raises(safety.UnsafeInput):
        safety.destination("192.0.3.7", allowed=["192.0.2.0/24"])
    with pytest.raises(safety.UnsafeInput, match="not an IP network"):
        safety.destination("192.0.2.7", allowed=["everything"])


def test_cell_ids_may_be_longer_than_run_ids_but_stay_file_names():
    cell = "neighbour-checksum-n100-vm_driver-s64-r50000-d3-neighbour-p1000-rep1"
    assert len(cell) > safety.SHORT_NAME_MAX and safety.name(cell, "name", "sampling name") == cell
    with pytest.raises(safety.UnsafeInput, match="1 to 64"):
        safety.run_id(cell)
    with pytest.raises(safety.UnsafeInput, match="1 to 200"):
        safety.name("x" * 201, "name")


def test_namespace_names_stay_at_64_characters():
    assert safety.netns_name("n" * 64) == "n" * 64
    with pytest.raises(safety.UnsafeInput, match="1 to 64"):
        safety.netns_name("n" * 65)
