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
