# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: collection_version
short_description: The version of the installed (or checked-out) xdplab.offload collection
version_added: 0.3.0
author:
  - xdplab.offload developers (!UNKNOWN)
description:
  - Reads C(MANIFEST.json) of an installed copy of the collection, or C(galaxy.yml) of a checkout,
    so that playbooks record the same version either way.
options: {}
'''

EXAMPLES = r'''
- name: Record the collection's version
  ansible.builtin.set_fact:
    xl_collection_version: "{{ lookup('xdplab.offload.collection_version') }}"
'''

RETURN = r'''
_raw:
  description: The version, one string.
  type: list
  elements: str
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.xdplab.offload.plugins.module_utils import collection


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if terms:
            raise AnsibleLookupError("collection_version takes no terms")
        try:
            return [collection.version()]
        except collection.CollectionError as exc:
            raise AnsibleLookupError("collection_version: %s" % exc)
