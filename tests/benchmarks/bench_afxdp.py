"""Benchmark: the user-space location (AF_XDP, copy mode) against native XDP, on one wire, in one run.

For each configuration the load generator (xl-loadgen, XDP live frames,
pinned to CPU 0) sends 60-byte frames at full speed for DURATION seconds into
the emulated lab's wire (lab_wire). Two set-ups of the same wire, each with
its native-XDP baseline: the DUT's receive work in a threaded NAPI pinned to
CPU 1 (the lab's default), and in the generator's softirq on CPU 0
(threaded NAPI off; the worker then has CPU 1 to itself). Printed per
configuration:

* offered_pps      what the generator sent (packets_sent / its duration),
* processed_pps    frames the program ran on per second: the XDP program's
                   ``seen`` counter (native) or the worker's ``seen`` counter
                   (AF_XDP: frames delivered to user space),
* socket_drop_pps  AF_XDP only: frames redirected to the socket that it could
                   not take (XDP_STATISTICS rx_ring_full + rx_dropped),
* worker_ns/pkt    CPU time of the worker thread (/proc/<pid>/schedstat)
                   during the generator's run / frames it processed,
* napi_ns/pkt      the same for the DUT's NAPI kernel thread (the native XDP
                   program, or the redirect into the socket plus the copy;
                   "-" without threaded NAPI, where that work is charged to
                   the generator).

Run as root:  .venv/bin/python -m pytest tests/benchmarks/bench_afxdp.py -s
(XL_BENCH_DURATION=<seconds> changes the per-configuration time, default 3).
Asserts only that every figure was measured; the numbers are printed.
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from lib.modrun import ROOT, run_module

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp as A

pytestmark = [pytest.mark.benchmark, pytest.mark.slow, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

BPF_DIR = os.path.join(ROOT, "bpf")
LOADGEN = os.path.join(BPF_DIR, "loadgen", "build", "xl-loadgen")
DURATION = float(os.environ.get("XL_BENCH_DURATION", "3"))
GEN_CPU, DUT_CPU = 0, 1
WIRE = dict(lg_netns="xl-xbg", dut_netns="xl-xbd", lg_interface="xl-xbg0", dut_interface="xl-xbd0",
            lg_address="198.18.77.1/24", dut_address="198.18.77.2/24", napi_cpu=DUT_CPU)

# Two ways the DUT's receive work can run; each gets its own native XDP baseline.
SETUPS = [
    ("threaded NAPI pinned to CPU %d (the lab's default)" % DUT_CPU, dict(threaded_napi=True)),
    ("NAPI in the generator's softirq on CPU %d (threaded NAPI off)" % GEN_CPU, dict(threaded_napi=False)),
]
# (label, worker settings; None = native XDP drop in driver mode)
CONFIGS = [
    ("native XDP drop (driver)", None),
    ("AF_XDP copy, poll(), worker on CPU %d" % DUT_CPU, dict(cpu=DUT_CPU, busy_poll=False)),
    ("AF_XDP copy, busy-poll, worker on CPU %d" % DUT_CPU, dict(cpu=DUT_CPU, busy_poll=True)),
    ("AF_XDP copy, poll(), generic XDP (XDP_SKB)", dict(cpu=DUT_CPU, busy_poll=False, xdp_mode="generic")),
]


def schedstat_ns(pid):
    """Nanoseconds the task ran on a CPU (first field of /proc/<pid>/schedstat)."""
    with open("/proc/%d/schedstat" % pid) as handle:
        return int(handle.read().split()[0])


@pytest.fixture(scope="module")
def lab():
    if not os.access(LOADGEN, os.X_OK):
        pytest.skip("the load generator is not built (make -C bpf/loadgen)")
    if os.cpu_count() < 2:
        pytest.skip("needs 2 CPUs (generator and DUT)")

    def setup(**settings):
        made = run_module("lab_wire", dict(WIRE, state="present", **settings))
        assert not made.failed, made
        return made
    try:
        yield setup
    finally:
        run_module("lab_wire", dict(WIRE, state="absent"))
        shutil.rmtree("/sys/fs/bpf/xdplab/%s" % WIRE["dut_netns"], ignore_errors=True)


def loadgen():
    proc = subprocess.run([LOADGEN, "--interface", WIRE["lg_interface"], "--netns", WIRE["lg_netns"],
                           "--duration", str(DURATION), "--cpu", str(GEN_CPU)],
                          capture_output=True, text=True, timeout=DURATION + 60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def napi_pids(wire):
    return [t["pid"] for t in wire["dut"]["napi_threads"] if t.get("pid")]


def measure_native(wire, build_dir):
    dut = dict(interface=WIRE["dut_interface"], netns=WIRE["dut_netns"])
    attached = run_module("xdp_program", dict(dut, program="drop", mode="driver", bpf_dir=BPF_DIR,
                                              build_dir=build_dir))
    assert not attached.failed, attached
    try:
        before = run_module("xdp_stats", dut)
        napi_before = dict((pid, schedstat_ns(pid)) for pid in napi_pids(wire))
        gen = loadgen()
        napi_after = dict((pid, schedstat_ns(pid)) for pid in napi_pids(wire))
        time.sleep(0.2)
        after = run_module("xdp_stats", dut)
    finally:
        run_module("xdp_program", dict(dut, state="detached", bpf_dir=BPF_DIR))
    seen = after["counters"]["seen"]["packets"] - before["counters"]["seen"]["packets"]
    napi_ns = sum(napi_after[p] - napi_before[p] for p in napi_before)
    return dict(gen=gen, seen=seen, socket_drops=None, worker_ns=None, napi_ns=napi_ns)


def measure_worker(wire, build_dir, settings):
    args = dict(interface=WIRE["dut_interface"], netns=WIRE["dut_netns"], program="drop", copy_mode="copy",
                bpf_dir=BPF_DIR, build_dir=build_dir)
    started = run_module("afxdp_worker", dict(args, **settings))
    assert not started.failed, started
    pid = started["pid"]
    try:
        time.sleep(0.3)
        stats_before = A.read_json(started["stats_file"])
        cpu_before = schedstat_ns(pid)
        napi_before = dict((p, schedstat_ns(p)) for p in napi_pids(wire))
        gen = loadgen()
        cpu_after = schedstat_ns(pid)
        napi_after = dict((p, schedstat_ns(p)) for p in napi_pids(wire))
    finally:
        stopped = run_module("afxdp_worker", dict(args, state="stopped"))
    assert not stopped.failed, stopped
    seen = stopped["counters"]["seen"]["packets"] - stats_before["counters"]["seen"]["packets"]
    xsk_before, xsk_after = stats_before["xsk"], stopped["xsk_stats"]
    drops = sum(xsk_after[k] - xsk_before[k] for k in ("rx_ring_full", "rx_dropped"))
    return dict(gen=gen, seen=seen, socket_drops=drops, worker_ns=cpu_after - cpu_before,
                napi_ns=sum(napi_after[p] - napi_before[p] for p in napi_before), bind_mode=stopped["bind_mode"])


def _row(setup, label, m):
    duration = m["gen"]["duration_s"]
    napi = m["napi_ns"] if m["napi_ns"] else None
    return dict(
        setup=setup, label=label,
        offered_pps=m["gen"]["packets_sent"] / duration,
        processed_pps=m["seen"] / duration,
        socket_drop_pps=None if m["socket_drops"] is None else m["socket_drops"] / duration,
        worker_ns_per_pkt=None if m["worker_ns"] is None else m["worker_ns"] / max(m["seen"], 1),
        napi_ns_per_pkt=None if napi is None else napi / max(m["seen"] + (m["socket_drops"] or 0), 1),
    )


def _fmt(value, spec):
    return "-" if value is None else spec % value


def test_benchmark_afxdp_copy_vs_native_xdp_drop(lab, tmp_path, capsys):
    build_dir = str(tmp_path / "build")
    load_before = os.getloadavg()
    rows = []
    for setup, wire_settings in SETUPS:
        wire = lab(**wire_settings)
        for label, settings in CONFIGS:
            m = measure_native(wire, build_dir) if settings is None else measure_worker(wire, build_dir, settings)
            rows.append(_row(setup, label, m))
    with capsys.disabled():
        print("\nAF_XDP (copy mode, program drop) vs native XDP drop on one veth wire, 60-byte frames at full "
              "speed, %.1f s per row, generator on CPU %d, kernel %s"
              % (DURATION, GEN_CPU, os.uname().release))
        print("load average before/after: %.2f / %.2f (other work on the host skews every row)"
              % (load_before[0], os.getloadavg()[0]))
        for setup, _settings in SETUPS:
            part = [r for r in rows if r["setup"] == setup]
            native = part[0]["processed_pps"]
            print("\n%s" % setup)
            print("  %-44s %12s %14s %8s %14s %14s %12s" % (
                "configuration", "offered_pps", "processed_pps", "vs_XDP", "sock_drop_pps", "worker_ns/pkt",
                "napi_ns/pkt"))
            for r in part:
                print("  %-44s %12.0f %14.0f %7.1f%% %14s %14s %12s" % (
                    r["label"], r["offered_pps"], r["processed_pps"],
                    100.0 * r["processed_pps"] / native if native else float("nan"),
                    _fmt(r["socket_drop_pps"], "%.0f"), _fmt(r["worker_ns_per_pkt"], "%.1f"),
                    _fmt(r["napi_ns_per_pkt"], "%.1f")))
    assert len(rows) == len(SETUPS) * len(CONFIGS)
    assert all(r["processed_pps"] > 0 and r["offered_pps"] > 0 for r in rows)
    assert all(r["worker_ns_per_pkt"] > 0 for r in rows if r["worker_ns_per_pkt"] is not None)


if __name__ == "__main__":
    import sys
    sys.exit(pytest.main([__file__, "-s", "-q"]))
