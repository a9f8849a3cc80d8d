#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: results_compare
short_description: Compare two experiment runs cell group by cell group
version_added: 0.1.0
description:
  - Aggregates the records of the run in O(path) and of the reference run in O(reference) (as
    M(xdplab.offload.results_summary) does), matches their cell groups by O(group_by) and, for every
    quantity measured in both, gives the ratio of the medians (this run / reference) and whether the
    difference exceeds the spread - the two 95% intervals of the mean do not overlap (true), do
    overlap (false), or a side has fewer than two ok repetitions (null, no statement).
  - For regression checks (the same lab, a newer collection or kernel) and for comparing the
    emulated lab with a testbed. A run compared with itself gives ratios of 1 and no difference.
  - Writes the comparison to O(output) (default C(<path>/compare-<reference run>.csv)), atomically
    and only when it changes.
  - Runs on the controller; it needs pandas.
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Computes the comparison and reports whether the file would change, without writing it.
  diff_mode:
    support: full
    details: The diff is the old and new CSV text.
  platform:
    platforms: posix
options:
  path:
    description: The run directory, C(results/<run_id>), which contains C(records/).
    type: path
    required: true
  reference:
    description: The directory of the run to compare with, C(results/<other_run_id>).
    type: path
    required: true
  output:
    description: Where to write the comparison; defaults to C(<path>/compare-<basename of reference>.csv).
    type: path
  group_by:
    description: Record fields whose combination identifies a cell group.
    type: list
    elements: str
    default: [experiment, program, n, location, size, rate]
  table_quantities:
    description: Quantities shown in RV(rows) and RV(table) when a group has them (the CSV has all).
    type: list
    elements: str
    default: [processed_pps, zero_loss_pps, rate_pps, ns_per_run, ns_per_packet, rtt_us_p50, rtt_us_p99,
              cpu_host_share, cpu_vm_share]
requirements:
  - pandas >= 2.2 (on the host the module runs on)
notes:
  - "Run it with the controller's Python: C(ansible_python_interpreter: '{{ ansible_playbook_python }}')."
  - "CSV columns: the group keys, C(status), C(status_ref) (V(absent) for a group the other run lacks),
    C(repetitions), C(repetitions_ref), and per quantity C(<q>_median), C(<q>_median_ref), C(<q>_ratio),
    C(<q>_exceeds_spread) (true, false or empty)."
seealso:
  - module: xdplab.offload.results_summary
  - module: xdplab.offload.results_report
'''

EXAMPLES = r'''
- name: Did the new kernel change anything?
  xdplab.offload.results_compare:
    path: results/after-upgrade
    reference: results/before-upgrade
  register: cmp
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"

- name: Fail on a throughput drop beyond the spread
  ansible.builtin.assert:
    that: cmp.rows | selectattr('processed_pps_exceeds_spread', 'defined')
          | selectattr('processed_pps_exceeds_spread') | selectattr('processed_pps_ratio', 'lt', 1) | list | length == 0
    fail_msg: "{{ cmp.beyond_spread }}"
'''

RETURN = r'''
output:
  description: Path of the comparison CSV.
  returned: always
  type: str
  sample: /work/results/r2/compare-r1.csv
rows:
  description:
    - One dict per cell group of either run - group keys, C(status), C(status_ref), C(repetitions),
      C(repetitions_ref), and for each of O(table_quantities) present C(<q>) (median), C(<q>_ref),
      C(<q>_ratio) and C(<q>_exceeds_spread).
  returned: always
  type: list
  elements: dict
  sample:
    - {experiment: drop, program: drop, n: null, location: driver, size: 64, rate: 0, status: ok,
       status_ref: ok, repetitions: 3, repetitions_ref: 3, processed_pps: 11800000.0,
       processed_pps_ref: 12100000.0, processed_pps_ratio: 0.975, processed_pps_exceeds_spread: false}
table:
  description: One readable line per cell group.
  returned: always
  type: list
  elements: str
  sample: ["drop drop n=- driver 64B rate=max: processed_pps x0.975 (11.8M vs 12.1M, within spread)"]
quantities:
  description: The quantities compared (measured in both runs).
  returned: always
  type: list
  elements: str
matched:
  description: Cell groups present in both runs.
  returned: always
  type: int
only_here:
  description: Cell groups only in this run.
  returned: always
  type: int
only_ref:
  description: Cell groups only in the reference run.
  returned: always
  type: int
beyond_spread:
  description: The group and quantity of every difference that exceeds the spread, with its ratio.
  returned: always
  type: list
  elements: str
  sample: ["experiment=drop/program=drop/n=null/location=driver/size=64/rate=0: processed_pps x0.62"]
run_id:
  description: The run id of O(path).
  returned: always
  type: str
ref_run_id:
  description: The run id of O(reference).
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import results as res


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            reference=dict(type="path", required=True),
            output=dict(type="path"),
            group_by=dict(type="list", elements="str", default=list(res.GROUP_KEYS)),
            table_quantities=dict(type="list", elements="str", default=list(res.TABLE_QUANTITIES)),
        ),
        supports_check_mode=True,
    )
    for name, error in res.missing_libraries():
        module.fail_json(msg=missing_required_lib(name) + res.CONTROLLER_PYTHON_HINT, exception=str(error))
    path, reference = module.params["path"], module.params["reference"]
    problem = res.parameter_problem(module.params["group_by"], [("Run", path), ("Reference run", reference)])
    if problem:
        module.fail_json(**problem)

    try:
        result = res.compare_runs(path, reference, output=module.params["output"],
                                  group_by=module.params["group_by"],
                                  table_quantities=module.params["table_quantities"],
                                  write=not module.check_mode)
    except (res.ResultsError, OSError) as exc:
        module.fail_json(msg="Cannot write the comparison of %s with %s: %s." % (path, reference, exc))

    warnings, values = res.module_return(result, module._diff and result["changed"], drop=("full_rows",))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**values)


if __name__ == "__main__":
    main()
