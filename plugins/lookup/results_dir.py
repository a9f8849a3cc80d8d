# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: results_dir
short_description: Where a run's results go on the controller
version_added: 0.3.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - Returns the absolute results directory. A relative path is taken from the directory
    C(ansible-playbook) was started in, never from the collection, so results land in the
    user's working directory whether the collection is a checkout or installed.
  - With O(run_id), returns that run's directory below it; the run id is validated
    (1 to 64 of C(A-Z a-z 0-9 _ . -), no leading dot) because it becomes a path part.
options:
  _terms:
    description: The results directory; default C(results).
    type: str
    required: false
  run_id:
    description: A run id; the result is then C(<results_dir>/<run_id>).
    type: str
'''

EXAMPLES = r'''
- name: The run's directory (./results/<run id> unless -e results_dir=... says otherwise)
  ansible.builtin.set_fact:
    xl_run_dir: "{{ lookup('xdplab.offload.results_dir', results_dir | default('results'), run_id=xl_run_id) }}"
'''

RETURN = r'''
_raw:
  description: The absolute directory, one string.
  type: list
  elements: str
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.xdplab.offload.plugins.module_utils import collection, safety


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) > 1:
            raise AnsibleLookupError("results_dir takes at most one directory, got %d" % len(terms))
        try:
            return [collection.results_dir(terms[0] if terms else "results", run_id=self.get_option("run_id"))]
        except safety.UnsafeInput as exc:
            raise AnsibleLookupError("results_dir: %s" % exc.msg)
