#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: cpu_usage
short_description: Sample CPU usage per CPU, process/thread, libvirt domain and BPF program over a window
version_added: 0.1.0
description:
  - Measures where CPU time went during a window, so that an experiment record can state which CPUs
    were busy with what, the host share and the VM share, and the CPU cost per packet.
  - B(Per CPU) from C(/proc/stat) (tick-sampled, about +-1% on a 1 s window) - user, nice, system,
    irq, softirq, steal, guest, guest_nice, idle, iowait and busy as percent of that CPU.
  - B(Per process and thread) from C(/proc/<pid>/task/<tid>/schedstat) (precise, ns) - processes
    chosen by pid, process name or command line (all their threads, kernel threads such as threaded
    NAPI included), in percent of one CPU, per process and per thread name.
  - B(Per libvirt domain) from C(virDomainGetCPUStats) - C(cpu_time), C(user_time), C(system_time).
  - B(Per BPF program) - run time and run count from the kernel's BPF statistics, with
    O(bpf_stats=true) switching C(kernel.bpf_stats_enabled) on for the window only.
  - O(action=sample) measures over O(window) seconds in one call. O(action=start) saves a snapshot in
    a state file and returns at once; O(action=stop) takes the second snapshot and returns the usage,
    so that a playbook can measure around another task (for example the traffic).
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details:
      - Sampling reads /proc and libvirt only, so it runs in check mode too (and returns C(changed=false)).
      - In check mode no state file is written or removed (V(start)/V(stop)) and C(kernel.bpf_stats_enabled)
        is neither switched on nor restored - with O(bpf_stats=true) the BPF run times only grow if the
        statistics are already on.
  diff_mode:
    support: none
options:
  action:
    description:
      - V(sample) takes a snapshot, sleeps O(window) seconds, takes another and returns the usage.
      - V(start) takes the first snapshot and saves it, with the selection options, under
        O(state_dir)/O(name).json. With O(bpf_stats=true) the BPF statistics stay on until V(stop).
      - V(stop) takes the second snapshot of the sampling O(name), returns the usage, restores
        C(kernel.bpf_stats_enabled) and removes the state file. The selection comes from the V(start)
        call; only O(packets) and O(cpus) are read from this call.
    type: str
    choices: [sample, start, stop]
    default: sample
  window:
    description: Seconds between the two snapshots of O(action=sample).
    type: float
    default: 1.0
  name:
    description:
      - Name of a start/stop sampling (1 to 64 letters, digits, C(.), C(_), C(-), not starting with a dot;
        it names the state file). Required with V(start) and V(stop). Starting again under the same name
        replaces an unfinished sampling.
    type: str
  state_dir:
    description: Directory of the start/stop state files.
    type: path
    default: /run/xdplab/cpu
  cpus:
    description:
      - CPUs whose split is returned in RV(per_cpu_pct) and summed in RV(cpus_total_pct), as numbers or
        ranges (C(1), C(0-1), C("0,2")). Default all online CPUs.
      - RV(busy_pct), RV(guest_pct) and the shares always cover all CPUs.
    type: list
    elements: str
  processes:
    description:
      - Processes to account, each resolved to all of its threads. A selector has exactly one of
        O(processes[].pid), O(processes[].comm) or O(processes[].cmdline).
      - Selectors are resolved at both ends of the window; a thread started inside the window counts
        with all of its run time.
    type: list
    elements: dict
    default: []
    suboptions:
      pid:
        description: A process id.
        type: int
      comm:
        description:
          - Regular expression searched in the process name (C(/proc/<pid>/comm), 15 characters), like
            C(pgrep) - e.g. C(napi/xl-dut0-.*), C(^qemu-system), C(^ovs-vswitchd$), C(xl-afxdp).
        type: str
      cmdline:
        description: Regular expression searched in the command line (arguments joined by spaces), like C(pgrep -f).
        type: str
      threads:
        description: Only threads whose name matches this regular expression, e.g. C(^CPU [0-9]+/) for QEMU vCPUs.
        type: str
      name:
        description: Key of the result in RV(processes); defaults to the regular expression or C(pid:<pid>).
        type: str
      optional:
        description: Do not fail when nothing matches at the start (the result then shows no pids).
        type: bool
        default: false
  domains:
    description: Names of running libvirt domains whose CPU time is the VM share.
    type: list
    elements: str
    default: []
  uri:
    description:
      - libvirt connection URI for O(domains) (opened read-only).
      - With a Xen URI (C(xen:///system)), run the module in dom0 (C(delegate_to)); the host share is then
        Domain-0's CPU time as Xen counts it, the VM share the domUs' vCPU time, and RV(xen) has the split.
    type: str
    default: qemu:///system
  bpf_stats:
    description:
      - Set C(kernel.bpf_stats_enabled=1) for the window and restore its previous value afterwards
        (also when the module fails). Counting costs about 20 ns per program run.
    type: bool
    default: false
  programs:
    description:
      - BPF programs whose C(run_time_ns)/C(run_cnt) deltas are returned in RV(bpf_programs) - a program id
        (number) or the bpffs path of a pinned program (e.g. C(/sys/fs/bpf/xdplab/xl-dut/xl-dut0/prog)).
      - The counts grow only while BPF statistics are on (O(bpf_stats=true), or switched on otherwise).
    type: list
    elements: raw
    default: []
  packets:
    description:
      - Number of packets handled during the window (e.g. the program's processed count); adds
        RV(ns_per_packet).
    type: int
notes:
  - "Units: per-CPU splits are percent of that CPU; everything else (RV(busy_pct), processes, domains,
    programs, shares) is percent of B(one) CPU, so two fully busy CPUs are 200."
  - "Host and VM share: RV(vm_share_pct) is the sum of the domains' C(cpu_time) over the window (all of
    the hypervisor process: vCPUs including time in the guest, device emulation, I/O threads).
    RV(host_share_pct) = RV(busy_pct) - RV(vm_share_pct), not below 0: everything else the machine was
    busy with (host kernel, softirq and NAPI, the virtual switch, other processes). It is not
    C(busy - guest): C(guest) time exists only for hardware-virtualised vCPUs (KVM) and misses the
    hypervisor's emulation, while under QEMU TCG it is always 0. RV(guest_pct) is returned as well."
  - C(busy) is user + nice + system + irq + softirq (C(guest) is inside C(user)); idle, iowait and
    steal are not busy.
  - /proc/stat is tick-based and the other sources are precise, so on short windows RV(host_share_pct)
    carries the tick rounding of every CPU (one tick is 1/USER_HZ s per CPU).
  - A thread that exits during the window loses its run time since the start; the result counts such
    threads in C(exited_threads) and warns.
  - Sampling does not change the system (C(changed=false)); the BPF statistics switch is restored.
    Two overlapping samplings with O(bpf_stats=true) restore it when the first one ends.
requirements:
  - libvirt-python (python3-libvirt) for O(domains)
  - libbpf 1.x (libbpf.so.1) for O(programs)
  - root for O(bpf_stats)
seealso:
  - module: xdplab.offload.xdp_stats
  - module: xdplab.offload.xdp_program
'''

EXAMPLES = r'''
- name: One second of CPU use of the DUT's NAPI thread and the AF_XDP worker, on CPU 1
  xdplab.offload.cpu_usage:
    window: 1
    cpus: [1]
    processes:
      - comm: napi/xl-dut0-.*
        name: napi
      - comm: xl-afxdp
        name: afxdp
  register: cpu

- name: Start sampling before the traffic, with the program's run time
  xdplab.offload.cpu_usage:
    action: start
    name: cell-42
    bpf_stats: true
    programs:
      - /sys/fs/bpf/xdplab/xl-dut/xl-dut0/prog
    domains: [xl-vm1]
    processes:
      - comm: ^qemu-system
        name: qemu
        threads: ^CPU [0-9]+/
      - comm: ^ovs-vswitchd$
        name: ovs

- name: Offer the traffic
  xdplab.offload.traffic:
    rate_pps: 1000000
    duration_s: 10
  register: traffic

- name: Stop sampling; CPU ns per processed packet
  xdplab.offload.cpu_usage:
    action: stop
    name: cell-42
    packets: "{{ traffic.received }}"
  register: cpu

- name: Show the split
  ansible.builtin.debug:
    msg: "host {{ cpu.host_share_pct }}% VM {{ cpu.vm_share_pct }}% of one CPU, {{ cpu.ns_per_packet.busy }} ns/packet"
'''

RETURN = r'''
window_s:
  description: Measured time between the two snapshots.
  returned: with action sample and stop
  type: float
  sample: 1.0012
started_at:
  description: UTC time of the first snapshot (ISO 8601).
  returned: always
  type: str
  sample: "2026-11-26T23:59:01.123456Z"
stopped_at:
  description: UTC time of the second snapshot.
  returned: with action sample and stop
  type: str
cpus:
  description: The CPUs of RV(per_cpu_pct).
  returned: with action sample and stop
  type: list
  elements: int
  sample: [1]
per_cpu_pct:
  description:
    - Per chosen CPU, C(cpu), every /proc/stat field (C(user), C(nice), C(system), C(idle), C(iowait),
      C(irq), C(softirq), C(steal), C(guest), C(guest_nice)) and C(busy) in percent of that CPU's
      accounted time, and C(ticks), the accounted ticks (USER_HZ).
  returned: with action sample and stop
  type: list
  elements: dict
  sample: [{cpu: 1, user: 0.0, nice: 0.0, system: 1.0, idle: 2.0, iowait: 0.0, irq: 0.0, softirq: 97.0,
            steal: 0.0, guest: 0.0, guest_nice: 0.0, busy: 98.0, ticks: 100}]
cpus_total_pct:
  description: The per-CPU split summed over RV(cpus), in percent of one CPU.
  returned: with action sample and stop
  type: dict
busy_pct:
  description: Busy time of all online CPUs, in percent of one CPU.
  returned: with action sample and stop
  type: float
  sample: 131.5
guest_pct:
  description: guest + guest_nice time of all CPUs (hardware-virtualised vCPUs), in percent of one CPU.
  returned: with action sample and stop
  type: float
processes:
  description:
    - Per selector name, C(pids), C(cpu_ns) and C(cpu_pct) (percent of one CPU) of all matched threads,
      C(per_process) (C(pid), C(comm), C(cpu_ns), C(cpu_pct) and C(threads), per thread name C(cpu_ns),
      C(cpu_pct) and C(count)), C(exited_threads) and C(unmeasured_threads) (see the notes).
    - With action start, per selector name the matched C(pids).
  returned: always
  type: dict
  sample:
    napi:
      pids: [812]
      cpu_ns: 991203344
      cpu_pct: 99.02
      per_process:
        - {pid: 812, comm: napi/xl-dut0-8193, cpu_ns: 991203344, cpu_pct: 99.02,
           threads: {napi/xl-dut0-8193: {cpu_ns: 991203344, cpu_pct: 99.02, count: 1}}}
      exited_threads: 0
      unmeasured_threads: 0
domains:
  description:
    - Per domain C(cpu_time_ns), C(user_time_ns), C(system_time_ns) over the window and C(cpu_pct),
      C(user_pct), C(system_pct) in percent of one CPU, C(vcpus), and C(source) (C(getCPUStats), or
      C(info) when the driver gives only the total - user/system are then null).
  returned: with action sample and stop
  type: dict
  sample: {xl-vm1: {cpu_time_ns: 803000000, cpu_pct: 80.2, user_time_ns: 700000000, user_pct: 69.9,
                    system_time_ns: 103000000, system_pct: 10.3, vcpus: 1, source: getCPUStats}}
vm_share_pct:
  description: Sum of the domains' CPU time, in percent of one CPU (see the notes).
  returned: when domains are given, with action sample and stop
  type: float
host_share_pct:
  description: RV(busy_pct) minus RV(vm_share_pct), not below 0 (see the notes); with a Xen URI, Domain-0's CPU time.
  returned: when domains are given, with action sample and stop
  type: float
bpf_programs:
  description:
    - Per program as given in O(programs), C(id), C(name), C(tag), the C(run_time_ns) and C(run_cnt)
      deltas, C(ns_per_run) (null without runs) and C(cpu_pct) (run time in percent of one CPU).
  returned: with action sample and stop
  type: dict
  sample: {"/sys/fs/bpf/xdplab/xl-dut/xl-dut0/prog": {id: 142, name: xl_drop, tag: a35d91dbc7de96a4,
           run_time_ns: 70312000, run_cnt: 1000000, ns_per_run: 70.31, cpu_pct: 7.02}}
ns_per_packet:
  description:
    - CPU time per packet (O(packets)) - C(busy) (all CPUs), C(cpus) (the chosen CPUs), C(host) and C(vm)
      (with domains), per process selector in C(processes) and per program in C(bpf_programs).
  returned: when packets is given and positive, with action sample and stop
  type: dict
  sample: {busy: 98.3, cpus: 97.9, processes: {napi: 97.1}, bpf_programs: {}}
bpf_stats_enabled_before:
  description: Value of C(kernel.bpf_stats_enabled) before the module switched it on (restored afterwards).
  returned: when bpf_stats is true
  type: int
  sample: 0
xen:
  description:
    - Xen's split of the window (O(uri) a Xen URI, in dom0), percent of one CPU. C(dom0_pct) is the host
      share, C(domu_pct) the VM share; C(hypervisor_pct) is null (libxl does not expose Xen's own time) and
      C(hypervisor_note) says so.
  returned: with a Xen URI and O(domains)
  type: dict
  sample: {"pcpus": 2, "dom0_vcpus": 2, "dom0_pct": 41.2, "domu_pct": 57.9, "hypervisor_pct": null,
           "hypervisor_note": "Xen's own CPU time is not exposed by libxl; the host share is Domain-0's CPU time"}
state_path:
  description: The state file of a start/stop sampling.
  returned: with action start and stop
  type: str
  sample: /run/xdplab/cpu/cell-42.json
'''

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import cpu, safety

SELECTION_OPTIONS = ("processes", "domains", "programs", "bpf_stats")


def _selection(p):
    return cpu.make_selection(cpus=p["cpus"], processes=p["processes"], domains=p["domains"], uri=p["uri"],
                              programs=p["programs"], bpf_stats=p["bpf_stats"])


def _connect(selection):
    return cpu.open_libvirt(selection["uri"]) if selection["domains"] else None


def _close(conn):
    if conn is not None:
        try:
            conn.close()
        except Exception:  # pylint: disable=broad-except
            pass


def _finish(before, after, selection, packets, extra):
    result = cpu.compute_usage(before, after, selection, packets)
    result.update(extra)
    return result


def _sample(p, check=False):
    selection = _selection(p)
    conn = _connect(selection)
    previous = None
    try:
        if selection["bpf_stats"] and check:
            previous = cpu.read_bpf_stats()  # reported, not switched (and so not restored) in check mode
        elif selection["bpf_stats"]:
            previous = cpu.enable_bpf_stats()
        before = cpu.take_snapshot(selection, conn=conn)
        time.sleep(p["window"])
        after = cpu.take_snapshot(selection, conn=conn, require=False)
    finally:
        try:
            if not check:
                cpu.restore_bpf_stats(previous)
        finally:
            _close(conn)
    extra = {"bpf_stats_enabled_before": previous} if selection["bpf_stats"] else {}
    return _finish(before, after, selection, p["packets"], extra)


def _started(path, before, selection, bpf_stats_before):
    """What action=start returns (also in check mode): the state path, the start time, the processes found."""
    result = {"state_path": path, "started_at": cpu.iso_time(before["wall"]),
              "processes": {n: {"pids": sorted(int(pid) for pid in procs)}
                            for n, procs in before["processes"].items()}}
    if selection["bpf_stats"]:
        result["bpf_stats_enabled_before"] = bpf_stats_before()
    return result


def _start_check(p, path, selection, old, warnings):
    """Check mode of action=start: the snapshot is taken, but no state file is written and no sysctl switched."""
    if old is not None:
        warnings.append("would replace the unfinished sampling %s started at %s" % (p["name"], old.get("started_at")))
    conn = _connect(selection)
    try:
        before = cpu.take_snapshot(selection, conn=conn)
    finally:
        _close(conn)
    return _started(path, before, selection, cpu.read_bpf_stats)


def _start(p, warnings, check=False):
    path = cpu.state_path(p["state_dir"], p["name"])
    selection = _selection(p)
    old = cpu.load_state(path)
    if check:
        return _start_check(p, path, selection, old, warnings)
    carried = None
    if old is not None:
        warnings.append("replaced the unfinished sampling %s started at %s" % (p["name"], old.get("started_at")))
        carried = old.get("bpf_stats_previous")
        if carried is not None and not selection["bpf_stats"]:
            cpu.restore_bpf_stats(carried)
            carried = None
    conn = _connect(selection)
    previous = carried
    try:
        if selection["bpf_stats"]:
            now = cpu.enable_bpf_stats()
            previous = now if carried is None else carried
        before = cpu.take_snapshot(selection, conn=conn)
        state = {"version": cpu.STATE_VERSION, "name": p["name"], "selection": selection, "before": before,
                 "bpf_stats_previous": previous, "started_at": before["wall"]}
        cpu.save_state(path, state)
    except BaseException:
        cpu.restore_bpf_stats(previous)
        cpu.remove_state(path)
        raise
    finally:
        _close(conn)
    return _started(path, before, selection, lambda: previous)


def _stop(p, warnings, check=False):
    path = cpu.state_path(p["state_dir"], p["name"])
    state = cpu.load_state(path)
    if state is None:
        raise cpu.CpuError("no sampling named %s was started (no %s): run action=start first" % (p["name"], path),
                           state_path=path)
    given = [o for o in SELECTION_OPTIONS if p[o]]
    if given:
        warnings.append("action=stop uses the selection of action=start; ignored: %s" % ", ".join(given))
    selection = state["selection"]
    if p["cpus"]:
        selection["cpus"] = p["cpus"]
    previous = state.get("bpf_stats_previous")
    conn = None
    try:
        conn = _connect(selection)
        after = cpu.take_snapshot(selection, conn=conn, require=False)
    finally:
        try:
            if not check:
                cpu.restore_bpf_stats(previous)
        finally:
            if not check:
                cpu.remove_state(path)
            _close(conn)
    extra = {"state_path": path}
    if selection["bpf_stats"]:
        extra["bpf_stats_enabled_before"] = previous
    return _finish(state["before"], after, selection, p["packets"], extra)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=["sample", "start", "stop"], default="sample"),
            window=dict(type="float", default=1.0),
            name=dict(type="str"),
            state_dir=dict(type="path", default="/run/xdplab/cpu"),
            cpus=dict(type="list", elements="str"),
            processes=dict(type="list", elements="dict", default=[], options=dict(
                pid=dict(type="int"),
                comm=dict(type="str"),
                cmdline=dict(type="str"),
                threads=dict(type="str"),
                name=dict(type="str"),
                optional=dict(type="bool", default=False),
            ), mutually_exclusive=[("pid", "comm", "cmdline")], required_one_of=[("pid", "comm", "cmdline")]),
            domains=dict(type="list", elements="str", default=[]),
            uri=dict(type="str", default="qemu:///system"),
            bpf_stats=dict(type="bool", default=False),
            programs=dict(type="list", elements="raw", default=[]),
            packets=dict(type="int"),
        ),
        required_if=[("action", "start", ["name"]), ("action", "stop", ["name"])],
        supports_check_mode=True,
    )
    p = module.params
    if p["window"] <= 0:
        module.fail_json(msg="window must be a positive number of seconds, got %s" % p["window"])
    if p["domains"] and not cpu.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python (Debian: python3-libvirt)"),
                         exception=str(cpu.LIBVIRT_IMPORT_ERROR))
    if p["name"] is not None:
        try:
            safety.name(p["name"], "name", "sampling name")
        except safety.UnsafeInput as exc:
            module.fail_json(msg=exc.msg, option=exc.option, action=p["action"], name=p["name"])
    warnings = []
    try:
        if p["action"] == "sample":
            result = _sample(p, module.check_mode)
        elif p["action"] == "start":
            result = _start(p, warnings, module.check_mode)
        else:
            result = _stop(p, warnings, module.check_mode)
    except cpu.CpuError as exc:
        module.fail_json(msg=exc.msg, action=p["action"], name=p["name"], **exc.details)
    for warning in result.pop("warnings", []) + warnings:
        module.warn(warning)
    result.update(changed=False, action=p["action"], name=p["name"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
