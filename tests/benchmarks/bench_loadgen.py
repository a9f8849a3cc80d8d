# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: how many Mpps xl-loadgen offers into native XDP drop, against trafgen.

Setup (names ``xl-gb...``, removed afterwards): a veth pair between two
namespaces, a native XDP_DROP program on the receiver, the generator pinned to
CPU 0, the receiver's NAPI threaded (``/sys/class/net/<dev>/threaded`` = 1,
written inside the namespace) with its kthread pinned to CPU 1.

Both generators are measured the same way, in the same run, interleaved:
counters of the sender's veth end (``tx_packets + tx_dropped``: every frame the
generator handed to the device, ring-overflow drops included) over a window of
``--seconds`` that starts 0.5 s after the generator, divided by the window's
length ("offered"); the receiver's ``rx_packets`` over the same window is what
its XDP program saw ("delivered").

trafgen dies with EAGAIN as soon as the veth ring fills when the receiver's
NAPI is threaded (see LAB-FACTS), so it is also measured - and the ratio is
taken - with the receiver's NAPI on the sender's CPU (not threaded); xl-loadgen
is measured in both configurations so that a same-configuration ratio is
printed as well.

The same run also measures a cell the way the experiment role measures it: the
``xdplab.offload.traffic`` module with the role's options (rate 0, 64-byte
frames, 2 s, generator on CPU 0) into the threaded receiver, interleaved with
the rounds above; its own window rate (``window.delivered_pps``: the frames the
veth queued to the receiver between the end of its warm-up and its stop) and the
receiver's ``rx_packets`` over its whole run (what a record's ``processed_pps``
is) are printed beside the benchmark's threaded delivered rate.

``--nice N`` runs every generator here (xl-loadgen ``--nice``, the module's
``nice``) and the receiver's NAPI thread (as ``lab_wire``'s ``napi_nice``) at
nice N: on a machine where other work runs, -20 measures what the lab can do
rather than the CPU share left to it (trafgen is left as it is).

Prints numbers only; asserts only that they were measured. Run:

    sudo .venv/bin/python -m pytest tests/benchmarks/bench_loadgen.py -m benchmark -s
    sudo .venv/bin/python tests/benchmarks/bench_loadgen.py [--seconds 5] [--rounds 3]

Needs root, two CPUs, clang/bpftool/libbpf (to build xl-loadgen) and, for the
baseline, trafgen (``apt install netsniff-ng``; skipped with a note if absent).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, ".ansible", "collections"))

import pytest  # noqa: E402
from pyroute2 import IPRoute, netns  # noqa: E402

from ansible_collections.xdplab.offload.plugins.module_utils import packets  # noqa: E402
from lib.netfix import VethPair, unique  # noqa: E402

LOADGEN_DIR = os.path.join(ROOT, "bpf", "loadgen")
DROP_SRC = ('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
            'SEC("xdp") int xl_gb_drop(struct xdp_md *ctx) { return XDP_DROP; }\n'
            'char LICENSE[] SEC("license") = "GPL";\n')
GEN_CPU, NAPI_CPU = 0, 1
WARMUP_S = 0.5
CELL_SECONDS = 2


def run(argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=check)


class Bench(object):
    def __init__(self, workdir):
        tag = unique("")
        self.lg_ns, self.dut_ns = "xl-gbl" + tag, "xl-gbd" + tag
        self.lg_if, self.dut_if = "xl-gb0" + tag, "xl-gb1" + tag
        self.pair = VethPair(self.lg_if, self.dut_if, ns_a=self.lg_ns, ns_b=self.dut_ns)
        self.workdir = workdir
        self.loadgen = None
        self.napi_pid = None
        self.nice = None

    # ---- setup
    def build(self):
        build = os.path.join(self.workdir, "loadgen")
        run(["make", "-s", "-C", LOADGEN_DIR, "BUILD=%s" % build])
        self.loadgen = os.path.join(build, "xl-loadgen")
        drop_obj = os.path.join(ROOT, "bpf", "build", "drop.o")
        if not os.path.exists(drop_obj):
            src = os.path.join(self.workdir, "drop.c")
            with open(src, "w") as handle:
                handle.write(DROP_SRC)
            drop_obj = os.path.join(self.workdir, "drop.o")
            arch = run(["gcc", "-dumpmachine"]).stdout.strip()
            run(["clang", "-O2", "-target", "bpf", "-I", "/usr/include/" + arch, "-c", src, "-o", drop_obj])
        self.drop_obj = drop_obj

    def create(self):
        for ns in (self.lg_ns, self.dut_ns):
            netns.create(ns)
            for key in ("default", "all"):
                run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key])
        self.pair.create()
        run(["ip", "-n", self.dut_ns, "link", "set", "dev", self.dut_if, "xdpdrv", "obj", self.drop_obj,
             "sec", "xdp"])

    def destroy(self):
        self.pair.destroy()

    def threaded(self, on):
        path = "/sys/class/net/%s/threaded" % self.dut_if
        run(["ip", "netns", "exec", self.dut_ns, sys.executable, "-c",
             "open(%r, 'w').write(%r)" % (path, "1" if on else "0")])
        self.napi_pid = None
        if not on:
            return None
        prefix = ("napi/%s-" % self.dut_if)[:15]
        for attempt in range(50):
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open("/proc/%s/comm" % pid) as handle:
                        if handle.read().strip().startswith(prefix):
                            os.sched_setaffinity(int(pid), {NAPI_CPU})
                            if self.nice is not None:
                                os.setpriority(os.PRIO_PROCESS, int(pid), self.nice)
                            self.napi_pid = int(pid)
                            return self.napi_pid
                except OSError:
                    continue
            time.sleep(0.1)
        raise RuntimeError("no NAPI kthread for %s" % self.dut_if)

    # ---- measuring
    def counters(self):
        out = {}
        for side, ns, ifname in (("lg", self.lg_ns, self.lg_if), ("dut", self.dut_ns, self.dut_if)):
            with IPRoute(netns=ns) as ipr:
                stats = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0].get_attr("IFLA_STATS64")
            out[side] = dict(stats)
        return out

    def window(self, proc, seconds, group=False):
        """Counters and CPU time over ``seconds`` starting WARMUP_S after ``proc`` started.

        CPU time is the generator's own (all its threads, or all processes of
        the group it leads) from /proc/<pid>/task/<tid>/schedstat, so
        ns/packet does not depend on how much other work shares its CPU.
        """
        time.sleep(WARMUP_S)
        pids = _group_pids(proc.pid) if group else [proc.pid]
        cpu0, napi0 = _cpu_ns(pids), _cpu_ns([self.napi_pid]) if self.napi_pid else 0
        c0, t0 = self.counters(), time.monotonic()
        time.sleep(seconds)
        c1, t1 = self.counters(), time.monotonic()
        cpu1, napi1 = _cpu_ns(pids), _cpu_ns([self.napi_pid]) if self.napi_pid else 0
        alive = proc.poll() is None
        elapsed = t1 - t0
        offered = (c1["lg"]["tx_packets"] + c1["lg"]["tx_dropped"]
                   - c0["lg"]["tx_packets"] - c0["lg"]["tx_dropped"])
        delivered = c1["dut"]["rx_packets"] - c0["dut"]["rx_packets"]
        result = {"offered_mpps": offered / elapsed / 1e6, "delivered_mpps": delivered / elapsed / 1e6,
                  "ring_drop_pct": 100.0 * (offered - delivered) / offered if offered else 0.0,
                  "alive_at_end": alive, "gen_cpu_share": (cpu1 - cpu0) / 1e9 / elapsed,
                  "gen_ns_per_pkt": (cpu1 - cpu0) / offered if offered else 0.0,
                  "napi_ns_per_pkt": (napi1 - napi0) / delivered if delivered and self.napi_pid else 0.0}
        # what one CPU of its own would give at this cost per frame
        result["gen_capacity_mpps"] = 1e3 / result["gen_ns_per_pkt"] if result["gen_ns_per_pkt"] else 0.0
        return result

    def xl_loadgen(self, seconds):
        argv = [self.loadgen, "--netns", self.lg_ns, "--interface", self.lg_if, "--cpu", str(GEN_CPU),
                "--duration", "%g" % (seconds + WARMUP_S + 0.5)]
        if self.nice is not None:
            argv += ["--nice", str(self.nice)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            result = self.window(proc, seconds)
            out, err = proc.communicate(timeout=seconds + 30)
        finally:
            _stop(proc)
        if proc.returncode != 0:
            raise RuntimeError("xl-loadgen failed: %s" % err)
        own = json.loads(out)
        result["self_reported_mpps"] = own["rate_pps"] / 1e6
        result["command"] = argv
        return result

    def cell(self):
        """The traffic module as the experiment role calls it (rate 0, 64 bytes, 2 s, CPU 0)."""
        from lib.modrun import run_module
        args = {"interface": self.lg_if, "netns": self.lg_ns, "binary": self.loadgen, "rate": 0, "size": 64,
                "duration": CELL_SECONDS, "cpu": [GEN_CPU], "progress_file": ""}
        if self.nice is not None:
            args["nice"] = self.nice
        before = self.counters()
        result = run_module("traffic", args)
        time.sleep(0.05)
        after = self.counters()
        if result.get("failed"):
            raise RuntimeError("traffic module failed: %s" % result.get("msg"))
        received = after["dut"]["rx_packets"] - before["dut"]["rx_packets"]
        return {"window_delivered_mpps": (result.get("window") or {}).get("delivered_pps", 0.0) / 1e6,
                "window_sent_mpps": (result.get("window") or {}).get("rate_pps", 0.0) / 1e6,
                "processed_mpps": received / result["duration_s"] / 1e6,
                "sent_mpps": result["rate_pps"] / 1e6}

    def trafgen(self, seconds):
        frame = packets.udp_frame(60)
        pkt = "{ " + ", ".join("0x%02x" % b for b in frame) + " }"
        argv = ["ip", "netns", "exec", self.lg_ns, "taskset", "-c", str(GEN_CPU), "trafgen", "--dev", self.lg_if,
                "--cpus", "1", "--no-sock-mem", "--notouch-irq", "--no-cpu-stats", pkt]
        # trafgen forks its sending worker: signal the process group it leads
        # (a new session made for it here), as timeout(1) would.
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            result = self.window(proc, seconds, group=True)
            _stop(proc, group=True)
            out, err = proc.communicate(timeout=30)
        finally:
            _stop(proc, group=True)
        result["died"] = not result["alive_at_end"]
        result["error"] = (err or "").strip().splitlines()[-1] if result["died"] and err.strip() else ""
        result["command"] = argv[:-1] + ["'%s'" % pkt[:24] + "...'"]
        return result


def _cpu_ns(pids):
    """CPU time (ns) of all threads of ``pids`` so far."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as handle:
                    total += int(handle.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total


def _group_pids(pgid):
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/stat" % pid) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    pids.append(int(pid))
            except (OSError, ValueError, IndexError):
                continue
    return pids


def _stop(proc, group=False):
    """SIGINT (then SIGKILL) to a process started here, or to the group it leads."""
    def send(sig):
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        send(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            proc.wait()


def _median(runs, key):
    return statistics.median(r[key] for r in runs)


def benchmark(seconds=5.0, rounds=3, out=print, nice=None):
    if (os.cpu_count() or 1) < 2:
        raise RuntimeError("needs two CPUs (generator on CPU 0, receiver NAPI on CPU 1)")
    have_trafgen = shutil.which("trafgen") is not None
    workdir = tempfile.mkdtemp(prefix="xl-gbench-")
    bench = Bench(workdir)
    bench.nice = nice
    runs = {"xl_threaded": [], "xl_shared": [], "trafgen_shared": [], "trafgen_threaded": [], "cell": []}
    try:
        bench.build()
        bench.create()
        out("load average before: %.2f %.2f %.2f (other work on this machine skews every number)"
            % os.getloadavg())
        for rnd in range(rounds):
            bench.threaded(True)
            runs["xl_threaded"].append(bench.xl_loadgen(seconds))
            runs["cell"].append(bench.cell())
            if have_trafgen and rnd == 0:
                runs["trafgen_threaded"].append(bench.trafgen(min(seconds, 2.0)))
            bench.threaded(False)
            if have_trafgen:
                runs["trafgen_shared"].append(bench.trafgen(seconds))
            runs["xl_shared"].append(bench.xl_loadgen(seconds))
            out("round %d: xl-loadgen threaded %.2f Mpps offered / %.2f delivered; shared-CPU %.2f / %.2f; "
                "trafgen shared-CPU %s; load %.2f" % (
                    rnd + 1, runs["xl_threaded"][-1]["offered_mpps"], runs["xl_threaded"][-1]["delivered_mpps"],
                    runs["xl_shared"][-1]["offered_mpps"], runs["xl_shared"][-1]["delivered_mpps"],
                    ("%.3f / %.3f Mpps" % (runs["trafgen_shared"][-1]["offered_mpps"],
                                           runs["trafgen_shared"][-1]["delivered_mpps"])) if have_trafgen else "n/a",
                    os.getloadavg()[0]))
    finally:
        bench.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = {"seconds": seconds, "rounds": rounds}
    for name, rs in runs.items():
        if rs and name == "cell":
            summary[name] = {k: round(_median(rs, k), 3) for k in rs[0]}
        elif rs:
            summary[name] = {k: round(_median(rs, k), 3) for k in (
                "offered_mpps", "delivered_mpps", "ring_drop_pct", "gen_cpu_share", "gen_ns_per_pkt",
                "gen_capacity_mpps", "napi_ns_per_pkt")}
    out("")
    out("median of %d rounds, %.1f s windows, 60-byte frames, native XDP_DROP receiver%s:" % (
        rounds, seconds, ", generators and receiver NAPI at nice %d" % nice if nice is not None else ""))
    out("  xl-loadgen, receiver NAPI threaded on CPU %d: offered %.2f Mpps, delivered %.2f Mpps, ring drops %.1f %%"
        % (NAPI_CPU, summary["xl_threaded"]["offered_mpps"], summary["xl_threaded"]["delivered_mpps"],
           summary["xl_threaded"]["ring_drop_pct"]))
    out("    generator CPU %.0f %% busy, %.0f ns/frame (%.1f Mpps on a CPU of its own); receiver NAPI %.0f ns/frame"
        % (100 * summary["xl_threaded"]["gen_cpu_share"], summary["xl_threaded"]["gen_ns_per_pkt"],
           summary["xl_threaded"]["gen_capacity_mpps"], summary["xl_threaded"]["napi_ns_per_pkt"]))
    out("  xl-loadgen, receiver NAPI on the generator's CPU: offered %.2f Mpps, delivered %.2f Mpps, "
        "%.0f ns/frame generator + receiver"
        % (summary["xl_shared"]["offered_mpps"], summary["xl_shared"]["delivered_mpps"],
           summary["xl_shared"]["gen_ns_per_pkt"]))
    out("  command: %s" % " ".join(runs["xl_threaded"][0]["command"]))
    cell, bench_rate = summary["cell"], summary["xl_threaded"]["delivered_mpps"]
    summary["cell_window_vs_bench"] = round(cell["window_delivered_mpps"] / bench_rate, 3) if bench_rate else None
    out("  a cell as the experiment role runs it (traffic module, %d s, 64-byte frames%s): window delivered %.2f Mpps "
        "(%.0f %% of the threaded delivered rate above), processed over the whole run %.2f Mpps, sent %.2f Mpps"
        % (CELL_SECONDS, ", nice %d" % nice if nice is not None else "", cell["window_delivered_mpps"],
           100 * (summary["cell_window_vs_bench"] or 0), cell["processed_mpps"], cell["sent_mpps"]))
    if have_trafgen:
        t = runs["trafgen_threaded"][0]
        out("  trafgen, receiver NAPI threaded: %s" % (
            "died (%s) after offering %.3f Mpps in its window" % (t["error"] or "exited", t["offered_mpps"])
            if t["died"] else "offered %.3f Mpps" % t["offered_mpps"]))
        summary["trafgen_threaded_died"] = t["died"]
        summary["trafgen_threaded_error"] = t["error"]
        base = summary["trafgen_shared"]["offered_mpps"]
        out("  trafgen, receiver NAPI on the generator's CPU (its baseline here): offered %.3f Mpps, "
            "%.0f ns/frame generator + receiver, CPU %.0f %% busy" % (
                base, summary["trafgen_shared"]["gen_ns_per_pkt"], 100 * summary["trafgen_shared"]["gen_cpu_share"]))
        out("  command: %s" % " ".join(runs["trafgen_shared"][0]["command"]))
        if base > 0:
            summary["ratio_vs_trafgen"] = round(summary["xl_threaded"]["offered_mpps"] / base, 1)
            summary["ratio_same_config"] = round(summary["xl_shared"]["offered_mpps"] / base, 1)
            out("  ratio xl-loadgen (threaded receiver) / trafgen: %.1fx   (goal >= 15x, >= 10 Mpps)"
                % summary["ratio_vs_trafgen"])
            out("  ratio in the same configuration (receiver NAPI on the generator's CPU): %.1fx"
                % summary["ratio_same_config"])
            if summary["trafgen_shared"]["gen_ns_per_pkt"] and summary["xl_shared"]["gen_ns_per_pkt"]:
                summary["ratio_cpu_cost"] = round(summary["trafgen_shared"]["gen_ns_per_pkt"]
                                                  / summary["xl_shared"]["gen_ns_per_pkt"], 1)
                out("  CPU cost per frame, trafgen / xl-loadgen (same configuration, independent of other load): "
                    "%.1fx" % summary["ratio_cpu_cost"])
    else:
        out("  trafgen not installed (apt install netsniff-ng): no baseline, no ratio")
    out("load average after: %.2f %.2f %.2f" % os.getloadavg())
    out("SUMMARY " + json.dumps(summary, sort_keys=True))
    return summary


@pytest.mark.benchmark
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, veths and BPF")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs")
def test_bench_loadgen_against_trafgen():
    summary = benchmark(seconds=float(os.environ.get("XL_BENCH_SECONDS", "5")),
                        rounds=int(os.environ.get("XL_BENCH_ROUNDS", "3")))
    assert summary["xl_threaded"]["offered_mpps"] > 0
    assert summary["xl_shared"]["offered_mpps"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nice", type=int, default=None,
                        help="nice of xl-loadgen, the cell's generator and the receiver's NAPI thread (default: unchanged)")
    opts = parser.parse_args()
    benchmark(opts.seconds, opts.rounds, nice=opts.nice)
