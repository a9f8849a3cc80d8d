# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """The attributes every module documents: check mode, diff mode and platform.

    The descriptions live here; each module states its own support levels (and
    what they mean for it, as ``details``) in its ``attributes`` block, as
    community.general does::

        extends_documentation_fragment:
          - xdplab.offload.attributes
        attributes:
          check_mode:
            support: full
          diff_mode:
            support: none
            details: Only reads.

    A module's keys win over the fragment's (e.g. ``platform: {platforms: posix}``
    for the modules that only read and write files on the controller).
    """

    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: linux
'''
