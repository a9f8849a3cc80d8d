#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: afxdp_worker
short_description: Start or stop the user-space AF_XDP worker that runs an xdplab program behind an AF_XDP socket
version_added: 0.1.0
description:
  - The paper's user-space location. Builds the worker C(xl-afxdp) for a program (the very packet-logic
    header the XDP objects are built from, compiled by the host C compiler, one cached binary per
    program and O(defines)), and starts it in the background on one RX queue of an interface.
  - The worker attaches its own XDP program (C(xl_afxdp_redir)) in O(xdp_mode), which redirects the
    queue's frames into an XSKMAP; it runs the program's logic on every frame, sends C(XDP_TX) frames
    back out of the interface and counts every verdict under the XDP programs' counter names.
  - Idempotent - a running worker with the same settings (and the same sources) is left alone;
    different settings restart it.
  - O(state=stopped) stops the worker with SIGTERM (it detaches its program and writes its final
    counters) and returns those counters.
  - A worker that crashed or was killed (its process is gone while its state says it runs) makes the
    module fail with RV(state=crashed), the tail of the worker's log in RV(worker_log) and its last
    counters. O(state=started) then changes nothing (stop it first); O(state=stopped) still cleans up -
    removes its state and a redirect program named C(xl_afxdp_redir) that no live worker owns (left
    through O(attach=netlink); attached through a BPF link, the default, the kernel removes it with the
    process) - and then fails, so a measurement with a dead worker is never taken for a good one.
  - State files live under O(state_root)C(/<netns or root>/<interface>/).
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.interface
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Compares the wanted settings with the running worker and reports the change without building,
      starting or stopping anything, and without running O(binary) (its C(--info) is not asked; see
      RV(binary_checked)). Nothing is written or removed.
  diff_mode:
    support: full
    details: Shows the worker's settings before and after.
options:
  state:
    description:
      - V(started) makes sure a worker with these settings serves the interface.
      - V(stopped) makes sure none does; returns the final counters of the one it stopped.
    type: str
    choices: [started, stopped]
    default: started
  program:
    description:
      - A built-in program (V(drop), V(loop), V(checksum), V(dns_nxdomain)) from O(bpf_dir), or the path of
        your own header C(<name>.h) that defines C(static inline int xl_<name>_logic(void *data, void *data_end))
        returning an XDP verdict.
      - Required with O(state=started), unless O(binary) is given (then it is checked against the binary).
    type: str
  defines:
    description:
      - Compile-time parameters passed as C(-DNAME=VALUE), exactly as for the XDP objects; for example
        N=100 (C(-DN=100)) sets the iterations of V(loop) and V(checksum).
      - With O(binary), the defines the binary must have been built with (leave empty to take its own).
    type: dict
    default: {}
  binary:
    description:
      - A worker binary already built for this host (C(make -C bpf/afxdp) or the collection's experiment role
        builds them elsewhere and copies them), used as it is - no compiler, clang or development headers are
        needed on the managed host, only libxdp and libbpf. For hosts without a toolchain, such as the lab's
        guests.
      - The module asks the binary (C(--info)) which program and defines it runs and fails if they differ from
        O(program) and O(defines) where those are given; a change of the file's contents restarts the worker.
    type: path
    version_added: 0.2.0
  queue:
    description: The RX queue the worker serves (one worker per interface).
    type: int
    default: 0
  xdp_mode:
    description:
      - Where the redirect program runs. V(driver) is native XDP (location C(afxdp)), V(generic) is skb-based
        XDP with an C(XDP_SKB) bind (location C(afxdp_generic)), which always copies.
    type: str
    choices: [driver, generic]
    default: driver
  copy_mode:
    description:
      - V(auto) lets the kernel choose (zero-copy where the driver supports it, else copy).
      - V(copy) forces copy mode.
      - V(zerocopy) asks for zero-copy; where the driver does not support it (veth, generic XDP) the worker
        falls back to copy mode and says why in RV(fallback) and in a warning.
      - RV(bind_mode) is what the kernel actually does.
    type: str
    choices: [auto, copy, zerocopy]
    default: auto
  need_wakeup:
    description: Use the rings' need_wakeup flags, so the worker makes a syscall only when the kernel asks for one.
    type: bool
    default: true
  busy_poll:
    description:
      - V(true) - the worker spins on its rings and never sleeps (a full CPU, lowest latency).
      - V(false) - it sleeps in C(poll()) while its RX ring is empty.
    type: bool
    default: false
  batch_size:
    description: Frames taken from the RX ring per round (1..1024, at most O(ring_size)).
    type: int
    default: 64
  cpu:
    description: Pin the worker to this CPU. Omit to let the scheduler place it.
    type: int
  ring_size:
    description: Entries of the RX ring (a power of 2, 64..16384); the FILL, COMPLETION and TX rings and the UMEM
      hold twice as many frames.
    type: int
    default: 2048
  attach:
    description:
      - How the worker attaches its redirect program. V(link) (a BPF link) makes the kernel detach it when the
        worker ends in any way, SIGKILL included. V(netlink) is for kernels without XDP links; a killed worker
        then leaves the program behind until the next call of this module removes it.
    type: str
    choices: [link, netlink]
    default: link
  bpf_dir:
    description: Directory with the collection's C(bpf/) sources on the managed host.
    type: path
    default: /opt/xdplab/bpf
  build_dir:
    description: Cache directory for the worker binaries (and the redirect program's object).
    type: path
    default: /var/cache/xdplab/bpf
  state_root:
    description:
      - Directory for the workers' state files.
      - Must resolve (symbolic links and C(..) followed) to C(/run/xdplab/afxdp) or a directory below it;
        the worker directory (O(state_root)C(/<netns or root>/<interface>)) is removed on stop.
    type: path
    default: /run/xdplab/afxdp
  cc:
    description: The host C compiler that builds the worker.
    type: str
    default: cc
  clang:
    description: The clang that builds the redirect program.
    type: str
    default: clang
  start_timeout:
    description: Seconds to wait for a new worker to report that it runs.
    type: float
    default: 15
  stop_timeout:
    description: Seconds to wait after SIGTERM before the worker is killed with SIGKILL.
    type: float
    default: 10
requirements:
  - pyroute2 >= 0.9.1
  - libbpf 1.x (libbpf.so.1)
  - a C compiler, clang, libxdp-dev and libbpf-dev on the managed host (to build the worker), unless O(binary) is given
  - Linux >= 5.9 for O(attach=link)
notes:
  - The worker needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW). It enters O(netns) itself with setns(), so pinned
    BPF objects under C(/sys/fs/bpf) stay visible.
  - An interface has one XDP program per mode; the worker refuses to start where another program is attached
    (detach it with M(xdplab.offload.xdp_program) O(state=detached)).
  - An AF_XDP socket cannot hand a frame back to the kernel's stack - frames the program passes (C(XDP_PASS)) are
    counted as C(passed) and their buffers reused.
  - On veth, the worker's C(XDP_TX) frames leave as ordinary packets, so the peer receives them without an XDP
    program of its own.
  - O(interface) and O(netns) must be plain names (they become parts of the state directory's path).
seealso:
  - module: xdplab.offload.xdp_program
  - module: xdplab.offload.xdp_stats
'''

EXAMPLES = r'''
- name: Drop everything in user space behind an AF_XDP socket (copy mode on veth)
  xdplab.offload.afxdp_worker:
    interface: xl-dut0
    netns: xl-dut
    program: drop
    cpu: 1
    busy_poll: true
  register: worker

- name: The processing-complexity program with N=1000 behind a generic-XDP (XDP_SKB) socket
  xdplab.offload.afxdp_worker:
    interface: xl-dut0
    netns: xl-dut
    program: loop
    defines:
      N: 1000
    xdp_mode: generic

- name: Run a worker that was built elsewhere and copied to a guest without a compiler
  xdplab.offload.afxdp_worker:
    interface: ens4
    program: checksum
    binary: /var/cache/xdplab/shipped-objects/afxdp/N100/xl-afxdp-checksum
    defines:
      N: 100

- name: Stop it and keep the final counters
  xdplab.offload.afxdp_worker:
    interface: xl-dut0
    netns: xl-dut
    state: stopped
  register: final

- name: Show what it did
  ansible.builtin.debug:
    msg: "{{ final.counters.seen.packets }} frames seen, {{ final.counters.dropped.packets }} dropped"
'''

RETURN = r'''
pid:
  description: The worker's process id (the stopped one with O(state=stopped)); null when there is none.
  returned: always
  type: int
  sample: 4242
location:
  description: The location name of the experiment matrix, C(afxdp) (driver) or C(afxdp_generic).
  returned: when a worker runs or was stopped
  type: str
  sample: afxdp
xdp_mode:
  description: The XDP mode of the redirect program.
  returned: always
  type: str
  sample: driver
bind_mode:
  description: What the AF_XDP socket actually does, C(copy) or C(zerocopy).
  returned: when a worker runs or was stopped
  type: str
  sample: copy
fallback:
  description: Why RV(bind_mode) differs from O(copy_mode) (e.g. zero-copy unsupported by veth); null otherwise.
  returned: when a worker runs or was stopped
  type: str
  sample: "zero-copy is not supported by xl-dut0 in namespace xl-dut (driver veth): ..."
prog_id:
  description: Kernel id of the worker's redirect program.
  returned: when a worker runs or was stopped
  type: int
counters:
  description:
    - Frames the worker ran the program on (C(seen)) and per verdict (C(dropped), C(tx), C(passed),
      C(redirected)), each with C(packets) and C(bytes), as the XDP programs count them.
    - With O(state=stopped), the final counters (see RV(final)).
  returned: always
  type: dict
  sample:
    seen: {packets: 1000, bytes: 60000}
    dropped: {packets: 1000, bytes: 60000}
    tx: {packets: 0, bytes: 0}
    passed: {packets: 0, bytes: 0}
    redirected: {packets: 0, bytes: 0}
kernel_counters:
  description: What the redirect program counted in the kernel, C(seen), C(redirected) (to a socket) and C(passed)
    (queue without a socket).
  returned: when a worker runs or was stopped
  type: dict
xsk_stats:
  description: The socket's XDP_STATISTICS (C(rx_dropped), C(rx_ring_full), C(rx_fill_ring_empty_descs), ...);
    frames the kernel redirected but the socket could not take.
  returned: when a worker runs or was stopped
  type: dict
tx_completed:
  description: XDP_TX frames the kernel confirmed as sent.
  returned: when a worker runs or was stopped
  type: int
cpu_ns:
  description: CPU time the worker's thread used so far (or in total after a stop), in nanoseconds.
  returned: when a worker runs or was stopped
  type: int
elapsed_s:
  description: Seconds since the worker started serving (its whole run after a stop).
  returned: when a worker runs or was stopped
  type: float
final:
  description: True if RV(counters) are the worker's final counters (a clean stop); false if it had crashed or
    had to be killed (then they are the last ones it wrote, up to 0.25 s old).
  returned: with O(state=stopped)
  type: bool
crashed:
  description: The recorded worker was no longer running when this call came (then the task fails, see RV(state)).
  returned: with O(state=stopped), and on failure when the worker had crashed
  type: bool
stale_program_removed:
  description: Id of a redirect program left attached by a dead worker that this call detached; null otherwise.
  returned: always
  type: int
replaced:
  description: The final counters of a worker with other settings that this call stopped before starting the new one.
  returned: when a worker was restarted
  type: dict
binary:
  description: The worker binary that runs.
  returned: with O(state=started)
  type: str
state_dir:
  description: The worker's state directory (C(worker.json), C(stats.json), C(worker.log)).
  returned: always
  type: str
stats_file:
  description: The JSON file the worker rewrites a few times per second (status, counters, socket statistics).
  returned: with O(state=started)
  type: str
worker_log:
  description: The end of the worker's log when it failed to start or had crashed.
  returned: on failure
  type: str
state:
  description: C(crashed) when the task failed because the recorded worker's process was gone.
  returned: when the worker had crashed
  type: str
  sample: crashed
binary_checked:
  description: In check mode with O(binary), whether the program and defines of the binary were known (from the
    running worker started from a file with the same contents); false means the change is predicted
    conservatively, since check mode does not run the binary.
  returned: in check mode with O(binary) when something would change
  type: bool
compiler_output:
  description: The compiler's messages when the worker did not build.
  returned: on failure
  type: str
'''

import errno
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp, programs, xdp


def _where(p):
    return "%s in namespace %s" % (p["interface"], p["netns"]) if p["netns"] else p["interface"]


def _foreign_program_error(p, have_xdp):
    return afxdp.AfxdpError(
        "%s already has an XDP program attached (id %s, name %s, %s mode); detach it first (for example with "
        "xdplab.offload.xdp_program state=detached): the AF_XDP worker attaches its own redirect program"
        % (_where(p), have_xdp["prog_id"], have_xdp["name"] or "unknown", have_xdp["mode"]),
        errno=errno.EBUSY, prog_id=have_xdp["prog_id"])


def _check_stale(p, have_xdp, live_prog_id):
    """Id of a stale redirect program to remove (None if there is none); AfxdpError if it is someone's."""
    if not afxdp.is_worker_program(have_xdp) or have_xdp["prog_id"] == live_prog_id:
        return None
    holders = afxdp.link_holders(have_xdp["prog_id"])
    if holders:
        raise afxdp.AfxdpError(
            "%s is already served by another AF_XDP worker that this module did not start (redirect program id %d, "
            "pid %s); stop that process first" % (_where(p), have_xdp["prog_id"], ", ".join(map(str, holders))),
            errno=errno.EBUSY, holders=holders, prog_id=have_xdp["prog_id"])
    return have_xdp["prog_id"]


def _view(summary):
    keys = ("pid", "location", "bind_mode", "fallback", "prog_id", "counters", "kernel_counters", "xsk_stats",
            "tx_completed", "cpu_ns", "elapsed_s")
    return dict((k, summary.get(k)) for k in keys)


def _crash_error(p, sdir, record, stats, cleaned):
    """AfxdpError for a recorded worker whose process is gone: state crashed, its log's tail, its last counters."""
    stats = stats or {}
    last_words = stats.get("error")
    tail = afxdp.log_tail(os.path.join(sdir, afxdp.LOG_FILE))
    if cleaned:
        then = ("its state directory and any redirect program it left were removed; counters are the last ones it "
                "wrote (not final)")
    else:
        then = "nothing was changed: stop it (state=stopped) to clean up and keep its last counters, then start again"
    details = dict(_view(afxdp.summarize(stats)), state="crashed", crashed=True, final=False,
                   pid=record.get("pid"), worker_log=tail)
    return afxdp.AfxdpError("the AF_XDP worker serving %s (pid %s) has crashed: its process is gone while its state "
                            "says it should run%s; %s (see worker_log)"
                            % (_where(p), record.get("pid"), " (its last error: %s)" % last_words if last_words else "",
                               then), **details)


def _prebuilt_unverified(p, record):
    """Check mode's view of O(binary): its digest only (running its --info is not allowed in check mode).

    The recorded worker's settings tell what a binary with the same digest runs
    (they were checked against its --info when it started). Returns (program,
    defines, build key, whether program and defines are known).
    """
    afxdp.check_executable(p["binary"])
    key = "binary:" + afxdp.file_digest(p["binary"])
    settings = (record or {}).get("settings") or {}
    if settings.get("build_key") != key:
        return p["program"], p["defines"], key, False
    if p["program"] and p["program"] != settings.get("program"):
        raise afxdp.AfxdpError("the prebuilt worker %s runs program %s, not %s"
                               % (p["binary"], settings.get("program"), p["program"]), binary=p["binary"])
    have_defines = settings.get("defines") or {}
    if p["defines"] and afxdp.normalized_defines(p["defines"]) != have_defines:
        raise afxdp.AfxdpError("the prebuilt worker %s was built with defines %s, not %s"
                               % (p["binary"], programs.worker_defines_text(have_defines) or "(none)",
                                  programs.worker_defines_text(p["defines"])), binary=p["binary"])
    return settings.get("program"), have_defines, key, True


def _prebuilt(p):
    """(program name, defines, build key) of the prebuilt worker O(binary), checked against the parameters."""
    info = afxdp.prebuilt_info(p["binary"])
    have_defines = afxdp.normalized_defines(afxdp.parse_defines_text(info.get("defines")))
    if p["program"] and p["program"] != info["program"]:
        raise afxdp.AfxdpError("the prebuilt worker %s runs program %s, not %s"
                               % (p["binary"], info["program"], p["program"]), binary=p["binary"])
    if p["defines"] and afxdp.normalized_defines(p["defines"]) != have_defines:
        raise afxdp.AfxdpError("the prebuilt worker %s was built with defines %s, not %s"
                               % (p["binary"], info.get("defines") or "(none)",
                                  programs.worker_defines_text(p["defines"])), binary=p["binary"])
    return info["program"], have_defines, "binary:" + info["digest"]


def _started(module, root, sdir, have_state, have_xdp):
    p = module.params
    record, alive = have_state["record"], have_state["alive"]
    if record and not alive:
        raise _crash_error(p, sdir, record, have_state["stats"], cleaned=False)
    binary_checked = True
    if p["binary"] and module.check_mode:
        name, defines, key, binary_checked = _prebuilt_unverified(p, record)
        wp = None
    elif p["binary"]:
        name, defines, key = _prebuilt(p)
        wp = None
    else:
        wp = programs.resolve_worker_program(p["program"], p["bpf_dir"])
        name, defines = wp.name, p["defines"]
        key = programs.worker_build_key(wp, defines, p["bpf_dir"], p["cc"], p["clang"])
    want = afxdp.want_settings(dict(p, program=p["program"] or name, defines=defines), key)
    before = record.get("settings") if record and alive else None
    result = dict(state_dir=sdir, xdp_mode=p["xdp_mode"], stale_program_removed=None,
                  program=name, defines=want["defines"])

    if afxdp.same_worker(want, record, alive, have_xdp["prog_id"]):
        result.update(_view(afxdp.summarize(have_state["stats"])), changed=False, binary=record.get("binary"),
                      stats_file=record.get("stats_file"))
        return result
    if have_xdp["prog_id"] and not afxdp.is_worker_program(have_xdp):
        raise _foreign_program_error(p, have_xdp)
    stale = _check_stale(p, have_xdp, record.get("prog_id") if record and alive else None)
    result.update(changed=True, diff=afxdp.diff(before, want))
    if module.check_mode:
        result.update(_view(afxdp.summarize(None)), pid=None)
        if p["binary"]:
            result["binary_checked"] = binary_checked
        return result

    if wp is None:
        binary = p["binary"]
    else:
        binary = programs.build_worker(wp, p["defines"], p["bpf_dir"], p["build_dir"], p["cc"], p["clang"])[0]
    if record and alive:
        stats, final, killed = afxdp.stop(record, sdir, p["stop_timeout"])
        result["replaced"] = dict(_view(afxdp.summarize(stats)), final=final, killed=killed)
        have_xdp = afxdp.wait_released(p["netns"], p["interface"], record.get("prog_id"))
        stale = _check_stale(p, have_xdp, None)
    if stale:
        afxdp.remove_stale_program(p["netns"], p["interface"], have_xdp)
        result["stale_program_removed"] = stale
    afxdp.remove_state(sdir, root)
    record, stats = afxdp.start(binary, want, sdir, p["start_timeout"], root=root)
    summary = afxdp.summarize(stats)
    if summary["fallback"]:
        module.warn(summary["fallback"])
    result.update(_view(summary), binary=binary, stats_file=record["stats_file"])
    return result


def _stopped(module, root, sdir, have_state, have_xdp):
    p = module.params
    record, alive = have_state["record"], have_state["alive"]
    result = dict(state_dir=sdir, xdp_mode=None, final=False, crashed=bool(record) and not alive,
                  stale_program_removed=None, changed=False)
    result.update(_view(afxdp.summarize(have_state["stats"] if record else None)))
    if record:
        result["xdp_mode"] = record.get("settings", {}).get("xdp_mode")
        result["pid"] = record.get("pid")
    stale = None
    if have_xdp is not None:
        stale = _check_stale(p, have_xdp, record.get("prog_id") if record and alive else None)
    if not (record or stale or os.path.isdir(sdir)):
        result["pid"] = None
        return result
    result["changed"] = True
    result["diff"] = afxdp.diff(record.get("settings") if record and alive else None, None)
    if module.check_mode:
        if record and not alive:
            raise _crash_error(p, sdir, record, have_state["stats"], cleaned=False)
        return result
    if record and alive:
        stats, final, killed = afxdp.stop(record, sdir, p["stop_timeout"])
        result.update(_view(afxdp.summarize(stats)), final=final, killed=killed)
        result["pid"] = record.get("pid")
    elif record:
        stats = have_state["stats"]
        result["final"] = bool(stats) and stats.get("status") in ("stopped", "failed")
    if have_xdp is not None:
        try:
            have_xdp = afxdp.attached_program(p["netns"], p["interface"])
        except xdp.XdpError:
            have_xdp = None
    if have_xdp is not None and _check_stale(p, have_xdp, None):
        afxdp.remove_stale_program(p["netns"], p["interface"], have_xdp)
        result["stale_program_removed"] = have_xdp["prog_id"]
    if record and not alive:
        crash = _crash_error(p, sdir, record, have_state["stats"], cleaned=True)
        crash.details["stale_program_removed"] = result["stale_program_removed"]
        afxdp.remove_state(sdir, root)
        raise crash
    afxdp.remove_state(sdir, root)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "stopped"], default="started"),
            interface=dict(type="str", required=True),
            netns=dict(type="str"),
            program=dict(type="str"),
            defines=dict(type="dict", default={}),
            binary=dict(type="path"),
            queue=dict(type="int", default=0),
            xdp_mode=dict(type="str", choices=["driver", "generic"], default="driver"),
            copy_mode=dict(type="str", choices=["auto", "copy", "zerocopy"], default="auto"),
            need_wakeup=dict(type="bool", default=True),
            busy_poll=dict(type="bool", default=False),
            batch_size=dict(type="int", default=64),
            cpu=dict(type="int"),
            ring_size=dict(type="int", default=2048),
            attach=dict(type="str", choices=["link", "netlink"], default="link"),
            bpf_dir=dict(type="path", default="/opt/xdplab/bpf"),
            build_dir=dict(type="path", default="/var/cache/xdplab/bpf"),
            state_root=dict(type="path", default=afxdp.STATE_ROOT),
            cc=dict(type="str", default="cc"),
            clang=dict(type="str", default="clang"),
            start_timeout=dict(type="float", default=15.0),
            stop_timeout=dict(type="float", default=10.0),
        ),
        required_if=[("state", "started", ["program", "binary"], True)],
        supports_check_mode=True,
    )
    if not xdp.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 >= 0.9.1"), exception=str(xdp.PYROUTE2_IMPORT_ERROR))
    p = module.params
    common = dict(interface=p["interface"], netns=p["netns"], queue=p["queue"], copy_mode=p["copy_mode"],
                  need_wakeup=p["need_wakeup"], busy_poll=p["busy_poll"], batch_size=p["batch_size"],
                  cpu=p["cpu"], attach=p["attach"])
    try:
        root, sdir = afxdp.confined_state_dir(p["interface"], p["netns"], p["state_root"])
    except afxdp.AfxdpError as exc:
        module.fail_json(msg=exc.msg, state_root=p["state_root"], **dict(common, **exc.details))
    try:
        have_state = afxdp.load_state(sdir)
        if p["state"] == "started":
            afxdp.validate(p, os.cpu_count() or 1)
            have_xdp = afxdp.attached_program(p["netns"], p["interface"])
            result = _started(module, root, sdir, have_state, have_xdp)
        else:
            try:
                have_xdp = afxdp.attached_program(p["netns"], p["interface"])
            except xdp.XdpError as exc:
                if exc.errno not in (errno.ENODEV, errno.ENOENT):
                    raise
                have_xdp = None  # the wire is gone; still stop the worker and clean up
            result = _stopped(module, root, sdir, have_state, have_xdp)
    except afxdp.AfxdpError as exc:
        module.fail_json(msg=exc.msg, state_dir=sdir, **dict(common, **exc.details))
    except programs.BuildError as exc:
        module.fail_json(msg=exc.msg, compiler_output=exc.compiler_output, command=exc.command, **common)
    except programs.ProgramError as exc:
        module.fail_json(msg=exc.msg, **common)
    except xdp.XdpError as exc:
        module.fail_json(msg=exc.msg, errno=exc.errno, **common)
    result.update(common)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
