"""The device-bound (offload) build of the experiment programs, without a SmartNIC.

-DXL_OFFLOAD (set by xdp_deploy for mode offload) must give, from the same
source, a program the NFP can hold: xl_stats a plain ARRAY (no per-CPU map)
updated only by atomic adds. Proven here by compiling, disassembling, and
loading the object into the host kernel (not bound to a device): same
verdicts and output bytes as the per-CPU build, and counters that count.
On a veth, mode offload must still fail with the "offload-capable NIC" error.
"""
import ctypes
import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import libbpf as L
from ansible_collections.xdplab.offload.plugins.module_utils import nfp
from ansible_collections.xdplab.offload.plugins.module_utils import packets
from ansible_collections.xdplab.offload.plugins.module_utils import programs as P
from ansible_collections.xdplab.offload.plugins.module_utils import xdp_deploy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(REPO, "bpf")
INCLUDE = os.path.join(BPF_DIR, "include")
OBJDUMP = shutil.which("llvm-objdump") or shutil.which("llvm-objdump-14")
BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY = 2, 6
CASES = [("drop", {}), ("loop", {"N": 10}), ("checksum", {"N": 10}), ("dns_nxdomain", {})]
IS_ROOT = os.geteuid() == 0


def build(name, defines, build_dir, offload):
    prog = P.resolve_program(name, BPF_DIR)
    if offload:
        defines = dict(defines, **{xdp_deploy.OFFLOAD_DEFINE: 1})
    return prog, P.build_object(prog.source_path, defines, [INCLUDE], build_dir)


def disassemble(obj):
    return subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", obj], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(not shutil.which("clang") or not OBJDUMP, reason="needs clang and llvm-objdump")
@pytest.mark.parametrize("name,defines", CASES, ids=[c[0] for c in CASES])
def test_offload_build_counts_with_atomic_adds_only(name, defines, tmp_path):
    _prog, shared = build(name, defines, str(tmp_path), offload=True)
    _prog, percpu = build(name, defines, str(tmp_path), offload=False)
    assert shared != percpu  # a different cache entry, a different program
    text = disassemble(shared)
    # four counter updates (seen + verdict, packets + bytes), each an atomic add
    assert len(re.findall(r"lock \*\(u64 \*\)", text)) == 4, text
    assert "lock" not in disassemble(percpu)


def test_offload_define_changes_the_program_hash():
    prog = P.resolve_program("drop", BPF_DIR)
    assert (P.program_hash(prog.source_path, {"XL_OFFLOAD": 1}, [INCLUDE])
            != P.program_hash(prog.source_path, {}, [INCLUDE]))


def _lookup(map_fd, key, size):
    buf = ctypes.create_string_buffer(size)
    k = ctypes.c_uint32(key)
    assert L._load_lib().bpf_map_lookup_elem(map_fd, ctypes.byref(k), buf) == 0
    return buf.raw


def _frame(name):
    if name == "dns_nxdomain":
        return packets.dns_query_frame()
    return packets.udp_frame(size=64)


@pytest.mark.root
@pytest.mark.parametrize("name,defines", CASES, ids=[c[0] for c in CASES])
def test_offload_build_loads_on_the_host_with_a_shared_array(name, defines, tmp_path):
    if not IS_ROOT:
        pytest.skip("loading BPF programs needs root")
    prog, shared = build(name, defines, str(tmp_path), offload=True)
    _key, percpu = build(name, defines, str(tmp_path), offload=False)
    frame = _frame(name)
    with L.load_object(shared, prog.function) as off, L.load_object(percpu, prog.function) as ref:
        stats = off.map_fds["xl_stats"]
        info = L.map_info(stats)
        assert info["type"] == BPF_MAP_TYPE_ARRAY
        assert (info["key_size"], info["value_size"], info["max_entries"]) == (4, 16, 5)
        assert L.map_info(ref.map_fds["xl_stats"])["type"] == BPF_MAP_TYPE_PERCPU_ARRAY
        got = L.test_run(off.prog_fd, frame, repeat=1)
        want = L.test_run(ref.prog_fd, frame, repeat=1)
        assert (got.retval, got.data_out) == (want.retval, want.data_out)
        verdict_key = {1: 1, 3: 2, 2: 3}[got.retval]
        assert int.from_bytes(_lookup(stats, verdict_key, 16)[:8], "little") == 1
        L.test_run(off.prog_fd, frame, repeat=6)  # (a responder rewrites its buffer: verdicts may change)
        seen = _lookup(stats, 0, 16)
        packets_seen, bytes_seen = int.from_bytes(seen[:8], "little"), int.from_bytes(seen[8:], "little")
        assert packets_seen == 7 and bytes_seen == 7 * len(frame)


@pytest.mark.root
def test_offload_on_veth_is_refused_by_the_kernel_with_the_offload_build(tmp_path):
    """load_program with a veth's ifindex: the kernel refuses the device binding, and the
    error is a load error (no compiler output), which xdp_program turns into its
    'offload-capable NIC' message (see test_xdp_program.py)."""
    if not IS_ROOT:
        pytest.skip("needs root")
    from lib.netfix import VethPair, unique, ifindex
    pair = VethPair(unique("xl-oa"), unique("xl-ob"))
    pair.create()
    try:
        index = ifindex(pair.name_a)
        with pytest.raises(xdp_deploy.DeployError) as err:
            xdp_deploy.load_program("drop", {}, "object", BPF_DIR, str(tmp_path), ifindex=index)
        assert "compiler_output" not in err.value.details
        assert "rejected" in err.value.msg
        # the object that was tried is the offload build
        if OBJDUMP:
            assert "lock" in disassemble(err.value.details["object_path"])
        assert "offload_reason" in err.value.details
    finally:
        pair.destroy()


def test_offload_reasons_are_recognised():
    assert "instruction store" in nfp.classify_offload_error("Error: program too long")
    assert "atomically" in nfp.classify_offload_error("", "map writes not supported\nprocessed 12 insns")
    assert "helper" in nfp.classify_offload_error("unsupported function id: 51")
    assert nfp.classify_offload_error("Invalid argument", "") is None


@pytest.mark.root
@pytest.mark.bcc
def test_bcc_offload_build_has_a_shared_array(tmp_path):
    if not IS_ROOT:
        pytest.skip("needs root")
    bcc = pytest.importorskip("bcc")
    prog = P.resolve_program("drop", BPF_DIR)
    tables = {}
    for offload in (True, False):
        defines = {xdp_deploy.OFFLOAD_DEFINE: 1} if offload else {}
        text, cflags = P.bcc_source(prog.source_path, defines, [INCLUDE])
        b = bcc.BPF(text=text.encode(), cflags=cflags)
        try:
            b.load_func(prog.function.encode(), bcc.BPF.XDP)
            tables[offload] = type(b[b"xl_stats"]).__name__
        finally:
            b.cleanup()
    assert tables == {True: "Array", False: "PerCpuArray"}


def test_xdp_stats_reads_and_resets_the_shared_array_of_an_offload_build(tmp_path):
    """The offload variant's counters (a plain ARRAY) are read and zeroed by xdp_stats."""
    from ansible_collections.xdplab.offload.plugins.module_utils import libbpf
    from lib.modrun import run_module
    from lib.netfix import unique

    _prog, path = build("drop", {}, str(tmp_path), offload=True)
    pin = "/sys/fs/bpf/%s" % unique("xl-ofs")
    loaded = libbpf.load_object(path)
    try:
        os.makedirs(pin)
        loaded.pin_maps(pin)
        for _run in range(3):
            libbpf.test_run(loaded.prog_fd, bytes(60))
        res = run_module("xdp_stats", {"map_path": os.path.join(pin, "xl_stats")})
        assert not res.failed, res
        assert res["shared"] is True and res["ncpus"] == 1
        assert res["counters"]["seen"]["packets"] == 3
        assert res["counters"]["dropped"]["bytes"] == 180
        reset = run_module("xdp_stats", {"map_path": os.path.join(pin, "xl_stats"), "reset": True})
        assert reset.changed
        again = run_module("xdp_stats", {"map_path": os.path.join(pin, "xl_stats")})
        assert again["counters"]["seen"]["packets"] == 0
    finally:
        loaded.close()
        shutil.rmtree(pin, ignore_errors=True)
