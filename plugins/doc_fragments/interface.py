# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """Options shared by the modules that act on one network interface."""

    DOCUMENTATION = r'''
options:
  interface:
    description:
      - Name of the network interface.
    type: str
    required: true
  netns:
    description:
      - Name of the network namespace (as listed by C(ip netns)) that holds O(interface).
      - Omit for the namespace the module runs in.
      - The namespace must exist; it is never created implicitly.
    type: str
'''
