# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The zero-loss search's filters: zero_loss_next, zero_loss_outcome and zero_loss_rate.

Each filter is documented in the YAML file of its name beside this one; the
logic is in module_utils/zero_loss.py.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.xdplab.offload.plugins.module_utils import zero_loss
from ansible_collections.xdplab.offload.plugins.module_utils.zero_loss import ZeroLossError


def _call(name, function, *args):
    try:
        return function(*args)
    except ZeroLossError as exc:
        raise AnsibleFilterError("xdplab.offload.%s: %s" % (name, exc))


def _trials(name, trials):
    if trials is None:
        return []
    if not isinstance(trials, (list, tuple)):
        raise AnsibleFilterError("xdplab.offload.%s: the input must be the list of trials run so far" % name)
    return list(trials)


def zero_loss_next(trials, params=None):
    return _call("zero_loss_next", zero_loss.next_rate, _trials("zero_loss_next", trials),
                 zero_loss.parameters_of(params))


def zero_loss_outcome(trials, params=None):
    return _call("zero_loss_outcome", zero_loss.outcome, _trials("zero_loss_outcome", trials),
                 zero_loss.parameters_of(params))


def zero_loss_rate(records, cell):
    if not isinstance(records, (list, tuple)):
        raise AnsibleFilterError("xdplab.offload.zero_loss_rate: the input must be a list of records")
    return _call("zero_loss_rate", zero_loss.rate_from_zero_loss, list(records), cell)


class FilterModule(object):
    def filters(self):
        return {"zero_loss_next": zero_loss_next, "zero_loss_outcome": zero_loss_outcome,
                "zero_loss_rate": zero_loss_rate}
