# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """Options of the modules that talk to a libvirt hypervisor."""

    DOCUMENTATION = r'''
options:
  uri:
    description:
      - libvirt connection URI, for example V(qemu:///system), V(xen:///system),
        V(qemu+ssh://root@host/system) or V(test:///default) (libvirt's test driver, which
        validates domain XML without running anything).
      - Default is V(xen:///system) for O(hypervisor=xen) and V(qemu:///system) otherwise.
    type: str
requirements:
  - libvirt-python (Debian C(python3-libvirt)) on the managed host
'''
