#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: cell
short_description: Run one experiment cell (deploy, measure, collect, remove) in one process
version_added: 0.4.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - Runs one cell of the experiment matrix on the host it is delegated to, in one process, so that a cell
    costs one module start instead of a dozen.
  - With O(phase=measured) it deploys the cell's program at its location (an XDP program in mode driver,
    generic or offload, or the AF_XDP worker), zeroes its counters, samples the CPU usage around the cell's
    traffic (load generator, DNS latency client, or a neighbour's probes beside a workload), reads the
    program's and both links' counters, times the program with C(BPF_PROG_TEST_RUN) when the cell asks,
    and removes the program again. The generator must run on the same host (the bare-metal lab).
  - A guest location splits the cell into three calls, O(phase=armed) in the guest, O(phase=window) on the
    generator's host and O(phase=collected) in the guest; O(phase=absent) only removes what a cell left, and
    O(phase=counted) reads the program's counters without stopping it (a zero-loss trial in a guest).
  - A cell with C(measure=zero_loss) searches, with O(phase=measured), the highest offered rate that loses no more
    than the cell's C(loss_tolerance) (RFC 2544, 26.1) in trials of C(trial_duration) seconds; RV(search) has
    the rate and every trial.
  - When the driver refuses native XDP (C(EOPNOTSUPP), a vNIC without it) and the location has a
    C(fallback_mode), the program is attached in that mode; the result's C(armed.deploy) says so and why.
  - A failed step is a result, not a module failure, so that the cell's record can say why it did not run
    - RV(error) names the step and the kernel's or tool's sentence; the program is removed in any case.
  - The raw parts it returns become the cell's record with M(xdplab.offload.cell_record).
options:
  phase:
    description: Which part of the cell to run.
    type: str
    choices: [measured, armed, window, counted, collected, absent]
    default: measured
  cell:
    description:
      - The cell, as the M(xdplab.offload.matrix) lookup gives it (id, experiment, program, n, location,
        size, rate, duration, repetition, measure, testrun, probe_rate, probe_size).
    type: dict
    required: true
  location:
    description:
      - Where the program runs - C(kind) (xdp, afxdp or none), C(mode), C(fallback_mode), C(interface),
        C(netns), C(host), C(target_ip) (build the program to act on this address only), C(object) (a
        prebuilt object or worker shipped to this host), C(bpf_dir), C(dst_mac), C(dst_ip).
    type: dict
    required: true
  run:
    description:
      - The run's settings - C(loader), C(bpf_dir), C(afxdp) (copy_mode, busy_poll, cpu), C(testrun)
        (repeat, rounds).
    type: dict
    default: {}
  generator:
    description:
      - The traffic side, for O(phase=measured) and O(phase=window) - C(interface), C(netns), C(generator),
        C(cpu) (list), C(allowed_destinations), and for a neighbour cell C(neighbour) (mac, ip, probe_cpu,
        probe_src_ip, responder).
    type: dict
    default: {}
  sampling:
    description: What the CPU sampling names - C(processes) (as M(xdplab.offload.cpu_usage)), C(domains), C(uri).
    type: dict
    default: {}
  armed:
    description: The RV(armed) result of O(phase=armed), for O(phase=collected).
    type: dict
    default: {}
  dst_mac:
    description: The DUT's MAC, for O(phase=window) (the RV(armed) result's C(dut_before.mac)).
    type: str
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Returns the steps it would take; loads, starts, sends and writes nothing.
  diff_mode:
    support: none
notes:
  - Needs root (BPF, network namespaces) and pyroute2; with C(sampling.domains), libvirt-python.
seealso:
  - module: xdplab.offload.cell_record
  - module: xdplab.offload.xdp_program
  - module: xdplab.offload.traffic
'''

EXAMPLES = r'''
- name: One bare-metal cell, deploy to removal
  xdplab.offload.cell:
    cell: {id: drop-driver-64-r1, experiment: drop, program: drop, n: null, location: driver, size: 64,
           rate: 0, duration: 2, repetition: 1}
    location: {kind: xdp, mode: driver, interface: xl-dut0, netns: xl-dut}
    generator: {interface: xl-lg0, netns: xl-lg, cpu: [0]}
    sampling:
      processes: [{comm: "^napi/xl-dut0-", name: napi, optional: true}]
  register: measured
'''

RETURN = r'''
phase:
  description: The phase that ran.
  returned: always
  type: str
error:
  description: Why the cell did not complete (the failed step and its sentence), null when it did.
  returned: always
  type: str
teardown_error:
  description: What could not be removed after the cell, null when everything was.
  returned: always
  type: str
armed:
  description: Where and how the program runs (deploy, prog, dut_before, worker).
  returned: phases measured and armed, when the deployment succeeded
  type: dict
window:
  description: The traffic's result, the CPU usage over the window and the generator link's counters.
  returned: phases measured and window, when the window completed
  type: dict
search:
  description: A zero-loss cell's search - zero_loss_pps, the trials (offered, sent, processed, loss), converged, reason.
  returned: phase measured of a zero_loss cell, when the search completed
  type: dict
counters:
  description: The program's counters now.
  returned: phase counted
  type: dict
collected:
  description: The program's counters, the DUT link's counters after, the test run and the worker's final state.
  returned: phases measured and collected, when the collection completed
  type: dict
planned:
  description: The steps check mode would take.
  returned: check mode
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import safety, xdp

try:
    from ansible_collections.xdplab.offload.plugins.module_utils import cell as cells
    CELL_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - libvirt or pyroute2 missing
    cells = None
    CELL_IMPORT_ERROR = _exc


def check_inputs(p):
    """Names that become paths or command arguments: interfaces, namespaces, the cell's id and program."""
    location, generator = p["location"], p["generator"]
    if location.get("kind") not in ("xdp", "afxdp", "none"):
        raise safety.UnsafeInput("location.kind must be xdp, afxdp or none, got %r" % (location.get("kind"),),
                                 "location")
    safety.interface_name(location.get("interface"), "location.interface")
    safety.netns_name(location.get("netns") or None, "location.netns")
    if generator:
        safety.interface_name(generator.get("interface"), "generator.interface")
        safety.netns_name(generator.get("netns") or None, "generator.netns")
    safety.name(str(p["cell"].get("id", "")), "cell.id", "cell id")
    n = p["cell"].get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1000000):
        raise safety.UnsafeInput("cell.n must be an integer from 0 to 1000000 or null, got %r" % (n,), "cell.n")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            phase=dict(type="str", choices=["measured", "armed", "window", "counted", "collected", "absent"],
                       default="measured"),
            cell=dict(type="dict", required=True),
            location=dict(type="dict", required=True),
            run=dict(type="dict", default={}),
            generator=dict(type="dict", default={}),
            sampling=dict(type="dict", default={}),
            armed=dict(type="dict", default={}),
            dst_mac=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    if cells is None or not xdp.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2 >= 0.9.1"),
                         exception=str(CELL_IMPORT_ERROR or xdp.PYROUTE2_IMPORT_ERROR))
    p = module.params
    try:
        check_inputs(p)
    except safety.UnsafeInput as exc:
        module.fail_json(msg=exc.msg, option=exc.option)
    result = cells.run_phase(p["phase"], p, module.check_mode)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
