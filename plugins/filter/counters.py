# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: counter_delta
short_description: Per-key difference of two counter dicts
version_added: 0.1.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - Returns C(after[k] - before[k]) for every key whose values are integers in both dicts;
    keys missing from O(before) count from 0.
positional: before
options:
  _input:
    description: The counters after the measurement.
    type: dict
    required: true
  before:
    description: The counters before the measurement.
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: What the device under test received during the run
  ansible.builtin.debug:
    msg: "{{ (after.stats | xdplab.offload.counter_delta(before.stats)).rx_packets }}"
'''

RETURN = r'''
_value:
  description: The differences, by counter name.
  type: dict
'''


from ansible_collections.xdplab.offload.plugins.module_utils.record import counter_delta  # noqa: E402


class FilterModule(object):
    def filters(self):
        return {"counter_delta": counter_delta}
