"""nfp_firmware against a fixture root: sysfs + /lib/firmware in a temp dir.

Only the command boundary (AnsibleModule.run_command) is replaced, by the
fake nfp driver in fixtures/nfp_tree.py; sysfs writes land in the fixture.
No root, no hardware.
"""
import json
import os
import sys

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.xdplab.offload.plugins.module_utils import nfp
from ansible_collections.xdplab.offload.plugins.modules import nfp_firmware

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
import nfp_tree  # noqa: E402  (fixture builder beside the tests)

BDF = "0000:02:00.0"
NETRONOME = "/lib/firmware/netronome"


class Exit(Exception):
    def __init__(self, result, failed):
        super(Exit, self).__init__(result.get("msg"))
        self.result = result
        self.failed = failed


@pytest.fixture
def module_boundary(monkeypatch):
    """Run nfp_firmware.main() in-process; run_command goes to the fake lab."""
    state = {"lab": None, "warnings": []}

    def exit_json(self, **kwargs):
        raise Exit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise Exit(kwargs, True)

    def run_command(self, args, **kwargs):
        assert isinstance(args, list), "commands must be argument lists, never shell strings"
        return state["lab"].run(args)

    def warn(self, text):
        state["warnings"].append(text)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)
    return state


@pytest.fixture
def run(module_boundary):
    def _run(lab, check=False, diff=True, **args):
        module_boundary["lab"] = lab
        module_boundary["warnings"] = []
        args = dict(args, root=lab.root, _ansible_check_mode=check, _ansible_diff=diff)
        with patch_module_args(args):
            with pytest.raises(Exit) as exc:
                nfp_firmware.main()
        result = dict(exc.value.result, failed=exc.value.failed, warnings=list(module_boundary["warnings"]))
        return result
    return _run


def link_of(lab, name):
    path = lab.p(NETRONOME + "/" + name)
    return os.readlink(path) if os.path.islink(path) else None


# ------------------------------------------------------------ pure lookups

def test_serial_name_is_the_drivers_format_from_the_pcie_dsn():
    # dmesg of a real card: "SN: 00:15:4d:13:70:b4, Ifc: 0x10ff" and
    # "netronome/serial-00-15-4d-13-70-b4-10-ff.nffw: not found"
    assert nfp.serial_fw_name(nfp_tree.DSN) == "serial-00-15-4d-13-70-b4-10-ff.nffw"


@pytest.mark.parametrize("other_caps", [True, False])
def test_dsn_is_found_in_the_extended_capability_chain(other_caps):
    assert nfp.parse_dsn(nfp_tree.config_space(nfp_tree.DSN, other_caps)) == nfp_tree.DSN
    assert nfp.parse_dsn(nfp_tree.config_space(None, other_caps)) is None
    assert nfp.parse_dsn(b"\0" * 64) is None  # non-root reads only see 64 bytes


def test_lookup_names_follow_the_drivers_priority():
    names = nfp.lookup_names(BDF, "AMDA0096-0001", "2x10", nfp_tree.DSN)
    assert names == [("serial", "netronome/serial-00-15-4d-13-70-b4-10-ff.nffw"),
                     ("pci", "netronome/pci-0000:02:00.0.nffw"),
                     ("part", "netronome/nic_AMDA0096-0001_2x10.nffw")]
    assert [k for k, _path in nfp.lookup_names(BDF, "AMDA0096-0001", "2x10")] == ["pci", "part"]


@pytest.mark.parametrize("value,expected", [("02:00.0", BDF), ("0000:02:00.0", BDF), ("0000:AF:00.1", "0000:af:00.1")])
def test_pci_addresses_are_normalised(value, expected):
    assert nfp.normalize_bdf(value) == expected


@pytest.mark.parametrize("value", ["eth0", "02:00", "0000:02:00.8", ""])
def test_bad_pci_address_is_refused(value):
    with pytest.raises(nfp.NfpError) as err:
        nfp.normalize_bdf(value)
    assert "PCI address" in err.value.msg


def test_loader_tries_plain_everywhere_before_compressed(tmp_path):
    updates, base = tmp_path / "updates", tmp_path / "base"
    (updates / "netronome").mkdir(parents=True)
    (base / "netronome").mkdir(parents=True)
    (updates / "netronome" / "x.nffw.zst").write_text("z")
    (base / "netronome" / "x.nffw").write_text("p")
    path, suffix = nfp.find_firmware([str(updates), str(base)], "netronome/x.nffw")
    assert path == str(base / "netronome" / "x.nffw") and suffix == ""


def test_search_dirs_are_the_kernels_order():
    assert nfp.firmware_search_dirs("/r", "/lib/firmware", "6.1.0-18-amd64", "/opt/fw") == [
        "/r/opt/fw", "/r/lib/firmware/updates/6.1.0-18-amd64", "/r/lib/firmware/updates",
        "/r/lib/firmware/6.1.0-18-amd64", "/r/lib/firmware"]


def test_ethtool_and_devlink_output_parsing():
    info = nfp.parse_ethtool_info("driver: nfp\nfirmware-version: 0.0.3.5 0.22 bpf-2.0.6.124 ebpf\n"
                                  "bus-info: 0000:02:00.0\n")
    assert info["app"] == "ebpf" and info["bus_info"] == BDF
    assert nfp.app_from_fw_version("") is None
    lab_json = json.dumps({"info": {"pci/" + BDF: {"versions": {"fixed": {"board.id": "AMDA0096-0001"},
                                                                "running": {"fw.app": "nic-22.09.0"}}}}})
    parsed = nfp.parse_devlink_info(lab_json, BDF)
    assert parsed["board_id"] == "AMDA0096-0001" and parsed["fw_app"] == "nic-22.09.0"
    assert nfp.app_matches("nic", devlink_app="nic-22.09.0")
    assert not nfp.app_matches("bpf", devlink_app="nic-22.09.0")
    assert nfp.app_matches("bpf", ethtool_app="ebpf", devlink_app="nic-22.09.0")  # ethtool decides


# -------------------------------------------------------- module behaviour

def test_bpf_flavour_links_the_pci_name_reloads_and_verifies(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, pci=BDF, flavor="bpf")
    assert not res["failed"], res
    assert res["changed"]
    assert link_of(lab, "pci-0000:02:00.0.nffw") == "bpf/nic_AMDA0096-0001_2x10.nffw"
    assert lab.loaded_from == "pci-0000:02:00.0.nffw" and lab.app == "ebpf" and lab.reloads == 1
    assert res["app"] == "ebpf" and res["firmware_version"].endswith(" ebpf")
    assert res["part_number"] == "AMDA0096-0001" and res["media"] == "2x10"
    assert res["card"] == "Agilio CX 2x10GbE"
    assert res["link"] == "/lib/firmware/netronome/pci-0000:02:00.0.nffw"
    assert res["interfaces"] == ["enp2s0np0", "enp2s0np1"]
    # what was done, in order: reads, then the two sysfs writes of the PCI rescan, then the verification
    assert res["commands"].index("echo 1 > /sys/bus/pci/devices/0000:02:00.0/remove") < \
        res["commands"].index("echo 1 > /sys/bus/pci/rescan") < res["commands"].index("ethtool -i enp2s0np0")
    assert "echo 1 > /sys/bus/pci/devices/0000:02:00.0/remove" in res["commands"]
    assert "echo 1 > /sys/bus/pci/rescan" in res["commands"]
    assert res["diff"]["before"]["app"] == "nic" and res["diff"]["after"]["app"] == "ebpf"
    assert res["diff"]["before"]["link_target"] is None
    assert res["diff"]["after"]["link_target"] == "bpf/nic_AMDA0096-0001_2x10.nffw"
    # the package-owned nic_ link is untouched
    assert link_of(lab, "nic_AMDA0096-0001_2x10.nffw") == "nic/nic_AMDA0096-0001_2x10.nffw"


def test_second_run_changes_nothing_and_does_not_reload(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    assert run(lab, pci=BDF, flavor="bpf")["changed"]
    again = run(lab, pci=BDF, flavor="bpf")
    assert not again["failed"] and not again["changed"], again
    assert lab.reloads == 1
    assert again["commands"] == [] and "diff" not in again
    assert again["app"] == "ebpf"


def test_check_mode_plans_link_and_reload_commands_without_acting(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, check=True, pci=BDF, flavor="bpf")
    assert res["changed"] and not res["failed"]
    assert res["commands"] == [
        "ln -sfn bpf/nic_AMDA0096-0001_2x10.nffw /lib/firmware/netronome/pci-0000:02:00.0.nffw",
        "echo 1 > /sys/bus/pci/devices/0000:02:00.0/remove",
        "echo 1 > /sys/bus/pci/rescan"]
    assert res["reload_needed"]
    assert link_of(lab, "pci-0000:02:00.0.nffw") is None
    assert lab.reloads == 0 and lab.app == "nic"
    assert open(lab.p("/sys/bus/pci/rescan")).read() == ""
    # nothing but reads went to the host
    assert all(c[0] == "ethtool" or c[:2] == ["devlink", "-j"] for c in lab.calls), lab.calls


def test_check_mode_plans_module_reload_as_modprobe_argument_lists(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, check=True, pci=BDF, flavor="bpf", reload="module")
    assert res["commands"][-2:] == ["modprobe -r nfp", "modprobe nfp"]
    assert not any(c[0] == "modprobe" for c in lab.calls)


def test_module_reload_runs_modprobe_remove_then_load(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, pci=BDF, flavor="bpf", reload="module")
    assert not res["failed"], res
    assert [c for c in lab.calls if c[0] == "modprobe"] == [["modprobe", "-r", "nfp"], ["modprobe", "nfp"]]
    assert lab.app == "ebpf"


def test_check_mode_on_a_configured_card_reports_no_change(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    run(lab, pci=BDF, flavor="bpf")
    res = run(lab, check=True, pci=BDF, flavor="bpf")
    assert not res["changed"] and res["commands"] == []


def test_switching_back_to_nic_repoints_the_link(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    run(lab, pci=BDF, flavor="bpf")
    res = run(lab, pci=BDF, flavor="nic")
    assert res["changed"] and not res["failed"], res
    assert link_of(lab, "pci-0000:02:00.0.nffw") == "nic/nic_AMDA0096-0001_2x10.nffw"
    assert lab.app == "nic" and res["app"] == "nic"
    assert res["diff"]["before"]["link_target"] == "bpf/nic_AMDA0096-0001_2x10.nffw"


def test_interface_selects_the_card(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, interface="enp2s0np1", flavor="bpf")
    assert not res["failed"], res
    assert res["pci"] == BDF


def test_the_only_card_is_found_without_pci_or_interface(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, flavor="bpf", check=True)
    assert res["pci"] == BDF and not res["failed"]


def test_serial_link_uses_the_dsn_name(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, pci=BDF, flavor="bpf", link="serial")
    assert not res["failed"], res
    assert link_of(lab, "serial-00-15-4d-13-70-b4-10-ff.nffw") == "bpf/nic_AMDA0096-0001_2x10.nffw"
    assert lab.loaded_from == "serial-00-15-4d-13-70-b4-10-ff.nffw" and lab.app == "ebpf"


def test_serial_link_without_a_readable_dsn_says_use_pci(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, dsn=None)
    res = run(lab, pci=BDF, flavor="bpf", link="serial")
    assert res["failed"] and "link: pci" in res["msg"]


def test_part_link_replaces_the_package_link(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, pci=BDF, flavor="bpf", link="part")
    assert not res["failed"], res
    assert link_of(lab, "nic_AMDA0096-0001_2x10.nffw") == "bpf/nic_AMDA0096-0001_2x10.nffw"
    assert lab.loaded_from == "nic_AMDA0096-0001_2x10.nffw" and lab.app == "ebpf"


def test_compressed_firmware_gets_a_compressed_link_name(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, compressed=True)
    res = run(lab, pci=BDF, flavor="bpf")
    assert not res["failed"], res
    assert link_of(lab, "pci-0000:02:00.0.nffw.zst") == "bpf/nic_AMDA0096-0001_2x10.nffw.zst"
    assert link_of(lab, "pci-0000:02:00.0.nffw") is None
    assert lab.loaded_from == "pci-0000:02:00.0.nffw.zst" and lab.app == "ebpf"
    assert res["firmware_file"] == "/lib/firmware/netronome/bpf/nic_AMDA0096-0001_2x10.nffw.zst"
    assert not run(lab, pci=BDF, flavor="bpf")["changed"]


def test_a_stale_plain_link_that_would_win_over_the_compressed_one_is_removed(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, compressed=True)
    lab.symlink("nic/nic_AMDA0096-0001_2x10.nffw.zst", NETRONOME + "/pci-0000:02:00.0.nffw")
    res = run(lab, pci=BDF, flavor="bpf")
    assert not res["failed"], res
    assert not os.path.lexists(lab.p(NETRONOME + "/pci-0000:02:00.0.nffw"))
    assert lab.app == "ebpf"


def test_flower_flavour_follows_debians_links(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, pci=BDF, flavor="flower")
    assert not res["failed"], res
    assert link_of(lab, "pci-0000:02:00.0.nffw") == "flower/nic_AMDA0096-0001_2x10.nffw"
    assert lab.app == "flower"


def test_failed_verification_rolls_the_link_back_and_reloads(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, broken_flavours=("bpf",))
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"]
    assert "not ebpf" in res["msg"] and "rolled the link" in res["msg"]
    assert res["rolled_back"] and res["expected_app"] == "ebpf" and res["running_app"] == "broken"
    assert link_of(lab, "pci-0000:02:00.0.nffw") is None        # as before
    assert lab.reloads == 2 and lab.app == "nic"                 # reloaded back to the package's nic firmware
    assert res["rollback_app"] == "nic"


def test_failed_verification_restores_a_previous_link(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, broken_flavours=("bpf",))
    assert not run(lab, pci=BDF, flavor="nic-sriov")["failed"]
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"] and res["rolled_back"]
    assert link_of(lab, "pci-0000:02:00.0.nffw") == "nic-sriov/nic_AMDA0096-0001_2x10.nffw"
    assert lab.app == "nic"


def test_reload_none_only_links_and_says_a_reload_is_needed(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, pci=BDF, flavor="bpf", reload="none")
    assert res["changed"] and not res["failed"]
    assert res["reload_needed"] and lab.reloads == 0 and lab.app == "nic"
    assert any("reload is none" in w for w in res["warnings"])
    assert link_of(lab, "pci-0000:02:00.0.nffw") == "bpf/nic_AMDA0096-0001_2x10.nffw"


def test_missing_firmware_file_names_the_package(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, flavours=("nic",))
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"]
    assert "bpf/nic_AMDA0096-0001_2x10.nffw" in res["msg"] and "firmware-netronome" in res["msg"]
    assert lab.reloads == 0 and link_of(lab, "pci-0000:02:00.0.nffw") is None


def test_unknown_part_number_is_refused(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, part="AMDA0123-0001")
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"] and "unknown part number AMDA0123-0001" in res["msg"]
    res = run(lab, pci=BDF, flavor="bpf", part_number="not-a-part")
    assert res["failed"] and "AMDAxxxx-xxxx" in res["msg"]


def test_part_number_option_when_devlink_cannot_tell(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, devlink=False)
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"] and "set part_number" in res["msg"]
    res = run(lab, pci=BDF, flavor="bpf", part_number="AMDA0096-0001")
    assert not res["failed"], res
    assert lab.app == "ebpf"


def test_ambiguous_media_asks_for_it_and_media_option_picks_the_file(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, part="AMDA0099-0001", media="2x25")
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"] and "set media" in res["msg"] and "2x25" in res["msg"]
    res = run(lab, pci=BDF, flavor="bpf", media="2x25")
    assert not res["failed"], res
    assert link_of(lab, "pci-0000:02:00.0.nffw") == "bpf/nic_AMDA0099-0001_2x25.nffw"


def test_no_nfp_card_and_wrong_device_are_clear_errors(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, pci="0000:00:1f.6", flavor="bpf")
    assert res["failed"] and "not an NFP card" in res["msg"]
    res = run(lab, pci="0000:09:00.0", flavor="bpf")
    assert res["failed"] and "no PCI device 0000:09:00.0" in res["msg"]
    res = run(lab, interface="xl-nosuch0", flavor="bpf")
    assert res["failed"] and "xl-nosuch0" in res["msg"]
    empty = tmp_path / "empty"
    (empty / "root" / "sys" / "bus" / "pci" / "devices").mkdir(parents=True)
    lab.root = str(empty / "root")
    res = run(lab, flavor="bpf")
    assert res["failed"] and "no Netronome/Corigine NFP card" in res["msg"]


def test_a_regular_file_at_the_link_name_is_not_overwritten(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    lab.write(NETRONOME + "/pci-0000:02:00.0.nffw", "app=custom\n")
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"] and "regular file" in res["msg"]
    assert open(lab.p(NETRONOME + "/pci-0000:02:00.0.nffw")).read() == "app=custom\n"


def test_a_higher_priority_name_that_would_shadow_the_link_is_reported(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    lab.symlink("nic/nic_AMDA0096-0001_2x10.nffw", NETRONOME + "/" + lab.serial_name())
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"] and "takes precedence" in res["msg"]
    assert res["shadowed_by"] == NETRONOME + "/" + lab.serial_name()
    assert link_of(lab, "pci-0000:02:00.0.nffw") is None and lab.reloads == 0


def test_updates_directory_shadow_is_reported(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    lab.write("/lib/firmware/updates/netronome/pci-0000:02:00.0.nffw", "app=nic\n")
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"] and "updates/netronome/pci-0000:02:00.0.nffw" in res["msg"]


def test_flash_load_policy_is_refused_for_method_load(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, fw_load_policy="flash")
    res = run(lab, pci=BDF, flavor="bpf")
    assert res["failed"] and "fw_load_policy" in res["msg"] and "method: flash" in res["msg"]


def test_fw_load_policy_is_set_through_devlink_then_loaded(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, fw_load_policy="flash")
    res = run(lab, pci=BDF, flavor="bpf", fw_load_policy="disk")
    assert not res["failed"], res
    assert ["devlink", "dev", "param", "set", "pci/" + BDF, "name", "fw_load_policy", "value", "disk",
            "cmode", "permanent"] in lab.calls
    assert lab.fw_load_policy == "disk" and lab.app == "ebpf"
    assert res["diff"]["before"]["fw_load_policy"] == "flash"
    assert not run(lab, pci=BDF, flavor="bpf", fw_load_policy="disk")["changed"]


def test_missing_fw_load_policy_parameter_is_a_warning(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, fw_load_policy=None)
    res = run(lab, pci=BDF, flavor="bpf", fw_load_policy="disk")
    assert not res["failed"], res
    assert any("no fw_load_policy" in w for w in res["warnings"])


def test_flash_method_writes_flash_through_devlink_with_a_warning(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, fw_load_policy="flash")
    res = run(lab, pci=BDF, flavor="bpf", method="flash")
    assert not res["failed"], res
    assert ["devlink", "dev", "flash", "pci/" + BDF, "file", "netronome/bpf/nic_AMDA0096-0001_2x10.nffw"] in lab.calls
    assert lab.flash_app == "ebpf" and lab.app == "ebpf"
    assert any("flash" in w and "across reboots" in w for w in res["warnings"])
    assert link_of(lab, "pci-0000:02:00.0.nffw") is None
    assert not run(lab, pci=BDF, flavor="bpf", method="flash")["changed"]


def test_flash_method_check_mode_plans_the_devlink_flash(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path, fw_load_policy="flash")
    res = run(lab, check=True, pci=BDF, flavor="bpf", method="flash")
    assert res["commands"][0] == "devlink dev flash pci/0000:02:00.0 file netronome/bpf/nic_AMDA0096-0001_2x10.nffw"
    assert lab.flash_app == "nic"


def test_card_that_does_not_come_back_fails_and_restores_the_link(run, tmp_path, monkeypatch):
    lab = nfp_tree.NfpLab(tmp_path)
    os.unlink(lab.p(NETRONOME + "/nic_AMDA0096-0001_2x10.nffw"))  # nothing to fall back to either
    # no firmware at all for the fake driver: it comes back without netdevs
    monkeypatch.setattr(lab, "_driver_load", lambda: (lab._drop_netdevs(), setattr(lab, "app", None)))
    clock = {"t": 0.0}
    monkeypatch.setattr(nfp.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(nfp.time, "sleep", lambda s: clock.__setitem__("t", clock["t"] + s))
    # the fake only notices the rescan when a command runs; let the wait poll see it
    real_card_info = nfp.NfpHost.card_info

    def card_info(self, bdf):
        lab._observe_sysfs()
        return real_card_info(self, bdf)

    monkeypatch.setattr(nfp.NfpHost, "card_info", card_info)
    res = run(lab, pci=BDF, flavor="bpf", timeout=5)
    assert res["failed"] and "did not come back" in res["msg"]
    assert link_of(lab, "pci-0000:02:00.0.nffw") is None


def test_argument_lists_only(tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    host = nfp.NfpHost(lab.run, root=lab.root)
    host.reload("module", BDF)
    assert lab.calls == [["modprobe", "-r", "nfp"], ["modprobe", "nfp"]]


def test_absent_removes_the_link_and_returns_to_the_package_default(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    run(lab, pci=BDF, flavor="bpf")
    assert lab.app == "ebpf"
    would = run(lab, check=True, pci=BDF, state="absent")
    assert would["changed"] and would["commands"][0] == "rm /lib/firmware/netronome/pci-0000:02:00.0.nffw"
    assert lab.app == "ebpf" and link_of(lab, "pci-0000:02:00.0.nffw")
    res = run(lab, pci=BDF, state="absent")
    assert res["changed"] and not res["failed"], res
    assert not os.path.lexists(lab.p(NETRONOME + "/pci-0000:02:00.0.nffw"))
    assert lab.app == "nic" and res["app"] == "nic" and lab.loaded_from == "nic_AMDA0096-0001_2x10.nffw"
    again = run(lab, pci=BDF, state="absent")
    assert not again["changed"] and again["commands"] == []


def test_absent_refuses_to_remove_the_package_link(run, tmp_path):
    lab = nfp_tree.NfpLab(tmp_path)
    res = run(lab, pci=BDF, state="absent", link="part")
    assert res["failed"] and "flavor: nic" in res["msg"]
    assert link_of(lab, "nic_AMDA0096-0001_2x10.nffw") == "nic/nic_AMDA0096-0001_2x10.nffw"


# ------------------------------------------- offload capabilities (cells)

@pytest.mark.parametrize("program", ["drop", "loop", "checksum", "dns_nxdomain"])
def test_builtin_programs_can_be_offloaded_to_a_card_with_the_bpf_app(program):
    assert nfp.cell_support("offload", program, nic_app="ebpf") == {"status": "ok", "xdp_mode": "offload",
                                                                    "reason": None}


def test_offload_cell_on_a_card_without_the_bpf_firmware_is_unsupported_with_the_fix():
    res = nfp.cell_support("offload", "drop", nic_app="nic")
    assert res["status"] == "unsupported" and "nfp_firmware" in res["reason"] and "'nic'" in res["reason"]


def test_redirect_and_percpu_maps_cannot_run_on_the_card():
    res = nfp.cell_support("offload", "xsk_redirect",
                           features={"actions": ["XDP_REDIRECT"], "map_types": ["xskmap", "percpu_array"],
                                     "helpers": ["redirect_map"]})
    assert res["status"] == "unsupported"
    for word in ("XDP_REDIRECT", "percpu_array", "xskmap", "redirect_map"):
        assert word in res["reason"]


def test_afxdp_on_the_nfp_needs_generic_xdp_before_5_18():
    old = nfp.cell_support("afxdp", "drop", kernel="4.18.10")
    assert old["status"] == "ok" and old["xdp_mode"] == "generic" and "5.18" in old["reason"]
    assert nfp.cell_support("afxdp", "drop", kernel="6.1.0-18-amd64")["xdp_mode"] == "driver"


def test_firmware_stack_limit_is_checked_when_known():
    assert nfp.cell_support("offload", "checksum", caps={"stack_bytes": 64})["status"] == "unsupported"
    assert nfp.cell_support("offload", "checksum", caps={"stack_bytes": 512})["status"] == "ok"


def test_host_locations_are_always_supported():
    assert nfp.cell_support("driver", "drop")["status"] == "ok"
    assert nfp.cell_support("generic", "dns_nxdomain")["xdp_mode"] == "generic"
