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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp, programs, xdp


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "stopped"], default="started"),
            interface=dict(type="str", required=True),
            netns=dict(type="str"),
            program=dict(type="str"),
            defines=dict(type="dict", default=afxdp.WORKER_DEFAULTS["defines"]),
            binary=dict(type="path"),
            queue=dict(type="int", default=afxdp.WORKER_DEFAULTS["queue"]),
            xdp_mode=dict(type="str", choices=["driver", "generic"], default=afxdp.WORKER_DEFAULTS["xdp_mode"]),
            copy_mode=dict(type="str", choices=["auto", "copy", "zerocopy"], default=afxdp.WORKER_DEFAULTS["copy_mode"]),
            need_wakeup=dict(type="bool", default=afxdp.WORKER_DEFAULTS["need_wakeup"]),
            busy_poll=dict(type="bool", default=afxdp.WORKER_DEFAULTS["busy_poll"]),
            batch_size=dict(type="int", default=afxdp.WORKER_DEFAULTS["batch_size"]),
            cpu=dict(type="int"),
            ring_size=dict(type="int", default=afxdp.WORKER_DEFAULTS["ring_size"]),
            attach=dict(type="str", choices=["link", "netlink"], default=afxdp.WORKER_DEFAULTS["attach"]),
            bpf_dir=dict(type="path", default=afxdp.WORKER_DEFAULTS["bpf_dir"]),
            build_dir=dict(type="path", default=afxdp.WORKER_DEFAULTS["build_dir"]),
            state_root=dict(type="path", default=afxdp.WORKER_DEFAULTS["state_root"]),
            cc=dict(type="str", default=afxdp.WORKER_DEFAULTS["cc"]),
            clang=dict(type="str", default=afxdp.WORKER_DEFAULTS["clang"]),
            start_timeout=dict(type="float", default=afxdp.WORKER_DEFAULTS["start_timeout"]),
            stop_timeout=dict(type="float", default=afxdp.WORKER_DEFAULTS["stop_timeout"]),
        ),
        required_if=[("state", "started", ["program", "binary"], True)],
        supports_check_mode=True,
    )
    if not xdp.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 >= 0.9.1"), exception=str(xdp.PYROUTE2_IMPORT_ERROR))
    p = module.params
    common = afxdp.worker_common(p)
    ensure = afxdp.ensure_started if p["state"] == "started" else afxdp.ensure_stopped
    try:
        result = ensure(p, module.check_mode)
    except afxdp.AfxdpError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except programs.BuildError as exc:
        module.fail_json(msg=exc.msg, compiler_output=exc.compiler_output, command=exc.command, **common)
    except programs.ProgramError as exc:
        module.fail_json(msg=exc.msg, **common)
    except xdp.XdpError as exc:
        module.fail_json(msg=exc.msg, errno=exc.errno, **common)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
