# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: resume_verdict
short_description: Whether a cell runs again, given its existing record (resume)
version_added: 0.3.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - Takes the result of M(ansible.builtin.slurp) of a cell's record (or C(None) when there is no record
    file) and returns C({run, reason, status}).
  - A cell is skipped only when its record is a valid record of the same cell. A record that is missing,
    empty, unreadable, not JSON, not a valid record or of another cell runs again, and so does a
    V(failed) one with O(retry_failed).
positional: cell_id
options:
  _input:
    description: The slurp result (C(content) in base64), or C(None) / an empty dict for no record file.
    type: raw
    required: true
  cell_id:
    description: The cell's id.
    type: str
    required: true
  retry_failed:
    description: Run a cell recorded as V(failed) again.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Decide whether the cell runs
  ansible.builtin.set_fact:
    cell_verdict: "{{ (slurped if record_stat.stat.exists else None) | xdplab.offload.resume_verdict(cell.id, retry_failed=true) }}"
'''

RETURN = r'''
_value:
  description: C(run) (bool), C(reason) (str) and C(status) (the recorded status of a valid record, else null).
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.xdplab.offload.plugins.module_utils.resume import verdict


def resume_verdict(slurped, cell_id, retry_failed=False):
    if not isinstance(cell_id, str) or not cell_id:
        raise AnsibleFilterError("xdplab.offload.resume_verdict: cell_id must be the cell's id")
    if not slurped:
        return verdict(None, cell_id, retry_failed=bool(retry_failed), exists=False)
    if not isinstance(slurped, dict):
        raise AnsibleFilterError("xdplab.offload.resume_verdict: give the slurp result of the record")
    if slurped.get("failed") or "content" not in slurped:
        return verdict(None, cell_id, retry_failed=bool(retry_failed))
    return verdict(slurped["content"], cell_id, retry_failed=bool(retry_failed), encoding="base64")


class FilterModule(object):
    def filters(self):
        return {"resume_verdict": resume_verdict}
