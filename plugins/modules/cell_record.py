#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: cell_record
short_description: Decide whether a cell runs (resume) and write its record, on the controller
version_added: 0.4.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - An action that runs on the controller only (no module is started) and does the two things a cell's record
    needs there.
  - With O(state=checked) it reads the cell's existing record, if any, and says whether the cell runs - a cell is
    skipped only when its record is a valid record of the same cell; a missing, empty, truncated, unreadable,
    invalid record or one of another cell runs again, and so does a V(failed) one with O(retry_failed).
  - With O(state=written) it builds the record from the parts the M(xdplab.offload.cell) module returned (its
    fields, units, derived values and provenance come from one place, the collection's C(record) module_utils),
    validates it with the rules the results modules load records with, and writes it atomically (a temporary
    file beside it, then a rename) as C(<records_dir>/<cell id>.json).
  - Both return C(xdplab_cell) (index, total, run id, the record without its bulky lists), from which the
    collection's stdout callback prints one line per cell.
options:
  state:
    description: V(checked) decides whether the cell runs; V(written) writes its record.
    type: str
    choices: [checked, written]
    default: written
  records_dir:
    description:
      - The run's records directory on the controller (the playbooks use C(<results dir>/<run id>/records)).
      - The cell's id is checked before it becomes the file's name, and the file must lie strictly under it.
    type: path
    required: true
  cell:
    description: The cell, as the P(xdplab.offload.matrix#lookup) lookup returns it.
    type: dict
    required: true
  retry_failed:
    description: With O(state=checked), run a cell recorded as V(failed) again.
    type: bool
    default: false
  run:
    description: The run's settings (run_id, loader, lab, collection_version).
    type: dict
    default: {}
  location:
    description: Where the cell ran (as given to M(xdplab.offload.cell)); its C(provenance) is merged into the record's.
    type: dict
    default: {}
  armed:
    description: The C(armed) result of M(xdplab.offload.cell).
    type: dict
    default: {}
  window:
    description: The C(window) result of M(xdplab.offload.cell).
    type: dict
    default: {}
  collected:
    description: The C(collected) result of M(xdplab.offload.cell).
    type: dict
    default: {}
  search:
    description: The C(search) result of M(xdplab.offload.cell) for a zero-loss cell (its rate and trials).
    type: dict
    default: {}
  error:
    description: Why the cell did not complete; the record's C(status) is then V(unsupported) or V(failed).
    type: str
  teardown_error:
    description: What could not be removed after the cell.
    type: str
  started:
    description: When the cell started (seconds since the epoch); C(wall_s) is measured from it.
    type: float
  generator_local:
    description: Whether the generator ran on the sampled host (its own CPU time is then taken out of the host share).
    type: bool
    default: true
  progress:
    description: The cell's place in the run (index, total, started) for the progress line.
    type: dict
    default: {}
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
    details: Builds and validates the record but writes nothing.
  diff_mode:
    support: none
  action:
    description: Indicates this has a corresponding action plugin so some parts of the work run on the controller.
    support: full
    details: Everything runs on the controller; no module is transferred or started.
seealso:
  - module: xdplab.offload.cell
'''

EXAMPLES = r'''
- name: Decide whether the cell runs
  xdplab.offload.cell_record:
    state: checked
    records_dir: results/20261203T120000Z/records
    cell: "{{ cell }}"
    run: {run_id: 20261203T120000Z}
  register: verdict

- name: Write its record
  xdplab.offload.cell_record:
    records_dir: results/20261203T120000Z/records
    cell: "{{ cell }}"
    run: {run_id: 20261203T120000Z, loader: object, lab: emulated}
    location: {kind: xdp, interface: xl-dut0}
    armed: "{{ measured.armed | default({}) }}"
    window: "{{ measured.window | default({}) }}"
    collected: "{{ measured.collected | default({}) }}"
    error: "{{ measured.error }}"
    started: "{{ started_ts }}"
'''

RETURN = r'''
path:
  description: The record's path.
  returned: always
  type: str
run:
  description: Whether the cell runs.
  returned: state checked
  type: bool
reason:
  description: Why the cell runs or not (checked); why the cell is not ok (written, null when ok).
  returned: always
  type: str
cell:
  description:
    - The cell to run; a latency cell given as a fraction of the zero-loss rate (C(rate_fraction_of_zero_loss))
      has its C(rate) resolved from the run's zero-loss records.
  returned: state checked
  type: dict
cell_error:
  description: Why the cell's rate cannot be resolved (no zero-loss record of its program and location); null otherwise.
  returned: state checked
  type: str
recorded_status:
  description: The status of the existing record, if a valid one exists.
  returned: state checked
  type: str
status:
  description: The written record's status (ok, unsupported or failed).
  returned: state written
  type: str
xdplab_cell:
  description: The cell's place in the run and its record (without bulky lists), for the progress line.
  returned: state written, and state checked when the record is kept
  type: dict
'''
