#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: results_summary
short_description: Aggregate an experiment run's JSON records into summary.csv
version_added: 0.1.0
description:
  - Reads the per-cell records C(<path>/records/*.json) that the C(experiment) role writes,
    groups the repetitions of each cell group (O(group_by)) and writes one row per group to
    a CSV file with pandas.
  - Per group the row holds C(status) (V(ok) when every repetition is ok, otherwise the worst
    of V(unsupported) < V(failed), with the distinct reasons joined by C(; )), C(repetitions)
    (ok repetitions), C(repetitions_total), the distinct C(mode) and C(loader) values, and for
    every top-level numeric measured field C(<q>) of the ok repetitions
    C(<q>_median), C(<q>_q1), C(<q>_q3) (linear interpolation), C(<q>_mean),
    C(<q>_ci95_low)/C(<q>_ci95_high) (two-sided 95% Student-t interval of the mean; empty
    with a single repetition), C(<q>_min), C(<q>_max).
  - Files that are not valid records are skipped and listed in RV(skipped_files).
  - The CSV is written through a temporary file and a rename, and only when its content
    changes, so a second run over the same records reports no change.
  - Runs on the controller; it needs pandas, which the managed hosts' venv does not have.
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Computes the summary and reports whether the file would change, without writing it.
  diff_mode:
    support: full
    details: The diff is the old and new CSV text.
  platform:
    platforms: posix
options:
  path:
    description:
      - The run directory, C(results/<run_id>), which contains the C(records/) directory.
    type: path
    required: true
  output:
    description:
      - Where to write the summary. Defaults to C(<path>/summary.csv). Its directory must exist.
    type: path
  group_by:
    description:
      - Record fields whose combination identifies a cell group (null is a value of its own).
      - Add a field here when a matrix varies a parameter that is not in the default list,
        otherwise its cells are merged; the module warns when one group holds a repetition
        number twice.
    type: list
    elements: str
    default: [experiment, program, n, location, size, rate]
  table_quantities:
    description:
      - Quantities shown (median and 95% interval) in RV(rows) and RV(table) when a group has them.
    type: list
    elements: str
    default: [processed_pps, zero_loss_pps, rate_pps, ns_per_run, ns_per_packet, rtt_us_p50, rtt_us_p99,
              cpu_host_share, cpu_vm_share]
requirements:
  - pandas >= 2.2 (on the host the module runs on)
notes:
  - "Run it with the controller's Python, for example with
    C(ansible_python_interpreter: '{{ ansible_playbook_python }}') in the play's vars."
seealso:
  - module: xdplab.offload.results_report
    description: Figures and a report from the same records; the collection's C(results) role runs both on the controller.
'''

EXAMPLES = r'''
- name: Summarise a fetched run
  xdplab.offload.results_summary:
    path: "{{ lookup('xdplab.offload.results_dir', 'results', run_id='2019-06-24-drop') }}"
  register: summary
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"

- name: Show it
  ansible.builtin.debug:
    var: summary.table

- name: Group also by loader, into a separate file
  xdplab.offload.results_summary:
    path: results/loaders
    output: results/loaders/summary-by-loader.csv
    group_by: [experiment, program, n, location, size, rate, loader]
'''

RETURN = r'''
output:
  description: Path of the summary CSV.
  returned: always
  type: str
  sample: /work/results/r1/summary.csv
rows:
  description:
    - One compact dict per group, for printing - the group keys, C(status), C(repetitions),
      C(repetitions_total), C(reason) when not ok, and for each of O(table_quantities) present
      its median as C(<q>) and its 95% interval as C(<q>_ci95) (null with one repetition).
    - The complete statistics are in the CSV.
  returned: always
  type: list
  elements: dict
  sample:
    - {experiment: drop, program: drop, n: null, location: driver, size: 64, rate: 0,
       status: ok, repetitions: 3, repetitions_total: 3, processed_pps: 11800000.0,
       processed_pps_ci95: [11020000.0, 12500000.0]}
table:
  description: RV(rows) as one readable line per group.
  returned: always
  type: list
  elements: str
  sample: ["drop drop n=- driver 64B rate=max ok 3/3 processed_pps=11.8M [11M, 12.5M]"]
groups:
  description: Number of groups (rows of the CSV).
  returned: always
  type: int
records:
  description: Number of valid records read.
  returned: always
  type: int
quantities:
  description: The measured fields that were aggregated.
  returned: always
  type: list
  elements: str
  sample: [sent_packets, rate_pps, processed_packets, processed_pps]
skipped_files:
  description:
    - Files in C(records/) that are not valid records, with the reason.
    - Not called C(skipped), which Ansible would read as "the task was skipped".
  returned: always
  type: list
  elements: dict
  sample: [{file: broken.json, reason: "not valid JSON: Expecting value: line 1 column 1 (char 0)"}]
failed_cells:
  description: Records with status V(failed) - cell id, experiment, program, n, location, repetition, reason.
  returned: always
  type: list
  elements: dict
unsupported_cells:
  description: Records with status V(unsupported), same fields as RV(failed_cells).
  returned: always
  type: list
  elements: dict
  sample: [{cell_id: drop-drop-offload-s64-r0-d10-rep1, location: offload,
            reason: "no offload-capable NIC", experiment: drop, program: drop, n: null, repetition: 1}]
run_ids:
  description: Distinct C(run_id) values of the records (one, unless runs were mixed).
  returned: always
  type: list
  elements: str
'''

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import results as res


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            output=dict(type="path"),
            group_by=dict(type="list", elements="str", default=list(res.GROUP_KEYS)),
            table_quantities=dict(type="list", elements="str", default=list(res.TABLE_QUANTITIES)),
        ),
        supports_check_mode=True,
    )
    for name, error in res.missing_libraries():
        module.fail_json(msg=missing_required_lib(name) + res.CONTROLLER_PYTHON_HINT, exception=str(error))
    path = module.params["path"]
    problem = res.parameter_problem(module.params["group_by"], [("Run", path)])
    if problem:
        module.fail_json(**problem)

    try:
        result = res.summarize(path, output=module.params["output"], group_by=module.params["group_by"],
                               table_quantities=module.params["table_quantities"],
                               write=not module.check_mode)
    except (res.ResultsError, OSError) as exc:
        module.fail_json(msg="Cannot write the summary of %s: %s." % (path, exc),
                         path=path, output=module.params["output"] or os.path.join(path, "summary.csv"))

    warnings, values = res.module_return(result, module._diff and result["changed"])
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**values)


if __name__ == "__main__":
    main()
