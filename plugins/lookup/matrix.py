# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: matrix
short_description: Expand experiment descriptions into cells with stable ids
version_added: 0.1.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - Takes a dict of experiments, each a dict of lists (C(programs), C(n), C(locations),
    C(rates), C(sizes)) and scalars (C(repetitions), C(duration), anything else is copied
    into every cell), and returns the cartesian product as a list of cells.
  - Programs without a compile-time N (V(drop), V(dns_nxdomain)) get C(n=None), so an N sweep
    does not multiply them.
  - Each cell has a stable C(id) such as C(complexity-loop-n100-driver-s64-r0-rep1).
options:
  _terms:
    description: One dict of experiments.
    required: true
    type: dict
  exclude:
    description: Partial cells; a cell that matches every key of one of them is dropped.
    type: list
    elements: dict
    default: []
  only:
    description: Expand only these experiments.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Show the cells of the bare-metal matrix
  ansible.builtin.debug:
    msg: "{{ item.id }}"
  loop: "{{ lookup('xdplab.offload.matrix', experiments, exclude=[{'location': 'offload', 'program': 'checksum'}], wantlist=True) }}"
  vars:
    experiments:
      drop:
        programs: [drop]
        locations: [driver, generic, offload]
        repetitions: 3
        duration: 5
'''

RETURN = r'''
_raw:
  description: The cells, in a stable order.
  type: list
  elements: dict
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.xdplab.offload.plugins.module_utils.matrix import MatrixError, expand


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError("matrix takes exactly one dict of experiments, got %d terms" % len(terms))
        try:
            return expand(terms[0], exclude=self.get_option("exclude"), only=self.get_option("only") or None)
        except MatrixError as exc:
            raise AnsibleLookupError("matrix: %s" % exc)
