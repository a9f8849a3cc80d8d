#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: results_report
short_description: Draw a run's figures and write its report page (report.md, report.html)
version_added: 0.1.0
description:
  - Reads the records C(<path>/records/*.json), aggregates them like M(xdplab.offload.results_summary)
    and draws the paper's figures with matplotlib (Agg, no display) into C(<path>/figures/) as PNG
    and SVG - drop throughput per location, throughput and time per packet versus N per location
    (log axes), DNS latency percentiles versus packet rate, VM drop throughput, CPU usage stacked
    host share / VM share, the neighbour VM's latency CDF against its baseline - each with axis
    labels with units, a legend and the run's provenance in the caption.
  - Writes C(<path>/report.md) and a self-contained C(<path>/report.html) (figures embedded, no
    external resource) saying what ran, on which machines, with a table per experiment and every
    C(unsupported) and C(failed) cell with its reason.
  - With O(compare_to), adds a comparison with that reference run (ratio of medians per cell group
    and whether the difference exceeds the spread); M(xdplab.offload.results_compare) writes the
    full comparison as CSV.
  - Files are written through a temporary file and a rename and only when their content changes;
    the output does not depend on the time it is made, so a second run reports no change.
    Figure files of experiments no longer in the run are removed.
  - Runs on the controller; it needs pandas and matplotlib.
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Draws everything in memory and reports which files would change, without writing.
  diff_mode:
    support: partial
    details: The diff shows report.md; figures and report.html are binary or embed binaries.
  platform:
    platforms: posix
options:
  path:
    description: The run directory, C(results/<run_id>), which contains C(records/).
    type: path
    required: true
  compare_to:
    description:
      - Directory of a reference run to compare with (C(results/<other_run_id>)).
    type: path
  formats:
    description: Figure file formats to write. The HTML page always embeds PNG.
    type: list
    elements: str
    choices: [png, svg]
    default: [png, svg]
  group_by:
    description:
      - Record fields whose combination identifies a cell group, as in M(xdplab.offload.results_summary).
    type: list
    elements: str
    default: [experiment, program, n, location, size, rate]
requirements:
  - pandas >= 2.2 and matplotlib >= 3.8 (on the host the module runs on)
notes:
  - "Run it with the controller's Python: C(ansible_python_interpreter: '{{ ansible_playbook_python }}')."
  - "Record fields the figures use (latency percentiles, C(loss), CPU shares, C(rtt_us_samples),
    C(rtt_us_hist), the neighbour C(baseline) location) are documented in
    C(plugins/module_utils/results.py)."
seealso:
  - module: xdplab.offload.results_summary
  - module: xdplab.offload.results_compare
'''

EXAMPLES = r'''
- name: Figures and report page of a fetched run
  xdplab.offload.results_report:
    path: "{{ lookup('xdplab.offload.results_dir', 'results', run_id='20190624T100000Z') }}"
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"

- name: Compare the emulated lab with the testbed in the report
  xdplab.offload.results_report:
    path: results/emulated-1
    compare_to: results/testbed-1
    formats: [png]
'''

RETURN = r'''
report_md:
  description: Path of the Markdown report.
  returned: always
  type: str
  sample: /work/results/r1/report.md
report_html:
  description: Path of the self-contained HTML report.
  returned: always
  type: str
  sample: /work/results/r1/report.html
files:
  description: Files (relative to O(path)) that were written - or, in check mode, would be.
  returned: always
  type: list
  elements: str
  sample: [figures/drop_throughput.png, figures/drop_throughput.svg, report.md, report.html]
removed:
  description: Stale figure files removed (their experiment is no longer in the run).
  returned: always
  type: list
  elements: str
figures:
  description:
    - One entry per figure drawn - C(name), C(title), C(files), C(panels) (title and series labels)
      and C(not_drawn) (cell groups left out or incomplete, with status and reason).
  returned: always
  type: list
  elements: dict
  sample:
    - name: drop_throughput
      title: "Throughput baseline: drop all, per location"
      files: [/work/results/r1/figures/drop_throughput.png, /work/results/r1/figures/drop_throughput.svg]
      panels: [{title: null, series: ["drop, 64 B"]}]
      not_drawn: ["NIC offload, drop, 64 B, max rate: unsupported (no offload-capable NIC)"]
records:
  description: Number of valid records read.
  returned: always
  type: int
groups:
  description: Number of cell groups.
  returned: always
  type: int
unsupported_cells:
  description: Records with status V(unsupported) (cell id, experiment, program, n, location, repetition, reason).
  returned: always
  type: list
  elements: dict
failed_cells:
  description: Records with status V(failed), as RV(unsupported_cells).
  returned: always
  type: list
  elements: dict
skipped_files:
  description: Files in C(records/) that are not valid records, with the reason.
  returned: always
  type: list
  elements: dict
comparison:
  description:
    - With O(compare_to) - C(ref_run_id), C(groups), C(only) (groups in one run only),
      C(quantities) (compared values in the report) and C(beyond_spread) (how many of them differ
      beyond the spread). Null otherwise.
  returned: always
  type: dict
findings:
  description:
    - The paper's findings as judged in the report's C(Findings) section, in the paper's order - C(id),
      C(verdict) (C(reproduced), C(not reproduced) or C(not measurable here)), C(strength) (C(firm),
      C(tentative) when a side had a single repetition, null when not measurable) and C(reason) (why not
      measurable, else null).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "offload_improves_drop", "verdict": "reproduced", "strength": "firm", "reason": null}]
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.xdplab.offload.plugins.module_utils import figures as fg
from ansible_collections.xdplab.offload.plugins.module_utils import report as rp
from ansible_collections.xdplab.offload.plugins.module_utils import results as res


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            compare_to=dict(type="path"),
            formats=dict(type="list", elements="str", choices=list(fg.FORMATS), default=list(fg.FORMATS)),
            group_by=dict(type="list", elements="str", default=list(res.GROUP_KEYS)),
        ),
        supports_check_mode=True,
    )
    for name, error in rp.missing_libraries():
        module.fail_json(msg=missing_required_lib(name) + res.CONTROLLER_PYTHON_HINT, exception=str(error))
    path, compare_to = module.params["path"], module.params["compare_to"]
    problem = res.parameter_problem(module.params["group_by"], [("Run", path), ("Reference run", compare_to)])
    if problem:
        module.fail_json(**problem)

    try:
        result = rp.build_report(path, compare_to=compare_to, formats=module.params["formats"],
                                 write=not module.check_mode, group_by=module.params["group_by"])
    except (rp.ReportError, res.ResultsError, fg.FiguresError, OSError) as exc:
        module.fail_json(msg="Cannot write the report of %s: %s." % (path, exc), path=path)

    warnings, values = res.module_return(result, module._diff and rp.REPORT_MD in result["files"],
                                         before="before_markdown", after="markdown", header="report_md")
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**values)


if __name__ == "__main__":
    main()
