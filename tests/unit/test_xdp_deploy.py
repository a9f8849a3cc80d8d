"""Pure parts of the XDP deploy logic (no root needed)."""
from ansible_collections.xdplab.offload.plugins.module_utils import xdp, xdp_deploy


def test_default_pin_path_separates_namespaces():
    assert xdp_deploy.default_pin_path("xl-dut0", "xl-dut") == "/sys/fs/bpf/xdplab/xl-dut/xl-dut0"
    assert xdp_deploy.default_pin_path("eth0") == "/sys/fs/bpf/xdplab/root/eth0"


def test_mode_flags_match_the_kernel_uapi():
    assert xdp.MODE_FLAGS == {"generic": 2, "driver": 4, "offload": 8}


def test_captured_stderr_collects_fd2_output():
    import os
    with xdp_deploy.captured_stderr() as err:
        os.write(2, b"from C code\n")
    assert err["text"] == "from C code\n"


def test_remove_pins_prunes_empty_parents_under_the_root_only(tmp_path):
    root = tmp_path / "xdplab"
    pin = root / "xl-dut" / "xl-dut0"
    other = root / "xl-other" / "eth0"
    pin.mkdir(parents=True)
    other.mkdir(parents=True)
    (pin / "prog").write_text("")
    assert xdp_deploy.remove_pins(str(pin), root=str(root))
    assert not (root / "xl-dut").exists()
    assert other.exists() and root.exists()
    assert not xdp_deploy.remove_pins(str(pin), root=str(root))
    xdp_deploy.remove_pins(str(other), root=str(root))
    assert not root.exists() and tmp_path.exists()
