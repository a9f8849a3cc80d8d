"""Hostile inputs and faults for the BPF modules: xdp_program, afxdp_worker, bpf_testrun, cpu_usage.

Every case asserts a clear error (the task fails, its message names the
option, no Python traceback) and that nothing changed: the file trees of
/sys/fs/bpf/xdplab and /run/xdplab, the XDP state of the wire as iproute2
reports it (``ip -j -d link``), kernel.bpf_stats_enabled, and the decoy
directories the cases aim at, compared before and after.

Everything this file creates is named xl-ha* (a veth pair with one end in a
namespace of its own, pins under /sys/fs/bpf/xdplab/xl-ha*, state under
/run/xdplab/afxdp/xl-ha*); fixtures remove it, also on failure. Other
engineers' objects (other ``xl-`` names) may come and go meanwhile under the
shared roots: the comparison leaves those, and only those, out.
"""
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import textwrap
import time

import pytest

from lib.modrun import ROOT, run_module
from lib.netfix import VethPair, unique

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp as A
from ansible_collections.xdplab.offload.plugins.module_utils import programs as P
from ansible_collections.xdplab.offload.plugins.module_utils.counters import PIN_ROOT

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="namespaces, XDP programs and bpffs need root")]

BPF_DIR = os.path.join(ROOT, "bpf")
RUN_ROOT = "/run/xdplab"
CPU_STATE = "/run/xdplab/cpu"
BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"
FOREIGN_SOURCE = """
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>
    SEC("xdp") int ha_foreign(struct xdp_md *ctx)
    {
        return XDP_PASS;
    }
    char _license[] SEC("license") = "GPL";
"""


# ------------------------------------------------------------------ state before/after

def _tree(top, content=False):
    """{path: (kind, size/link target/content digest)} of everything under ``top`` (links not followed)."""
    found = {}
    if not os.path.lexists(top):
        return found
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # someone else's file went away meanwhile
            if stat.S_ISLNK(st.st_mode):
                found[path] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[path] = ("dir", None)
            elif content and stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    found[path] = ("file", hashlib.sha256(handle.read()).hexdigest())
            else:
                found[path] = ("file", stat.S_IFMT(st.st_mode))
    return found


def _someone_elses(path):
    """Entries other engineers' runs make meanwhile: other xl- names, the experiment role's cell samplings
    (/run/xdplab/cpu/<cell>.json) and other tools' directories under /run/xdplab (e.g. locks)."""
    if any(part.startswith("xl-") and not part.startswith("xl-ha") for part in path.split(os.sep)):
        return True
    if path.startswith(CPU_STATE + os.sep):
        return "xl-ha" not in path
    ours = path == CPU_STATE or path == A.STATE_ROOT or path.startswith(A.STATE_ROOT + os.sep)
    return path.startswith(RUN_ROOT + os.sep) and not ours


def _mine(before, after):
    """Both trees without other engineers' entries (other xl- names) and the directories above them."""
    ignored = set(p for p in set(before) | set(after) if _someone_elses(p))
    above = set()
    for path in ignored:
        parent = os.path.dirname(path)
        while parent not in ("/", "") and parent not in above:
            above.add(parent)
            parent = os.path.dirname(parent)
    keep = set(before) | set(after)
    keep -= ignored | above
    return (dict((p, before[p]) for p in keep if p in before), dict((p, after[p]) for p in keep if p in after))


def _xdp(ifname, ns=None):
    """(mode, prog id) of an interface from ``ip -j -d link`` (no bpftool)."""
    cmd = ["ip", "-j", "-d"] + (["-n", ns] if ns else []) + ["link", "show", "dev", ifname]
    link = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)[0]
    xdp = link.get("xdp") or {}
    return xdp.get("mode"), (xdp.get("prog") or {}).get("id")


def _sysctl():
    with open(BPF_STATS) as handle:
        return handle.read().strip()


class Lab(object):
    """What a case may not change: shared trees, the wire's XDP state, the sysctl and the decoys."""

    def __init__(self, wire, decoys=()):
        self.wire = wire
        self.decoys = list(decoys)

    def state(self):
        return {
            "bpffs": _tree(PIN_ROOT),
            "run": _tree(RUN_ROOT),
            "xdp": (_xdp(self.wire.name_a), _xdp(self.wire.name_b, self.wire.ns_b)),
            "sysctl": _sysctl(),
            "decoys": dict((d, _tree(d, content=True)) for d in self.decoys),
        }

    def assert_unchanged(self, before):
        after = self.state()
        for key in ("bpffs", "run"):
            mine_before, mine_after = _mine(before[key], after[key])
            assert mine_after == mine_before, "%s changed: %s" % (key, _difference(mine_before, mine_after))
        assert after["xdp"] == before["xdp"], "the wire's XDP state changed"
        assert after["sysctl"] == before["sysctl"], "kernel.bpf_stats_enabled changed"
        for decoy in self.decoys:
            assert after["decoys"][decoy] == before["decoys"][decoy], "decoy %s changed" % decoy
            assert os.path.isdir(decoy)


def _difference(before, after):
    return {"new": sorted(set(after) - set(before)), "gone": sorted(set(before) - set(after)),
            "different": sorted(p for p in set(before) & set(after) if before[p] != after[p])}


def refused(res, option, *words):
    """The task failed clearly: a message naming ``option`` (and ``words``), no traceback."""
    assert res.failed, res
    assert option in res["msg"], res
    for word in words:
        assert word in res["msg"], res
    text = json.dumps(res)
    assert "Traceback" not in text and "module_stderr" not in res and "exception" not in res, res


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def build_dir():
    path = tempfile.mkdtemp(prefix="xl-ha-build-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def wire():
    """A veth pair, end ``b`` in a namespace of its own; its pins are removed afterwards."""
    pair = VethPair(unique("xl-haa"), unique("xl-hab"), ns_b=unique("xl-han"))
    try:
        pair.create()
        # No IPv6 (router solicitations, MLD) on the wire: counters move only when a test says so.
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % pair.name_a, "w") as handle:
            handle.write("1\n")
        subprocess.run(["ip", "netns", "exec", pair.ns_b, "sysctl", "-qw",
                        "net.ipv6.conf.%s.disable_ipv6=1" % pair.name_b], check=True)
        yield pair
    finally:
        shutil.rmtree(os.path.join(PIN_ROOT, pair.ns_b), ignore_errors=True)
        shutil.rmtree(os.path.join(PIN_ROOT, "root", pair.name_a), ignore_errors=True)
        try:
            os.rmdir(os.path.join(PIN_ROOT, "root"))  # only if empty: others may use it
        except OSError:
            pass
        pair.destroy()
    assert not os.path.exists("/var/run/netns/%s" % pair.ns_b)


@pytest.fixture
def decoy(tmp_path):
    """A directory with a file that must survive every case."""
    path = tmp_path / "xl-ha-decoy"
    path.mkdir()
    (path / "precious.txt").write_text("keep me\n")
    (path / "sub").mkdir()
    (path / "sub" / "also.txt").write_text("and me\n")
    return str(path)


@pytest.fixture
def lab(wire, decoy):
    return Lab(wire, [decoy])


@pytest.fixture
def state_root():
    os.makedirs(A.STATE_ROOT, exist_ok=True)
    path = tempfile.mkdtemp(prefix="xl-ha-state-", dir=A.STATE_ROOT)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bpffs_link(decoy):
    """A symbolic link under the pin root pointing at the decoy (bpffs allows links)."""
    os.makedirs(PIN_ROOT, exist_ok=True)
    path = os.path.join(PIN_ROOT, unique("xl-ha-link"))
    os.symlink(decoy, path)
    yield path
    if os.path.islink(path):
        os.unlink(path)


@pytest.fixture(scope="module")
def foreign_object(build_dir):
    """An XDP object that is not one of the collection's programs (name ha_foreign)."""
    src = os.path.join(build_dir, "ha_foreign.c")
    with open(src, "w") as handle:
        handle.write(textwrap.dedent(FOREIGN_SOURCE))
    return P.build_object(src, {}, [], build_dir)


@pytest.fixture
def foreign(wire, foreign_object):
    """The foreign program attached in generic mode with iproute2, detached again afterwards."""
    cmd = ["ip", "-n", wire.ns_b, "link", "set", "dev", wire.name_b]
    subprocess.run(cmd + ["xdpgeneric", "obj", foreign_object, "sec", "xdp"], check=True, capture_output=True)
    try:
        mode, prog_id = _xdp(wire.name_b, wire.ns_b)
        assert prog_id, "the foreign program did not attach"
        yield prog_id
    finally:
        subprocess.run(cmd + ["xdpgeneric", "off"], check=False, capture_output=True)


def xargs(wire, build_dir, **kw):
    base = dict(interface=wire.name_b, netns=wire.ns_b, bpf_dir=BPF_DIR, build_dir=build_dir)
    base.update(kw)
    return base


def wargs(wire, build_dir, state_root, **kw):
    base = dict(interface=wire.name_b, netns=wire.ns_b, bpf_dir=BPF_DIR, build_dir=build_dir,
                state_root=state_root)
    base.update(kw)
    return base


# ------------------------------------------------------------------ xdp_program

@pytest.mark.parametrize("check", [False, True], ids=["normal", "check"])
def test_pin_path_outside_the_pin_root_is_refused_and_the_decoy_survives(wire, lab, decoy, check):
    before = lab.state()
    res = run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached",
                                         pin_path=decoy), check=check)
    refused(res, "pin_path", "outside", PIN_ROOT)
    lab.assert_unchanged(before)
    assert os.path.isfile(os.path.join(decoy, "precious.txt"))


def test_pin_path_outside_the_root_with_state_attached_attaches_nothing(wire, lab, decoy, build_dir):
    before = lab.state()
    res = run_module("xdp_program", xargs(wire, build_dir, program="drop", pin_path=decoy))
    refused(res, "pin_path", "outside")
    lab.assert_unchanged(before)


def test_pin_path_leaving_the_root_through_dotdot_is_refused(wire, lab, decoy):
    sneaky = PIN_ROOT + "/xl-ha" + "/.." * 8 + decoy
    before = lab.state()
    res = run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached",
                                         pin_path=sneaky))
    refused(res, "pin_path", "resolves to %s" % decoy)
    lab.assert_unchanged(before)


def test_pin_path_leaving_the_root_through_a_symlink_is_refused(wire, lab, decoy, bpffs_link):
    before = lab.state()
    for check in (True, False):
        res = run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached",
                                             pin_path=bpffs_link), check=check)
        refused(res, "pin_path", "resolves to %s" % decoy)
    lab.assert_unchanged(before)
    assert os.path.islink(bpffs_link)


def test_the_pin_root_itself_is_refused_as_pin_path(wire, lab):
    before = lab.state()
    res = run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached",
                                         pin_path=PIN_ROOT + "/"))
    refused(res, "pin_path", "itself")
    lab.assert_unchanged(before)


@pytest.mark.parametrize("module", ["xdp_program", "bpf_testrun"])
def test_interface_with_dotdot_is_refused(wire, lab, decoy, module):
    before = lab.state()
    args = dict(interface="../../" + os.path.basename(decoy), netns=wire.ns_b)
    if module == "xdp_program":
        args["state"] = "detached"
    res = run_module(module, args)
    refused(res, "interface", "not an interface name")
    lab.assert_unchanged(before)


@pytest.mark.parametrize("module", ["xdp_program", "bpf_testrun"])
def test_netns_with_a_slash_is_refused(wire, lab, module):
    before = lab.state()
    args = dict(interface=wire.name_b, netns="xl-ha/../../etc")
    if module == "xdp_program":
        args["state"] = "detached"
    res = run_module(module, args)
    refused(res, "netns", "not a valid network namespace name")
    lab.assert_unchanged(before)


def test_check_mode_of_xdp_program_changes_nothing(wire, lab, tmp_path, build_dir):
    cache = str(tmp_path / "xl-ha-cache")
    before = lab.state()
    res = run_module("xdp_program", xargs(wire, cache, program="drop", mode="generic"), check=True)
    assert not res.failed and res.changed and res["tag_known"] is False, res
    lab.assert_unchanged(before)
    assert not os.path.exists(cache), "check mode compiled into the build cache"

    real = run_module("xdp_program", xargs(wire, build_dir, program="drop"))
    assert not real.failed, real
    before = lab.state()
    for args in (xargs(wire, cache, program="loop", defines={"N": 5}, mode="generic"),
                 xargs(wire, cache, program="drop"),
                 dict(interface=wire.name_b, netns=wire.ns_b, state="detached")):
        res = run_module("xdp_program", args, check=True)
        assert not res.failed and res.changed, res
    lab.assert_unchanged(before)
    assert not os.path.exists(cache)
    assert _xdp(wire.name_b, wire.ns_b) == (1, real["prog_id"])


@pytest.mark.parametrize("check", [False, True], ids=["normal", "check"])
@pytest.mark.parametrize("state", ["attached", "detached"])
def test_a_foreign_program_is_neither_replaced_nor_detached_without_force(wire, lab, foreign, build_dir, state,
                                                                          check):
    before = lab.state()
    args = dict(interface=wire.name_b, netns=wire.ns_b, state=state)
    if state == "attached":
        args.update(program="drop", mode="driver", bpf_dir=BPF_DIR, build_dir=build_dir)
    res = run_module("xdp_program", args, check=check)
    refused(res, "force", wire.name_b, "id %d" % foreign, "ha_foreign")
    assert res["prog_id"] == foreign
    lab.assert_unchanged(before)
    assert _xdp(wire.name_b, wire.ns_b) == (2, foreign)


def test_a_foreign_program_is_replaced_with_force(wire, foreign, build_dir):
    res = run_module("xdp_program", xargs(wire, build_dir, program="drop", mode="driver", force=True))
    assert not res.failed and res.changed, res
    assert _xdp(wire.name_b, wire.ns_b) == (1, res["prog_id"]) and res["prog_id"] != foreign
    gone = run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached"))
    assert not gone.failed and gone.changed, gone
    assert _xdp(wire.name_b, wire.ns_b) == (None, None)


def test_a_failed_mode_switch_keeps_a_foreign_program(wire, lab, foreign, build_dir):
    """offload cannot work on veth; without force the foreign program is not even touched."""
    before = lab.state()
    res = run_module("xdp_program", xargs(wire, build_dir, program="drop", mode="offload"))
    refused(res, "force", str(foreign))
    lab.assert_unchanged(before)


# ------------------------------------------------------------------ afxdp_worker

def test_worker_interface_with_dotdot_does_not_escape_the_state_root(wire, lab, decoy, build_dir, state_root):
    escape = "../../../../" + decoy.lstrip("/")
    before = lab.state()
    for state in ("stopped", "started"):
        res = run_module("afxdp_worker", wargs(wire, build_dir, state_root, interface=escape, state=state,
                                               program="drop"))
        refused(res, "interface", "not an interface name")
    lab.assert_unchanged(before)


def test_worker_netns_with_a_slash_is_refused(wire, lab, build_dir, state_root):
    before = lab.state()
    res = run_module("afxdp_worker", wargs(wire, build_dir, state_root, netns="a/../../b", state="stopped"))
    refused(res, "netns", "not a valid network namespace name")
    lab.assert_unchanged(before)


def test_worker_state_root_outside_the_lab_directory_is_refused(wire, lab, decoy, build_dir):
    # A decoy that looks like a state directory: <root>/<netns>/<interface>.
    victim = os.path.join(decoy, wire.ns_b, wire.name_b)
    os.makedirs(victim)
    with open(os.path.join(victim, "worker.json"), "w") as handle:
        handle.write("{}")
    lab.decoys = [decoy]
    before = lab.state()
    for check in (True, False):
        res = run_module("afxdp_worker", wargs(wire, build_dir, decoy, state="stopped"), check=check)
        refused(res, "state_root", A.STATE_ROOT)
    lab.assert_unchanged(before)


def test_check_mode_of_afxdp_worker_runs_no_binary_and_starts_nothing(wire, lab, tmp_path, state_root):
    marker = tmp_path / "xl-ha-ran"
    binary = tmp_path / "xl-afxdp-drop"
    binary.write_text("#!/bin/sh\ntouch %s\necho '{\"program\": \"drop\", \"defines\": \"\"}'\n" % marker)
    binary.chmod(0o755)
    cache = tmp_path / "xl-ha-cache"
    before = lab.state()
    with_binary = run_module("afxdp_worker", wargs(wire, str(cache), state_root, binary=str(binary)), check=True)
    assert not with_binary.failed and with_binary.changed, with_binary
    assert with_binary["binary_checked"] is False and with_binary["pid"] is None
    built = run_module("afxdp_worker", wargs(wire, str(cache), state_root, program="drop"), check=True)
    assert not built.failed and built.changed and built["pid"] is None, built
    lab.assert_unchanged(before)
    assert not marker.exists(), "check mode ran the binary's --info"
    assert not cache.exists(), "check mode built the worker"
    assert os.listdir(state_root) == []


def test_a_sigkilled_worker_makes_the_module_fail(wire, lab, build_dir, state_root):
    started = run_module("afxdp_worker", wargs(wire, build_dir, state_root, program="drop", attach="netlink"))
    assert not started.failed, started
    try:
        os.kill(started["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while (A.proc_info(started["pid"]) or "Z")[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        before = lab.state()
        for check in (True, False):
            res = run_module("afxdp_worker", wargs(wire, build_dir, state_root, program="drop"), check=check)
            refused(res, "crashed", str(started["pid"]))
            assert res["state"] == "crashed" and "worker_log" in res and res["final"] is False
        lab.assert_unchanged(before)  # a failed start changes nothing; the evidence stays

        gone = run_module("afxdp_worker", wargs(wire, build_dir, state_root, state="stopped"))
        refused(gone, "crashed", str(started["pid"]))
        assert gone["state"] == "crashed" and gone["stale_program_removed"] == started["prog_id"]
        assert not os.path.exists(started["state_dir"])
        assert _xdp(wire.name_b, wire.ns_b) == (None, None)
        after = run_module("afxdp_worker", wargs(wire, build_dir, state_root, state="stopped"))
        assert not after.failed and not after.changed, after
    finally:
        run_module("afxdp_worker", wargs(wire, build_dir, state_root, state="stopped"))


# ------------------------------------------------------------------ bpf_testrun

def test_bpf_testrun_pin_path_outside_the_root_is_refused(wire, lab, decoy):
    before = lab.state()
    res = run_module("bpf_testrun", dict(pin_path=decoy, packet="udp", repeat=10, rounds=1))
    refused(res, "pin_path", "outside")
    lab.assert_unchanged(before)


def test_check_mode_of_bpf_testrun_runs_nothing_and_writes_no_counters(wire, lab, build_dir, tmp_path):
    real = run_module("xdp_program", xargs(wire, build_dir, program="drop"))
    assert not real.failed, real
    counters = run_module("xdp_stats", dict(interface=wire.name_b, netns=wire.ns_b))["counters"]
    cache = str(tmp_path / "xl-ha-cache")
    before = lab.state()
    pinned = run_module("bpf_testrun", dict(interface=wire.name_b, netns=wire.ns_b, packet="udp", repeat=1000,
                                            rounds=2, restore_counters=False), check=True)
    assert not pinned.failed and pinned["runs"] == 0 and pinned["prog"]["id"] == real["prog_id"], pinned
    fresh = run_module("bpf_testrun", dict(program="loop", defines={"N": 3}, bpf_dir=BPF_DIR, build_dir=cache,
                                           packet="udp", repeat=1000, rounds=2), check=True)
    assert not fresh.failed and fresh["runs"] == 0, fresh
    lab.assert_unchanged(before)
    assert run_module("xdp_stats", dict(interface=wire.name_b, netns=wire.ns_b))["counters"] == counters
    assert not os.path.exists(cache)


# ------------------------------------------------------------------ cpu_usage

def test_cpu_usage_sampling_name_that_is_a_path_is_refused(lab, decoy):
    before = lab.state()
    for action in ("start", "stop"):
        res = run_module("cpu_usage", {"action": action, "name": "../../" + os.path.basename(decoy) + "/x"})
        refused(res, "name", "not a valid sampling name")
    lab.assert_unchanged(before)


def test_check_mode_of_cpu_usage_writes_no_state_and_keeps_the_sysctl(lab, tmp_path):
    state_dir = str(tmp_path / "xl-ha-cpu")
    name = unique("xl-ha-cpu")
    lab.decoys.append(str(tmp_path))
    before = lab.state()
    try:
        for args in ({"action": "start", "name": name, "bpf_stats": True},
                     {"action": "start", "name": name, "bpf_stats": True, "state_dir": state_dir},
                     {"action": "sample", "window": 0.1, "bpf_stats": True}):
            res = run_module("cpu_usage", args, check=True)
            assert not res.failed and not res.changed, res
        lab.assert_unchanged(before)
        assert not os.path.exists(state_dir)
    finally:
        default_state = os.path.join(CPU_STATE, name + ".json")
        if os.path.exists(default_state):  # only if check mode wrote it after all
            os.unlink(default_state)

    started = run_module("cpu_usage", {"action": "start", "name": name, "state_dir": state_dir})
    assert not started.failed, started
    try:
        lab.decoys = [state_dir]
        before = lab.state()
        res = run_module("cpu_usage", {"action": "stop", "name": name, "state_dir": state_dir}, check=True)
        assert not res.failed and not res.changed, res
        lab.assert_unchanged(before)
        assert os.path.exists(started["state_path"])
    finally:
        run_module("cpu_usage", {"action": "stop", "name": name, "state_dir": state_dir})
    assert not os.path.exists(started["state_path"])
