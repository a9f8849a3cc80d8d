"""cpu_usage logic on fixture /proc trees and fake libvirt/libbpf boundaries (no root).

Every test writes a /proc tree with known counters at the start and the end
of a window and checks the exact percentages the module_utils compute.
"""
import json
import os

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import cpu

HZ = 100
FIELDS = cpu.CPU_FIELDS


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def stat_text(cpus):
    """cpus: {n: {field: ticks}}; the aggregate line is the sum (never read)."""
    lines = []
    total = [sum(c.get(f, 0) for c in cpus.values()) for f in FIELDS]
    lines.append("cpu  " + " ".join(str(v) for v in total))
    for n in sorted(cpus):
        lines.append("cpu%d " % n + " ".join(str(cpus[n].get(f, 0)) for f in FIELDS))
    lines += ["intr 1 2 3", "ctxt 12345", "btime 1700000000", "processes 100", "procs_running 1"]
    return "\n".join(lines) + "\n"


def task_stat(tid, comm, start):
    # 52 fields; field 22 (starttime) is the 20th after the ')'.
    after = ["S"] + ["0"] * 18 + [str(start)] + ["0"] * 30
    return "%d (%s) %s\n" % (tid, comm, " ".join(after))


class ProcTree:
    """A fake /proc: stat, uptime, bpf_stats sysctl and processes with threads."""

    def __init__(self, root):
        self.root = str(root)
        self.cpus = {}
        self.procs = {}
        self.uptime = 100.0
        self.bpf_stats = 0

    def process(self, pid, comm, cmdline, threads):
        """threads: {tid: (comm, runtime_ns, start_ticks)}; the main thread is tid == pid."""
        self.procs[pid] = {"comm": comm, "cmdline": cmdline, "threads": dict(threads)}

    def write(self):
        if os.path.isdir(self.root):
            import shutil
            shutil.rmtree(self.root)
        write(os.path.join(self.root, "stat"), stat_text(self.cpus))
        write(os.path.join(self.root, "uptime"), "%.2f 12.00\n" % self.uptime)
        write(os.path.join(self.root, cpu.BPF_STATS_SYSCTL), "%d\n" % self.bpf_stats)
        for pid, proc in self.procs.items():
            base = os.path.join(self.root, str(pid))
            write(os.path.join(base, "comm"), proc["comm"] + "\n")
            write(os.path.join(base, "cmdline"), "\0".join(proc["cmdline"].split(" ")) + "\0")
            for tid, (comm, ns, start) in proc["threads"].items():
                tbase = os.path.join(base, "task", str(tid))
                write(os.path.join(tbase, "comm"), comm + "\n")
                write(os.path.join(tbase, "schedstat"), "%d 5000 7\n" % ns)
                write(os.path.join(tbase, "stat"), task_stat(tid, comm, start))
        return self


def idle_cpus(n=2, idle=1000):
    return {i: dict(dict.fromkeys(FIELDS, 0), idle=idle) for i in range(n)}


def snap(tree, selection, t, **kw):
    tree.write()
    kw.setdefault("exclude", [])
    return cpu.take_snapshot(selection, proc_root=tree.root, clock=lambda: t, wall=lambda: 1.7e9 + t,
                             hz=HZ, **kw)


@pytest.fixture
def tree(tmp_path):
    return ProcTree(tmp_path / "proc")


# ------------------------------------------------------------------ per CPU

def test_proc_stat_split_gives_exact_percentages_and_busy(tree):
    tree.cpus = idle_cpus()
    sel = cpu.make_selection()
    before = snap(tree, sel, 10.0)
    # CPU 1 over 100 ticks: user 30 (of which guest 20), system 10, softirq 50, idle 8, iowait 2.
    c1 = tree.cpus[1]
    c1.update(user=30, guest=20, system=10, softirq=50, idle=c1["idle"] + 8, iowait=2)
    # CPU 0 over 100 ticks: irq 5, steal 5, idle 90.
    c0 = tree.cpus[0]
    c0.update(irq=5, steal=5, idle=c0["idle"] + 90)
    after = snap(tree, sel, 11.0)
    res = cpu.compute_usage(before, after, sel)
    assert res["window_s"] == 1.0
    assert res["cpus"] == [0, 1]
    one = res["per_cpu_pct"][1]
    assert one["cpu"] == 1 and one["ticks"] == 100
    assert (one["user"], one["guest"], one["system"], one["softirq"], one["idle"], one["iowait"]) == \
        (30.0, 20.0, 10.0, 50.0, 8.0, 2.0)
    assert one["busy"] == 90.0  # user + system + softirq; guest is inside user, iowait is not busy
    zero = res["per_cpu_pct"][0]
    assert (zero["irq"], zero["steal"], zero["idle"], zero["busy"]) == (5.0, 5.0, 90.0, 5.0)  # steal not busy
    assert res["busy_pct"] == 95.0
    assert res["guest_pct"] == 20.0
    assert res["cpus_total_pct"]["busy"] == 95.0
    assert res["cpus_total_pct"]["softirq"] == 50.0
    assert "vm_share_pct" not in res and "ns_per_packet" not in res


def test_cpus_subset_limits_the_split_but_not_busy_pct(tree):
    tree.cpus = idle_cpus()
    sel = cpu.make_selection(cpus=["1"])
    before = snap(tree, sel, 0.0)
    tree.cpus[0].update(user=50, idle=1050)
    tree.cpus[1].update(system=25, idle=1075)
    after = snap(tree, sel, 1.0)
    res = cpu.compute_usage(before, after, sel)
    assert res["cpus"] == [1]
    assert [c["cpu"] for c in res["per_cpu_pct"]] == [1]
    assert res["cpus_total_pct"]["busy"] == 25.0
    assert res["busy_pct"] == 75.0


@pytest.mark.parametrize("value,expected", [(None, [0, 1, 2, 3]), (["1"], [1]), (["0-2"], [0, 1, 2]),
                                            (["0,3"], [0, 3]), ([3, "1"], [1, 3])])
def test_parse_cpus_accepts_numbers_and_ranges(value, expected):
    assert cpu.parse_cpus(value, {"0": {}, "1": {}, "2": {}, "3": {}}) == expected


def test_offline_cpu_is_a_clear_error(tree):
    tree.cpus = idle_cpus()
    with pytest.raises(cpu.CpuError, match="CPU 5 is not online here"):
        snap(tree, cpu.make_selection(cpus=["5"]), 0.0)
    with pytest.raises(cpu.CpuError, match="cannot parse CPU list"):
        cpu.parse_cpus(["one"], {"0": {}})


# -------------------------------------------------------------- processes

def test_process_threads_are_attributed_in_ns_and_percent_of_one_cpu(tree):
    tree.cpus = idle_cpus()
    tree.uptime = 100.0  # 10000 ticks
    tree.process(500, "napi/xl-dut0-81", "", {500: ("napi/xl-dut0-81", 1000, 50)})
    tree.process(600, "qemu-system-x86", "qemu-system-x86_64 -name guest=xl-vm1",
                 {600: ("qemu-system-x86", 10 ** 9, 100), 601: ("CPU 0/TCG", 5 * 10 ** 9, 100),
                  602: ("CPU 1/TCG", 2 * 10 ** 9, 100), 603: ("IO mon_iothread", 0, 100)})
    tree.process(700, "sleep", "sleep 100", {700: ("sleep", 42, 10)})
    sel = cpu.make_selection(processes=[{"comm": "napi/xl-dut0-.*", "name": "napi"},
                                        {"cmdline": "guest=xl-vm1", "name": "vm1"},
                                        {"comm": "^qemu", "threads": r"^CPU \d+/", "name": "vcpus"},
                                        {"pid": 700}])
    before = snap(tree, sel, 50.0)
    # Window of 2 s: NAPI ran 1.5 s, vCPU0 1 s, vCPU1 0.5 s, main thread 0.1 s, sleep nothing.
    tree.uptime = 102.0
    tree.procs[500]["threads"][500] = ("napi/xl-dut0-81", 1000 + 1500000000, 50)
    th = tree.procs[600]["threads"]
    th[600] = ("qemu-system-x86", 10 ** 9 + 100000000, 100)
    th[601] = ("CPU 0/TCG", 6 * 10 ** 9, 100)
    th[602] = ("CPU 1/TCG", 2 * 10 ** 9 + 500000000, 100)
    after = snap(tree, sel, 52.0)
    res = cpu.compute_usage(before, after, sel, packets=1000000)
    procs = res["processes"]
    assert procs["napi"]["pids"] == [500]
    assert procs["napi"]["cpu_ns"] == 1500000000
    assert procs["napi"]["cpu_pct"] == 75.0
    vm1 = procs["vm1"]
    assert vm1["cpu_ns"] == 1600000000 and vm1["cpu_pct"] == 80.0
    threads = vm1["per_process"][0]["threads"]
    assert threads["CPU 0/TCG"] == {"cpu_ns": 10 ** 9, "cpu_pct": 50.0, "count": 1}
    assert threads["CPU 1/TCG"]["cpu_pct"] == 25.0
    assert threads["qemu-system-x86"]["cpu_pct"] == 5.0
    assert threads["IO mon_iothread"] == {"cpu_ns": 0, "cpu_pct": 0.0, "count": 1}
    assert procs["vcpus"]["cpu_pct"] == 75.0
    assert set(procs["vcpus"]["per_process"][0]["threads"]) == {"CPU 0/TCG", "CPU 1/TCG"}
    assert procs["pid:700"]["cpu_ns"] == 0 and procs["pid:700"]["cpu_pct"] == 0.0
    assert res["ns_per_packet"]["processes"] == {"napi": 1500.0, "vm1": 1600.0, "vcpus": 1500.0, "pid:700": 0.0}
    assert res["warnings"] == []


def test_new_exited_and_unmeasured_threads(tree):
    tree.cpus = idle_cpus()
    tree.uptime = 100.0
    tree.process(800, "xl-afxdp", "xl-afxdp --queue 0",
                 {800: ("xl-afxdp", 10 ** 9, 9000), 801: ("worker-old", 10 ** 9, 9000)})
    sel = cpu.make_selection(processes=[{"comm": "xl-afxdp"}, {"comm": "xl-late", "optional": True}])
    before = snap(tree, sel, 0.0)
    assert before["processes"]["xl-late"] == {}
    tree.uptime = 101.0
    threads = tree.procs[800]["threads"]
    del threads[801]                                          # exited: its last run time is lost
    threads[800] = ("xl-afxdp", 10 ** 9 + 200000000, 9000)    # +0.2 s
    threads[802] = ("worker-new", 300000000, 10050)           # started inside the window: all 0.3 s count
    # A process that existed before the window but only now matches (renamed): not counted.
    tree.process(900, "xl-late", "xl-late", {900: ("xl-late", 5 * 10 ** 9, 500)})
    after = snap(tree, sel, 1.0)
    res = cpu.compute_usage(before, after, sel)
    afx = res["processes"]["xl-afxdp"]
    assert afx["cpu_ns"] == 500000000 and afx["cpu_pct"] == 50.0
    assert afx["exited_threads"] == 1
    late = res["processes"]["xl-late"]
    assert late["cpu_ns"] == 0 and late["unmeasured_threads"] == 1
    assert any("exited" in w for w in res["warnings"])
    assert any("matched only at its end" in w for w in res["warnings"])


def test_selectors_are_validated_with_clear_messages(tree):
    with pytest.raises(cpu.CpuError, match="exactly one of pid, comm or cmdline"):
        cpu.normalize_selectors([{"pid": 1, "comm": "x"}])
    with pytest.raises(cpu.CpuError, match="exactly one of pid, comm or cmdline"):
        cpu.normalize_selectors([{"name": "x"}])
    with pytest.raises(cpu.CpuError, match="invalid regular expression"):
        cpu.normalize_selectors([{"comm": "napi/("}])
    with pytest.raises(cpu.CpuError, match="share the name"):
        cpu.normalize_selectors([{"comm": "a", "name": "x"}, {"comm": "b", "name": "x"}])
    tree.cpus = idle_cpus()
    tree.process(10, "init", "init", {10: ("init", 1, 1)})
    with pytest.raises(cpu.CpuError, match="no process name matching 'ovs-vswitchd' is running"):
        snap(tree, cpu.make_selection(processes=[{"comm": "ovs-vswitchd"}]), 0.0)
    with pytest.raises(cpu.CpuError, match="no process 4242 is running"):
        snap(tree, cpu.make_selection(processes=[{"pid": 4242}]), 0.0)


def test_comm_regex_is_searched_like_pgrep_and_own_pid_is_excluded(tree):
    tree.cpus = idle_cpus()
    tree.process(10, "ovs-vswitchd", "ovs-vswitchd --pidfile", {10: ("ovs-vswitchd", 1, 1)})
    tree.process(11, "ovsdb-server", "ovsdb-server", {11: ("ovsdb-server", 1, 1)})
    tree.write()
    assert cpu.match_processes(cpu.normalize_selectors([{"comm": "ovs"}])[0], tree.root) == [10, 11]
    assert cpu.match_processes(cpu.normalize_selectors([{"comm": "^ovs-vswitchd$"}])[0], tree.root) == [10]
    assert cpu.match_processes(cpu.normalize_selectors([{"cmdline": "--pidfile"}])[0], tree.root) == [10]
    assert cpu.match_processes(cpu.normalize_selectors([{"comm": "ovs"}])[0], tree.root, exclude=[10]) == [11]


def test_start_time_is_read_after_the_last_parenthesis():
    assert cpu._start_ticks(task_stat(5, "we(ird) ) name", 12345)) == 12345


# ----------------------------------------------------------------- domains

class FakeLibvirtError(Exception):
    pass


class FakeDomain:
    def __init__(self, name, uuid, cpu_times, active=True, vcpus=1, stats_error=False):
        self.name, self.uuid, self.cpu_times, self.active = name, uuid, list(cpu_times), active
        self.vcpus, self.stats_error = vcpus, stats_error

    def isActive(self):
        return 1 if self.active else 0

    def UUIDString(self):
        return self.uuid

    def info(self):
        return [1, 1024, 1024, self.vcpus, self.cpu_times[0][0]]

    def getCPUStats(self, total):
        assert total is True
        if self.stats_error:
            raise error_class()("cgroup CPUACCT controller is not mounted")
        cpu_time, user, system = self.cpu_times.pop(0)
        return [{"cpu_time": cpu_time, "user_time": user, "system_time": system}]


class FakeConn:
    def __init__(self, *domains):
        self.domains = {d.name: d for d in domains}

    def lookupByName(self, name):
        if name not in self.domains:
            raise error_class()("Domain not found: no domain with matching name '%s'" % name)
        return self.domains[name]


def error_class():
    return cpu.libvirt.libvirtError if cpu.HAS_LIBVIRT else Exception


def domain_window(tree, conn, domains, busy_ticks):
    tree.cpus = idle_cpus()
    sel = cpu.make_selection(domains=domains, uri="test:///fake")
    before = snap(tree, sel, 0.0, conn=conn)
    tree.cpus[0].update(user=busy_ticks[0], idle=1000 + 100 - busy_ticks[0])
    tree.cpus[1].update(system=busy_ticks[1], idle=1000 + 100 - busy_ticks[1])
    after = snap(tree, sel, 1.0, conn=conn)
    return sel, before, after


def test_vm_share_is_domain_cpu_time_and_host_share_is_the_rest_of_busy(tree):
    # Domain A ran 0.6 s (0.5 user, 0.1 system), domain B 0.2 s; the CPUs were busy 90 % + 40 %.
    conn = FakeConn(FakeDomain("xl-a", "u-a", [(10 ** 9, 0, 0), (16 * 10 ** 8, 5 * 10 ** 8, 10 ** 8)], vcpus=2),
                    FakeDomain("xl-b", "u-b", [(0, 0, 0), (2 * 10 ** 8, 10 ** 8, 10 ** 8)]))
    sel, before, after = domain_window(tree, conn, ["xl-a", "xl-b"], (90, 40))
    res = cpu.compute_usage(before, after, sel, packets=100000)
    a = res["domains"]["xl-a"]
    assert a == {"cpu_time_ns": 6 * 10 ** 8, "cpu_pct": 60.0, "user_time_ns": 5 * 10 ** 8, "user_pct": 50.0,
                 "system_time_ns": 10 ** 8, "system_pct": 10.0, "vcpus": 2, "source": "getCPUStats"}
    assert res["domains"]["xl-b"]["cpu_pct"] == 20.0
    assert res["busy_pct"] == 130.0
    assert res["vm_share_pct"] == 80.0
    assert res["host_share_pct"] == 50.0
    # 1 s window, 100000 packets: 1.3 CPU-s busy -> 13000 ns/packet, VM 8000, host 5000.
    assert res["ns_per_packet"]["busy"] == 13000.0
    assert res["ns_per_packet"]["vm"] == 8000.0
    assert res["ns_per_packet"]["host"] == 5000.0


def test_host_share_never_goes_below_zero(tree):
    conn = FakeConn(FakeDomain("xl-a", "u", [(0, 0, 0), (9 * 10 ** 8, 0, 0)]))
    sel, before, after = domain_window(tree, conn, ["xl-a"], (50, 0))
    res = cpu.compute_usage(before, after, sel)
    assert res["vm_share_pct"] == 90.0 and res["host_share_pct"] == 0.0


def test_restarted_domain_gives_unknown_share_and_a_warning(tree):
    conn = FakeConn(FakeDomain("xl-a", "u", [(5 * 10 ** 9, 0, 0), (10 ** 8, 0, 0)]))
    sel, before, after = domain_window(tree, conn, ["xl-a"], (10, 10))
    res = cpu.compute_usage(before, after, sel)
    assert res["domains"]["xl-a"]["cpu_pct"] is None
    assert res["vm_share_pct"] is None and res["host_share_pct"] is None
    assert any("restarted" in w for w in res["warnings"])


def test_domain_errors_name_the_domain_and_uri(tree):
    tree.cpus = idle_cpus()
    with pytest.raises(cpu.CpuError, match="libvirt domain xl-x does not exist at test:///fake"):
        snap(tree, cpu.make_selection(domains=["xl-x"], uri="test:///fake"), 0.0, conn=FakeConn())
    off = FakeConn(FakeDomain("xl-off", "u", [(0, 0, 0)], active=False))
    with pytest.raises(cpu.CpuError, match="xl-off at test:///fake is not running"):
        snap(tree, cpu.make_selection(domains=["xl-off"], uri="test:///fake"), 0.0, conn=off)


def test_driver_without_cpu_stats_falls_back_to_info_cpu_time():
    dom = FakeDomain("xl-a", "u", [(7 * 10 ** 9, 0, 0)], stats_error=True)
    got = cpu.snapshot_domains(FakeConn(dom), ["xl-a"])["xl-a"]
    assert got["cpu_time"] == 7 * 10 ** 9 and got["user_time"] is None and got["source"] == "info"
    usage, warnings = cpu.domain_usage({"xl-a": got}, {"xl-a": dict(got, cpu_time=8 * 10 ** 9)}, 10 ** 9)
    assert usage["xl-a"]["cpu_pct"] == 100.0 and usage["xl-a"]["user_pct"] is None
    assert warnings == []


# ------------------------------------------------------------ BPF programs

def test_program_deltas_give_ns_per_run_and_cpu_share(tree):
    tree.cpus = idle_cpus()
    counters = {"7": [(1000, 10), (1000 + 70000000, 10 + 1000000)]}

    def reader(spec):
        run_time, runs = counters[spec["label"]].pop(0)
        return {"id": 7, "name": "xl_drop", "tag": "ab", "run_time_ns": run_time, "run_cnt": runs}

    sel = cpu.make_selection(programs=[7, "7"])
    assert len(sel["programs"]) == 1  # the same id twice is one program
    before = snap(tree, sel, 0.0, program_reader=reader)
    after = snap(tree, sel, 0.5, program_reader=reader)
    res = cpu.compute_usage(before, after, sel, packets=2000000)
    prog = res["bpf_programs"]["7"]
    assert prog["run_time_ns"] == 70000000 and prog["run_cnt"] == 1000000
    assert prog["ns_per_run"] == 70.0
    assert prog["cpu_pct"] == 14.0  # 70 ms of a 0.5 s window
    assert res["ns_per_packet"]["bpf_programs"]["7"] == 35.0


def test_replaced_program_gives_unknown_run_time():
    old = {"p": {"id": 1, "name": "a", "tag": "x", "run_time_ns": 500, "run_cnt": 5}}
    new = {"p": {"id": 2, "name": "a", "tag": "y", "run_time_ns": 10, "run_cnt": 1}}
    usage, warnings = cpu.program_usage(old, new, 10 ** 9)
    assert usage["p"]["run_cnt"] is None and usage["p"]["id"] == 2
    assert warnings and "replaced" in warnings[0]


def test_program_specs_are_ids_or_pin_paths():
    specs = cpu.parse_programs([12, "13", "/sys/fs/bpf/xdplab/xl-dut/xl-dut0/prog"])
    assert [(s["id"], s["pin"]) for s in specs] == [(12, None), (13, None),
                                                    (None, "/sys/fs/bpf/xdplab/xl-dut/xl-dut0/prog")]
    for bad in (True, None, "", 1.5):
        with pytest.raises(cpu.CpuError, match="program id or a bpffs pin path"):
            cpu.parse_programs([bad])


def test_bpf_stats_is_enabled_and_restored(tree):
    tree.write()
    assert cpu.enable_bpf_stats(tree.root) == 0
    assert cpu.read_bpf_stats(tree.root) == 1
    cpu.restore_bpf_stats(0, tree.root)
    assert cpu.read_bpf_stats(tree.root) == 0
    tree.bpf_stats = 1
    tree.write()
    assert cpu.enable_bpf_stats(tree.root) == 1
    cpu.restore_bpf_stats(1, tree.root)
    assert cpu.read_bpf_stats(tree.root) == 1
    cpu.restore_bpf_stats(None, tree.root)  # nothing to restore
    assert cpu.read_bpf_stats(tree.root) == 1


# ---------------------------------------------------------- state, packets

def test_start_stop_state_round_trips_through_json(tree, tmp_path):
    tree.cpus = idle_cpus()
    tree.process(10, "xl-busy", "xl-busy", {10: ("xl-busy", 0, 9000)})
    tree.uptime = 100.0
    sel = cpu.make_selection(processes=[{"comm": "xl-busy"}], cpus=["0"])
    before = snap(tree, sel, 0.0)
    path = cpu.state_path(str(tmp_path / "state"), "cell-1")
    cpu.save_state(path, {"version": cpu.STATE_VERSION, "selection": sel, "before": before})
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    state = cpu.load_state(path)
    tree.procs[10]["threads"][10] = ("xl-busy", 900000000, 9000)
    tree.cpus[0].update(user=90, idle=1010)
    after = snap(tree, state["selection"], 1.0)
    direct = cpu.compute_usage(before, after, sel)
    loaded = cpu.compute_usage(state["before"], after, state["selection"])
    assert loaded == direct
    assert loaded["processes"]["xl-busy"]["cpu_pct"] == 90.0
    assert loaded["per_cpu_pct"][0]["user"] == 90.0
    cpu.remove_state(path)
    assert cpu.load_state(path) is None
    cpu.remove_state(path)  # twice is fine


def test_state_names_and_formats_are_checked(tmp_path):
    for bad in ("../etc/passwd", "..", ".hidden", "a/b", ""):
        with pytest.raises(cpu.CpuError, match="is not a valid sampling name") as err:
            cpu.state_path(str(tmp_path), bad)
        assert err.value.details["option"] == "name"
    path = str(tmp_path / "old.json")
    with open(path, "w") as handle:
        json.dump({"version": 99}, handle)
    with pytest.raises(cpu.CpuError, match="unknown format"):
        cpu.load_state(path)


def test_no_packets_means_no_ns_per_packet(tree):
    tree.cpus = idle_cpus()
    sel = cpu.make_selection()
    before = snap(tree, sel, 0.0)
    after = snap(tree, sel, 1.0)
    assert cpu.compute_usage(before, after, sel, packets=0)["ns_per_packet"] is None
    with pytest.raises(cpu.CpuError, match="not later"):
        cpu.compute_usage(after, before, sel)
