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
    C(rates), C(sizes); the singular key takes one value) and scalars (C(repetitions), C(duration),
    C(measure), C(probe_rate), C(testrun)), and returns the cartesian product as a list of cells.
  - Every value is checked before any cell is made; a bad one fails the lookup with a message naming
    the experiment, the key, the value and the rule. Unknown keys are refused.
  - Experiment names are 1 to 64 of the characters A-Z a-z 0-9 _ . - (not starting with a dot).
  - C(programs) are built-in programs (V(drop), V(loop), V(checksum), V(dns_nxdomain)) or the absolute
    path of an existing C(.c), C(.o) or C(.h) file (characters A-Z a-z 0-9 _ . / + -).
  - C(locations) are V(offload), V(driver), V(generic), V(afxdp), V(afxdp_generic) (bare metal) and
    V(nic), V(host_driver), V(vm_driver), V(vm_generic), V(vm_afxdp), V(baseline) (VM experiments).
  - C(n) is an integer from 0 to 1000000; C(sizes) integers from 60 to 9018 (frame bytes without FCS,
    default 64); C(rates) numbers from 0 (as fast as the generator can, the default) to 200000000
    packets per second; C(duration) seconds above 0 and at most 3600 (default 10); C(repetitions)
    an integer from 1 to 1000 (default 1); C(probe_rate) queries per second above 0 and at most
    1000000; C(measure) one of V(throughput) (default), V(latency), V(neighbour), V(zero_loss); C(testrun) a boolean.
  - C(measure=zero_loss) searches the highest rate whose trial loses at most C(loss_tolerance) of the frames
    (RFC 2544, section 26.1) instead of offering one rate, and takes no C(rates) and no C(duration). Its
    parameters, copied into every cell with their defaults - C(loss_tolerance) a fraction from 0 (default)
    to 0.5; C(trial_duration) seconds above 0 and at most 600 (default 2); C(resolution) the relative width
    at which the binary search stops, above 0 and at most 0.5 (default 0.02); C(max_trials) an integer
    from 2 to 64 (default 12); C(start_rate) the first trial's packets per second from 0 (default, the
    generator's maximum, so an overload trial first) to 200000000. C(trial_duration) times C(max_trials) is
    at most 3600 and is the cell's C(duration) (the longest the search measures). These keys are refused
    for the other measures.
  - A C(measure=latency) experiment may give C(rates_fraction_of_zero_loss) (fractions above 0 and at most
    1, such as V([0.1, 0.5, 0.9])) instead of C(rates). Its cells carry C(rate_fraction_of_zero_loss) and
    C(rate=None); the rate is resolved when the cell runs from the run's zero-loss results of the same
    program, C(n), location and size. The cells of C(zero_loss) experiments therefore come first in the
    returned list, then the others, each group by experiment name.
  - Programs without a compile-time N (V(drop), V(dns_nxdomain), your own files) get C(n=None), so an
    N sweep does not multiply them.
  - Each cell has a stable C(id) that covers every parameter that changes the measurement, such as
    C(complexity-loop-n100-driver-s64-r0-d10-tr-rep1) or C(neighbour-checksum-n100-vm_driver-s64-r50000-d3-neighbour-p1000-rep1), made of
    experiment, program, C(n) (if any), location, size, rate, duration, the measure unless it is
    throughput, the probe rate of neighbour cells, C(tr) for cells with C(testrun), the repetition.
    A user's file appears as its base name and a short digest of its path. A fraction of the zero-loss rate
    appears as C(f<fraction>) in place of C(r<rate>); a zero_loss cell has no rate and duration but the
    search's parameters after the measure, such as
    C(zero_loss-checksum-n100-driver-s64-zero_loss-lt0-td2-res0.02-mt12-sr0-rep1).
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
  cell:
    description:
      - The term is one cell as this lookup returns it, not experiments; check it with the same rules
        (and that its C(id) is the one its values give) and return it as a one-element list.
      - The C(xdplab.offload.experiment) role checks its O(_terms) this way before it runs a cell.
    type: bool
    default: false
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
      zero_loss:
        programs: [drop, checksum]
        n: [1, 100]
        locations: [driver, generic]
        measure: zero_loss
        resolution: 0.02
      latency_at_zero_loss:
        programs: [checksum]
        n: [100]
        locations: [driver]
        measure: latency
        rates_fraction_of_zero_loss: [0.1, 0.5, 0.9]
'''

RETURN = r'''
_raw:
  description: The cells, in a stable order.
  type: list
  elements: dict
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.xdplab.offload.plugins.module_utils.matrix import MatrixError, check_cell, expand


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError("matrix takes exactly one dict of experiments, got %d terms" % len(terms))
        try:
            if self.get_option("cell"):
                return [check_cell(terms[0])]
            return expand(terms[0], exclude=self.get_option("exclude"), only=self.get_option("only") or None)
        except MatrixError as exc:
            raise AnsibleLookupError("matrix: %s" % exc)
