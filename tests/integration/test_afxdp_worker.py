"""The AF_XDP worker (user-space location) on real veth pairs.

* Equivalence: the worker runs the programs' logic headers compiled natively;
  every test frame of test_program_equivalence goes over a real wire into the
  worker, and its verdict and (for XDP_TX) the reply bytes that come back must
  equal what the clang object returns under BPF_PROG_TEST_RUN.
* A real run: the load generator's frames are all accounted for (worker +
  socket drops = what the redirect program saw = what the generator sent),
  and every DNS reply the worker sent arrives at the generator's end.
* The module: idempotency, check mode, restart on new settings, final
  counters on stop, crashed/killed workers leave no XDP program, bad input
  fails with a clear message and leaves nothing behind.

Names start with ``xl-x``; every fixture removes what it made.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from lib.modrun import ROOT, run_module, run_playbook
from lib.netfix import VethPair, unique

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp as A
from ansible_collections.xdplab.offload.plugins.module_utils import libbpf as L
from ansible_collections.xdplab.offload.plugins.module_utils import programs as P

from test_program_equivalence import FRAMES, VERDICTS, check_nxdomain_reply

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="AF_XDP sockets and XDP programs need root")]

BPF_DIR = os.path.join(ROOT, "bpf")
INCLUDE = os.path.join(BPF_DIR, "include")
LOADGEN = os.path.join(BPF_DIR, "loadgen", "build", "xl-loadgen")
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
COUNTER_OF = {"XDP_DROP": "dropped", "XDP_TX": "tx", "XDP_PASS": "passed", "XDP_REDIRECT": "redirected"}


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def build_dir():
    path = tempfile.mkdtemp(prefix="xl-xbuild-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state_root():
    # The module keeps its state under /run/xdplab/afxdp (a state_root elsewhere is refused).
    os.makedirs(A.STATE_ROOT, exist_ok=True)
    path = tempfile.mkdtemp(prefix="xl-xstate-", dir=A.STATE_ROOT)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _sysctl_in(ns, key, value):
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "%s=%s" % (key, value)], check=True)


@pytest.fixture
def wire():
    """Root-namespace end ``a`` (the test's generator side), DUT end ``b`` in its own namespace.

    IPv6 is off on both ends so that nothing but the test's frames crosses
    the wire; GRO is on at the DUT end (veth keeps a NAPI for frames injected
    by the load generator into a generic-XDP receiver).
    """
    ns = unique("xl-xn")
    pair = VethPair(unique("xl-xa"), unique("xl-xb"), ns_b=ns)
    pair.create()
    try:
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % pair.name_a, "w") as handle:
            handle.write("1")
        _sysctl_in(ns, "net.ipv6.conf.%s.disable_ipv6" % pair.name_b, 1)
        subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", pair.name_b, "gro", "on"],
                       check=True, capture_output=True)
        yield pair
    finally:
        for pins in ("/sys/fs/bpf/xdplab/root/%s" % pair.name_a, "/sys/fs/bpf/xdplab/%s" % ns):
            shutil.rmtree(pins, ignore_errors=True)
        try:
            os.rmdir("/sys/fs/bpf/xdplab/root")  # only if empty: others may use it
        except OSError:
            pass
        pair.destroy()
    assert not os.path.exists("/var/run/netns/%s" % ns)


def xdp_of(ifname, ns=None):
    """(mode, prog id, prog name) of an interface as iproute2 reports it, or (None, None, None)."""
    cmd = ["ip", "-j", "-d"] + (["-n", ns] if ns else []) + ["link", "show", "dev", ifname]
    link = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)[0]
    xdp = link.get("xdp")
    if not xdp:
        return None, None, None
    prog = xdp.get("prog", {})
    return xdp.get("mode"), prog.get("id"), prog.get("name")


def margs(pair, build_dir, state_root, **kw):
    base = dict(interface=pair.name_b, netns=pair.ns_b, bpf_dir=BPF_DIR, build_dir=build_dir,
                state_root=state_root)
    base.update(kw)
    return base


def stop_module(pair, build_dir, state_root):
    return run_module("afxdp_worker", margs(pair, build_dir, state_root, state="stopped"))


@pytest.fixture
def module_worker(wire, build_dir, state_root):
    """Module arguments for the wire; the worker is stopped afterwards, whatever happened."""
    yield lambda **kw: margs(wire, build_dir, state_root, **kw)
    stop_module(wire, build_dir, state_root)


class Worker:
    """xl-afxdp started directly (not through the module), stats every 10 ms."""

    def __init__(self, binary, pair, tmpdir, *extra):
        self.stats_path = os.path.join(tmpdir, "stats-%s.json" % unique("w"))
        self.log = open(os.path.join(tmpdir, "log-%s" % unique("w")), "w+b")
        argv = [binary, "--interface", pair.name_b, "--netns", pair.ns_b, "--stats-file", self.stats_path,
                "--stats-interval", "10"] + list(extra)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def stats(self):
        return A.read_json(self.stats_path)

    def wait_running(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats and stats["status"] == "running":
                return stats
            if self.proc.poll() is not None:
                return self.stats()
            time.sleep(0.01)
        raise AssertionError("the worker did not start: %s" % self.output())

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def direct_workers(tmp_path):
    started = []

    def start(binary, pair, *extra):
        worker = Worker(binary, pair, str(tmp_path), *extra)
        started.append(worker)
        return worker
    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def worker_binary(build_dir):
    def get(program, n=1):
        return P.build_worker(program, {"N": n}, BPF_DIR, build_dir)[0]
    return get


def kernel_reference(program, n, build_dir, frames):
    """[(verdict, bytes)] of the clang-built XDP object under BPF_PROG_TEST_RUN."""
    source = P.resolve_program(program, BPF_DIR)
    obj = P.build_object(source.source_path, {"N": n}, [INCLUDE], build_dir)
    with L.load_object(obj, prog_name=source.function) as loaded:
        out = []
        for frame in frames:
            res = L.test_run(loaded.prog_fd, frame)
            out.append((VERDICTS[res.retval], res.data_out))
    return out


def packet_socket(ifname):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    sock.settimeout(0.05)
    return sock


def incoming(sock, timeout):
    """The next frame that arrived at the socket's interface (not one it sent), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] != PACKET_OUTGOING:
            return data
    return None


def wait_seen(worker, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = worker.stats()
        if stats and stats["counters"]["seen"]["packets"] >= count:
            return stats
        time.sleep(0.005)
    raise AssertionError("the worker saw %s frames, expected %d; log:\n%s"
                         % (stats and stats["counters"]["seen"]["packets"], count, worker.output()))


def run_loadgen(pair, *extra):
    if not os.access(LOADGEN, os.X_OK):
        pytest.skip("the load generator is not built (make -C bpf/loadgen)")
    proc = subprocess.run([LOADGEN, "--interface", pair.name_a] + list(extra), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# --------------------------------------------------------------- equivalence

EQUIV = [("drop", 1, "driver"), ("loop", 10, "driver"), ("checksum", 10, "driver"),
         ("dns_nxdomain", 1, "driver"), ("dns_nxdomain", 1, "generic")]


@pytest.mark.slow
@pytest.mark.parametrize("program,n,xdp_mode", EQUIV, ids=["%s-N%d-%s" % c for c in EQUIV])
def test_worker_gives_the_kernel_objects_verdicts_and_reply_bytes_on_a_real_wire(
        wire, worker_binary, build_dir, direct_workers, program, n, xdp_mode):
    names = sorted(FRAMES)
    frames = [FRAMES[name][0] for name in names]
    reference = kernel_reference(program, n, build_dir, frames)

    worker = direct_workers(worker_binary(program, n), wire, "--xdp-mode", xdp_mode)
    stats = worker.wait_running()
    assert stats["status"] == "running", worker.output()
    assert (stats["program"], stats["n"]) == (program, n)
    sock = packet_socket(wire.name_a)
    try:
        for i, (name, frame) in enumerate(zip(names, frames)):
            before = worker.stats()["counters"]
            sock.send(frame)
            after = wait_seen(worker, i + 1)["counters"]
            grew = [c for c in COUNTER_OF.values() if after[c]["packets"] != before[c]["packets"]]
            assert len(grew) == 1, "%s: counters %s changed by one frame" % (name, grew)
            assert after["seen"]["bytes"] - before["seen"]["bytes"] == len(frame), name
            want_verdict, want_bytes = reference[i]
            assert grew[0] == COUNTER_OF[want_verdict], "%s: worker %s, kernel object %s" % (
                name, grew[0], want_verdict)
            reply = incoming(sock, 3.0 if want_verdict == "XDP_TX" else 0.05)
            if want_verdict == "XDP_TX":
                assert reply is not None, "%s: the worker's XDP_TX reply never arrived" % name
                assert reply == want_bytes, "%s: reply differs from the kernel object's:\n%s\n%s" % (
                    name, reply.hex(), want_bytes.hex())
                check_nxdomain_reply(frame, reply)
            else:
                assert reply is None, "%s: %s frame came back" % (name, want_verdict)
    finally:
        sock.close()
    assert worker.stop() == 0
    final = worker.stats()
    assert final["status"] == "stopped"
    assert final["counters"]["seen"]["packets"] == len(frames)
    assert final["tx_completed"] == final["counters"]["tx"]["packets"]


# --------------------------------------------------------------- real traffic

@pytest.mark.slow
@pytest.mark.parametrize("xdp_mode,location", [("driver", "afxdp"), ("generic", "afxdp_generic")])
def test_real_run_accounts_for_every_frame_the_generator_sent(wire, module_worker, xdp_mode, location):
    started = run_module("afxdp_worker", module_worker(program="drop", xdp_mode=xdp_mode, copy_mode="copy"))
    assert not started.failed, started
    assert started["location"] == location and started["bind_mode"] == "copy"
    mode, prog_id, name = xdp_of(wire.name_b, wire.ns_b)
    assert (mode, prog_id, name) == ({"driver": 1, "generic": 2}[xdp_mode], started["prog_id"], A.REDIRECT_PROG_NAME)

    sent = run_loadgen(wire, "--rate", "50000", "--duration", "1")["packets_sent"]
    assert sent > 0
    time.sleep(0.5)
    stopped = run_module("afxdp_worker", module_worker(state="stopped"))
    assert not stopped.failed, stopped
    assert stopped["final"] is True
    seen = stopped["counters"]["seen"]["packets"]
    socket_drops = stopped["xsk_stats"]["rx_dropped"] + stopped["xsk_stats"]["rx_ring_full"]
    assert stopped["kernel_counters"]["seen"]["packets"] == sent
    assert stopped["kernel_counters"]["redirected"]["packets"] == sent
    assert seen + socket_drops == sent
    assert stopped["counters"]["dropped"]["packets"] == seen
    assert stopped["counters"]["seen"]["bytes"] == seen * 60
    assert xdp_of(wire.name_b, wire.ns_b) == (None, None, None)


@pytest.mark.slow
def test_dns_replies_from_user_space_reach_the_generator(wire, module_worker, build_dir):
    """Every XDP_TX the worker completes arrives at the generator's end (counted by an XDP program there)."""
    counter = run_module("xdp_program", dict(interface=wire.name_a, program="dns_nxdomain", mode="driver",
                                             bpf_dir=BPF_DIR, build_dir=build_dir))
    assert not counter.failed, counter
    try:
        started = run_module("afxdp_worker", module_worker(program="dns_nxdomain", busy_poll=True))
        assert not started.failed, started
        sent = run_loadgen(wire, "--dns", "--rate", "20000", "--duration", "1")["packets_sent"]
        time.sleep(0.5)
        stopped = run_module("afxdp_worker", module_worker(state="stopped"))
        assert not stopped.failed, stopped
        received = run_module("xdp_stats", dict(interface=wire.name_a))
        assert not received.failed, received
    finally:
        run_module("xdp_program", dict(interface=wire.name_a, state="detached", bpf_dir=BPF_DIR))
    tx = stopped["counters"]["tx"]["packets"]
    socket_drops = stopped["xsk_stats"]["rx_dropped"] + stopped["xsk_stats"]["rx_ring_full"]
    assert tx > 0 and tx + socket_drops == sent
    assert stopped["counters"]["seen"]["packets"] == tx  # every query answered
    assert stopped["tx_completed"] == tx
    assert received["counters"]["passed"]["packets"] == tx  # the replies, QR=1, passed by the counter
    assert received["counters"]["tx"]["packets"] == 0


# --------------------------------------------------------------- the module

def test_started_is_idempotent_check_mode_acts_not_and_new_settings_restart(wire, module_worker):
    args = module_worker(program="loop", defines={"N": 10})
    first = run_module("afxdp_worker", args)
    assert not first.failed, first
    assert first.changed and first["pid"]
    assert os.path.isdir(first["state_dir"]) and first["state_dir"].startswith(args["state_root"])

    again = run_module("afxdp_worker", args)
    assert not again.failed, again
    assert not again.changed
    assert again["pid"] == first["pid"] and again["prog_id"] == first["prog_id"]

    other = dict(args, defines={"N": 20})
    check = run_module("afxdp_worker", other, check=True, diff=True)
    assert not check.failed, check
    assert check.changed
    assert check["diff"]["before"]["defines"] == {"N": "10"} and check["diff"]["after"]["defines"] == {"N": "20"}
    assert xdp_of(wire.name_b, wire.ns_b)[1] == first["prog_id"]  # check mode did nothing
    assert A.is_alive(first["pid"], A.proc_info(first["pid"])[1])

    restarted = run_module("afxdp_worker", other)
    assert not restarted.failed, restarted
    assert restarted.changed and restarted["pid"] != first["pid"]
    assert restarted["replaced"]["pid"] == first["pid"] and restarted["replaced"]["final"] is True
    assert A.proc_info(first["pid"]) is None or A.proc_info(first["pid"])[0] == "Z"
    assert xdp_of(wire.name_b, wire.ns_b)[1] == restarted["prog_id"]


def test_stopped_returns_final_counters_and_removes_everything(wire, module_worker):
    started = run_module("afxdp_worker", module_worker(program="drop"))
    assert not started.failed, started
    sent = run_loadgen(wire, "--rate", "10000", "--duration", "0.5")["packets_sent"]
    time.sleep(0.3)
    check = run_module("afxdp_worker", module_worker(state="stopped"), check=True)
    assert check.changed and A.is_alive(started["pid"], A.proc_info(started["pid"])[1])

    stopped = run_module("afxdp_worker", module_worker(state="stopped"))
    assert not stopped.failed, stopped
    assert stopped.changed and stopped["final"] is True and stopped["crashed"] is False
    assert stopped["pid"] == started["pid"]
    assert stopped["kernel_counters"]["seen"]["packets"] == sent
    assert stopped["cpu_ns"] > 0 and stopped["elapsed_s"] > 0
    assert xdp_of(wire.name_b, wire.ns_b) == (None, None, None)
    assert not os.path.exists(started["state_dir"])

    again = run_module("afxdp_worker", module_worker(state="stopped"))
    assert not again.failed, again
    assert not again.changed and again["pid"] is None


def test_zerocopy_on_veth_falls_back_to_copy_with_a_message(module_worker):
    started = run_module("afxdp_worker", module_worker(program="drop", copy_mode="zerocopy"))
    assert not started.failed, started
    assert started["bind_mode"] == "copy"
    assert "zero-copy is not supported" in started["fallback"] and "veth" in started["fallback"]
    assert any("zero-copy" in str(w) for w in started.get("warnings", []))


def test_killed_worker_attached_by_link_leaves_no_program(wire, module_worker):
    started = run_module("afxdp_worker", module_worker(program="drop"))
    assert not started.failed, started
    os.kill(started["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while xdp_of(wire.name_b, wire.ns_b)[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert xdp_of(wire.name_b, wire.ns_b) == (None, None, None)

    # The dead worker is reported, not silently replaced: started fails and changes nothing ...
    crashed = run_module("afxdp_worker", module_worker(program="drop"))
    assert crashed.failed and crashed["state"] == "crashed" and str(started["pid"]) in crashed["msg"], crashed
    assert "Traceback" not in crashed["msg"] and "worker_log" in crashed
    assert os.path.isdir(started["state_dir"])
    # ... stopped cleans up and fails too, and then the worker starts afresh.
    cleaned = run_module("afxdp_worker", module_worker(state="stopped"))
    assert cleaned.failed and cleaned["state"] == "crashed" and cleaned["final"] is False, cleaned
    assert not os.path.exists(started["state_dir"])
    restarted = run_module("afxdp_worker", module_worker(program="drop"))
    assert not restarted.failed, restarted
    assert restarted.changed and restarted["pid"] != started["pid"]
    stopped = run_module("afxdp_worker", module_worker(state="stopped"))
    assert stopped["final"] is True and stopped["crashed"] is False


@pytest.mark.parametrize("next_state", ["stopped", "started"])
def test_killed_netlink_worker_program_is_removed_at_the_next_call(wire, module_worker, next_state):
    args = module_worker(program="drop", attach="netlink")
    started = run_module("afxdp_worker", args)
    assert not started.failed, started
    os.kill(started["pid"], signal.SIGKILL)
    time.sleep(0.3)
    assert xdp_of(wire.name_b, wire.ns_b)[1] == started["prog_id"]  # netlink: left behind

    if next_state == "stopped":
        result = run_module("afxdp_worker", module_worker(state="stopped"))
        assert result.failed and result["state"] == "crashed", result
        assert result["crashed"] is True and result["final"] is False
        assert result["stale_program_removed"] == started["prog_id"]
        assert xdp_of(wire.name_b, wire.ns_b) == (None, None, None)
        assert not os.path.exists(started["state_dir"])
    else:
        result = run_module("afxdp_worker", args)
        assert result.failed and result["state"] == "crashed", result
        assert xdp_of(wire.name_b, wire.ns_b)[1] == started["prog_id"]  # a failed call changes nothing
        cleaned = run_module("afxdp_worker", module_worker(state="stopped"))
        assert cleaned.failed and cleaned["stale_program_removed"] == started["prog_id"], cleaned
        result = run_module("afxdp_worker", args)
        assert not result.failed, result
        assert result.changed and result["stale_program_removed"] is None
        assert xdp_of(wire.name_b, wire.ns_b)[1] == result["prog_id"] != started["prog_id"]


# --------------------------------------------------------------- bad input

def _nothing_left(pair, state_root):
    assert xdp_of(pair.name_b, pair.ns_b) == (None, None, None)
    assert not any(walked[2] for walked in os.walk(state_root)), "state files left under %s" % state_root


def test_unknown_interface_fails_clearly(wire, module_worker, state_root):
    result = run_module("afxdp_worker", module_worker(program="drop", interface="xl-xnone"))
    assert result.failed
    assert "xl-xnone" in result["msg"] and "does not exist" in result["msg"]
    _nothing_left(wire, state_root)


def test_unknown_program_fails_clearly(wire, module_worker, state_root):
    result = run_module("afxdp_worker", module_worker(program="nosuch"))
    assert result.failed
    assert "nosuch" in result["msg"] and "drop" in result["msg"]
    result = run_module("afxdp_worker", module_worker(program="/nonexistent/xl_prog.h"))
    assert result.failed and "does not exist" in result["msg"]
    _nothing_left(wire, state_root)


def test_queue_the_veth_does_not_have_fails_clearly(wire, module_worker, state_root):
    result = run_module("afxdp_worker", module_worker(program="drop", queue=5))
    assert result.failed
    assert "no RX queue 5" in result["msg"] and wire.name_b in result["msg"]
    _nothing_left(wire, state_root)


def test_interface_with_another_xdp_program_is_refused_and_kept(wire, module_worker, build_dir, state_root):
    other = run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, program="drop",
                                           bpf_dir=BPF_DIR, build_dir=build_dir,
                                           pin_path="/sys/fs/bpf/xdplab/%s/%s" % (wire.ns_b, wire.name_b)))
    assert not other.failed, other
    try:
        result = run_module("afxdp_worker", module_worker(program="drop"))
        assert result.failed
        assert "already has an XDP program attached" in result["msg"] and "xl_drop" in result["msg"]
        assert xdp_of(wire.name_b, wire.ns_b)[1] == other["prog_id"]  # someone else's: untouched
        assert not any(walked[2] for walked in os.walk(state_root))
    finally:
        run_module("xdp_program", dict(interface=wire.name_b, netns=wire.ns_b, state="detached", bpf_dir=BPF_DIR,
                                       pin_path="/sys/fs/bpf/xdplab/%s/%s" % (wire.ns_b, wire.name_b)))


def test_interface_served_by_a_worker_the_module_did_not_start_is_busy(wire, module_worker, worker_binary,
                                                                       direct_workers, state_root):
    foreign = direct_workers(worker_binary("drop"), wire)
    assert foreign.wait_running()["status"] == "running"
    result = run_module("afxdp_worker", module_worker(program="drop"))
    assert result.failed
    assert "another AF_XDP worker" in result["msg"] and str(foreign.proc.pid) in result["msg"]
    assert foreign.proc.poll() is None and xdp_of(wire.name_b, wire.ns_b)[2] == A.REDIRECT_PROG_NAME
    assert not any(walked[2] for walked in os.walk(state_root))
    stopped = run_module("afxdp_worker", module_worker(state="stopped"))
    assert stopped.failed and str(foreign.proc.pid) in stopped["msg"]
    assert foreign.proc.poll() is None


def test_busy_queue_is_reported_by_the_worker_and_the_first_keeps_running(wire, worker_binary, direct_workers):
    first = direct_workers(worker_binary("drop"), wire)
    assert first.wait_running()["status"] == "running"
    second = direct_workers(worker_binary("drop"), wire)
    stats = second.wait_running()
    assert second.proc.wait(timeout=10) == 1
    assert stats["status"] == "failed" and stats["errno"] == 16  # EBUSY
    assert "already used by another AF_XDP socket" in stats["error"]
    assert first.proc.poll() is None
    assert xdp_of(wire.name_b, wire.ns_b)[1] == first.stats()["prog_id"]


def test_cpu_and_batch_out_of_range_fail_before_anything_starts(wire, module_worker, state_root):
    result = run_module("afxdp_worker", module_worker(program="drop", cpu=4096))
    assert result.failed and "cpu 4096" in result["msg"]
    result = run_module("afxdp_worker", module_worker(program="drop", batch_size=4096))
    assert result.failed and "batch_size" in result["msg"]
    _nothing_left(wire, state_root)


def test_stopped_after_the_wire_is_gone_cleans_up(build_dir, state_root):
    ns = unique("xl-xn")
    pair = VethPair(unique("xl-xa"), unique("xl-xb"), ns_b=ns).create()
    try:
        args = margs(pair, build_dir, state_root)
        started = run_module("afxdp_worker", dict(args, program="drop"))
        assert not started.failed, started
    finally:
        pair.destroy()
    deadline = time.monotonic() + 10
    while (A.proc_info(started["pid"]) or "Z")[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)  # the worker notices within its stats interval and exits
    assert (A.proc_info(started["pid"]) or "Z")[0] == "Z"
    last = A.read_json(os.path.join(started["state_dir"], A.STATS_FILE))
    assert last["status"] == "failed" and "disappeared" in last["error"]
    stopped = run_module("afxdp_worker", dict(args, state="stopped"))
    assert stopped.failed and stopped["state"] == "crashed", stopped
    assert stopped["pid"] == started["pid"] and stopped["crashed"] is True
    assert "disappeared" in stopped["msg"]
    assert not any(walked[2] for walked in os.walk(state_root))


def test_prebuilt_binary_runs_without_a_compiler_and_is_checked_against_program_and_defines(
        wire, module_worker, worker_binary, state_root, tmp_path):
    """A worker built elsewhere (as for a guest without a toolchain) runs as it is."""
    binary = str(tmp_path / "xl-afxdp-checksum")
    shutil.copy2(worker_binary("checksum", 7), binary)
    no_toolchain = dict(binary=binary, cc="/nonexistent/cc", clang="/nonexistent/clang", bpf_dir=str(tmp_path))

    wrong_program = run_module("afxdp_worker", module_worker(program="drop", **no_toolchain))
    assert wrong_program.failed and "runs program checksum, not drop" in wrong_program["msg"]
    wrong_defines = run_module("afxdp_worker", module_worker(defines={"N": 8}, **no_toolchain))
    assert wrong_defines.failed and "N=7" in wrong_defines["msg"] and "N=8" in wrong_defines["msg"]
    _nothing_left(wire, state_root)

    started = run_module("afxdp_worker", module_worker(program="checksum", defines={"N": 7}, **no_toolchain))
    assert not started.failed, started
    assert started.changed and started["binary"] == binary
    assert started["program"] == "checksum" and started["defines"] == {"N": "7"}
    assert A.proc_info(started["pid"]) is not None
    sent = run_loadgen(wire, "--rate", "10000", "--duration", "0.3")["packets_sent"]
    time.sleep(0.6)  # the worker rewrites its stats file every 0.25 s
    seen = A.read_json(started["stats_file"])["counters"]["seen"]["packets"]
    assert seen == sent

    again = run_module("afxdp_worker", module_worker(**no_toolchain))
    assert not again.failed, again
    assert not again.changed and again["pid"] == started["pid"]

    shutil.copy2(worker_binary("checksum", 9), binary + ".new")  # new contents (renamed in, as copy does)
    os.replace(binary + ".new", binary)
    replaced = run_module("afxdp_worker", module_worker(**no_toolchain))
    assert not replaced.failed, replaced
    assert replaced.changed and replaced["pid"] != started["pid"] and replaced["defines"] == {"N": "9"}


def test_a_prebuilt_binary_that_is_not_a_worker_fails_clearly(wire, module_worker, state_root, tmp_path):
    missing = run_module("afxdp_worker", module_worker(binary=str(tmp_path / "nothing")))
    assert missing.failed and "does not exist or is not executable" in missing["msg"]
    impostor = run_module("afxdp_worker", module_worker(binary="/bin/false"))
    assert impostor.failed and "is not an xdplab AF_XDP worker" in impostor["msg"]
    _nothing_left(wire, state_root)


def test_experiment_role_falls_back_to_generic_where_the_driver_has_no_native_xdp(tmp_path):
    """deploy_afxdp.yml with fallback_mode: a bridge has no native XDP, so the worker runs in generic mode."""
    ns, dev = unique("xl-xf"), unique("xl-xfb")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", dev, "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        results = tmp_path / "deploy.json"
        proc = run_playbook("tests/integration/playbooks/afxdp_fallback.yml", {
            "interface": dev, "netns": ns, "bpf_dir": BPF_DIR, "results_file": str(results)})
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        got = json.loads(results.read_text())
        deploy = got["deploy"]
        assert deploy["requested_mode"] == "driver" and deploy["mode"] == "generic", deploy
        assert deploy["fallback"] is True and "native XDP" in deploy["fallback_reason"], deploy
        assert got["prog"]["mode"] == "copy" and deploy["bind_mode"] == "copy", got
        assert xdp_of(dev, ns) == (None, None, None)  # the playbook stopped the worker
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert not os.path.exists("/var/run/netns/%s" % ns)
