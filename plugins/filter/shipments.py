# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: shipments
short_description: The programs a run must build and copy to its guest locations, each once
version_added: 0.4.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - Takes the run's cells and the experiment role's location map and returns one item per distinct
    C({kind, program, n, host}) that a location with C(ship) runs - C(kind) V(object) for an XDP object,
    V(worker) for the AF_XDP worker - so that each is built and copied once per run, before the cells.
positional: location_map
options:
  _input:
    description: The cells (as the P(xdplab.offload.matrix#lookup) lookup returns them).
    type: list
    elements: dict
    required: true
  location_map:
    description: The experiment role's C(experiment_location_map) (location -> kind, host, ship, ...).
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Ship what the guest locations run
  ansible.builtin.include_tasks: ship.yml
  loop: "{{ cells | xdplab.offload.shipments(location_map) }}"
'''

RETURN = r'''
_value:
  description: The shipments, in the order the cells first need them.
  type: list
  elements: dict
'''

from ansible.errors import AnsibleFilterError


def shipments(cells, location_map):
    if not isinstance(cells, list) or not isinstance(location_map, dict):
        raise AnsibleFilterError("xdplab.offload.shipments: give the cells (a list) and the location map (a dict)")
    out = []
    for cell in cells:
        where = location_map.get(cell.get("location")) or {}
        if not where.get("ship"):
            continue
        item = {"kind": "worker" if where.get("kind") == "afxdp" else "object", "program": cell.get("program"),
                "n": cell.get("n"), "host": where.get("host")}
        if item not in out:
            out.append(item)
    return out


class FilterModule(object):
    def filters(self):
        return {"shipments": shipments}
