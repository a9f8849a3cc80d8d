# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expand an experiment description into cells with stable ids.

An experiment is a dict of lists (programs, n, locations, rates, sizes) plus
scalars (repetitions, duration, measure, probe_rate, testrun). The cells are
the cartesian product, minus the exclusions, in a stable order.

``measure: zero_loss`` searches the zero-loss rate (zero_loss.py) instead of
offering one rate: it takes the search's parameters (loss_tolerance,
trial_duration, resolution, max_trials, start_rate) and no rates or duration.
A latency experiment may give ``rates_fraction_of_zero_loss`` instead of
rates: its cells carry ``rate_fraction_of_zero_loss`` and ``rate: None``, and
the rate is resolved when the cell runs (zero_loss.rate_from_zero_loss), so
the zero-loss experiments' cells come first in the matrix.

Every value is checked before any cell exists: a cell's values end up on
command lines run as root (make's ``N=``, the load generator's arguments), so
anything that is not what the key documents is refused with a message naming
the experiment, the key, the value and the rule. Unknown keys are refused too
(a typo would otherwise be copied into every cell and silently ignored).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import itertools
import math
import os
import re

from ansible_collections.xdplab.offload.plugins.module_utils import safety, zero_loss
from ansible_collections.xdplab.offload.plugins.module_utils.programs import BUILTIN_PROGRAMS

# Programs whose cost is set by a compile-time N; for the others N is collapsed.
PROGRAMS_WITH_N = ("loop", "checksum")
AXES = (("program", "programs"), ("n", "n"), ("location", "locations"), ("rate", "rates"), ("size", "sizes"),
        ("flows", "flows"), ("queues", "queues"))
# Traffic distribution: UDP flows (source ports) the generator spreads frames over, and RX queues of the
# device under test (the emulated wire's veth); absent from a cell (and its id) unless the experiment gives them.
DISTRIBUTION_KEYS = ("flows", "queues")
MAX_FLOWS = 65536
MAX_QUEUES = 64
# The locations the playbooks deploy (experiment role and the VM playbook's location map).
LOCATIONS = ("offload", "driver", "generic", "afxdp", "afxdp_generic",
             "nic", "host_driver", "vm_driver", "vm_generic", "vm_afxdp", "baseline")
MEASURES = ("throughput", "latency", "neighbour", "zero_loss")
# The zero-loss search's parameters (bounds and defaults in zero_loss.PARAMETERS), for measure zero_loss only.
ZERO_LOSS_KEYS = ("loss_tolerance", "trial_duration", "resolution", "max_trials", "start_rate")
SCALARS = ("repetitions", "duration", "measure", "probe_rate", "testrun") + ZERO_LOSS_KEYS
# Latency at fractions of the zero-loss rate: the experiment's list and the cell's value.
FRACTIONS_KEY, FRACTION_KEY = "rates_fraction_of_zero_loss", "rate_fraction_of_zero_loss"
# Keys an experiment may have: the axes (plural, or singular for one value), the scalars, the fractions.
KNOWN_KEYS = frozenset([k for pair in AXES for k in pair] + list(SCALARS) + [FRACTIONS_KEY])

# Bounds (inclusive unless said otherwise); documented in the lookup's DOCUMENTATION.
MAX_N = 1000000
MIN_SIZE, MAX_SIZE = 60, 9018            # frame bytes without FCS; 9018: a jumbo frame
MAX_RATE = 200e6                         # pps; 0 = as fast as the generator can (100GbE: 148.8 Mpps)
MAX_DURATION = 3600.0                    # seconds, more than 0
MAX_REPETITIONS = 1000
MAX_PROBE_RATE = 1e6                     # DNS queries per second, more than 0
MAX_CELLS = 100000

_SAFE = re.compile(r"[^A-Za-z0-9_.]+")
# A user's program: an absolute, normalised path of plain characters to a .c, .o or .h file.
_USER_PROGRAM_RE = re.compile(r"/[A-Za-z0-9_./+-]+\.[coh]")


class MatrixError(Exception):
    pass


def _refuse(experiment, key, value, rule):
    raise MatrixError("experiment %s: %s %r refused: %s" % (experiment, key, value, rule))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _as_list(value, axis, experiment):
    if value is None:
        return [None]
    if isinstance(value, (list, tuple)):
        if not value:
            raise MatrixError("experiment %s: %s is empty; give at least one value" % (experiment, axis))
        return list(value)
    return [value]


def check_program(value, experiment="?", key="programs"):
    """A built-in program name or the absolute path of an existing .c/.o/.h file, else MatrixError."""
    if isinstance(value, str) and value in BUILTIN_PROGRAMS:
        return value
    rule = ("must be one of the built-in programs (%s) or the absolute path of an existing .c, .o or .h file "
            "(characters A-Z a-z 0-9 _ . / + -)" % ", ".join(BUILTIN_PROGRAMS))
    if (not isinstance(value, str) or not _USER_PROGRAM_RE.fullmatch(value) or os.path.normpath(value) != value
            or "/../" in value + "/" or not os.path.isfile(value)):
        _refuse(experiment, key, value, rule)
    return value


def check_n(value, experiment="?", key="n"):
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_N:
        _refuse(experiment, key, value, "must be an integer from 0 to %d" % MAX_N)
    return value


def check_location(value, experiment="?", key="locations"):
    if not isinstance(value, str) or value not in LOCATIONS:
        _refuse(experiment, key, value, "must be one of %s" % ", ".join(LOCATIONS))
    return value


def check_size(value, experiment="?", key="sizes"):
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_SIZE <= value <= MAX_SIZE:
        _refuse(experiment, key, value, "must be an integer frame length from %d to %d bytes" % (MIN_SIZE, MAX_SIZE))
    return value


def check_rate(value, experiment="?", key="rates"):
    if value is None:
        return None
    if not _is_number(value) or not 0 <= value <= MAX_RATE:
        _refuse(experiment, key, value, "must be a number of packets per second from 0 (as fast as the generator "
                "can) to %d" % MAX_RATE)
    return value


def check_duration(value, experiment="?", key="duration"):
    if not _is_number(value) or not 0 < value <= MAX_DURATION:
        _refuse(experiment, key, value, "must be a number of seconds above 0 and at most %d" % MAX_DURATION)
    return value


def check_repetitions(value, experiment="?", key="repetitions"):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_REPETITIONS:
        _refuse(experiment, key, value, "must be an integer from 1 to %d" % MAX_REPETITIONS)
    return value


def check_probe_rate(value, experiment="?", key="probe_rate"):
    if not _is_number(value) or not 0 < value <= MAX_PROBE_RATE:
        _refuse(experiment, key, value, "must be a number of queries per second above 0 and at most %d"
                % MAX_PROBE_RATE)
    return value


def check_measure(value, experiment="?", key="measure"):
    if not isinstance(value, str) or value not in MEASURES:
        _refuse(experiment, key, value, "must be one of %s" % ", ".join(MEASURES))
    return value


def check_testrun(value, experiment="?", key="testrun"):
    if not isinstance(value, bool):
        _refuse(experiment, key, value, "must be true or false")
    return value


def check_zero_loss_parameter(value, experiment="?", key="resolution"):
    problem = zero_loss.parameter_problem(key, value)
    if problem:
        _refuse(experiment, key, value, problem)
    return value


def check_fraction(value, experiment="?", key=FRACTIONS_KEY):
    if not _is_number(value) or not 0 < value <= 1:
        _refuse(experiment, key, value, "must be a fraction of the zero-loss rate above 0 and at most 1")
    return value


def _zero_loss_scalars(name, spec, measure):
    """The search's parameters of a zero_loss experiment, defaults filled in; refused for other measures."""
    given = [k for k in ZERO_LOSS_KEYS if k in spec]
    if measure != "zero_loss":
        if given:
            _refuse(name, given[0], spec[given[0]], "is a parameter of the zero-loss search: only with "
                    "measure zero_loss")
        return {}
    for key in ("rates", "rate", "duration"):
        if key in spec:
            _refuse(name, key, spec[key], "a zero_loss experiment searches the rate in trials; give start_rate "
                    "and trial_duration instead")
    scalars = {}
    for key in ZERO_LOSS_KEYS:
        scalars[key] = check_zero_loss_parameter(spec.get(key, zero_loss.PARAMETERS[key][0]), name, key)
    longest = scalars["trial_duration"] * scalars["max_trials"]
    if longest > MAX_DURATION:
        _refuse(name, "trial_duration", scalars["trial_duration"], "trial_duration x max_trials (%g s) must be "
                "at most %d seconds" % (longest, MAX_DURATION))
    # The cell's duration: the longest the search measures (the progress line plans with it).
    scalars["duration"] = longest
    return scalars


def _fractions(name, spec, measure):
    if FRACTIONS_KEY not in spec:
        return [None]
    if measure != "latency":
        _refuse(name, FRACTIONS_KEY, spec[FRACTIONS_KEY], "only for measure latency")
    if "rates" in spec or "rate" in spec:
        _refuse(name, FRACTIONS_KEY, spec[FRACTIONS_KEY], "give rates or rates_fraction_of_zero_loss, not both")
    fractions = _as_list(spec[FRACTIONS_KEY], FRACTIONS_KEY, name)
    for value in fractions:
        check_fraction(value, name)
    return fractions


def check_flows(value, experiment="?", key="flows"):
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_FLOWS:
        _refuse(experiment, key, value, "must be an integer number of flows from 1 to %d" % MAX_FLOWS)
    return value


def check_queues(value, experiment="?", key="queues"):
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_QUEUES:
        _refuse(experiment, key, value, "must be an integer number of RX queues from 1 to %d" % MAX_QUEUES)
    return value


_AXIS_CHECKS = {"program": check_program, "n": check_n, "location": check_location,
                "rate": check_rate, "size": check_size, "flows": check_flows, "queues": check_queues}


def _number_text(value):
    """2.0 -> '2', 0.5 -> '0.5': the same value gives the same id whether written as int or float."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _program_text(program):
    if program in BUILTIN_PROGRAMS:
        return program
    # A user's file: its base name and a short digest of the whole path (two files of one name differ).
    return "%s_%s" % (os.path.basename(program), hashlib.sha256(program.encode("utf-8")).hexdigest()[:8])


def cell_id(cell):
    """The cell's stable, readable id; it covers every parameter that changes the measurement.

    ``<experiment>-<program>[-n<N>]-<location>-s<size>[-fl<flows>][-q<queues>]-r<rate>-d<duration>[-<measure>]``
    ``[-p<probe_rate>][-tr]-rep<k>``:
    the measure only when it is not throughput, the probe rate only for neighbour cells (the only ones that
    send probes), ``tr`` when the cell also measures the BPF_PROG_TEST_RUN cost. A cell whose rate is a
    fraction of the zero-loss rate has ``f<fraction>`` in place of ``r<rate>``. A zero_loss cell has no rate
    or duration of its own but the search's parameters after the measure:
    ``zero_loss-lt<loss_tolerance>-td<trial_duration>-res<resolution>-mt<max_trials>-sr<start_rate>``.
    """
    parts = [cell["experiment"], _program_text(cell["program"])]
    if cell.get("n") is not None:
        parts.append("n%s" % cell["n"])
    parts += [cell["location"], "s%s" % cell["size"]]
    parts += ["%s%s" % (short, cell[key]) for short, key in (("fl", "flows"), ("q", "queues"))
              if cell.get(key) is not None]
    measure = cell.get("measure") or "throughput"
    if measure != "zero_loss":
        if cell.get(FRACTION_KEY) is not None:
            parts.append("f%s" % _number_text(cell[FRACTION_KEY]))
        else:
            parts.append("r%s" % _number_text(cell["rate"]))
        parts.append("d%s" % _number_text(cell["duration"]))
    if measure != "throughput":
        parts.append(measure)
    if measure == "zero_loss":
        parts += ["%s%s" % (short, _number_text(cell.get(key))) for short, key in
                  (("lt", "loss_tolerance"), ("td", "trial_duration"), ("res", "resolution"),
                   ("mt", "max_trials"), ("sr", "start_rate"))]
    if measure == "neighbour" and cell.get("probe_rate") is not None:
        parts.append("p%s" % _number_text(cell["probe_rate"]))
    if cell.get("testrun"):
        parts.append("tr")
    parts.append("rep%s" % cell["repetition"])
    return "-".join(_SAFE.sub("_", str(p)) for p in parts)


def _excluded(cell, exclusions):
    for rule in exclusions:
        if all(cell.get(k) == v for k, v in rule.items()):
            return True
    return False


def validate_experiment(name, spec):
    """Check one experiment; return ``(axis value lists, scalars)`` or raise MatrixError."""
    try:
        safety.name(name, "experiment name", "experiment name", safety.SHORT_NAME_MAX)
    except safety.UnsafeInput as exc:
        raise MatrixError(exc.msg)
    if not isinstance(spec, dict):
        raise MatrixError("experiment %s: its description must be a dict (programs, locations, ...), got %r"
                          % (name, spec))
    unknown = sorted(str(k) for k in spec if k not in KNOWN_KEYS)
    if unknown:
        raise MatrixError("experiment %s: unknown key(s) %s refused: an experiment has only %s"
                          % (name, ", ".join(unknown), ", ".join(sorted(KNOWN_KEYS))))
    for key, plural in AXES:
        if key != plural and key in spec and plural in spec:
            raise MatrixError("experiment %s: give %s or %s, not both" % (name, key, plural))
    if not ("programs" in spec or "program" in spec) or not ("locations" in spec or "location" in spec):
        raise MatrixError("experiment %s needs at least programs and locations" % name)
    measure = check_measure(spec.get("measure", "throughput"), name)
    values = []
    for key, plural in AXES:
        used = plural if plural in spec else key
        axis = _as_list(spec.get(used), used, name)
        for value in axis:
            if value is None and key in ("program", "location"):
                _refuse(name, used, value, "must be given")
            _AXIS_CHECKS[key](value, name, used)
        values.append(axis)
    values.append(_fractions(name, spec, measure))
    scalars = {
        "repetitions": check_repetitions(spec.get("repetitions", 1), name),
        "duration": check_duration(spec.get("duration", 10), name) if measure != "zero_loss" else None,
        "measure": measure,
        "testrun": check_testrun(spec.get("testrun", False), name),
    }
    scalars.update(_zero_loss_scalars(name, spec, measure))
    if "probe_rate" in spec:
        scalars["probe_rate"] = check_probe_rate(spec["probe_rate"], name)
    return values, scalars


CELL_KEYS = frozenset(("experiment", "program", "n", "location", "rate", "size", "repetition", "id", FRACTION_KEY)
                      + SCALARS + DISTRIBUTION_KEYS) - frozenset(("repetitions",))


def check_cell(cell):
    """Check one cell as ``expand`` makes it (the experiment role checks its input again); return it.

    Every value must pass the same rules as in an experiment, and ``id`` must be the id those values give,
    so it is a safe file name and names what was measured.
    """
    if not isinstance(cell, dict):
        raise MatrixError("a cell must be a dict as the matrix lookup returns it, got %r" % (cell,))
    unknown = sorted(str(k) for k in cell if k not in CELL_KEYS)
    if unknown:
        raise MatrixError("cell %r: unknown key(s) %s refused: a cell has only %s"
                          % (cell.get("id"), ", ".join(unknown), ", ".join(sorted(CELL_KEYS))))
    for key in ("experiment", "program", "location", "size", "rate", "repetition", "duration", "id"):
        if key not in cell:
            raise MatrixError("cell %r: %s missing" % (cell.get("id"), key))
    name = cell["experiment"]
    try:
        safety.name(name, "experiment name", "experiment name", safety.SHORT_NAME_MAX)
    except safety.UnsafeInput as exc:
        raise MatrixError(exc.msg)
    check_program(cell["program"], name, "program")
    check_n(cell.get("n"), name, "n")
    check_location(cell["location"], name, "location")
    check_size(cell["size"], name, "size")
    check_flows(cell.get("flows"), name, "flows")
    check_queues(cell.get("queues"), name, "queues")
    check_rate(cell["rate"], name, "rate")
    check_duration(cell["duration"], name, "duration")
    check_repetitions(cell["repetition"], name, "repetition")
    measure = check_measure(cell.get("measure", "throughput"), name, "measure")
    check_testrun(cell.get("testrun", False), name, "testrun")
    if cell.get("probe_rate") is not None:
        check_probe_rate(cell["probe_rate"], name, "probe_rate")
    _check_cell_search(cell, name, measure)
    want = cell_id(cell)
    if cell["id"] != want:
        _refuse(name, "id", cell["id"], "must be the id of the cell's values, %s" % want)
    return cell


def _check_cell_search(cell, name, measure):
    """The zero-loss parameters and the fraction of a cell: present exactly where its measure uses them."""
    for key in ZERO_LOSS_KEYS:
        if measure == "zero_loss":
            if key not in cell:
                raise MatrixError("cell %r: %s missing (a zero_loss cell carries the search's parameters)"
                                  % (cell.get("id"), key))
            check_zero_loss_parameter(cell[key], name, key)
        elif cell.get(key) is not None:
            _refuse(name, key, cell[key], "is a parameter of the zero-loss search: only with measure zero_loss")
    if measure == "zero_loss" and cell["duration"] != cell["trial_duration"] * cell["max_trials"]:
        _refuse(name, "duration", cell["duration"], "must be trial_duration x max_trials in a zero_loss cell")
    fraction = cell.get(FRACTION_KEY)
    if fraction is not None:
        check_fraction(fraction, name, FRACTION_KEY)
        if measure != "latency" or cell["rate"] is not None:
            _refuse(name, FRACTION_KEY, fraction, "only in latency cells, whose rate is then null (resolved "
                    "when the cell runs)")
    elif cell["rate"] is None:
        _refuse(name, "rate", None, "must be a number unless the cell gives rate_fraction_of_zero_loss")


def expand(experiments, exclude=None, only=None, programs_with_n=PROGRAMS_WITH_N):
    """Return the list of cells of ``experiments`` (a dict name -> spec).

    ``exclude`` is a list of partial cells; a cell matching every key of one
    of them is dropped. ``only`` restricts to the named experiments. Every
    experiment is validated before any cell is made (MatrixError). The cells of
    zero_loss experiments come first (latency cells may take their rate from
    them), then the others, each group by experiment name.
    """
    if not isinstance(experiments, dict):
        raise MatrixError("experiments must be a dict of experiment name -> description")
    exclusions = list(exclude or [])
    for rule in exclusions:
        if not isinstance(rule, dict) or not rule:
            raise MatrixError("each exclusion must be a non-empty dict, got %r" % (rule,))
    checked = {}
    for name in sorted(experiments, key=str):
        checked[name] = validate_experiment(name, experiments[name])
    cells = []
    seen = set()
    for name in sorted(checked, key=lambda e: (checked[e][1]["measure"] != "zero_loss", e)):
        if only and name not in only:
            continue
        values, scalars = checked[name]
        reps = scalars.pop("repetitions")
        for program, n, location, rate, size, flows, queues, fraction in itertools.product(*values):
            if program not in programs_with_n:
                n = None
            if rate is None and fraction is None:
                rate = 0
            if size is None:
                size = 64
            for rep in range(1, reps + 1):
                cell = dict(scalars)
                cell.update(experiment=name, program=program, n=n, location=location,
                            rate=rate, size=size, repetition=rep)
                if fraction is not None:
                    cell[FRACTION_KEY] = fraction
                for key, value in (("flows", flows), ("queues", queues)):
                    if value is not None:
                        cell[key] = value
                if _excluded(cell, exclusions):
                    continue
                cell["id"] = cell_id(cell)
                if cell["id"] in seen:
                    continue
                seen.add(cell["id"])
                cells.append(cell)
                if len(cells) > MAX_CELLS:
                    raise MatrixError("the matrix has more than %d cells; split it into several runs" % MAX_CELLS)
    return cells
