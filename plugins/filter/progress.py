# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: progress
short_description: "Progress line of a measurement loop: cell k of n, elapsed, remaining"
version_added: 0.1.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - "Formats a line like C(cell 3 of 40 [id]: elapsed 0:01:23, remaining ~0:12:40) for the cell at
    O(index) of a list of matrix cells (from the P(xdplab.offload.matrix#lookup) lookup); the cell id
    stands in parentheses where the brackets are."
  - The remaining time is the planned measuring time (C(duration)) of the cells still to run plus a
    per-cell overhead learnt from the cells measured so far (elapsed time minus their planned
    measuring time). Before the first cell has been measured the overhead is unknown and the
    estimate is a lower bound, shown as C(>=).
  - Elapsed time is measured on the controller, from O(started) to now.
positional: index
options:
  _input:
    description: The cells of the loop (dicts with C(id) and C(duration)), or just their number.
    type: raw
    required: true
  index:
    description: The 1-based position of the current cell, C(ansible_loop.index).
    type: int
    required: true
  started:
    description: When the loop started, in seconds since the epoch (C(now().timestamp()) set once before the loop).
    type: float
  skipped:
    description: How many cells before this one were skipped because they were already recorded (resume).
    type: int
    default: 0
  overhead_s:
    description: Per-cell overhead in seconds to assume before one has been measured.
    type: float
  now:
    description: The current time in seconds since the epoch; defaults to the controller's clock.
    type: float
'''

EXAMPLES = r'''
- name: Note when the loop starts
  ansible.builtin.set_fact:
    run_started: "{{ now().timestamp() }}"

- name: Show progress (inside a role included in a loop with loop_control.extended)
  ansible.builtin.debug:
    msg: "{{ cells | xdplab.offload.progress(ansible_loop.index, started=run_started) }}"
# -> cell 3 of 40 (drop-drop-driver-s64-r0-rep3): elapsed 0:01:23, remaining ~0:12:40
'''

RETURN = r'''
_value:
  description: The progress line.
  type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.xdplab.offload.plugins.module_utils.progress import ProgressError, progress_line


def progress(cells, index, started=None, skipped=0, overhead_s=None, now=None):
    try:
        return progress_line(cells, index, started=started, now=now, skipped=skipped, overhead_s=overhead_s)
    except ProgressError as exc:
        raise AnsibleFilterError("xdplab.offload.progress: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"progress": progress}
