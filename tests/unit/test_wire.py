# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the lab wire: validation, MAC derivation, planning. No root needed."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import wire
from ansible_collections.xdplab.offload.plugins.module_utils.wire import WireError

CPUS = {0, 1}

DEFAULTS = dict(
    state="present", lg_netns="xl-lg", dut_netns="xl-dut", lg_interface="xl-lg0", dut_interface="xl-dut0",
    lg_address="198.18.0.1/24", dut_address="198.18.0.2/24", lg_mac=None, dut_mac=None, mtu=1500,
    tx_checksum_offload=False, dut_gro=True, threaded_napi=True, napi_cpu=None,
)


def params(**over):
    out = dict(DEFAULTS)
    out.update(over)
    return out


def converged_have(want):
    """The `have` of a wire that matches `want` exactly."""
    have = {}
    tags = {"lg": wire.make_tag(True, want["dut"]["netns"], want["dut"]["interface"]),
            "dut": wire.make_tag(True, want["lg"]["netns"], want["lg"]["interface"])}
    for index, side in enumerate(wire.SIDES):
        w = want[side]
        link = {
            "ifindex": 2 + index, "kind": "veth", "peer_ifindex": 3 - index, "alias": tags[side],
            "mac": w["mac"], "mtu": w["mtu"], "up": True, "addresses": list(w["addresses"]),
            "neighbours": dict(w["neighbours"]), "tx_checksum_offload": w["tx_checksum_offload"],
            "gro": bool(w["gro"]),
        }
        if side == "dut":
            link.update({"threaded": True, "napi": [{"pid": 4242, "napi_id": 8193, "cpus": [w["napi_cpu"]]}]})
        have[side] = {"netns_exists": True, "lo_up": True, "interfaces": ["lo", w["interface"]], "link": link}
    return have


def nothing():
    return {side: {"netns_exists": False, "lo_up": False, "interfaces": [], "link": None} for side in wire.SIDES}


def actions(steps):
    return [(s["side"], s["action"]) for s in steps]


# ---------------------------------------------------------------- addresses

@pytest.mark.parametrize("value", ["198.18.0.1/24", "198.19.255.254/16", "198.18.7.9/15", "198.18.0.1/31"])
def test_addresses_inside_the_benchmarking_range_are_accepted(value):
    assert str(wire.parse_address(value, "lg_address")) == value


@pytest.mark.parametrize("value", ["10.0.0.1/24", "192.168.1.1/24", "172.16.0.1/12", "198.17.255.1/24",
                                   "198.20.0.1/24", "8.8.8.8/32"])
def test_addresses_outside_the_benchmarking_range_are_refused(value):
    with pytest.raises(WireError) as err:
        wire.parse_address(value, "lg_address")
    assert "198.18.0.0/15" in err.value.msg and "lg_address" in err.value.msg
    assert err.value.details["allowed"] == "198.18.0.0/15"


def test_a_prefix_wider_than_the_range_is_refused():
    with pytest.raises(WireError, match="outside 198.18.0.0/15"):
        wire.parse_address("198.18.0.1/14", "dut_address")


@pytest.mark.parametrize("value", ["198.18.0.1", "2001:db8::1/64", "198.18.0.300/24", "not-an-ip", ""])
def test_malformed_or_non_ipv4_addresses_are_refused(value):
    with pytest.raises(WireError, match="dut_address"):
        wire.parse_address(value, "dut_address")


@pytest.mark.parametrize("value", ["198.18.0.0/24", "198.18.0.255/24"])
def test_network_and_broadcast_addresses_are_refused(value):
    with pytest.raises(WireError, match="network or broadcast"):
        wire.parse_address(value, "lg_address")


def test_both_ends_must_share_one_subnet():
    with pytest.raises(WireError, match="different subnets"):
        wire.check_address_pair(wire.parse_address("198.18.0.1/24", "a"), wire.parse_address("198.18.1.2/24", "b"))
    with pytest.raises(WireError, match="different subnets"):
        wire.check_address_pair(wire.parse_address("198.18.0.1/24", "a"), wire.parse_address("198.18.0.2/25", "b"))


def test_both_ends_must_have_their_own_address():
    with pytest.raises(WireError, match="both 198.18.0.1"):
        wire.check_address_pair(wire.parse_address("198.18.0.1/24", "a"), wire.parse_address("198.18.0.1/24", "b"))


# ---------------------------------------------------------------- names

def test_interface_names_of_fifteen_characters_pass_and_sixteen_fail():
    assert wire.check_ifname("x" * 15, "lg_interface") == "x" * 15
    with pytest.raises(WireError) as err:
        wire.check_ifname("xl-" + "a" * 13, "lg_interface")
    assert "16 characters" in err.value.msg and "at most 15" in err.value.msg


@pytest.mark.parametrize("name", ["", ".", "..", "xl/a", "xl a", "xl:0", "xl-%d"])
def test_invalid_interface_names_are_refused(name):
    with pytest.raises(WireError, match="dut_interface"):
        wire.check_ifname(name, "dut_interface")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a b"])
def test_invalid_namespace_names_are_refused(name):
    with pytest.raises(WireError, match="lg_netns"):
        wire.check_netns_name(name, "lg_netns")


# ---------------------------------------------------------------- MACs

def test_derived_macs_are_stable_across_versions():
    # Stable identities: changing the derivation would make every existing wire "change".
    assert wire.derive_mac("xl-lg", "xl-lg0") == "f2:49:69:5c:f5:19"
    assert wire.derive_mac("xl-dut", "xl-dut0") == "c6:6d:c7:de:cd:56"


@pytest.mark.parametrize("names", [("xl-lg", "xl-lg0"), ("xl-dut", "xl-dut0"), ("a", "b"), ("xl-wlg", "xl-wlg0")])
def test_derived_macs_are_unicast_and_locally_administered(names):
    mac = wire.derive_mac(*names)
    first = int(mac.split(":", maxsplit=1)[0], 16)
    assert first & 0x01 == 0 and first & 0x02 == 0x02
    assert wire.normalize_mac(mac, "x") == mac


def test_derived_macs_differ_by_namespace_and_by_name():
    macs = {wire.derive_mac(ns, dev) for ns in ("xl-a", "xl-b") for dev in ("xl-0", "xl-1")}
    assert len(macs) == 4


def test_given_macs_are_normalised():
    assert wire.normalize_mac("02-AB-cd-00-00-01", "lg_mac") == "02:ab:cd:00:00:01"


@pytest.mark.parametrize("mac,match", [("01:00:5e:00:00:01", "multicast"), ("ff:ff:ff:ff:ff:ff", "multicast"),
                                       ("00:00:00:00:00:00", "all zeros"), ("02:00:00:00:01", "not a MAC"),
                                       ("zz:00:00:00:00:01", "not a MAC")])
def test_bad_macs_are_refused(mac, match):
    with pytest.raises(WireError, match=match):
        wire.normalize_mac(mac, "lg_mac")


# ---------------------------------------------------------------- want

def test_want_of_the_defaults_is_the_emulated_lab():
    want = wire.build_want(params(), CPUS)
    assert want["lg"]["mac"] == "f2:49:69:5c:f5:19" and want["dut"]["mac"] == "c6:6d:c7:de:cd:56"
    assert want["lg"]["neighbours"] == {"198.18.0.2": "c6:6d:c7:de:cd:56"}
    assert want["dut"]["neighbours"] == {"198.18.0.1": "f2:49:69:5c:f5:19"}
    assert want["dut"]["napi_cpu"] == 1  # the last CPU
    assert want["dut"]["gro"] is True and want["lg"]["gro"] is None
    assert want["lg"]["tx_checksum_offload"] is False and want["dut"]["tx_checksum_offload"] is False


def test_napi_cpu_defaults_to_the_last_usable_cpu():
    assert wire.build_want(params(), {0, 2, 5})["dut"]["napi_cpu"] == 5


def test_napi_cpu_outside_the_usable_cpus_is_refused():
    with pytest.raises(WireError, match="napi_cpu 4"):
        wire.build_want(params(napi_cpu=4), CPUS)


def test_threaded_napi_without_gro_is_refused_with_the_reason():
    with pytest.raises(WireError, match="dut_gro: true"):
        wire.build_want(params(dut_gro=False), CPUS)


def test_one_namespace_for_both_ends_is_refused():
    with pytest.raises(WireError, match="two different namespaces"):
        wire.build_want(params(dut_netns="xl-lg"), CPUS)


def test_equal_macs_are_refused():
    with pytest.raises(WireError, match="own MAC"):
        wire.build_want(params(lg_mac="02:00:00:00:00:01", dut_mac="02:00:00:00:00:01"), CPUS)


def test_absent_does_not_need_valid_addresses():
    want = wire.build_want(params(state="absent", lg_address="10.0.0.1/8"), CPUS)
    assert want["lg"] == {"netns": "xl-lg", "interface": "xl-lg0"}


@pytest.mark.parametrize("mtu", [0, 67, 65536])
def test_mtu_out_of_range_is_refused(mtu):
    with pytest.raises(WireError, match="mtu"):
        wire.build_want(params(mtu=mtu), CPUS)


# ---------------------------------------------------------------- ownership tag

def test_tag_round_trip():
    tag = wire.make_tag(True, "xl-dut", "xl-dut0")
    assert wire.parse_tag(tag) == {"created_netns": True, "peer": "xl-dut/xl-dut0"}
    assert wire.parse_tag(wire.make_tag(False, "a", "b"))["created_netns"] is False


@pytest.mark.parametrize("alias", [None, "", "someone else", "xdplab.offload.lab_wirex ns=created"])
def test_foreign_aliases_are_not_ours(alias):
    assert wire.parse_tag(alias) is None


# ---------------------------------------------------------------- plan: present

def test_plan_from_nothing_creates_everything_in_a_workable_order():
    want = wire.build_want(params(), CPUS)
    steps = wire.plan_present(want, nothing())
    got = actions(steps)
    assert got[:5] == [("lg", "create_netns"), ("dut", "create_netns"), ("lg", "lo_up"), ("dut", "lo_up"),
                       (None, "create_veth")]
    for side in wire.SIDES:
        assert (side, "set_addresses") in got and (side, "set_neighbours") in got
        assert (side, "set_tx_checksum") in got and (side, "set_up") in got
        assert (side, "set_mac") not in got  # the MAC is given at creation
    # GRO makes the NAPI instance, threaded NAPI makes its thread, then it can be pinned.
    assert got.index(("dut", "set_gro")) < got.index(("dut", "set_threaded")) < got.index(("dut", "pin_napi"))
    assert ("lg", "set_gro") not in got and ("lg", "pin_napi") not in got
    assert steps[-1]["args"] == {"cpus": [1]}


def test_plan_for_a_converged_wire_is_empty():
    want = wire.build_want(params(), CPUS)
    assert wire.plan_present(want, converged_have(want)) == []


def test_plan_touches_only_what_differs():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    have["lg"]["link"]["mtu"] = 9000
    have["dut"]["link"]["mac"] = "02:00:00:00:00:99"
    have["dut"]["link"]["napi"][0]["cpus"] = [0, 1]
    assert actions(wire.plan_present(want, have)) == [("lg", "set_mtu"), ("dut", "set_mac"), ("dut", "pin_napi")]


def test_plan_replaces_foreign_addresses_and_restores_neighbours_after_an_address_change():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    have["lg"]["link"]["addresses"] = ["198.18.0.1/24", "198.18.0.77/24"]
    steps = wire.plan_present(want, have)
    assert actions(steps) == [("lg", "set_addresses"), ("lg", "set_neighbours")]
    assert steps[0]["args"] == {"add": [], "remove": ["198.18.0.77/24"]}


def test_plan_fixes_wrong_and_extra_neighbours():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    have["dut"]["link"]["neighbours"] = {"198.18.0.1": "02:00:00:00:00:01", "198.18.0.9": "02:00:00:00:00:09"}
    (step,) = wire.plan_present(want, have)
    assert step["action"] == "set_neighbours"
    assert step["args"] == {"put": {"198.18.0.1": want["lg"]["mac"]}, "remove": ["198.18.0.9"]}


def test_plan_turns_threaded_napi_off_before_gro():
    want = wire.build_want(params(threaded_napi=False, dut_gro=False), CPUS)
    have = converged_have(wire.build_want(params(), CPUS))
    got = actions(wire.plan_present(want, have))
    assert got == [("dut", "set_threaded"), ("dut", "set_gro")]


def test_a_leftover_threaded_flag_without_napi_is_not_a_change():
    # The kernel keeps the flag after GRO goes off but refuses to write it without a NAPI instance.
    want = wire.build_want(params(threaded_napi=False, dut_gro=False), CPUS)
    have = converged_have(want)
    have["dut"]["link"].update({"gro": False, "threaded": True, "napi": []})
    assert wire.plan_present(want, have) == []


def test_plan_pins_when_the_thread_runs_elsewhere():
    want = wire.build_want(params(napi_cpu=0), CPUS)
    have = converged_have(wire.build_want(params(), CPUS))
    have["dut"]["link"]["napi"][0]["cpus"] = [1]
    (step,) = wire.plan_present(want, have)
    assert step["action"] == "pin_napi" and step["args"] == {"cpus": [0]}


def test_tx_checksum_offload_on_is_planned_on_both_ends():
    want = wire.build_want(params(tx_checksum_offload=True), CPUS)
    have = converged_have(wire.build_want(params(), CPUS))
    steps = wire.plan_present(want, have)
    assert actions(steps) == [("lg", "set_tx_checksum"), ("dut", "set_tx_checksum")]
    assert all(s["args"] == {"enable": True} for s in steps)


def test_existing_empty_namespaces_are_adopted():
    want = wire.build_want(params(), CPUS)
    have = nothing()
    for side in wire.SIDES:
        have[side].update({"netns_exists": True, "interfaces": ["lo"]})
    got = actions(wire.plan_present(want, have))
    assert ("lg", "create_netns") not in got and (None, "create_veth") in got


def test_a_namespace_with_foreign_interfaces_is_refused():
    want = wire.build_want(params(), CPUS)
    have = nothing()
    have["dut"].update({"netns_exists": True, "interfaces": ["lo", "eth7"]})
    with pytest.raises(WireError) as err:
        wire.plan_present(want, have)
    assert "xl-dut" in err.value.msg and "eth7" in err.value.msg
    assert err.value.details["interfaces"] == ["eth7"]


def test_an_interface_name_taken_by_something_else_is_refused():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    have["lg"]["link"]["alias"] = None
    with pytest.raises(WireError, match="xl-lg0 in namespace xl-lg exists and was not made by lab_wire"):
        wire.plan_present(want, have)
    have = converged_have(want)
    have["dut"]["link"]["kind"] = "dummy"
    with pytest.raises(WireError, match="kind dummy"):
        wire.plan_present(want, have)


def test_half_a_wire_is_refused():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    have["dut"]["link"] = None
    with pytest.raises(WireError, match="its peer is not xl-dut0 in namespace xl-dut"):
        wire.plan_present(want, have)


def test_two_ends_of_different_wires_are_refused():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    have["dut"]["link"]["peer_ifindex"] = 99
    with pytest.raises(WireError, match="two different wires"):
        wire.plan_present(want, have)


# ---------------------------------------------------------------- plan: absent

def absent_want():
    return wire.build_want(params(state="absent"), CPUS)


def test_absent_removes_the_veth_and_the_namespaces_it_created():
    have = converged_have(wire.build_want(params(), CPUS))
    steps, warnings = wire.plan_absent(absent_want(), have)
    assert actions(steps) == [("lg", "delete_veth"), ("lg", "delete_netns"), ("dut", "delete_netns")]
    assert warnings == []


def test_absent_keeps_namespaces_it_found():
    have = converged_have(wire.build_want(params(), CPUS))
    have["dut"]["link"]["alias"] = wire.make_tag(False, "xl-lg", "xl-lg0")
    steps, warnings = wire.plan_absent(absent_want(), have)
    assert actions(steps) == [("lg", "delete_veth"), ("lg", "delete_netns")]


def test_absent_keeps_a_namespace_that_holds_other_interfaces():
    have = converged_have(wire.build_want(params(), CPUS))
    have["lg"]["interfaces"].append("xl-other")
    steps, warnings = wire.plan_absent(absent_want(), have)
    assert actions(steps) == [("lg", "delete_veth"), ("dut", "delete_netns")]
    assert any("xl-other" in w for w in warnings)


def test_absent_leaves_foreign_interfaces_alone():
    have = converged_have(wire.build_want(params(), CPUS))
    for side in wire.SIDES:
        have[side]["link"]["alias"] = "made by hand"
    steps, warnings = wire.plan_absent(absent_want(), have)
    assert steps == []
    assert any("not made by lab_wire" in w for w in warnings)


def test_absent_of_nothing_is_no_change():
    assert wire.plan_absent(absent_want(), nothing()) == ([], [])


# ---------------------------------------------------------------- views

def test_napi_cpu_of_reports_one_cpu_only_when_all_threads_agree():
    assert wire.napi_cpu_of([{"cpus": [1]}, {"cpus": [1]}]) == 1
    assert wire.napi_cpu_of([{"cpus": [0]}, {"cpus": [1]}]) is None
    assert wire.napi_cpu_of([{"cpus": [0, 1]}]) is None
    assert wire.napi_cpu_of([]) is None


def test_views_of_a_converged_wire_equal_the_wanted_views():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    for side in wire.SIDES:
        assert wire.view(want, have, side) == wire.want_view(want, side)


def test_result_reports_the_live_link():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    dut = wire.result_side(want, have, "dut")
    assert dut["ifindex"] == 3 and dut["address"] == "198.18.0.2/24" and dut["napi_cpu"] == 1
    assert dut["napi_threads"][0]["pid"] == 4242


# ---------------------------------------------------------------- apply: rollback

class _FakeNetns(object):
    def __init__(self):
        self.created, self.removed = [], []

    def create(self, name):
        self.created.append(name)

    def remove(self, name):
        self.removed.append(name)


class _FailingIPRoute(object):
    """Stands in for the netlink socket: refuses to add links."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def link(self, command, **kwargs):
        raise OSError(17, "File exists")

    def link_lookup(self, **kwargs):
        return []


@pytest.mark.skipif(not wire.HAS_PYROUTE2, reason="pyroute2 is not installed")
def test_a_failed_run_removes_the_namespaces_it_created(monkeypatch):
    fake = _FakeNetns()
    monkeypatch.setattr(wire, "pr_netns", fake)
    monkeypatch.setattr(wire, "_ipr", lambda name: _FailingIPRoute())
    want = wire.build_want(params(), CPUS)
    steps = [s for s in wire.plan_present(want, nothing()) if s["action"] in ("create_netns", "create_veth")]
    with pytest.raises(WireError) as err:
        wire.apply_steps(want, copy.deepcopy(steps))
    assert "create veth xl-lg0" in err.value.msg and "File exists" in err.value.msg
    assert fake.created == ["xl-lg", "xl-dut"] and sorted(fake.removed) == ["xl-dut", "xl-lg"]


# ---------------------------------------------------------------- queues

def test_queues_default_to_one_and_are_bounded():
    want = wire.build_want(params(), CPUS)
    assert want["lg"]["queues"] == want["dut"]["queues"] == 1 and want["dut"]["napi_cpus"] == [1]
    for bad in (0, 65):
        with pytest.raises(WireError, match="queues %d is outside 1..64" % bad):
            wire.build_want(params(queues=bad), CPUS)


def test_napi_threads_of_several_queues_go_over_the_allowed_cpus_from_napi_cpu_on():
    assert wire.napi_cpus(1, {0, 1}, 2) == [1, 0]
    assert wire.napi_cpus(0, {0, 1}, 3) == [0, 1, 0]
    assert wire.napi_cpus(4, {2, 4, 6}, 2) == [4, 6]
    assert wire.build_want(params(queues=2), CPUS)["dut"]["napi_cpus"] == [1, 0]


def test_a_new_wire_with_two_queues_is_made_with_them_and_pins_one_thread_per_queue():
    want = wire.build_want(params(queues=2), CPUS)
    steps = wire.plan_present(want, nothing())
    got = actions(steps)
    assert (None, "set_queues") not in got    # made with two queues
    assert steps[-1]["action"] == "pin_napi" and steps[-1]["args"] == {"cpus": [1, 0]}


def _with_queues(have, queues, max_queues):
    for side in wire.SIDES:
        have[side]["link"].update({"queues": queues, "max_queues": max_queues})
    return have


def test_lowering_the_queues_sets_the_generator_end_first_then_repins():
    want = wire.build_want(params(queues=1), CPUS)
    have = _with_queues(converged_have(want), 2, 2)
    have["dut"]["link"]["napi"] = [{"pid": 1, "napi_id": 10, "cpus": [1]}, {"pid": 2, "napi_id": 11, "cpus": [0]}]
    steps = wire.plan_present(want, have)
    assert actions(steps) == [(None, "set_queues"), ("dut", "pin_napi")]
    assert steps[0]["args"] == {"queues": 1, "order": ["lg", "dut"]}


def test_raising_the_queues_within_the_maximum_sets_the_dut_end_first():
    want = wire.build_want(params(queues=2), CPUS)
    have = _with_queues(converged_have(wire.build_want(params(), CPUS)), 1, 2)
    steps = wire.plan_present(want, have)
    assert actions(steps) == [(None, "set_queues"), ("dut", "pin_napi")]
    assert steps[0]["args"] == {"queues": 2, "order": ["dut", "lg"]}
    assert steps[1]["args"] == {"cpus": [1, 0]}


def test_raising_the_queues_beyond_what_the_veth_was_made_with_makes_it_again():
    want = wire.build_want(params(queues=2), CPUS)
    have = _with_queues(converged_have(wire.build_want(params(), CPUS)), 1, 1)
    steps = wire.plan_present(want, have)
    got = actions(steps)
    assert got[:2] == [("lg", "delete_veth"), (None, "create_veth")]
    # the namespaces stay lab_wire's own, so that absent still removes them
    assert steps[1]["args"] == {"created_netns": {"lg": True, "dut": True}}
    assert (None, "set_queues") not in got and got[-1] == ("dut", "pin_napi")


def test_two_queues_each_pinned_where_wanted_is_converged():
    want = wire.build_want(params(queues=2), CPUS)
    have = _with_queues(converged_have(want), 2, 2)
    have["dut"]["link"]["napi"] = [{"pid": 2, "napi_id": 11, "cpus": [0]}, {"pid": 1, "napi_id": 10, "cpus": [1]}]
    assert wire.plan_present(want, have) == []
    have["dut"]["link"]["napi"][0]["cpus"] = [1]
    assert actions(wire.plan_present(want, have)) == [("dut", "pin_napi")]


def test_napi_nice_is_left_alone_unless_given_and_then_set_with_the_pinning():
    want = wire.build_want(params(), CPUS)
    have = converged_have(want)
    have["dut"]["link"]["napi"][0]["nice"] = 0
    assert wire.plan_present(want, have) == []
    want = wire.build_want(params(napi_nice=-20), CPUS)
    (step,) = wire.plan_present(want, have)
    assert step["action"] == "pin_napi" and step["args"] == {"cpus": [1], "nice": -20}
    have["dut"]["link"]["napi"][0]["nice"] = -20
    assert wire.plan_present(want, have) == []
    with pytest.raises(WireError, match="napi_nice -21 is outside"):
        wire.build_want(params(napi_nice=-21), CPUS)
