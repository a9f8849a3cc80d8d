"""Pure parts of the XDP deploy logic (no root needed)."""
import os
import subprocess
import sys

from ansible_collections.xdplab.offload.plugins.module_utils import counters, xdp, xdp_deploy


def test_default_pin_path_separates_namespaces():
    assert counters.default_pin_path("xl-dut0", "xl-dut") == "/sys/fs/bpf/xdplab/xl-dut/xl-dut0"
    assert counters.default_pin_path("eth0") == "/sys/fs/bpf/xdplab/root/eth0"


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


def test_reading_counters_does_not_import_pyroute2():
    """xdp_stats runs in emulated guests, where importing pyroute2 alone costs about two seconds."""
    code = ("import sys; import ansible_collections.xdplab.offload.plugins.modules.xdp_stats; "
            "print('pyroute2' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
