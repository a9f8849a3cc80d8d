# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zero-loss throughput search (RFC 2544, section 26.1) as pure functions.

The search offers traffic in trials of ``trial_duration`` seconds and looks for
the highest offered rate whose trial loses at most ``loss_tolerance`` of the
frames sent (0 by default: no frame lost). A trial's loss is the number of
frames the generator sent minus the number the XDP program processed (its
``seen`` counter), so a frame dropped anywhere on the way (a full veth ring, a
NIC queue, the stack) counts as lost.

The first trial runs at ``start_rate``; the default 0 asks the generator for
as much as it can, which is the location's measured maximum (an overload
trial). Then a binary search between the highest passing and the lowest
failing offered rate runs until ``(high - low) / high <= resolution`` or
``max_trials`` trials have run. The bounds are the rates the generator
actually achieved (frames sent / trial duration), not the rates asked for.

The overload trial also measured what the receiver processes when saturated,
P: the zero-loss rate is usually just below it. So the search first probes
inside its bounds at P / (1 - loss_tolerance) and then one step of 0.9 x
resolution beyond it (below after a loss, above after a pass), which brackets
the answer in three trials when P is a good guess; when it is not (a receiver
that processes less under overload than below it), halving goes on from the
bounds those probes gave, at most two trials later. Every bound is a trial's
measured rate, so the guess speeds the search up but cannot bias its result.

The caller runs the trials (generator, counters); these functions only decide:

* :func:`next_rate` ``(trials, params)`` gives the rate of the next trial
  (packets/s, 0 = as fast as the generator can) or None when the search is done;
* :func:`outcome` ``(trials, params)`` gives the result: ``zero_loss_pps``, the
  evaluated trials, ``converged`` and a ``reason`` in words;
* :func:`rate_from_zero_loss` ``(records, cell)`` turns the zero-loss results
  of a run into the offered rate of a latency cell given as a fraction of it.

A trial, as the caller gives it: ``target_pps`` (the rate asked for, 0 = as
fast as possible), ``duration_s`` (how long the generator sent), ``sent``
(frames sent), ``processed`` (frames the program saw) and optionally
``received`` (frames the receiving interface took, e.g. its rx_packets; shown,
not used for the verdict).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

MAX_RATE = 200e6           # packets/s, the matrix's bound on any offered rate
# The search goes no lower than a trial of this many frames (a loss ratio needs frames to mean something).
MIN_TRIAL_FRAMES = 100
# name: (default, minimum, maximum, minimum included, integer, rule in words)
PARAMETERS = {
    "loss_tolerance": (0.0, 0.0, 0.5, True, False,
                       "a fraction of the frames sent, from 0 (no loss) to 0.5"),
    "trial_duration": (2.0, 0.0, 600.0, False, False, "seconds above 0 and at most 600"),
    "resolution": (0.02, 0.0, 0.5, False, False,
                   "a fraction of the rate above 0 and at most 0.5 (0.02: within 2 %)"),
    "max_trials": (12, 2, 64, True, True, "an integer from 2 to 64"),
    "start_rate": (0, 0.0, MAX_RATE, True, False,
                   "packets per second from 0 (the generator's maximum: an overload trial) to %d" % MAX_RATE),
}
TRIAL_FIELDS = ("target_pps", "offered_pps", "duration_s", "sent", "received", "processed", "loss",
                "loss_ratio", "passed")


class ZeroLossError(Exception):
    pass


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def parameter_problem(name, value):
    """None when ``value`` is a valid value of search parameter ``name``, else the rule it breaks."""
    default, low, high, low_included, integer, rule = PARAMETERS[name]
    if integer and (not isinstance(value, int) or isinstance(value, bool)):
        return "must be " + rule
    if not _is_number(value) or value > high or value < low or (value == low and not low_included):
        return "must be " + rule
    return None


def parameters(params=None):
    """The search parameters with defaults filled in; ZeroLossError names a bad or unknown one."""
    params = dict(params or {})
    unknown = sorted(str(k) for k in params if k not in PARAMETERS)
    if unknown:
        raise ZeroLossError("unknown zero-loss parameter(s) %s: the search takes %s"
                            % (", ".join(unknown), ", ".join(sorted(PARAMETERS))))
    out = {}
    for name, spec in PARAMETERS.items():
        value = params.get(name)
        if value is None:
            value = spec[0]
        problem = parameter_problem(name, value)
        if problem:
            raise ZeroLossError("zero-loss parameter %s %r refused: %s" % (name, value, problem))
        out[name] = value
    return out


def parameters_of(source):
    """The search parameters given in ``source``: a matrix cell (a dict with an ``id``: its other keys are
    ignored) or a dict of parameters only (an unknown key is refused by :func:`parameters`)."""
    if source is None:
        return {}
    if not isinstance(source, dict):
        raise ZeroLossError("the search parameters must be a dict (or the matrix cell), got %r" % (source,))
    if "id" in source:
        return dict((k, source[k]) for k in PARAMETERS if k in source)
    return dict(source)


def _count(trial, key, index, optional=False):
    value = trial.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ZeroLossError("trial %d: %s must be a count of frames (an integer, 0 or more), got %r"
                            % (index, key, value))
    return value


def evaluate(trial, loss_tolerance, index=1):
    """One trial as the caller gives it, with its offered rate, loss and verdict (see TRIAL_FIELDS)."""
    if not isinstance(trial, dict):
        raise ZeroLossError("trial %d must be a dict (target_pps, duration_s, sent, processed), got %r"
                            % (index, trial))
    target, duration = trial.get("target_pps"), trial.get("duration_s")
    if not _is_number(target) or target < 0:
        raise ZeroLossError("trial %d: target_pps must be the rate asked for (0 = as fast as possible), got %r"
                            % (index, target))
    if not _is_number(duration) or duration <= 0:
        raise ZeroLossError("trial %d: duration_s must be the seconds the generator sent, above 0, got %r"
                            % (index, duration))
    sent = _count(trial, "sent", index)
    processed = _count(trial, "processed", index)
    received = _count(trial, "received", index, optional=True)
    if sent == 0:
        raise ZeroLossError("trial %d sent no frames: the generator did not run; see its output" % index)
    loss = sent - processed
    ratio = loss / float(sent)
    return {"target_pps": target, "offered_pps": sent / float(duration), "duration_s": duration, "sent": sent,
            "received": received, "processed": processed, "loss": loss, "loss_ratio": ratio,
            "passed": ratio <= loss_tolerance}


def _rate_text(rate):
    return "%.0f pps" % rate


def _search(trials, params):
    """The whole state of the search: evaluated trials, bounds, next rate or the result."""
    p = parameters(params)
    if not isinstance(trials, (list, tuple)):
        raise ZeroLossError("trials must be a list of trials, got %r" % (trials,))
    done = [evaluate(t, p["loss_tolerance"], i + 1) for i, t in enumerate(trials)]
    state = {"params": p, "trials": done, "low": None, "high": None, "next": None, "zero_loss_pps": None,
             "converged": False, "reason": None, "notes": []}
    if not done:
        state["next"] = p["start_rate"]
        return state
    failed = [t["offered_pps"] for t in done if not t["passed"]]
    high = min(failed) if failed else None
    passed = [t["offered_pps"] for t in done if t["passed"] and (high is None or t["offered_pps"] < high)]
    low = max(passed) if passed else None
    state["low"], state["high"] = low, high
    above = [t["offered_pps"] for t in done if t["passed"] and high is not None and t["offered_pps"] >= high]
    if above:
        state["notes"].append("a trial at %s passed although one at %s lost frames: the loss is not monotonic "
                              "in the rate here (noise), the lower rate decides"
                              % (_rate_text(max(above)), _rate_text(high)))
    if high is None:
        if any(t["target_pps"] == 0 for t in done):
            state.update(zero_loss_pps=low, converged=True,
                         reason="no loss even at the generator's maximum rate (%s): the zero-loss rate is at "
                                "least that; the generator, not the receiver, is the limit" % _rate_text(low))
            return state
        # Every paced trial passed: try as fast as the generator can.
        state["next"] = 0
    elif low is None:
        if high / 2.0 * p["trial_duration"] < MIN_TRIAL_FRAMES:
            state["reason"] = ("frames lost at every rate tried, down to %s (a slower trial would carry fewer "
                               "than %d frames): no zero-loss rate found" % (_rate_text(high), MIN_TRIAL_FRAMES))
            return state
        state["next"] = high / 2.0
    elif (high - low) / high <= p["resolution"]:
        state.update(zero_loss_pps=low, converged=True,
                     reason="converged: %s passed, %s lost frames (%.2g apart, resolution %g)"
                            % (_rate_text(low), _rate_text(high), (high - low) / high, p["resolution"]))
        return state
    else:
        state["next"] = (low + high) / 2.0
    if high is not None:
        state["next"] = _guided(done, low, high, p) or state["next"]
    if len(done) >= p["max_trials"]:
        state["next"] = None
        state["zero_loss_pps"] = low
        if low is None and high is None:
            where = "every trial passed"
        elif low is None:
            where = "no trial passed; the lowest tried, %s, lost frames" % _rate_text(high)
        elif high is None:
            where = "every trial passed; the highest, %s, is a lower bound" % _rate_text(low)
        else:
            where = "the zero-loss rate is between %s and %s (%.2g apart, resolution %g)" % (
                _rate_text(low), _rate_text(high), (high - low) / high, p["resolution"])
        state["reason"] = "max_trials (%d) reached: %s" % (p["max_trials"], where)
        return state
    if state["next"]:
        state["next"] = max(1, int(round(state["next"])))
    return state


def _guided(done, low, high, p):
    """The next probe near the overload trial's processed rate (see the module's doc), or None."""
    overload = [t for t in done if t["target_pps"] == 0 and not t["passed"]]
    if not overload:
        return None
    first = int(round(overload[0]["processed"] / float(overload[0]["duration_s"]) / (1.0 - p["loss_tolerance"])))
    probes = [t for t in done if t["target_pps"] == first]
    if probes:
        step = 0.9 * p["resolution"]
        offered = probes[0]["offered_pps"]
        first = int(round(offered / (1.0 - step) if probes[0]["passed"] else offered * (1.0 - step)))
        if any(t["target_pps"] == first for t in done):
            return None
    return first if (low or 0.0) < first < high else None


def next_rate(trials, params=None):
    """The offered rate of the next trial in packets/s (0 = as fast as possible), or None when done."""
    return _search(trials, params)["next"]


def outcome(trials, params=None):
    """The search's result so far.

    ``zero_loss_pps`` (the highest passing offered rate below the lowest failing one, None when none
    passed), ``trials`` (each with TRIAL_FIELDS), ``converged`` (the bounds met the resolution, or the
    generator's maximum lost nothing), ``done`` (no further trial), ``reason`` (in words), ``low_pps``
    and ``high_pps`` (the bounds) and ``overload_processed_pps`` (what the program processed per second
    in the as-fast-as-possible trial that lost frames, None without one).
    """
    state = _search(trials, params)
    reason = state["reason"] or "not done: the next trial is at %s" % (
        _rate_text(state["next"]) if state["next"] else "the generator's maximum rate")
    if state["notes"]:
        reason += "; " + "; ".join(state["notes"])
    overload = [t for t in state["trials"] if t["target_pps"] == 0 and not t["passed"]]
    return {"zero_loss_pps": state["zero_loss_pps"], "trials": state["trials"], "converged": state["converged"],
            "done": state["next"] is None, "reason": reason, "low_pps": state["low"], "high_pps": state["high"],
            "overload_processed_pps": (overload[-1]["processed"] / float(overload[-1]["duration_s"])
                                       if overload else None),
            "parameters": state["params"]}


# --------------------------------------------------------------------------- latency at a fraction

MATCH_KEYS = ("program", "n", "location", "size")


def _same(a, b):
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return a == b


def _median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0


def rate_from_zero_loss(records, cell):
    """The offered rate of a cell with ``rate_fraction_of_zero_loss``, from the run's zero-loss records.

    The zero-loss records are the ``ok`` records with a numeric ``zero_loss_pps`` of the same program,
    N, location and frame size; the rate is the fraction times their median, in whole packets/s.
    Returns ``{rate, reason, zero_loss_pps, cells}``: ``rate`` None with the ``reason`` in words when
    there is no such record, when the searches found no zero-loss rate, or when several zero-loss
    experiments measured it (which one is meant is then unclear).
    """
    if not isinstance(cell, dict):
        raise ZeroLossError("cell must be a matrix cell (a dict), got %r" % (cell,))
    fraction = cell.get("rate_fraction_of_zero_loss")
    if not _is_number(fraction) or not 0 < fraction <= 1:
        raise ZeroLossError("cell %s has no rate_fraction_of_zero_loss above 0 and at most 1 (got %r)"
                            % (cell.get("id"), fraction))
    what = "program %s%s at %s, %s-byte frames" % (
        cell.get("program"), "" if cell.get("n") is None else " N=%s" % cell.get("n"), cell.get("location"),
        cell.get("size"))
    result = {"rate": None, "reason": None, "zero_loss_pps": None, "cells": []}
    mine = [r for r in records or [] if isinstance(r, dict) and "zero_loss_pps" in r
            and all(_same(r.get(k), cell.get(k)) for k in MATCH_KEYS)]
    ok = [r for r in mine if r.get("status") == "ok"]
    if not ok:
        result["reason"] = ("no zero-loss measurement of %s in this run (%s): run a measure: zero_loss "
                            "experiment with the same program, n, location and size first"
                            % (what, "%d not ok" % len(mine) if mine else "none recorded"))
        return result
    experiments = sorted(set(str(r.get("experiment")) for r in ok))
    if len(experiments) > 1:
        result["reason"] = ("the zero-loss rate of %s was measured by several experiments (%s): keep one so "
                            "that the fraction has one meaning" % (what, ", ".join(experiments)))
        return result
    values = [r["zero_loss_pps"] for r in ok if _is_number(r.get("zero_loss_pps"))]
    result["cells"] = sorted(str(r.get("cell_id")) for r in ok)
    if not values:
        result["reason"] = ("the zero-loss search of %s found no rate without loss in any of its %d "
                            "repetitions" % (what, len(ok)))
        return result
    median = _median(values)
    rate = int(round(fraction * median))
    result["zero_loss_pps"] = median
    if rate < 1:
        result["reason"] = "%g x the zero-loss rate of %s (%s) is below 1 packet/s" % (
            fraction, what, _rate_text(median))
        return result
    result["rate"] = rate
    return result
