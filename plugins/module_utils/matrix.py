# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expand an experiment description into cells with stable ids.

An experiment is a dict of lists (programs, n, locations, rates, sizes) plus
scalars (repetitions, duration, and anything else, copied into each cell).
The cells are the cartesian product, minus the exclusions, in a stable order.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import itertools
import re

# Programs whose cost is set by a compile-time N; for the others N is collapsed.
PROGRAMS_WITH_N = ("loop", "checksum")
AXES = (("program", "programs"), ("n", "n"), ("location", "locations"), ("rate", "rates"), ("size", "sizes"))
_SAFE = re.compile(r"[^A-Za-z0-9_.]+")


class MatrixError(Exception):
    pass


def _as_list(value, axis, experiment):
    if value is None:
        return [None]
    if isinstance(value, (list, tuple)):
        if not value:
            raise MatrixError("experiment %s: %s is empty; give at least one value" % (experiment, axis))
        return list(value)
    return [value]


def cell_id(cell):
    parts = [cell["experiment"], cell["program"]]
    if cell.get("n") is not None:
        parts.append("n%s" % cell["n"])
    parts += [cell["location"], "s%s" % cell["size"], "r%s" % cell["rate"], "rep%s" % cell["repetition"]]
    return "-".join(_SAFE.sub("_", str(p)) for p in parts)


def _excluded(cell, exclusions):
    for rule in exclusions:
        if all(cell.get(k) == v for k, v in rule.items()):
            return True
    return False


def expand(experiments, exclude=None, only=None, programs_with_n=PROGRAMS_WITH_N):
    """Return the list of cells of ``experiments`` (a dict name -> spec).

    ``exclude`` is a list of partial cells; a cell matching every key of one
    of them is dropped. ``only`` restricts to the named experiments.
    """
    if not isinstance(experiments, dict):
        raise MatrixError("experiments must be a dict of experiment name -> description")
    exclusions = list(exclude or [])
    for rule in exclusions:
        if not isinstance(rule, dict) or not rule:
            raise MatrixError("each exclusion must be a non-empty dict, got %r" % (rule,))
    cells = []
    seen = set()
    for name in sorted(experiments):
        if only and name not in only:
            continue
        spec = dict(experiments[name] or {})
        if "programs" not in spec or "locations" not in spec:
            raise MatrixError("experiment %s needs at least programs and locations" % name)
        reps = spec.pop("repetitions", 1)
        if not isinstance(reps, int) or reps < 1:
            raise MatrixError("experiment %s: repetitions must be a positive integer" % name)
        values = []
        for key, plural in AXES:
            values.append(_as_list(spec.pop(plural, spec.pop(key, None)), plural, name))
        extra = spec
        for program, n, location, rate, size in itertools.product(*values):
            if program not in programs_with_n:
                n = None
            if rate is None:
                rate = 0
            if size is None:
                size = 64
            for rep in range(1, reps + 1):
                cell = dict(extra)
                cell.update(experiment=name, program=program, n=n, location=location,
                            rate=rate, size=size, repetition=rep)
                if _excluded(cell, exclusions):
                    continue
                cell["id"] = cell_id(cell)
                if cell["id"] in seen:
                    continue
                seen.add(cell["id"])
                cells.append(cell)
    return cells
