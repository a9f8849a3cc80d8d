"""xdp_program on a real veth pair: every program, driver and generic mode, both loaders.

Attachment is verified independently of the module through `ip -j link`.
"""
import json
import os
import shutil
import subprocess
import tempfile
import textwrap

import pytest

from lib.modrun import ROOT, recap_changed, run_module, run_playbook
from lib.netfix import VethPair, unique

pytestmark = [pytest.mark.root]

BPF_DIR = os.path.join(ROOT, "bpf")
PROGRAMS = [("drop", {}), ("loop", {"N": 10}), ("checksum", {"N": 10}), ("dns_nxdomain", {})]


@pytest.fixture(scope="module")
def build_dir():
    path = tempfile.mkdtemp(prefix="xl-build-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def wire():
    ns = unique("xl-tns")
    pair = VethPair(unique("xl-ta"), unique("xl-tb"), ns_b=ns)
    pair.create()
    yield pair
    subprocess.run(["rm", "-rf", "/sys/fs/bpf/xdplab/%s" % ns], check=False)
    pair.destroy()
    assert not os.path.exists("/var/run/netns/%s" % ns)


def ip_xdp(pair):
    """(mode, prog id) as iproute2 sees the DUT end: mode is 'xdp' (driver) or 'xdpgeneric'."""
    out = subprocess.run(["ip", "-j", "-d", "-n", pair.ns_b, "link", "show", "dev", pair.name_b],
                         capture_output=True, text=True, check=True).stdout
    link = json.loads(out)[0]
    xdp = link.get("xdp")
    if not xdp:
        return None, None
    return xdp.get("mode"), xdp.get("prog", {}).get("id")


IP_MODE = {"driver": 1, "generic": 2}


def args(pair, build_dir, **kw):
    base = dict(interface=pair.name_b, netns=pair.ns_b, bpf_dir=BPF_DIR, build_dir=build_dir)
    base.update(kw)
    return base


@pytest.mark.parametrize("loader", ["object", pytest.param("bcc", marks=pytest.mark.bcc)])
@pytest.mark.parametrize("mode", ["driver", "generic"])
@pytest.mark.parametrize("program,defines", PROGRAMS, ids=[p for p, _defines in PROGRAMS])
def test_attach_is_real_idempotent_and_detaches(wire, build_dir, program, defines, mode, loader):
    a = args(wire, build_dir, program=program, defines=defines, mode=mode, loader=loader)
    first = run_module("xdp_program", a)
    assert not first.failed, first
    assert first.changed
    ip_mode, ip_id = ip_xdp(wire)
    assert ip_mode == IP_MODE[mode]
    assert ip_id == first["prog_id"]
    assert first["mode"] == mode
    assert os.path.exists(os.path.join(first["pin_path"], "prog"))
    assert os.path.exists(first["maps"]["xl_stats"])

    again = run_module("xdp_program", a)
    assert not again.failed, again
    assert not again.changed
    assert again["prog_id"] == first["prog_id"]

    gone = run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached"))
    assert gone.changed
    assert ip_xdp(wire) == (None, None)
    assert not os.path.exists(first["pin_path"])
    assert not run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached")).changed


def test_switching_mode_and_program_replaces_cleanly(wire, build_dir):
    first = run_module("xdp_program", args(wire, build_dir, program="drop", mode="driver"))
    assert first.changed and not first.failed, first
    second = run_module("xdp_program", args(wire, build_dir, program="drop", mode="generic"))
    assert second.changed and not second.failed, second
    assert ip_xdp(wire) == (IP_MODE["generic"], second["prog_id"])
    third = run_module("xdp_program", args(wire, build_dir, program="loop", defines={"N": 100}, mode="generic"))
    assert third.changed and not third.failed, third
    assert third["tag"] != second["tag"]
    assert ip_xdp(wire) == (IP_MODE["generic"], third["prog_id"])
    # A different N is a different program.
    fourth = run_module("xdp_program", args(wire, build_dir, program="loop", defines={"N": 101}, mode="generic"))
    assert fourth.changed and fourth["tag"] != third["tag"]


def test_check_mode_reports_without_acting(wire, build_dir):
    would = run_module("xdp_program", args(wire, build_dir, program="drop"), check=True, diff=True)
    assert would.changed and not would.failed, would
    assert would["diff"]["after"]["mode"] == "driver"
    assert ip_xdp(wire) == (None, None)
    assert not os.path.exists(would["pin_path"])
    real = run_module("xdp_program", args(wire, build_dir, program="drop"))
    swap = run_module("xdp_program", args(wire, build_dir, program="checksum", defines={"N": 3}), check=True)
    assert swap.changed
    assert ip_xdp(wire) == (IP_MODE["driver"], real["prog_id"])
    # Same program, same mode: without compiling and loading, check mode cannot know the wanted tag; it
    # says changed (conservatively) and says why, and leaves the attached program as it is.
    same = run_module("xdp_program", args(wire, build_dir, program="drop"), check=True)
    assert same.changed and not same.failed and same["tag_known"] is False, same
    assert "tag" in same["check_mode_reason"] and str(real["prog_id"]) in same["check_mode_reason"]
    assert same["prog_id"] == real["prog_id"]
    other_mode = run_module("xdp_program", args(wire, build_dir, program="drop", mode="generic"), check=True)
    assert other_mode.changed and "mode driver" in other_mode["check_mode_reason"], other_mode
    gone = run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached"), check=True)
    assert gone.changed and not gone.failed, gone
    assert ip_xdp(wire) == (IP_MODE["driver"], real["prog_id"])
    assert os.path.exists(os.path.join(real["pin_path"], "prog"))


def test_check_mode_compiles_nothing_into_the_build_cache(wire, tmp_path):
    cache = str(tmp_path / "cache")
    would = run_module("xdp_program", args(wire, cache, program="checksum", defines={"N": 7}), check=True)
    assert would.changed and not would.failed, would
    assert would["program_hash"] and would["tag"] is None and would["tag_known"] is False
    assert not os.path.exists(cache), "check mode wrote into the build cache: %s" % os.listdir(cache)
    assert ip_xdp(wire) == (None, None)


def test_unknown_interface_and_namespace(wire, build_dir):
    res = run_module("xdp_program", args(wire, build_dir, program="drop", interface="xl-nosuch0"))
    assert res.failed and "xl-nosuch0" in res["msg"] and "does not exist" in res["msg"]
    missing = unique("xl-nons")
    res = run_module("xdp_program", args(wire, build_dir, program="drop", netns=missing))
    assert res.failed and missing in res["msg"]
    assert not os.path.exists("/var/run/netns/%s" % missing), "the module must not create namespaces"


def test_unknown_program_lists_builtins(wire, build_dir):
    res = run_module("xdp_program", args(wire, build_dir, program="nosuchprog"))
    assert res.failed
    assert "dns_nxdomain" in res["msg"]


def test_offload_on_veth_says_which_nic_is_needed(wire, build_dir):
    res = run_module("xdp_program", args(wire, build_dir, program="drop", mode="offload"))
    assert res.failed
    assert "offload-capable NIC" in res["msg"]
    assert ip_xdp(wire) == (None, None)


def write_source(directory, name, body):
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        handle.write(textwrap.dedent(body))
    return path


OUT_OF_BOUNDS = """
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>
    SEC("xdp") int xl_oob(struct xdp_md *ctx)
    {
        unsigned char *p = (unsigned char *)(long)ctx->data;
        return p[20] ? XDP_DROP : XDP_PASS;   /* no bounds check */
    }
    char _license[] SEC("license") = "GPL";
"""


def test_verifier_rejection_carries_log_and_changes_nothing(wire, build_dir, tmp_path):
    before = run_module("xdp_program", args(wire, build_dir, program="drop"))
    src = write_source(str(tmp_path), "xl_oob.c", OUT_OF_BOUNDS)
    res = run_module("xdp_program", args(wire, build_dir, program=src))
    assert res.failed
    assert "rejected" in res["msg"]
    assert "outside of the packet" in res["verifier_log"] or "invalid access to packet" in res["verifier_log"]
    # The earlier program is untouched and its pins are still exact.
    assert ip_xdp(wire) == (IP_MODE["driver"], before["prog_id"])
    assert sorted(os.listdir(before["pin_path"])) == ["prog", "xl_stats"]


def test_compile_error_carries_compiler_output(wire, build_dir, tmp_path):
    src = write_source(str(tmp_path), "xl_broken.c", "int xl_broken(void) { return undeclared_thing; }\n")
    res = run_module("xdp_program", args(wire, build_dir, program=src))
    assert res.failed
    assert "does not compile" in res["msg"]
    assert "undeclared_thing" in res["compiler_output"]
    assert ip_xdp(wire) == (None, None)
    assert not os.path.exists(res.get("pin_path") or "/sys/fs/bpf/xdplab/%s/%s" % (wire.ns_b, wire.name_b))


def test_missing_bcc_is_a_clear_error(wire, build_dir, tmp_path):
    # BCC is installed here; shadow its import to see what a host without it gets.
    fake = tmp_path / "bcc"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named bcc (shadowed by the test)')\n")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tmp_path)
    try:
        res = run_module("xdp_program", args(wire, build_dir, program="drop", loader="bcc"))
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    assert res.failed
    assert "python3-bpfcc" in res["msg"]
    assert ip_xdp(wire) == (None, None)


def test_playbook_second_run_reports_no_change(wire):
    extra = {"xl_interface": wire.name_b, "xl_netns": wire.ns_b, "xl_bpf_dir": BPF_DIR}
    first = run_playbook("tests/integration/playbooks/xdp_program.yml", extra)
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap_changed(first.stdout) == 1
    second = run_playbook("tests/integration/playbooks/xdp_program.yml", extra)
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap_changed(second.stdout) == 0
    assert ip_xdp(wire)[0] == IP_MODE["driver"]
    gone = run_playbook("tests/integration/playbooks/xdp_program.yml", dict(extra, xl_state="detached"))
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert ip_xdp(wire) == (None, None)
